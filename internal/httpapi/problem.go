package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// Transport-level errors that become problems.
var (
	errNoRoute     = errors.New("httpapi: no such endpoint")
	errMethod      = errors.New("httpapi: method not allowed")
	errUnavailable = errors.New("httpapi: not ready")
)

// requestError is a malformed request: bad JSON, an unknown field, a bad
// query parameter. It becomes a 400 (or the status it carries).
type requestError struct {
	status int
	typ    string
	title  string
	detail string
	field  string
}

func (e *requestError) Error() string { return "httpapi: " + e.detail }

func badRequest(field, format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, typ: admin.ProblemBadRequest,
		title: "Bad request", detail: fmt.Sprintf(format, args...), field: field}
}

// problemFor maps an error to the problem a client sees. Internal detail of
// unexpected errors is never returned; it is logged by the caller.
func problemFor(err error) (p admin.Problem, internal bool) {
	var re *requestError
	var ve *fault.ValidationError
	switch {
	case errors.As(err, &re):
		return admin.Problem{Type: re.typ, Title: re.title, Status: re.status, Detail: re.detail, Field: re.field}, false
	case errors.As(err, &ve):
		return admin.Problem{Type: admin.ProblemValidation, Title: "Invalid field", Status: http.StatusBadRequest,
			Detail: ve.Detail(), Field: ve.Field}, false
	case errors.Is(err, adminauth.ErrUnauthenticated):
		return admin.Problem{Type: admin.ProblemUnauthenticated, Title: "Unauthenticated", Status: http.StatusUnauthorized,
			Detail: "a valid admin token is required: Authorization: Bearer <token>"}, false
	case errors.Is(err, adminauth.ErrForbidden):
		return admin.Problem{Type: admin.ProblemForbidden, Title: "Forbidden", Status: http.StatusForbidden,
			Detail: "this token's role may not do this"}, false
	case errors.Is(err, errMethod):
		return admin.Problem{Type: admin.ProblemMethodNotAllowed, Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail: "the endpoint does not take this method; Allow lists those it does"}, false
	case errors.Is(err, errNoRoute):
		return admin.Problem{Type: admin.ProblemNotFound, Title: "Not found", Status: http.StatusNotFound,
			Detail: "no such endpoint"}, false
	case errors.Is(err, identity.ErrNotFound), errors.Is(err, adminauth.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return admin.Problem{Type: admin.ProblemNotFound, Title: "Not found", Status: http.StatusNotFound,
			Detail: clientDetail(err)}, false
	case errors.Is(err, identity.ErrAlreadyExists), errors.Is(err, adminauth.ErrAlreadyExists), errors.Is(err, store.ErrAlreadyExists):
		return admin.Problem{Type: admin.ProblemAlreadyExists, Title: "Already exists", Status: http.StatusConflict,
			Detail: clientDetail(err)}, false
	case errors.Is(err, identity.ErrVersionMismatch):
		return admin.Problem{Type: admin.ProblemVersionMismatch, Title: "Version mismatch", Status: http.StatusConflict,
			Detail: clientDetail(err)}, false
	case errors.Is(err, identity.ErrIllegalTransition), errors.Is(err, adminauth.ErrIllegalTransition):
		return admin.Problem{Type: admin.ProblemIllegalTransition, Title: "Illegal state transition", Status: http.StatusConflict,
			Detail: clientDetail(err)}, false
	case errors.Is(err, identity.ErrLimitExceeded):
		return admin.Problem{Type: admin.ProblemLimitExceeded, Title: "Limit exceeded", Status: http.StatusConflict,
			Detail: clientDetail(err)}, false
	case errors.Is(err, store.ErrBadPageToken):
		return admin.Problem{Type: admin.ProblemBadRequest, Title: "Bad request", Status: http.StatusBadRequest,
			Detail: "page_token is not one this server issued", Field: "page_token"}, false
	case errors.Is(err, errUnavailable):
		return admin.Problem{Type: admin.ProblemUnavailable, Title: "Unavailable", Status: http.StatusServiceUnavailable,
			Detail: "the store is unreachable or not migrated"}, false
	default:
		return admin.Problem{Type: admin.ProblemInternal, Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: "the request failed and changed nothing; the server log has the cause under this trace id"}, true
	}
}

// clientDetail is the message of a domain error, which domain packages
// write for clients (names and ids, never secrets or SQL), without the
// package prefix.
func clientDetail(err error) string {
	msg := err.Error()
	for _, prefix := range []string{"identity: ", "adminauth: ", "store: ", "ssf: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return msg
}

// problem writes err as an RFC 9457 problem+json answer.
func (h *handler) problem(w http.ResponseWriter, r *http.Request, err error) {
	p, internal := problemFor(err)
	if internal {
		h.p.Logger.ErrorContext(r.Context(), "request failed", "err", err, "path", r.URL.Path,
			"trace_id", traceOf(r.Context()).traceID)
	}
	p.Instance = r.URL.Path
	p.TraceID = traceOf(r.Context()).traceID
	if p.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentid"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
