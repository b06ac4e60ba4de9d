package nodeapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/svid"
	"github.com/agentid/agentid/sdk/admin"
)

// The node API answers errors with the admin API's problem types
// (docs/errors.md).
const (
	problemBadRequest           = admin.ProblemBadRequest
	problemValidation           = admin.ProblemValidation
	problemUnauthenticated      = admin.ProblemUnauthenticated
	problemForbidden            = admin.ProblemForbidden
	problemNotFound             = admin.ProblemNotFound
	problemIllegalTransition    = admin.ProblemIllegalTransition
	problemBodyTooLarge         = admin.ProblemBodyTooLarge
	problemUnsupportedMediaType = admin.ProblemUnsupportedMediaType
	problemMethodNotAllowed     = admin.ProblemMethodNotAllowed
	problemUnavailable          = admin.ProblemUnavailable
	problemInternal             = admin.ProblemInternal
)

// EvictedDetail is the detail of the 403 a node that is evicted or unknown
// gets.
const EvictedDetail = "node evicted: attest again with a new join token"

// problemError is an error that is already the problem a client sees.
type problemError struct {
	status int
	typ    string
	title  string
	detail string
	field  string
}

func (e *problemError) Error() string { return "nodeapi: " + e.detail }

func badRequest(field, format string, args ...any) error {
	return &problemError{status: http.StatusBadRequest, typ: problemBadRequest, title: "Bad request",
		detail: fmt.Sprintf(format, args...), field: field}
}

func errUnauthenticated(detail string) error {
	return &problemError{status: http.StatusUnauthorized, typ: problemUnauthenticated, title: "Unauthenticated", detail: detail}
}

// errEvicted is the answer to an evicted or unknown node.
func errEvicted() error {
	return &problemError{status: http.StatusForbidden, typ: problemForbidden, title: "Forbidden", detail: EvictedDetail}
}

// problemFor maps an error to the problem a client sees, and whether it is
// an internal failure (to be logged, never shown).
func problemFor(err error) (admin.Problem, bool) {
	var pe *problemError
	var ve *fault.ValidationError
	var na *svid.NotActiveError
	switch {
	case errors.As(err, &pe):
		return admin.Problem{Type: pe.typ, Title: pe.title, Status: pe.status, Detail: pe.detail, Field: pe.field}, false
	case errors.As(err, &ve):
		return admin.Problem{Type: problemValidation, Title: "Invalid field", Status: http.StatusBadRequest,
			Detail: ve.Detail(), Field: ve.Field}, false
	case errors.Is(err, svid.ErrNotFound):
		return admin.Problem{Type: problemNotFound, Title: "Not found", Status: http.StatusNotFound,
			Detail: strings.TrimPrefix(err.Error(), "svid: ")}, false
	case errors.As(err, &na):
		return admin.Problem{Type: problemIllegalTransition, Title: "Illegal state transition", Status: http.StatusConflict,
			Detail: strings.TrimPrefix(na.Error(), "svid: ")}, false
	case errors.Is(err, credential.ErrNoCA):
		return admin.Problem{Type: problemUnavailable, Title: "Unavailable", Status: http.StatusServiceUnavailable,
			Detail: "X.509-SVIDs cannot be issued: the server has no usable X.509 CA"}, false
	case errors.Is(err, credential.ErrNoKey):
		return admin.Problem{Type: problemUnavailable, Title: "Unavailable", Status: http.StatusServiceUnavailable,
			Detail: "JWT-SVIDs cannot be issued: the server has no usable JWT-SVID signing key"}, false
	default:
		return admin.Problem{Type: problemInternal, Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: "the request failed and changed nothing; the server log has the cause under this trace id"}, true
	}
}

// problem writes err as an RFC 9457 problem+json answer.
func (h *Handler) problem(w http.ResponseWriter, r *http.Request, err error) {
	p, internal := problemFor(err)
	rq := requestOf(r)
	if internal {
		h.p.Logger.ErrorContext(r.Context(), "node API request failed", "err", err, "path", r.URL.Path,
			"node", rq.node, "trace_id", rq.origin.TraceID)
	}
	p.Instance = r.URL.Path
	p.TraceID = rq.origin.TraceID
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
