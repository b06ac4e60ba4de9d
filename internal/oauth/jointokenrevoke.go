package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/attest/jointoken"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
)

// EventJoinTokenRevoked (family admin) records the revocation of an
// agent's unused join token: the agent axis, details "id" and
// "expires_at"; never the token.
const EventJoinTokenRevoked = "agent.join_token.revoked" //nolint:gosec // G101: an event type, not a credential

// RevokedJoinToken is an agent's join token as revoked.
type RevokedJoinToken struct {
	ID        string
	AgentID   string
	ExpiresAt time.Time
	RevokedAt time.Time
	RevokedBy string // actor id
}

// joinTokenCreation is what the EventJoinTokenCreated event of a token
// says: the agent it is bound to and its expiry.
type joinTokenCreation struct {
	agent     audit.Agent
	expiresAt time.Time
}

// errFound stops an audit scan at the event it looked for.
var errFound = errors.New("oauth: found")

// RevokeJoinToken makes the unused join token id (ajt_…) unredeemable
// (ADR 0015 addendum G): in one transaction it spends the id with
// store.Tx.UseOnce in the namespace redemption spends it in, so that of a
// revocation and a redemption, on any replicas, exactly one wins; keeps a
// store.RevokedToken record of the id (jti = the token id) until the
// token's expiry, so that a later redemption or revocation can say
// "revoked" rather than "used"; and records EventJoinTokenRevoked.
//
// The token is known by its EventJoinTokenCreated event, which the store
// keeps whatever the retention (at least a year) and which is found by the
// creation time the id encodes: the agent and the expiry come from it.
//
// Errors: a *fault.ValidationError for an id that is not an ajt_… id;
// identity.ErrNotFound when no such token was issued (the answer is the
// same whatever other tokens exist); identity.ErrIllegalTransition when
// it was already used, was revoked, or has expired; errors.ErrUnsupported
// when join tokens are not configured.
func (s *Server) RevokeJoinToken(ctx context.Context, o audit.Origin, id string) (RevokedJoinToken, error) {
	if s.joinTokens == nil {
		return RevokedJoinToken{}, fmt.Errorf("oauth: join tokens: %w", errors.ErrUnsupported)
	}
	created, ok := jointoken.IDTime(id)
	if !ok {
		return RevokedJoinToken{}, fault.Invalid(identity.ErrInvalid, "oauth", "id", "must be an agent join token id (%s…)", jointoken.IDPrefix)
	}
	jt, err := s.joinTokenCreation(ctx, id, created)
	if err != nil {
		return RevokedJoinToken{}, err
	}
	now := s.now()
	if !now.Before(jt.expiresAt) {
		return RevokedJoinToken{}, fmt.Errorf("%w: join token %s expired at %s and can no longer be redeemed",
			identity.ErrIllegalTransition, id, jt.expiresAt.Format(time.RFC3339))
	}
	out := RevokedJoinToken{ID: id, AgentID: jt.agent.ID, ExpiresAt: jt.expiresAt, RevokedAt: now, RevokedBy: o.Actor.ID}
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		// The same namespace and lifetime as a redemption's.
		switch err := tx.UseOnce(ctx, joinTokenNS, id, now, jt.expiresAt.Add(time.Minute)); {
		case errors.Is(err, store.ErrAlreadyExists):
			return fmt.Errorf("%w: join token %s %s", identity.ErrIllegalTransition, id, spentHow(ctx, tx, id))
		case err != nil:
			return err
		}
		if err := tx.RevokeToken(ctx, store.RevokedToken{
			JTI: id, AgentID: jt.agent.ID, RevokedAt: now, ExpiresAt: jt.expiresAt.Add(time.Minute), RevokedBy: o.Actor.ID,
		}); err != nil {
			return err
		}
		ev := o.Event(audit.Admin, EventJoinTokenRevoked)
		ev.Time = now
		ev.Agent = &jt.agent
		ev.Details = map[string]any{"id": id, "expires_at": jt.expiresAt.Format(time.RFC3339)}
		_, err := s.rec.Append(ctx, tx, ev)
		return err
	})
	switch {
	case errors.Is(err, identity.ErrIllegalTransition):
		return RevokedJoinToken{}, err
	case err != nil:
		return RevokedJoinToken{}, fmt.Errorf("oauth: revoke join token %s: %w", id, err)
	}
	return out, nil
}

// joinTokenCreation finds the EventJoinTokenCreated event of the token id
// among the events of the two seconds around created (the time its id
// encodes, which is the event's time: CreateJoinToken stamps both with one
// clock reading). identity.ErrNotFound when there is none.
func (s *Server) joinTokenCreation(ctx context.Context, id string, created time.Time) (joinTokenCreation, error) {
	var out joinTokenCreation
	q := store.AuditQuery{Family: string(audit.Admin), Since: created.Add(-time.Second), Until: created.Add(time.Second)}
	err := s.store.ScanAudit(ctx, q, func(rec store.AuditRecord) error {
		if rec.Type != EventJoinTokenCreated || rec.AgentID == "" {
			return nil
		}
		var ev struct {
			Agent   audit.Agent `json:"agent"`
			Details struct {
				ID        string `json:"id"`
				ExpiresAt string `json:"expires_at"`
			} `json:"details"`
		}
		if err := json.Unmarshal(rec.Body, &ev); err != nil {
			return fmt.Errorf("oauth: audit event %s: %w", rec.ID, err)
		}
		if ev.Details.ID != id {
			return nil
		}
		exp, err := time.Parse(time.RFC3339, ev.Details.ExpiresAt)
		if err != nil {
			return fmt.Errorf("oauth: audit event %s: expires_at: %w", rec.ID, err)
		}
		out = joinTokenCreation{agent: ev.Agent, expiresAt: exp.UTC()}
		return errFound
	})
	switch {
	case errors.Is(err, errFound):
		return out, nil
	case err != nil:
		return joinTokenCreation{}, fmt.Errorf("oauth: find join token %s: %w", id, err)
	}
	return joinTokenCreation{}, fmt.Errorf("%w: join token %s", identity.ErrNotFound, id)
}

// spentHow says why the join token id, whose one-time id is spent, cannot
// be used: "was revoked" when a revocation recorded it, else "was already
// used". A read error is reported as used: the token is refused either way.
func spentHow(ctx context.Context, r store.Reader, id string) string {
	if _, err := r.GetRevokedToken(ctx, id); err == nil {
		return "was revoked"
	}
	return "was already used"
}
