package httpapi

import (
	"net/http"

	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// Handlers of attested instances (ADR 0015 §3): an agent's instances
// (GET /v1/agents/{ref}/instances), one instance (GET /v1/instances/{id})
// and its revocation (POST /v1/instances/{id}/revoke).

// rulesOut is the wire form of attestation rules ([] when none).
func rulesOut(rs []store.AttestationRule) []admin.AttestationRule {
	out := make([]admin.AttestationRule, 0, len(rs))
	for _, r := range rs {
		out = append(out, admin.AttestationRule{Attestor: r.Attestor, Matchers: nonNil(r.Matchers)})
	}
	return out
}

// rulesIn is the store form of wire attestation rules (nil when none).
func rulesIn(rs []admin.AttestationRule) []store.AttestationRule {
	var out []store.AttestationRule
	for _, r := range rs {
		out = append(out, store.AttestationRule{Attestor: r.Attestor, Matchers: r.Matchers})
	}
	if out == nil {
		out = []store.AttestationRule{}
	}
	return out
}

// instanceOut is the wire form of an instance.
func (h *handler) instanceOut(in store.Instance) admin.Instance {
	ev := in.Evidence
	if ev == nil {
		ev = map[string]string{}
	}
	return admin.Instance{
		ID: in.ID, AgentID: in.AgentID, Method: in.Method, Attestor: in.Attestor, Key: in.Key,
		Evidence: ev, SourceIP: in.SourceIP,
		FirstSeenAt: in.FirstSeenAt.UTC(), LastSeenAt: in.LastSeenAt.UTC(), ExpiresAt: in.ExpiresAt.UTC(),
		RevokedAt: optTime(in.RevokedAt), RevokedBy: in.RevokedBy,
		Live:    in.RevokedAt.IsZero() && h.p.Clock().Before(in.ExpiresAt),
		Version: in.Version,
	}
}

func (h *handler) listInstances(w http.ResponseWriter, r *http.Request, _ *principal) {
	pg, err := pageOf(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	live, err := boolParam(r, "live")
	if err != nil {
		h.problem(w, r, err)
		return
	}
	is, next, err := h.p.Identity.ListInstances(r.Context(), identity.ListInstancesParams{
		AgentRef: r.PathValue("ref"), Live: live, Page: pg,
	})
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.List[admin.Instance]{Items: make([]admin.Instance, 0, len(is)), NextPageToken: next}
	for _, in := range is {
		out.Items = append(out.Items, h.instanceOut(in))
	}
	h.reply(w, http.StatusOK, out)
}

func (h *handler) getInstance(w http.ResponseWriter, r *http.Request, _ *principal) {
	in, err := h.p.Identity.GetInstance(r.Context(), r.PathValue("id"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, h.instanceOut(in))
}

func (h *handler) revokeInstance(w http.ResponseWriter, r *http.Request, p *principal) {
	var in struct{}
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	inst, err := h.p.Identity.RevokeInstance(r.Context(), p.origin, r.PathValue("id"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, h.instanceOut(inst))
}
