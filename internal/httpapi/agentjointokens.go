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

// revokeAgentJoinToken handles POST /v1/join-tokens/{id}/revoke (ADR 0015
// addendum G): the unused agent join token id can no longer be redeemed.
// 404 for an id never issued, 409 for a token used, revoked or expired.
func (h *handler) revokeAgentJoinToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var in struct{}
	if r.ContentLength != 0 {
		if err := h.decode(w, r, &in); err != nil {
			h.problem(w, r, err)
			return
		}
	}
	jt, err := h.p.OAuth.RevokeJoinToken(r.Context(), p.origin, r.PathValue("id"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, admin.RevokedAgentJoinToken{ID: jt.ID, AgentID: jt.AgentID, ExpiresAt: jt.ExpiresAt.UTC(),
		RevokedAt: jt.RevokedAt.UTC(), RevokedBy: jt.RevokedBy})
}

// listAgentJoinTokens handles GET /v1/agents/{ref}/join-tokens: the
// agent's join tokens created within the last hour (the longest lifetime),
// newest first, with their states; never the tokens. Not paged: the
// window bounds the list.
func (h *handler) listAgentJoinTokens(w http.ResponseWriter, r *http.Request, _ *principal) {
	ts, err := h.p.OAuth.ListJoinTokens(r.Context(), r.PathValue("ref"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.List[admin.AgentJoinTokenStatus]{Items: make([]admin.AgentJoinTokenStatus, 0, len(ts))}
	for _, t := range ts {
		out.Items = append(out.Items, admin.AgentJoinTokenStatus{
			ID: t.ID, AgentID: t.AgentID, State: t.State, CreatedAt: t.CreatedAt.UTC(), CreatedBy: t.CreatedBy,
			ExpiresAt: t.ExpiresAt.UTC(), UsedAt: optTime(t.UsedAt), InstanceID: t.InstanceID,
			RevokedAt: optTime(t.RevokedAt), RevokedBy: t.RevokedBy,
		})
	}
	h.reply(w, http.StatusOK, out)
}
