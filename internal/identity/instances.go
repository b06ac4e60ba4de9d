package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// EventInstanceRevoked (family audit.Issuance) records an administrator's
// revocation of an attested instance (ADR 0015 §3): agent and instance
// axes; details "attestor", "revoked_at" and, when it was revoked before,
// "already_revoked_at".
const EventInstanceRevoked = "instance.revoked"

// ListInstancesParams narrows ListInstances.
type ListInstancesParams struct {
	// AgentRef is the agent's id or name; required.
	AgentRef string
	// Live keeps only instances neither revoked nor expired now.
	Live bool
	Page store.Page
}

// ListInstances returns an agent's attested instances in id order and the
// next page token. Errors: *ValidationError, ErrNotFound for an unknown
// agent.
func (s *Service) ListInstances(ctx context.Context, p ListInstancesParams) ([]store.Instance, string, error) {
	a, err := s.GetAgent(ctx, p.AgentRef)
	if err != nil {
		return nil, "", err
	}
	f := store.InstanceFilter{AgentID: a.ID}
	if p.Live {
		f.LiveAt = s.now()
	}
	out, next, err := s.store.ListInstances(ctx, f, p.Page)
	if errors.Is(err, store.ErrInvalid) {
		return nil, "", invalid("page_token", "the page token is not valid")
	}
	if err != nil {
		return nil, "", fmt.Errorf("identity: list instances: %w", err)
	}
	return out, next, nil
}

// GetInstance returns an instance by id. Errors: *ValidationError for a
// malformed id, ErrNotFound.
func (s *Service) GetInstance(ctx context.Context, id string) (store.Instance, error) {
	if err := recordid.Valid(recordid.Instance, id); err != nil {
		return store.Instance{}, invalid("id", "not an instance id (ins_…)")
	}
	in, err := s.store.GetInstance(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Instance{}, fmt.Errorf("identity: instance %q: %w", id, ErrNotFound)
	case err != nil:
		return store.Instance{}, fmt.Errorf("identity: get instance: %w", err)
	}
	return in, nil
}

// RevokeInstance revokes an attested instance and records
// instance.revoked in the same transaction: every token carrying it in
// agent_instance becomes inactive at introspection, and the token
// endpoint refuses to renew it (ADR 0015 §3). Revoking a revoked
// instance again keeps the first revocation and succeeds. Errors:
// *ValidationError, ErrNotFound.
func (s *Service) RevokeInstance(ctx context.Context, o audit.Origin, id string) (store.Instance, error) {
	if err := recordid.Valid(recordid.Instance, id); err != nil {
		return store.Instance{}, invalid("id", "not an instance id (ins_…)")
	}
	now := s.now()
	var out store.Instance
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		var before time.Time
		in, err := tx.UpdateInstance(ctx, id, func(in store.Instance) (store.Instance, error) {
			before = in.RevokedAt
			if in.RevokedAt.IsZero() {
				in.RevokedAt, in.RevokedBy = now, actorID(o)
			}
			return in, nil
		})
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("identity: instance %q: %w", id, ErrNotFound)
		case err != nil:
			return fmt.Errorf("identity: revoke instance: %w", err)
		}
		a, err := tx.GetAgent(ctx, in.AgentID)
		if err != nil {
			return fmt.Errorf("identity: revoke instance: %w", err)
		}
		ev := o.Event(audit.Issuance, EventInstanceRevoked)
		ev.Time = now
		ev.Agent = &audit.Agent{ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID}
		ev.Instance = &audit.Instance{ID: in.ID, Method: in.Method}
		ev.Details = map[string]any{"attestor": in.Attestor, "revoked_at": optRFC3339(in.RevokedAt)}
		if !before.IsZero() {
			ev.Details["already_revoked_at"] = optRFC3339(before)
		}
		if _, err := s.rec.Append(ctx, tx, ev); err != nil {
			return fmt.Errorf("identity: record %s: %w", EventInstanceRevoked, err)
		}
		out = in
		return nil
	})
	if err != nil {
		return store.Instance{}, err
	}
	return out, nil
}
