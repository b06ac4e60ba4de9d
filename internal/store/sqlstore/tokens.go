package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// GetRevokedToken implements store.TokenReader. A revocation past its
// expiry is returned until CollectTokens removes it.
func (r *reader) GetRevokedToken(ctx context.Context, jti string) (store.RevokedToken, error) {
	ctx, err := r.begin(ctx)
	if err != nil {
		return store.RevokedToken{}, fmt.Errorf("store: get revoked token %q: %w", jti, err)
	}
	var rt store.RevokedToken
	err = r.q.QueryRowContext(ctx, `SELECT jti, agent_id, revoked_at, expires_at, revoked_by
		FROM revoked_tokens WHERE jti = $1`, jti).Scan(&rt.JTI, &rt.AgentID,
		timeCol{&rt.RevokedAt}, timeCol{&rt.ExpiresAt}, &rt.RevokedBy)
	if err != nil {
		return store.RevokedToken{}, fmt.Errorf("store: get revoked token %q: %w", jti, r.d.classify(err))
	}
	return rt, nil
}

// UseOnce implements store.TokenWriter in one statement: an insert that,
// when the identifier is recorded, takes it over only if it expired at now
// (its expiry is not after now). The database's unique key makes this
// atomic for every process sharing it. Namespace, identifier, now and
// expiry are required.
func (t *txn) UseOnce(ctx context.Context, ns, id string, now, expiresAt time.Time) error {
	err := t.write(ctx, true, func(ctx context.Context) error {
		if ns == "" || id == "" || now.IsZero() || expiresAt.IsZero() {
			return fmt.Errorf("%w: one-time namespace, identifier, now and expiry are required", store.ErrInvalid)
		}
		res, err := t.q.ExecContext(ctx, `INSERT INTO used_once (ns, id, expires_at) VALUES ($1, $2, $3)
			ON CONFLICT (ns, id) DO UPDATE SET expires_at = excluded.expires_at
			WHERE used_once.expires_at <= $4`,
			ns, id, t.d.timeArg(expiresAt), t.d.timeArg(now))
		if err != nil {
			return t.d.classify(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: used before", store.ErrAlreadyExists)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: use once %s %q: %w", ns, id, err)
	}
	return nil
}

// RevokeToken implements store.TokenWriter. JTI and expiry are required;
// the agent id may be empty (an admin revoking a jti it cannot attribute).
func (t *txn) RevokeToken(ctx context.Context, r store.RevokedToken) error {
	err := t.write(ctx, true, func(ctx context.Context) error {
		if r.JTI == "" || r.ExpiresAt.IsZero() {
			return fmt.Errorf("%w: revoked token jti and expiry are required", store.ErrInvalid)
		}
		_, err := t.q.ExecContext(ctx, `INSERT INTO revoked_tokens (jti, agent_id, revoked_at,
			expires_at, revoked_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (jti) DO NOTHING`,
			r.JTI, r.AgentID, t.d.timeArg(r.RevokedAt), t.d.timeArg(r.ExpiresAt), r.RevokedBy)
		return t.d.classify(err)
	})
	if err != nil {
		return fmt.Errorf("store: revoke token %q: %w", r.JTI, err)
	}
	return nil
}

// CollectTokens implements store.TokenWriter: it deletes the one-time
// identifiers and revocations whose expiry is not after now, as UseOnce
// treats them. A zero now is ErrInvalid.
func (t *txn) CollectTokens(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	err := t.write(ctx, false, func(ctx context.Context) error {
		if now.IsZero() {
			return fmt.Errorf("%w: now is required", store.ErrInvalid)
		}
		total = 0
		for _, table := range []string{"used_once", "revoked_tokens"} {
			res, err := t.q.ExecContext(ctx, `DELETE FROM `+table+` WHERE expires_at <= $1`, t.d.timeArg(now))
			if err != nil {
				return t.d.classify(err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: collect tokens: %w", err)
	}
	return total, nil
}
