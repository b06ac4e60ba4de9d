package httpapi

import (
	"context"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"

	"github.com/agentid/agentid/internal/ca"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/sdk/admin"
)

// CA serves the certificate authority's admin endpoints; *ca.Manager
// implements it.
type CA interface {
	// TrustDomain is the trust domain the CA signs for.
	TrustDomain() string
	// Upstream reports whether an upstream CA signs the CA certificates.
	Upstream() bool
	// List returns every CA key with its state now.
	List(ctx context.Context) ([]ca.Info, error)
	// Rotate creates a successor CA key (keys.ErrBusy: retry).
	Rotate(ctx context.Context, o keys.Origin) (ca.Info, error)
	// Taint marks a CA key compromised (keys.ErrUnknownKey, keys.ErrBusy).
	Taint(ctx context.Context, o keys.Origin, kid string) (ca.Info, error)
}

var _ CA = (*ca.Manager)(nil)

// caKeyOut is the wire form of a CA key.
func caKeyOut(k ca.Info) admin.CAKey {
	out := admin.CAKey{
		ID: k.ID, State: string(k.State), PublishAt: k.PublishAt.UTC(), ActivateAt: k.ActivateAt.UTC(),
		RetireAt: optTime(k.RetireAt), RemoveAt: optTime(k.RemoveAt),
		Tainted: !k.TaintedAt.IsZero(), TaintedAt: optTime(k.TaintedAt),
		Fingerprint: k.Fingerprint(), CreatedAt: k.CreatedAt.UTC(),
	}
	if c := k.Certificate(); c != nil {
		out.Subject, out.Serial = c.Subject.String(), hex.EncodeToString(c.SerialNumber.Bytes())
		out.NotBefore, out.NotAfter = c.NotBefore.UTC(), c.NotAfter.UTC()
		out.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		for _, ic := range k.Chain[1:] {
			out.Chain += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ic.Raw}))
		}
	}
	return out
}

// caError turns the key manager's errors into problems.
func caError(err error, kid string) error {
	switch {
	case errors.Is(err, keys.ErrUnknownKey):
		return &requestError{status: http.StatusNotFound, typ: admin.ProblemNotFound, title: "Not found",
			detail: fmt.Sprintf("no CA key %q", kid)}
	case errors.Is(err, keys.ErrBusy):
		return &requestError{status: http.StatusServiceUnavailable, typ: admin.ProblemUnavailable, title: "Unavailable",
			detail: "another replica is changing the CA keys; retry in a few seconds"}
	}
	return err
}

func (h *handler) getCA(w http.ResponseWriter, r *http.Request, _ *principal) {
	all, err := boolParam(r, "include_removed")
	if err != nil {
		h.problem(w, r, err)
		return
	}
	ks, err := h.p.CA.List(r.Context())
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.CA{TrustDomain: h.p.CA.TrustDomain(), Upstream: h.p.CA.Upstream(), Items: make([]admin.CAKey, 0, len(ks))}
	for _, k := range ks {
		if all || k.State != keys.StateRemoved {
			out.Items = append(out.Items, caKeyOut(k))
		}
	}
	h.reply(w, http.StatusOK, out)
}

// emptyBody accepts no body or an empty JSON object.
func (h *handler) emptyBody(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength == 0 {
		return nil
	}
	var none struct{}
	return h.decode(w, r, &none)
}

// rotateCA creates a successor CA key. The body is optional; when present
// it must be an empty JSON object.
func (h *handler) rotateCA(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := h.emptyBody(w, r); err != nil {
		h.problem(w, r, err)
		return
	}
	k, err := h.p.CA.Rotate(r.Context(), keyOrigin(p.origin))
	if err != nil {
		h.caProblem(w, r, err, "")
		return
	}
	h.reply(w, http.StatusOK, caKeyOut(k))
}

// taintCA marks the CA key {kid} compromised and answers with it.
func (h *handler) taintCA(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := h.emptyBody(w, r); err != nil {
		h.problem(w, r, err)
		return
	}
	kid := r.PathValue("kid")
	k, err := h.p.CA.Taint(r.Context(), keyOrigin(p.origin), kid)
	if err != nil {
		h.caProblem(w, r, err, kid)
		return
	}
	h.reply(w, http.StatusOK, caKeyOut(k))
}

func (h *handler) caProblem(w http.ResponseWriter, r *http.Request, err error, kid string) {
	if errors.Is(err, keys.ErrBusy) {
		w.Header().Set("Retry-After", "5")
	}
	h.problem(w, r, caError(err, kid))
}
