package httpapi

import (
	"net/http"

	"github.com/agentid/agentid/sdk/admin"
)

// createAgentJoinToken handles POST /v1/agents/{ref}/join-tokens (ADR 0015
// addendum C): a one-time join token bound to the agent, its secret in the
// answer only.
func (h *handler) createAgentJoinToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.CreateJoinTokenRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	ttl, err := ttlParam("ttl_seconds", in.TTLSeconds)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	jt, err := h.p.OAuth.CreateJoinToken(r.Context(), p.origin, r.PathValue("ref"), ttl)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusCreated, admin.AgentJoinToken{ID: jt.ID, AgentID: jt.AgentID, Token: jt.Secret, ExpiresAt: jt.ExpiresAt.UTC()})
}
