package noderegistry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/secret"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Secret format: SecretPrefix followed by 43 base64url characters (no
// padding) encoding 32 random bytes. The prefix lets secret scanners
// recognise a leaked join token.
const (
	SecretPrefix = "aidjt_"
	// SecretLen is the length of a whole secret.
	SecretLen = len(SecretPrefix) + 43 // secret.Len(SecretPrefix)
)

// CreateJoinToken makes a single-use join token that expires ttl from now
// (zero: DefaultJoinTokenTTL; otherwise MinJoinTokenTTL to
// MaxJoinTokenTTL) and records EventJoinTokenCreated naming o's actor. It
// returns the token (without its hash) and its secret, which is never
// available again.
//
// Errors: *ValidationError for a bad TTL. On any error nothing is stored.
func (s *Service) CreateJoinToken(ctx context.Context, o audit.Origin, ttl time.Duration) (store.JoinToken, string, error) {
	switch {
	case ttl == 0:
		ttl = DefaultJoinTokenTTL
	case ttl < MinJoinTokenTTL || ttl > MaxJoinTokenTTL:
		return store.JoinToken{}, "", invalid("ttl", "must be between %s and %s (default %s)", MinJoinTokenTTL, MaxJoinTokenTTL, DefaultJoinTokenTTL)
	}
	now := s.now()
	id, err := recordid.New(recordid.JoinToken, now, s.rand)
	if err != nil {
		return store.JoinToken{}, "", fmt.Errorf("noderegistry: %w", err)
	}
	plain, err := secret.New(SecretPrefix, s.rand)
	if err != nil {
		return store.JoinToken{}, "", err
	}
	tok := store.JoinToken{ID: id, Hash: secret.Hash(plain), CreatedBy: o.Actor.ID, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	var out store.JoinToken
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		created, err := tx.CreateJoinToken(ctx, tok)
		if err != nil {
			return fmt.Errorf("noderegistry: create join token: %w", err)
		}
		ev := o.Event(audit.Admin, EventJoinTokenCreated)
		ev.Time = now
		ev.Details = map[string]any{"id": created.ID, "expires_at": created.ExpiresAt.Format(time.RFC3339Nano)}
		if _, err := s.rec.Append(ctx, tx, ev); err != nil {
			return fmt.Errorf("noderegistry: record %s: %w", EventJoinTokenCreated, err)
		}
		out = created
		return nil
	})
	if err != nil {
		return store.JoinToken{}, "", err
	}
	out.Hash = nil
	return out, plain, nil
}

// CollectJoinTokens deletes the join tokens, used or not, that expired
// more than the retention ago, under the lease CollectLease so that one
// replica of several does it, and reports how many went. The nodes they
// attested and the audit trail are kept.
func (s *Service) CollectJoinTokens(ctx context.Context, holder string) (int64, error) {
	now := s.now()
	var n int64
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.AcquireLease(ctx, CollectLease, holder, now, now.Add(time.Minute))
		if err != nil || !ok {
			return err
		}
		n, err = tx.CollectJoinTokens(ctx, now.Add(-s.retention))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("noderegistry: collect join tokens: %w", err)
	}
	return n, nil
}

// WellFormed reports whether s has the shape of a join token secret:
// SecretPrefix and the unpadded base64url encoding of 32 bytes. Safe on
// any input.
func WellFormed(s string) bool { return secret.WellFormed(SecretPrefix, s) }

// unusable says why a join token cannot attest at now, "" when it can.
func unusable(t store.JoinToken, now time.Time) string {
	switch {
	case !t.UsedAt.IsZero():
		return ReasonReplayed
	case !now.Before(t.ExpiresAt):
		return ReasonExpired
	}
	return ""
}

// EventJoinTokenRevoked (family admin) records the revocation of an unused
// join token: details "id", "expires_at". Never the secret.
const EventJoinTokenRevoked = "join_token.revoked" //nolint:gosec // an event type, not a credential

// ReasonRevoked is the reason of a failed EventNodeAttested event for a
// revoked join token.
const ReasonRevoked = "revoked token"

// Errors of RevokeJoinToken; test with errors.Is.
var (
	// ErrJoinTokenNotFound means no join token has the id (never
	// created, or collected since it expired).
	ErrJoinTokenNotFound = fault.NewSentinel("noderegistry: join token not found", store.ErrNotFound)
	// ErrJoinTokenSpent means the join token cannot be revoked: it was
	// used, revoked, or has expired.
	ErrJoinTokenSpent = fault.NewSentinel("noderegistry: join token cannot be revoked", store.ErrConflict)
)

// joinTokenNS is the store.Tx.UseOnce namespace in which revocation and
// attestation both spend a join token's id, so that of the two exactly
// one wins (ADR 0010 addendum).
const joinTokenNS = store.JoinTokenSpendNS

// RevokedJoinToken is a join token as revoked.
type RevokedJoinToken struct {
	store.JoinToken
	RevokedAt time.Time
	RevokedBy string // actor id
}

// RevokeJoinToken makes the unused join token id (njt_…) unusable: in one
// transaction it spends the id with store.Tx.UseOnce in the namespace
// Attest spends it in (kept as long as the token record, the retention
// past its expiry and a minute, so that ListJoinTokens reports it
// revoked until it is collected), so
// that of a revocation and attestations, on any replicas, exactly one
// wins, and records EventJoinTokenRevoked naming o's actor. The token
// record is left as it was: unused, and collected after its expiry like
// any other.
//
// Errors: *ValidationError for a malformed id; ErrJoinTokenNotFound;
// ErrJoinTokenSpent when the token was used, was revoked or has expired
// (the message says which). On any error nothing changes.
func (s *Service) RevokeJoinToken(ctx context.Context, o audit.Origin, id string) (RevokedJoinToken, error) {
	if recordid.Valid(recordid.JoinToken, id) != nil {
		return RevokedJoinToken{}, invalid("id", "must be a node join token id (%s_…)", recordid.JoinToken)
	}
	now := s.now()
	var out RevokedJoinToken
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		t, err := tx.GetJoinToken(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("%w: %s", ErrJoinTokenNotFound, id)
		case err != nil:
			return fmt.Errorf("noderegistry: revoke join token: %w", err)
		case !t.UsedAt.IsZero():
			return fmt.Errorf("%w: %s was already used by node %s", ErrJoinTokenSpent, id, t.NodeID)
		case !now.Before(t.ExpiresAt):
			return fmt.Errorf("%w: %s expired at %s", ErrJoinTokenSpent, id, t.ExpiresAt.UTC().Format(time.RFC3339))
		}
		switch err := tx.UseOnce(ctx, joinTokenNS, id, now, t.ExpiresAt.Add(s.retention+time.Minute)); {
		case errors.Is(err, store.ErrAlreadyExists):
			// Attest spends the id only together with consuming the token:
			// a consumed token was used (by a racer committed since the
			// read), an unconsumed one revoked.
			if cur, gerr := tx.GetJoinToken(ctx, id); gerr == nil && !cur.UsedAt.IsZero() {
				return fmt.Errorf("%w: %s was already used by node %s", ErrJoinTokenSpent, id, cur.NodeID)
			}
			return fmt.Errorf("%w: %s was revoked", ErrJoinTokenSpent, id)
		case err != nil:
			return fmt.Errorf("noderegistry: revoke join token: %w", err)
		}
		ev := o.Event(audit.Admin, EventJoinTokenRevoked)
		ev.Time = now
		ev.Details = map[string]any{"id": t.ID, "expires_at": t.ExpiresAt.UTC().Format(time.RFC3339Nano)}
		if _, err := s.rec.Append(ctx, tx, ev); err != nil {
			return fmt.Errorf("noderegistry: record %s: %w", EventJoinTokenRevoked, err)
		}
		t.Hash = nil
		out = RevokedJoinToken{JoinToken: t, RevokedAt: now, RevokedBy: o.Actor.ID}
		return nil
	})
	if err != nil {
		return RevokedJoinToken{}, err
	}
	return out, nil
}

// ListJoinTokens returns one page of the join tokens kept, in creation
// order, with their states now (store.JoinTokenUnused, JoinTokenUsed,
// JoinTokenRevoked or JoinTokenExpired), and the next page token; state,
// when set, keeps those in that state. A token is used when a node
// attested with it (its record names the node), revoked when its id was
// spent by RevokeJoinToken, expired when neither and past its expiry.
// Tokens, used or not, are collected (CollectJoinTokens) the retention
// after their expiry and are then no longer listed. Never the secrets
// or their hashes.
//
// Errors: *ValidationError for an unknown state or a bad page token.
func (s *Service) ListJoinTokens(ctx context.Context, state string, p store.Page) ([]store.ListedJoinToken, string, error) {
	switch store.JoinTokenState(state) {
	case "", store.JoinTokenUnused, store.JoinTokenUsed, store.JoinTokenRevoked, store.JoinTokenExpired:
	default:
		return nil, "", invalid("state", "must be %s, %s, %s or %s", store.JoinTokenUnused, store.JoinTokenUsed,
			store.JoinTokenRevoked, store.JoinTokenExpired)
	}
	ts, next, err := s.store.ListJoinTokens(ctx, store.JoinTokenFilter{Now: s.now(), State: store.JoinTokenState(state)}, p)
	switch {
	case errors.Is(err, store.ErrBadPageToken):
		return nil, "", invalid("page_token", "is not a token this server issued")
	case err != nil:
		return nil, "", fmt.Errorf("noderegistry: list join tokens: %w", err)
	}
	return ts, next, nil
}
