package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// decode reads one JSON object from the body into v, strictly: the media
// type must be JSON (or absent), unknown fields are rejected, the size is
// bounded, and nothing may follow the object.
func (h *handler) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &requestError{status: http.StatusUnsupportedMediaType, typ: admin.ProblemUnsupportedMediaType,
				title: "Unsupported media type", detail: "the body must be application/json"}
		}
	}
	body := http.MaxBytesReader(w, r.Body, h.p.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, h.p.MaxBodyBytes)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err, h.p.MaxBodyBytes)
		}
		return badRequest("", "the body must hold exactly one JSON object")
	}
	return nil
}

// jsonError describes a decoding failure without echoing the body.
func jsonError(err error, limit int64) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return &requestError{status: http.StatusRequestEntityTooLarge, typ: admin.ProblemBodyTooLarge,
			title: "Body too large", detail: fmt.Sprintf("the body exceeds %d bytes", limit)}
	case errors.Is(err, io.EOF):
		return badRequest("", "the body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "the body is truncated JSON")
	case errors.As(err, &se):
		return badRequest("", "malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return badRequest(te.Field, "field %q must be %s", te.Field, te.Type.String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(field, "unknown field %q", field)
	default:
		var ute *time.ParseError
		if errors.As(err, &ute) {
			return badRequest("", "times must be RFC 3339")
		}
		return badRequest("", "malformed JSON")
	}
}

// reply writes v as JSON with the status.
func (h *handler) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// pageOf reads page_size and page_token.
func pageOf(r *http.Request) (store.Page, error) {
	q := r.URL.Query()
	var p store.Page
	if s := q.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxPageSize {
			return p, badRequest("page_size", "page_size must be an integer from 1 to %d", store.MaxPageSize)
		}
		p.PageSize = n
	}
	p.PageToken = q.Get("page_token")
	if len(p.PageToken) > 512 {
		return p, badRequest("page_token", "page_token is not one this server issued")
	}
	return p, nil
}

// boolParam reads an optional boolean query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest(name, "%s must be true or false", name)
	}
	return b, nil
}

// timeParam reads an optional RFC 3339 time query parameter.
func timeParam(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badRequest(name, "%s must be an RFC 3339 time", name)
	}
	return t.UTC(), nil
}

// ifVersion returns the optimistic-concurrency precondition: the body's
// version, or the If-Match header (a version number, optionally quoted as
// an entity tag). Both given and different is a bad request.
func ifVersion(r *http.Request, body int64) (int64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return body, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || v < 1 {
		return 0, badRequest("If-Match", "If-Match must be the record's version number")
	}
	if body != 0 && body != v {
		return 0, badRequest("version", "version in the body and If-Match differ")
	}
	return v, nil
}

// etag sets the ETag of a versioned record.
func etag(w http.ResponseWriter, version int64) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(version, 10)+`"`)
}

// optTime converts a zero time to nil.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// listOf is a one-page wire list of records.
func listOf[R, W any](records []R, out func(R) W) admin.List[W] {
	l := admin.List[W]{Items: make([]W, 0, len(records))}
	for _, r := range records {
		l.Items = append(l.Items, out(r))
	}
	return l
}
