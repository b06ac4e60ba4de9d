package httpapi

import (
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/svid"
	"github.com/agentid/agentid/sdk/admin"
)

// Handlers of agents' SVIDs (/v1/agents/{ref}/svids): an administrator
// mints an X.509-SVID or a JWT-SVID for an agent (before `agentid node`
// serves them to workloads) and lists those issued.

// maxSVIDTTLLen bounds the "ttl" string of an SVID request.
const maxSVIDTTLLen = 32

// svidRequest is a validated POST /v1/agents/{ref}/svids body.
type svidRequest struct {
	typ      string
	csr      []byte
	audience []string
	ttl      time.Duration
}

// parseSVIDRequest checks the body's fields against its type. Safe on
// any input.
func parseSVIDRequest(in admin.IssueSVIDRequest) (svidRequest, error) {
	out := svidRequest{typ: in.Type}
	switch in.Type {
	case admin.SVIDTypeX509:
		if in.CSR == "" {
			return out, svidInvalid("csr", "an X.509-SVID needs a certificate signing request (PEM)")
		}
		if len(in.Audience) > 0 {
			return out, svidInvalid("audience", "only a JWT-SVID has an audience")
		}
		out.csr = []byte(in.CSR)
	case admin.SVIDTypeJWT:
		if in.CSR != "" {
			return out, svidInvalid("csr", "only an X.509-SVID takes a CSR")
		}
		if len(in.Audience) == 0 {
			return out, svidInvalid("audience", "a JWT-SVID needs at least one audience")
		}
		out.audience = in.Audience
	case "":
		return out, svidInvalid("type", `type is required: "x509" or "jwt"`)
	default:
		return out, svidInvalid("type", `type must be "x509" or "jwt"`)
	}
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if len(in.TTL) > maxSVIDTTLLen || err != nil || d < time.Second {
			return out, svidInvalid("ttl", `ttl must be a duration of at least 1s, such as "5m" or "1h"`)
		}
		out.ttl = d
	}
	return out, nil
}

func svidInvalid(field, detail string) error {
	return &requestError{status: http.StatusBadRequest, typ: admin.ProblemValidation, title: "Invalid field",
		detail: "invalid " + field + ": " + detail, field: field}
}

// svidProblem maps the svid service's errors to problems; others go to
// problemFor unchanged.
func svidProblem(err error) error {
	var na *svid.NotActiveError
	switch {
	case errors.Is(err, svid.ErrNotFound):
		return &requestError{status: http.StatusNotFound, typ: admin.ProblemNotFound, title: "Not found",
			detail: strings.TrimPrefix(err.Error(), "svid: ")}
	case errors.As(err, &na):
		return &requestError{status: http.StatusConflict, typ: admin.ProblemIllegalTransition, title: "Illegal state transition",
			detail: strings.TrimPrefix(na.Error(), "svid: ")}
	case errors.Is(err, credential.ErrNoCA):
		return &requestError{status: http.StatusServiceUnavailable, typ: admin.ProblemUnavailable, title: "Unavailable",
			detail: "X.509-SVIDs cannot be issued: the server has no usable X.509 CA"}
	case errors.Is(err, credential.ErrNoKey):
		return &requestError{status: http.StatusServiceUnavailable, typ: admin.ProblemUnavailable, title: "Unavailable",
			detail: "JWT-SVIDs cannot be issued: the server has no usable JWT-SVID signing key"}
	}
	return err
}

func (h *handler) issueSVID(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.IssueSVIDRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	req, err := parseSVIDRequest(in)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	ref := r.PathValue("ref")
	var out admin.IssuedSVID
	switch req.typ {
	case admin.SVIDTypeX509:
		sv, _, err := h.p.SVIDs.IssueX509(r.Context(), p.origin, svid.X509Params{Ref: ref, CSR: req.csr, TTL: req.ttl})
		if err != nil {
			h.problem(w, r, svidProblem(err))
			return
		}
		var chain strings.Builder
		for _, der := range sv.Chain {
			_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
		}
		out = admin.IssuedSVID{Type: req.typ, SPIFFEID: sv.SPIFFEID, Serial: sv.Serial,
			ExpiresAt: sv.ExpiresAt.UTC(), CertChainPEM: chain.String()}
	default:
		sv, _, err := h.p.SVIDs.IssueJWT(r.Context(), p.origin, svid.JWTParams{Ref: ref, Audience: req.audience, TTL: req.ttl})
		if err != nil {
			h.problem(w, r, svidProblem(err))
			return
		}
		out = admin.IssuedSVID{Type: req.typ, SPIFFEID: sv.Claims.Subject, JTI: sv.Claims.JTI,
			ExpiresAt: sv.ExpiresAt(), Token: sv.Token}
	}
	h.reply(w, http.StatusCreated, out)
}

func (h *handler) listSVIDs(w http.ResponseWriter, r *http.Request, _ *principal) {
	pg, err := pageOf(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	cs, next, err := h.p.SVIDs.List(r.Context(), r.PathValue("ref"), pg)
	if err != nil {
		h.problem(w, r, svidProblem(err))
		return
	}
	out := listOf(cs, h.svidRecordOut)
	out.NextPageToken = next
	h.reply(w, http.StatusOK, out)
}

func (h *handler) svidRecordOut(c store.IssuedCredential) admin.SVIDRecord {
	rec := admin.SVIDRecord{
		Kind: c.Kind, SPIFFEID: c.SPIFFEID, InstanceID: c.InstanceID, Audience: c.Audience, KeyID: c.KeyID,
		IssuedAt: c.IssuedAt.UTC(), ExpiresAt: c.ExpiresAt.UTC(), Expired: !h.p.Clock().Before(c.ExpiresAt),
	}
	if c.Kind == store.CredentialX509SVID {
		rec.Serial = c.ID
	} else {
		rec.JTI = c.ID
	}
	return rec
}
