package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Agents provisions agentid agents as SCIM Agents
// (draft-wzdk-scim-agent-resource-00, ADR 0025) through the identity
// service: every change is an identity call, audited with the caller's
// origin like the admin API's. A deprovisioned agent is no SCIM resource
// any more (404), though the admin API and the audit trail keep it. Safe
// for concurrent use.
type Agents struct {
	id *identity.Service
}

// NewAgents returns the Agents resource over the registry.
func NewAgents(id *identity.Service) *Agents { return &Agents{id: id} }

// Create registers the agent of a POST /Agents body (RFC 7644 §3.3):
// name is its name, description its purpose, owners its owners
// (active Users); active false creates it suspended. The agentid-only
// fields take their defaults; the admin API sets them.
//
// Errors: *Error for a malformed body or a missing name,
// description or owner, and 409 uniqueness for a name taken (also by a
// deprovisioned agent); identity's *ValidationError for a name outside
// agentid's rules, an unknown or deactivated owner or a bad externalId.
func (g *Agents) Create(ctx context.Context, o audit.Origin, body []byte) (store.Agent, error) {
	a, err := parseAgent(body, agentAttrs{active: true})
	if err != nil {
		return store.Agent{}, err
	}
	out, err := g.id.CreateAgent(ctx, o, identity.CreateAgentParams{
		Name: a.name, Purpose: a.description, Owners: a.owners, ExternalID: a.externalID, Suspended: !a.active,
	})
	return out, agentErr(err)
}

// Get returns the Agent with the id: an agent that is not deprovisioned.
//
// Errors: *Error 404, also for an id that is no agent id (a name is not an
// id) and for a deprovisioned agent.
func (g *Agents) Get(ctx context.Context, id string) (store.Agent, error) {
	if recordid.Valid(recordid.Agent, id) != nil {
		return store.Agent{}, agentNotFound()
	}
	a, err := g.id.GetAgent(ctx, id)
	if err != nil {
		return store.Agent{}, agentErr(err)
	}
	if a.State == store.AgentDeprovisioned {
		return store.Agent{}, agentNotFound()
	}
	return a, nil
}

// List answers GET /Agents (RFC 7644 §3.4.2): the agents (not
// deprovisioned) matching filter in id order from the 1-based startIndex,
// at most count of them, and how many match in all; startIndex and count
// as Users.List.
//
// Errors: *Error (invalidFilter) for a filter outside ParseAgentFilter's
// subset.
func (g *Agents) List(ctx context.Context, filter string, startIndex, count int) ([]store.Agent, int, error) {
	q, err := ParseAgentFilter(filter)
	if err != nil {
		return nil, 0, err
	}
	if q.Empty {
		return nil, 0, nil
	}
	q.Filter.Live = true
	startIndex = max(startIndex, 1)
	count = min(max(count, 0), MaxResults)
	return g.id.SliceAgents(ctx, q.Filter, startIndex-1, count)
}

// Replace answers PUT /Agents/{id} (RFC 7644 §3.5.1): description, owners
// and externalId replace the agent's (externalId absent is cleared);
// name must be the agent's name; active changes the state only
// when present. Nothing else of the agent changes. ifMatch, when not zero,
// is the version the client read (If-Match).
//
// Errors: as Create, and 404; *Error 412 when ifMatch is stale.
func (g *Agents) Replace(ctx context.Context, o audit.Origin, id string, ifMatch int64, body []byte) (store.Agent, error) {
	return g.change(ctx, o, id, ifMatch, func(cur agentAttrs) (agentAttrs, error) {
		next, err := parseAgent(body, cur)
		if err == nil && next.name != cur.name {
			err = &Error{Status: http.StatusBadRequest, ScimType: TypeMutability,
				Detail: "name is immutable: an agent's name never changes (register a new agent instead)"}
		}
		return next, err
	})
}

// Patch answers PATCH /Agents/{id} (RFC 7644 §3.5.2): the operations apply
// in order to the Agent as stored, and the result is stored in one change,
// or nothing is. ifMatch is as for Replace.
//
// Errors: *Error for a malformed request or an operation that cannot
// apply; as Replace otherwise.
func (g *Agents) Patch(ctx context.Context, o audit.Origin, id string, ifMatch int64, body []byte) (store.Agent, error) {
	p, err := DecodePatch(body)
	if err != nil {
		return store.Agent{}, err
	}
	return g.change(ctx, o, id, ifMatch, func(cur agentAttrs) (agentAttrs, error) {
		next, err := p.applyAgent(cur)
		if err != nil {
			return next, err
		}
		return next, checkAgentAttrs(next)
	})
}

// Delete answers DELETE /Agents/{id}: the agent is deprovisioned
// (identity.DeprovisionAgent, agent.deprovisioned with reason SCIM
// DELETE), which is final. Afterwards the Agent is gone for SCIM (404);
// its name stays taken. ifMatch is as for Replace.
//
// Errors: *Error 404; *Error 412 when ifMatch is stale.
func (g *Agents) Delete(ctx context.Context, o audit.Origin, id string, ifMatch int64) error {
	for attempt := 1; ; attempt++ {
		cur, err := g.Get(ctx, id)
		if err != nil {
			return err
		}
		if ifMatch != 0 && cur.Version != ifMatch {
			return agentPreconditionFailed(cur.Version)
		}
		_, err = g.id.DeprovisionAgent(ctx, o, identity.TransitionParams{Ref: cur.ID, IfVersion: cur.Version, Reason: "SCIM DELETE"})
		if err == nil || !retry(err, ifMatch, attempt) {
			return agentConditional(err, ifMatch)
		}
	}
}

// change reads the agent, derives its new attributes with fn and stores
// the difference with one UpdateAgent conditional on the version read. An
// unconditional request retries when another change wins the race.
func (g *Agents) change(ctx context.Context, o audit.Origin, id string, ifMatch int64, fn func(agentAttrs) (agentAttrs, error)) (store.Agent, error) {
	for attempt := 1; ; attempt++ {
		cur, err := g.Get(ctx, id)
		if err != nil {
			return store.Agent{}, err
		}
		if ifMatch != 0 && cur.Version != ifMatch {
			return store.Agent{}, agentPreconditionFailed(cur.Version)
		}
		next, err := fn(agentAttrsOf(cur))
		if err != nil {
			return store.Agent{}, err
		}
		p, changed := agentUpdateOf(cur, next)
		if !changed {
			return cur, nil
		}
		out, err := g.id.UpdateAgent(ctx, o, p)
		if err == nil || !retry(err, ifMatch, attempt) {
			return out, agentConditional(err, ifMatch)
		}
	}
}

// agentUpdateOf is the update that takes cur to a: the fields that
// differ, and the state when active differs.
func agentUpdateOf(cur store.Agent, a agentAttrs) (identity.UpdateAgentParams, bool) {
	p := identity.UpdateAgentParams{Ref: cur.ID, IfVersion: cur.Version}
	changed := false
	if a.externalID != cur.ExternalID {
		p.ExternalID, changed = &a.externalID, true
	}
	if a.description != cur.Purpose {
		p.Purpose, changed = &a.description, true
	}
	if !slices.Equal(a.owners, cur.Owners) {
		p.Owners, changed = &a.owners, true
	}
	if active := cur.State == store.AgentActive; a.active != active {
		st := store.AgentSuspended
		if a.active {
			st = store.AgentActive
		}
		p.State, changed = &st, true
	}
	return p, changed
}

// agentErr gives identity's not-found and already-exists errors the SCIM
// form of an Agent; other errors pass unchanged.
func agentErr(err error) error {
	switch {
	case errors.Is(err, identity.ErrNotFound):
		return agentNotFound()
	case errors.Is(err, identity.ErrAlreadyExists):
		return &Error{Status: http.StatusConflict, ScimType: TypeUniqueness,
			Detail: "another agent has this name; names stay taken after deprovisioning"}
	}
	return err
}

func agentNotFound() error {
	return &Error{Status: http.StatusNotFound, Detail: "no such Agent"}
}

// agentConditional turns the version mismatch of a conditional request
// into 412 (RFC 7644 §3.14).
func agentConditional(err error, ifMatch int64) error {
	if ifMatch != 0 && errors.Is(err, identity.ErrVersionMismatch) {
		return &Error{Status: http.StatusPreconditionFailed, Detail: "the Agent changed since the version If-Match names"}
	}
	return agentErr(err)
}

func agentPreconditionFailed(have int64) error {
	return &Error{Status: http.StatusPreconditionFailed,
		Detail: fmt.Sprintf("If-Match does not match the Agent's version %s", ETag(have))}
}
