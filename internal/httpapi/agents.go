package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// maxTTLSeconds bounds max_ttl_seconds before it becomes a Duration, so a
// huge number cannot overflow; the registry applies the configured cap.
const maxTTLSeconds = 366 * 24 * 3600

func (h *handler) agentOut(a store.Agent) admin.Agent {
	out := admin.Agent{
		ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID,
		ClientID:         a.ID, // an agent's OAuth client_id is its id
		Owners:           nonNil(a.Owners),
		Purpose:          a.Purpose,
		ActionClasses:    nonNil(a.ActionClasses),
		Audiences:        nonNil(a.Audiences),
		Scopes:           nonNil(a.Scopes),
		Permissions:      nonNil(a.Permissions),
		RequireDPoP:      a.RequireDPoP,
		FederatesWith:    nonNil(a.FederatesWith),
		Selectors:        nonNil(a.Selectors),
		AttestationRules: rulesOut(a.AttestationRules),
		NodeScope:        scopeOut(a.NodeScope),
		MaxTTLSeconds:    int64(a.MaxTTL / time.Second),
		Labels:           a.Labels,
		ExpiresAt:        optTime(a.ExpiresAt),
		Expired:          h.expired(a.ExpiresAt),
		TokensRevokedAt:  optTime(a.TokensRevokedAt),
		ExternalID:       a.ExternalID,
		State:            string(a.State),
		Orphaned:         a.Orphaned,
		CreatedBy:        a.CreatedBy,
		CreatedAt:        a.CreatedAt.UTC(),
		UpdatedAt:        a.UpdatedAt.UTC(),
		Version:          a.Version,
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	return out
}

// scopeOut is the wire form of a node scope: both lists always present.
func scopeOut(sc store.NodeScope) admin.NodeScope {
	return admin.NodeScope{NodeIDs: nonNil(sc.NodeIDs), Rules: rulesOut(sc.Rules)}
}

// scopeIn is the store form of a wire node scope; nil is the zero scope.
func scopeIn(sc *admin.NodeScope) store.NodeScope {
	if sc == nil {
		return store.NodeScope{}
	}
	out := store.NodeScope{NodeIDs: sc.NodeIDs}
	if len(sc.Rules) > 0 {
		out.Rules = rulesIn(sc.Rules)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func ttlParam(field string, secs int64) (time.Duration, error) {
	if secs < 0 || secs > maxTTLSeconds {
		return 0, badRequest(field, "%s must be between 0 and %d", field, maxTTLSeconds)
	}
	return time.Duration(secs) * time.Second, nil
}

func (h *handler) createAgent(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.CreateAgentRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	ttl, err := ttlParam("max_ttl_seconds", in.MaxTTLSeconds)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	params := identity.CreateAgentParams{
		Name: in.Name, Purpose: in.Purpose, Owners: in.Owners,
		ActionClasses: in.ActionClasses, Audiences: in.Audiences,
		Scopes: in.Scopes, Permissions: in.Permissions, RequireDPoP: in.RequireDPoP,
		FederatesWith: in.FederatesWith, Selectors: in.Selectors, MaxTTL: ttl, Labels: in.Labels,
		AttestationRules: rulesIn(in.AttestationRules),
		NodeScope:        scopeIn(in.NodeScope),
	}
	if in.ExpiresAt != nil {
		params.ExpiresAt = *in.ExpiresAt
	}
	a, err := h.p.Identity.CreateAgent(r.Context(), p.origin, params)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/agents/"+a.ID)
	etag(w, a.Version)
	h.reply(w, http.StatusCreated, h.agentOut(a))
}

func (h *handler) listAgents(w http.ResponseWriter, r *http.Request, _ *principal) {
	pg, err := pageOf(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	q := r.URL.Query()
	f := store.AgentFilter{State: store.AgentState(q.Get("state"))}
	switch f.State {
	case "", store.AgentActive, store.AgentSuspended, store.AgentDeprovisioned:
	default:
		h.problem(w, r, badRequest("state", "state must be active, suspended or deprovisioned"))
		return
	}
	if f.Orphaned, err = boolParam(r, "orphaned"); err != nil {
		h.problem(w, r, err)
		return
	}
	if ref := q.Get("owner"); ref != "" {
		o, err := h.p.Identity.GetOwner(r.Context(), ref)
		if err != nil {
			h.problem(w, r, err)
			return
		}
		f.OwnerID = o.ID
	}
	agents, next, err := h.p.Identity.ListAgents(r.Context(), f, pg)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.List[admin.Agent]{Items: make([]admin.Agent, 0, len(agents)), NextPageToken: next}
	for _, a := range agents {
		out.Items = append(out.Items, h.agentOut(a))
	}
	h.reply(w, http.StatusOK, out)
}

func (h *handler) getAgent(w http.ResponseWriter, r *http.Request, _ *principal) {
	a, err := h.p.Identity.GetAgent(r.Context(), r.PathValue("ref"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	etag(w, a.Version)
	h.reply(w, http.StatusOK, h.agentOut(a))
}

func (h *handler) updateAgent(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.UpdateAgentRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	v, err := ifVersion(r, in.Version)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	params := identity.UpdateAgentParams{
		Ref: r.PathValue("ref"), IfVersion: v,
		Purpose: in.Purpose, Owners: in.Owners, ActionClasses: in.ActionClasses,
		Audiences: in.Audiences, Labels: in.Labels, ExpiresAt: in.ExpiresAt,
		Scopes: in.Scopes, Permissions: in.Permissions, RequireDPoP: in.RequireDPoP,
		FederatesWith: in.FederatesWith, Selectors: in.Selectors, ExternalID: in.ExternalID,
	}
	if in.AttestationRules != nil {
		rs := rulesIn(*in.AttestationRules)
		params.AttestationRules = &rs
	}
	if in.NodeScope != nil {
		sc := scopeIn(in.NodeScope)
		params.NodeScope = &sc
	}
	if in.MaxTTLSeconds != nil {
		ttl, err := ttlParam("max_ttl_seconds", *in.MaxTTLSeconds)
		if err != nil {
			h.problem(w, r, err)
			return
		}
		params.MaxTTL = &ttl
	}
	a, err := h.p.Identity.UpdateAgent(r.Context(), p.origin, params)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	etag(w, a.Version)
	h.reply(w, http.StatusOK, h.agentOut(a))
}

func (h *handler) suspendAgent(w http.ResponseWriter, r *http.Request, p *principal) {
	h.transitionAgent(w, r, p, (*identity.Service).SuspendAgent)
}

func (h *handler) resumeAgent(w http.ResponseWriter, r *http.Request, p *principal) {
	h.transitionAgent(w, r, p, (*identity.Service).ResumeAgent)
}

func (h *handler) deprovisionAgent(w http.ResponseWriter, r *http.Request, p *principal) {
	h.transitionAgent(w, r, p, (*identity.Service).DeprovisionAgent)
}

func (h *handler) transitionAgent(w http.ResponseWriter, r *http.Request, p *principal,
	do func(*identity.Service, context.Context, audit.Origin, identity.TransitionParams) (store.Agent, error),
) {
	tp, err := h.transition(w, r, "ref")
	if err != nil {
		h.problem(w, r, err)
		return
	}
	a, err := do(h.p.Identity, r.Context(), p.origin, tp)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	etag(w, a.Version)
	h.reply(w, http.StatusOK, h.agentOut(a))
}

// transition reads a lifecycle action's optional body and precondition.
func (h *handler) transition(w http.ResponseWriter, r *http.Request, refParam string) (identity.TransitionParams, error) {
	var in admin.TransitionRequest
	if r.ContentLength != 0 {
		if err := h.decode(w, r, &in); err != nil {
			return identity.TransitionParams{}, err
		}
	}
	v, err := ifVersion(r, in.Version)
	if err != nil {
		return identity.TransitionParams{}, err
	}
	return identity.TransitionParams{Ref: r.PathValue(refParam), IfVersion: v, Reason: in.Reason}, nil
}
