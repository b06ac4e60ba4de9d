package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// Reasons of the decisions denied because the request's context names a
// delegation grant or an instance that is not live (ADR 0013 addendum
// "grants and instances in the context").
const (
	ReasonUnknownGrant       = "unknown delegation grant"
	ReasonGrantRevoked       = "the delegation grant is revoked"
	ReasonGrantExpired       = "the delegation grant has expired"
	ReasonGrantOtherAgent    = "the delegation grant is another agent's"
	ReasonUnknownInstance    = "unknown instance"
	ReasonInstanceRevoked    = "the instance is revoked"
	ReasonInstanceExpired    = "the instance has expired"
	ReasonInstanceOtherAgent = "the instance is another agent's"
)

// errRecords prefixes the store errors of checkRecords.
const errRecords = "policy: look up the context's records"

// checkRecords looks up the delegation grant and the instance a request's
// context names, as of now, and returns why the request is denied before
// the policies ("" when it is not): a grant that does not exist, is
// revoked or has expired, or, for an agent subject a, is neither the
// agent's nor, when it allows sub-delegation, that of one of the chain's
// actors (named by id, name or SPIFFE ID); an instance that does not
// exist, is revoked or has expired, or is another agent's. The instance's
// attestation method becomes the recorded one, whatever the caller said.
// A user subject (a == nil) has its records checked for liveness only.
// Through memo (nil: none), a batch reads each record once.
func (s *Service) checkRecords(ctx context.Context, a *store.Agent, in *input, now time.Time, memo *agentMemo) (string, error) {
	var (
		grants    map[string]memoRecord[store.Grant]
		instances map[string]memoRecord[store.Instance]
	)
	if memo != nil {
		grants, instances = memo.grants, memo.instances
	}
	if dl := in.ctx.delegation; dl != nil && dl.GrantID != "" {
		g, err := memoGet(grants, dl.GrantID, func() (store.Grant, error) { return s.store.GetGrant(ctx, dl.GrantID) })
		switch {
		case errors.Is(err, store.ErrNotFound):
			return ReasonUnknownGrant, nil
		case err != nil:
			return "", fmt.Errorf("%s: %w", errRecords, err)
		case !g.RevokedAt.IsZero():
			return ReasonGrantRevoked, nil
		case !now.Before(g.ExpiresAt):
			return ReasonGrantExpired, nil
		}
		if a != nil && g.AgentID != a.ID {
			ok, err := s.grantActorInChain(ctx, g, dl.Actors)
			if err != nil {
				return "", err
			}
			if !ok {
				return ReasonGrantOtherAgent, nil
			}
		}
	}
	if in.ctx.instanceID != "" {
		ins, err := memoGet(instances, in.ctx.instanceID, func() (store.Instance, error) { return s.store.GetInstance(ctx, in.ctx.instanceID) })
		switch {
		case errors.Is(err, store.ErrNotFound):
			return ReasonUnknownInstance, nil
		case err != nil:
			return "", fmt.Errorf("%s: %w", errRecords, err)
		case !ins.RevokedAt.IsZero():
			return ReasonInstanceRevoked, nil
		case !ins.ExpiresAt.IsZero() && !now.Before(ins.ExpiresAt):
			return ReasonInstanceExpired, nil
		case a != nil && ins.AgentID != a.ID:
			return ReasonInstanceOtherAgent, nil
		}
		in.ctx.instanceMethod = ins.Method
	}
	return "", nil
}

// grantActorInChain reports whether g allows sub-delegation and its agent,
// active, is one of the chain's actors, named by id, name or SPIFFE ID:
// the subject agent then acts under the grant of an upstream agent.
func (s *Service) grantActorInChain(ctx context.Context, g store.Grant, actors []string) (bool, error) {
	if !g.AllowSubdelegation || len(actors) == 0 {
		return false, nil
	}
	ga, err := s.store.GetAgent(ctx, g.AgentID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s: %w", errRecords, err)
	case ga.State != store.AgentActive:
		return false, nil // its delegated tokens are inactive too (ADR 0014 §5)
	}
	return slices.ContainsFunc(actors, func(x string) bool { return x == ga.ID || x == ga.Name || x == ga.SPIFFEID }), nil
}
