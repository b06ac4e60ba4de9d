package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/ssf"
	"github.com/agentid/agentid/sdk/admin"
)

// The Shared Signals transmitter's endpoints (SSF 1.0 §7, §8; ADR 0026).
const (
	ssfMetadataPath = "/.well-known/ssf-configuration"
	ssfStreamPath   = "/ssf/stream"
	ssfStatusPath   = "/ssf/status"
	ssfVerifyPath   = "/ssf/verify"
	ssfPollPrefix   = "/ssf/poll/"
)

// ssfRoutes mounts the transmitter: its metadata (public), stream
// management and polling, each for an admin token or the access token of
// an agent holding the subscribe permission.
func (h *handler) ssfRoutes() {
	if h.p.SSF == nil {
		return
	}
	h.mux.HandleFunc("GET "+ssfMetadataPath, h.ssfMetadata)
	if u, err := url.Parse(h.p.Issuer); err == nil && strings.Trim(u.Path, "/") != "" {
		// SSF 1.0 §7.2.1: the issuer's path follows the well-known name.
		h.mux.HandleFunc("GET "+ssfMetadataPath+"/"+strings.Trim(u.Path, "/"), h.ssfMetadata)
	}
	h.mux.HandleFunc("POST "+ssfStreamPath, h.ssf(h.ssfCreate()))
	h.mux.HandleFunc("GET "+ssfStreamPath, h.ssf(h.ssfRead))
	h.mux.HandleFunc("PATCH "+ssfStreamPath, h.ssf(h.ssfUpdate(true)))
	h.mux.HandleFunc("PUT "+ssfStreamPath, h.ssf(h.ssfUpdate(false)))
	h.mux.HandleFunc("DELETE "+ssfStreamPath, h.ssf(h.ssfDelete))
	h.mux.HandleFunc("GET "+ssfStatusPath, h.ssf(h.ssfGetStatus))
	h.mux.HandleFunc("POST "+ssfStatusPath, h.ssf(h.ssfSetStatus()))
	h.mux.HandleFunc("POST "+ssfVerifyPath, h.ssf(h.ssfVerify))
	h.mux.HandleFunc("POST "+ssfPollPrefix+"{id}", h.ssf(h.ssfPoll()))
	for p, allow := range map[string]string{
		ssfStreamPath:          "GET, POST, PATCH, PUT, DELETE",
		ssfStatusPath:          "GET, POST",
		ssfVerifyPath:          http.MethodPost,
		ssfPollPrefix + "{id}": http.MethodPost,
	} {
		h.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			h.problem(w, r, errMethod)
		})
	}
}

// ssfMetadata is the transmitter configuration metadata (SSF 1.0 §7.1).
func (h *handler) ssfMetadata(w http.ResponseWriter, r *http.Request) {
	type scheme struct {
		SpecURN string `json:"spec_urn"`
	}
	body, err := json.Marshal(struct {
		SpecVersion          string   `json:"spec_version"`
		Issuer               string   `json:"issuer"`
		JWKSURI              string   `json:"jwks_uri"`
		DeliveryMethods      []string `json:"delivery_methods_supported"`
		ConfigurationURL     string   `json:"configuration_endpoint"`
		StatusURL            string   `json:"status_endpoint"`
		VerificationURL      string   `json:"verification_endpoint"`
		AuthorizationSchemes []scheme `json:"authorization_schemes"`
		DefaultSubjects      string   `json:"default_subjects"`
	}{
		SpecVersion: "1_0", Issuer: h.p.Issuer, JWKSURI: h.p.Issuer + oauth.JWKSPath,
		DeliveryMethods:  h.p.SSF.DeliveryMethods(),
		ConfigurationURL: h.p.Issuer + ssfStreamPath, StatusURL: h.p.Issuer + ssfStatusPath,
		VerificationURL:      h.p.Issuer + ssfVerifyPath,
		AuthorizationSchemes: []scheme{{SpecURN: "urn:ietf:rfc:6749"}},
		DefaultSubjects:      "ALL",
	})
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.publicDocument(w, r, "application/json", body)
}

// ssf authenticates the caller (an admin token of role admin, or an
// access token whose agent holds the subscribe permission).
func (h *handler) ssf(fn func(http.ResponseWriter, *http.Request, audit.Origin)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o, ok := h.agentOrAdmin(w, r, identity.PermissionSubscribe)
		if !ok {
			return
		}
		fn(w, r, o)
	}
}

// ssfDecode reads a JSON object into v. Unknown members are ignored
// (SSF 1.0 §4.2.3 and RFC 8936 leave room for extensions); the media
// type and size are checked as for the admin API.
func (h *handler) ssfDecode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &requestError{status: http.StatusUnsupportedMediaType, typ: admin.ProblemUnsupportedMediaType,
				title: "Unsupported media type", detail: "the body must be application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.p.MaxBodyBytes))
	if err != nil {
		return jsonError(err, h.p.MaxBodyBytes)
	}
	if len(body) == 0 {
		return badRequest("", "the body is empty; a JSON object is required")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return jsonError(err, h.p.MaxBodyBytes)
	}
	return nil
}

// ssfJSON is an SSF endpoint taking a JSON body: it decodes the body
// into a Req, calls call, and answers status with its result, or the
// problem of either step.
func ssfJSON[Req, Resp any](h *handler, status int,
	call func(r *http.Request, o audit.Origin, req Req) (Resp, error)) func(http.ResponseWriter, *http.Request, audit.Origin) {
	return func(w http.ResponseWriter, r *http.Request, o audit.Origin) {
		var req Req
		if err := h.ssfDecode(w, r, &req); err != nil {
			h.problem(w, r, err)
			return
		}
		resp, err := call(r, o, req)
		if err != nil {
			h.problem(w, r, err)
			return
		}
		h.reply(w, status, resp)
	}
}

// needStreamID refuses a body without stream_id.
func needStreamID(id string) error {
	if id == "" {
		return badRequest("stream_id", "stream_id is required")
	}
	return nil
}

func (h *handler) ssfCreate() func(http.ResponseWriter, *http.Request, audit.Origin) {
	return ssfJSON(h, http.StatusCreated, func(r *http.Request, o audit.Origin, req ssf.StreamRequest) (ssf.Stream, error) {
		return h.p.SSF.CreateStream(r.Context(), o, req)
	})
}

// ssfRead answers one stream for ?stream_id=, else an array of the
// caller's streams (SSF 1.0 §8.1.1.2).
func (h *handler) ssfRead(w http.ResponseWriter, r *http.Request, o audit.Origin) {
	if id, ok := r.URL.Query()["stream_id"]; ok {
		st, err := h.p.SSF.GetStream(r.Context(), o, strings.Join(id, ","))
		if err != nil {
			h.problem(w, r, err)
			return
		}
		h.reply(w, http.StatusOK, st)
		return
	}
	sts, err := h.p.SSF.ListStreams(r.Context(), o)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, sts)
}

func (h *handler) ssfUpdate(patch bool) func(http.ResponseWriter, *http.Request, audit.Origin) {
	return ssfJSON(h, http.StatusOK, func(r *http.Request, o audit.Origin, req ssf.StreamRequest) (ssf.Stream, error) {
		if err := needStreamID(req.StreamID); err != nil {
			return ssf.Stream{}, err
		}
		return h.p.SSF.UpdateStream(r.Context(), o, req, patch)
	})
}

// streamIDParam is the required ?stream_id= of DELETE and status reads.
func streamIDParam(r *http.Request) (string, error) {
	id := r.URL.Query().Get("stream_id")
	if id == "" {
		return "", badRequest("stream_id", "the stream_id query parameter is required")
	}
	return id, nil
}

func (h *handler) ssfDelete(w http.ResponseWriter, r *http.Request, o audit.Origin) {
	id, err := streamIDParam(r)
	if err == nil {
		err = h.p.SSF.DeleteStream(r.Context(), o, id)
	}
	if err != nil {
		h.problem(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) ssfGetStatus(w http.ResponseWriter, r *http.Request, o audit.Origin) {
	id, err := streamIDParam(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	st, err := h.p.SSF.GetStatus(r.Context(), o, id)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, st)
}

func (h *handler) ssfSetStatus() func(http.ResponseWriter, *http.Request, audit.Origin) {
	return ssfJSON(h, http.StatusOK, func(r *http.Request, o audit.Origin, req ssf.Status) (ssf.Status, error) {
		if err := needStreamID(req.StreamID); err != nil {
			return ssf.Status{}, err
		}
		return h.p.SSF.SetStatus(r.Context(), o, req)
	})
}

func (h *handler) ssfVerify(w http.ResponseWriter, r *http.Request, o audit.Origin) {
	var req struct {
		StreamID string `json:"stream_id"`
		State    string `json:"state"`
	}
	if err := h.ssfDecode(w, r, &req); err != nil {
		h.problem(w, r, err)
		return
	}
	err := needStreamID(req.StreamID)
	if err == nil {
		err = h.p.SSF.Verify(r.Context(), o, req.StreamID, req.State)
	}
	switch {
	case errors.Is(err, ssf.ErrTooSoon):
		w.Header().Set("Retry-After", "10")
		h.problem(w, r, &requestError{status: http.StatusTooManyRequests, typ: admin.ProblemRateLimited, title: "Too many requests",
			detail: "a verification was requested less than min_verification_interval seconds ago"})
	case err != nil:
		h.problem(w, r, err)
	default:
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	}
}

// ssfPoll is the stream's RFC 8936 poll endpoint.
func (h *handler) ssfPoll() func(http.ResponseWriter, *http.Request, audit.Origin) {
	return ssfJSON(h, http.StatusOK, func(r *http.Request, o audit.Origin, req ssf.PollRequest) (ssf.PollResponse, error) {
		return h.p.SSF.Poll(r.Context(), o, r.PathValue("id"), req)
	})
}
