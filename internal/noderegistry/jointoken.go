package noderegistry

import (
	"context"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/secret"

	"github.com/agentid/agentid/internal/audit"
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
