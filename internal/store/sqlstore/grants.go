package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// grantCols are the columns scanGrant reads.
const grantCols = `id, subject_issuer, subject, subject_email, agent_id, scopes, action_classes, audiences,
	expires_at, max_depth, allow_subdelegation, created_by_type, created_by, created_at,
	revoked_at, revoked_by, revoke_reason, version`

func scanGrant(s rowScanner) (store.Grant, error) {
	var g store.Grant
	if err := s.Scan(&g.ID, &g.SubjectIssuer, &g.Subject, &g.SubjectEmail, &g.AgentID,
		listCol{&g.Scopes}, listCol{&g.ActionClasses}, listCol{&g.Audiences},
		timeCol{&g.ExpiresAt}, &g.MaxDepth, &g.AllowSubdelegation, &g.CreatedByType, &g.CreatedBy,
		timeCol{&g.CreatedAt}, timeCol{&g.RevokedAt}, &g.RevokedBy, &g.RevokeReason, &g.Version); err != nil {
		return store.Grant{}, err
	}
	return g, nil
}

// checkGrant enforces what the store requires of a grant.
func checkGrant(g store.Grant) error {
	switch {
	case g.ID == "" || g.SubjectIssuer == "" || g.Subject == "" || g.AgentID == "":
		return fmt.Errorf("%w: grant id, subject issuer, subject and agent id are required", store.ErrInvalid)
	case g.ExpiresAt.IsZero() || g.CreatedAt.IsZero() || g.CreatedBy == "" || g.CreatedByType == "":
		return fmt.Errorf("%w: grant expiry, creation time and creator are required", store.ErrInvalid)
	case g.MaxDepth < 1:
		return fmt.Errorf("%w: grant max depth must be at least 1", store.ErrInvalid)
	}
	return nil
}

// GetGrant implements store.GrantReader.
func (r *reader) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	g, err := r.getGrant(ctx, id, "")
	if err != nil {
		return store.Grant{}, fmt.Errorf("store: get grant %q: %w", id, err)
	}
	return g, nil
}

func (r *reader) getGrant(ctx context.Context, id, suffix string) (store.Grant, error) {
	return getOne(ctx, r, scanGrant, `SELECT `+grantCols+` FROM grants WHERE id = $1`+suffix, id)
}

// grantsToken is the page-token kind of ListGrants; its key is the last id.
const grantsToken = "grants"

// ListGrants implements store.GrantReader.
func (r *reader) ListGrants(ctx context.Context, f store.GrantFilter, p store.Page) ([]store.Grant, string, error) {
	after, err := decodeToken(grantsToken, p.PageToken)
	if err != nil {
		return nil, "", err
	}
	args := queryArgs{after}
	q := `SELECT ` + grantCols + ` FROM grants WHERE id > $1`
	if f.AgentID != "" {
		q += ` AND agent_id = ` + args.add(f.AgentID)
	}
	if f.Subject != "" {
		q += ` AND subject = ` + args.add(f.Subject)
	}
	if f.SubjectIssuer != "" {
		q += ` AND subject_issuer = ` + args.add(f.SubjectIssuer)
	}
	if f.SubjectEmail != "" {
		q += ` AND subject_email_key = ` + args.add(store.FoldEmail(f.SubjectEmail))
	}
	if !f.ActiveAt.IsZero() {
		q += ` AND revoked_at IS NULL AND expires_at > ` + args.add(r.d.timeArg(f.ActiveAt))
	}
	out, err := queryAll(ctx, r, scanGrant, q+` ORDER BY id`+limit(p.Size()), args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list grants: %w", err)
	}
	out, next := nextPage(out, p.Size(), grantsToken, func(g store.Grant) string { return g.ID })
	return out, next, nil
}

// CreateGrant implements store.GrantWriter.
func (t *txn) CreateGrant(ctx context.Context, g store.Grant) (store.Grant, error) {
	var out store.Grant
	err := t.write(ctx, true, func(ctx context.Context) error {
		if err := checkGrant(g); err != nil {
			return err
		}
		scopes, err := listArg(g.Scopes)
		if err != nil {
			return err
		}
		classes, err := listArg(g.ActionClasses)
		if err != nil {
			return err
		}
		audiences, err := listArg(g.Audiences)
		if err != nil {
			return err
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO grants (`+grantCols+`, subject_email_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 1, $18)`,
			g.ID, g.SubjectIssuer, g.Subject, g.SubjectEmail, g.AgentID, scopes, classes, audiences,
			t.d.timeArg(g.ExpiresAt), g.MaxDepth, g.AllowSubdelegation, g.CreatedByType, g.CreatedBy,
			t.d.timeArg(g.CreatedAt), t.d.timeArg(g.RevokedAt), g.RevokedBy, g.RevokeReason,
			store.FoldEmail(g.SubjectEmail)); err != nil {
			return agentMissing(g.AgentID, t.d.classify(err))
		}
		out, err = t.getGrant(ctx, g.ID, "")
		return err
	})
	if err != nil {
		return store.Grant{}, fmt.Errorf("store: create grant %q: %w", g.ID, err)
	}
	return out, nil
}

// UpdateGrant implements store.GrantWriter. Only the revocation fields
// are written; fn's changes to any other field are ignored.
func (t *txn) UpdateGrant(ctx context.Context, id string, fn func(store.Grant) (store.Grant, error)) (store.Grant, error) {
	var out store.Grant
	err := t.write(ctx, false, func(ctx context.Context) error {
		old, err := t.getGrant(ctx, id, t.d.ForUpdate)
		if err != nil {
			return err
		}
		g, err := fn(old)
		if err != nil {
			return &fnError{err}
		}
		res, err := t.q.ExecContext(ctx, `UPDATE grants SET revoked_at = $2, revoked_by = $3, revoke_reason = $4,
			version = $5 WHERE id = $1 AND version = $6`,
			id, t.d.timeArg(g.RevokedAt), g.RevokedBy, g.RevokeReason, old.Version+1, old.Version)
		if err := checkOne(t.d, res, err); err != nil {
			return err
		}
		out, err = t.getGrant(ctx, id, "")
		return err
	})
	if err != nil {
		return store.Grant{}, unwrapFn(err, "store: update grant %q", id)
	}
	return out, nil
}

// exchangedTokenCols are the columns scanExchangedToken reads.
const exchangedTokenCols = "jti, grant_id, agent_id, chain, subject, parent_jti, parent_agent_id, " + //nolint:gosec // G101: column names, not a credential
	"parent_issued_at, issued_at, expires_at"

func scanExchangedToken(s rowScanner) (store.ExchangedToken, error) {
	var e store.ExchangedToken
	if err := s.Scan(&e.JTI, &e.GrantID, &e.AgentID, listCol{&e.Chain}, &e.Subject, &e.ParentJTI, &e.ParentAgentID,
		timeCol{&e.ParentIssuedAt}, timeCol{&e.IssuedAt}, timeCol{&e.ExpiresAt}); err != nil {
		return store.ExchangedToken{}, err
	}
	return e, nil
}

// GetExchangedToken implements store.GrantReader.
func (r *reader) GetExchangedToken(ctx context.Context, jti string) (store.ExchangedToken, error) {
	e, err := getOne(ctx, r, scanExchangedToken, `SELECT `+exchangedTokenCols+` FROM exchanged_tokens WHERE jti = $1`, jti)
	if err != nil {
		return store.ExchangedToken{}, fmt.Errorf("store: get exchanged token %q: %w", jti, err)
	}
	return e, nil
}

// likeEscape escapes s for a LIKE pattern with ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// CountExchangedTokens implements store.GrantReader. Descendants are found
// with a recursive query over parent_jti (UNION, so a cycle, which the
// exchange never writes, still terminates).
func (r *reader) CountExchangedTokens(ctx context.Context, f store.ExchangedTokenFilter) (int64, error) {
	n := 0
	for _, s := range []string{f.GrantID, f.AgentID, f.AncestorJTI} {
		if s != "" {
			n++
		}
	}
	if n != 1 || f.LiveAt.IsZero() {
		return 0, fmt.Errorf("store: count exchanged tokens: %w: set exactly one of grant, agent and ancestor, and a time", store.ErrInvalid)
	}
	ctx, err := r.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: count exchanged tokens: %w", err)
	}
	live := r.d.timeArg(f.LiveAt)
	var q string
	var args []any
	switch {
	case f.GrantID != "":
		q, args = `SELECT count(*) FROM exchanged_tokens WHERE grant_id = $1 AND expires_at > $2`, []any{f.GrantID, live}
	case f.AgentID != "":
		b, err := listArg([]string{f.AgentID})
		if err != nil {
			return 0, fmt.Errorf("store: count exchanged tokens: %w", err)
		}
		// The JSON encoding of the id, quotes included, inside the array.
		pattern := "%" + likeEscape(strings.TrimSuffix(strings.TrimPrefix(b, "["), "]")) + "%"
		// The tokens whose chain holds the agent, those exchanged from
		// one of its own (unrecorded) tokens, and every descendant.
		q = `WITH RECURSIVE d(jti) AS (
				SELECT jti FROM exchanged_tokens WHERE chain LIKE $1 ESCAPE '\' OR parent_agent_id = $3
				UNION
				SELECT e.jti FROM exchanged_tokens e JOIN d ON e.parent_jti = d.jti)
			SELECT count(*) FROM exchanged_tokens WHERE jti IN (SELECT jti FROM d) AND expires_at > $2`
		args = []any{pattern, live, f.AgentID}
	default:
		q = `WITH RECURSIVE d(jti) AS (
				SELECT jti FROM exchanged_tokens WHERE parent_jti = $1
				UNION
				SELECT e.jti FROM exchanged_tokens e JOIN d ON e.parent_jti = d.jti)
			SELECT count(*) FROM exchanged_tokens WHERE jti IN (SELECT jti FROM d) AND expires_at > $2`
		args = []any{f.AncestorJTI, live}
	}
	var count int64
	if err := r.q.QueryRowContext(ctx, q, args...).Scan(&count); err != nil {
		return 0, fmt.Errorf("store: count exchanged tokens: %w", r.d.classify(err))
	}
	return count, nil
}

// RecordExchangedToken implements store.GrantWriter in one INSERT: the
// primary key makes a second record of a jti ErrAlreadyExists and the
// foreign key to grants makes an unknown grant ErrInvalid.
func (t *txn) RecordExchangedToken(ctx context.Context, e store.ExchangedToken) error {
	err := t.write(ctx, true, func(ctx context.Context) error {
		if e.JTI == "" || e.GrantID == "" || e.AgentID == "" || len(e.Chain) == 0 || slices.Contains(e.Chain, "") ||
			e.Subject == "" || e.IssuedAt.IsZero() || e.ExpiresAt.IsZero() {
			return fmt.Errorf("%w: exchanged token jti, grant, agent, chain, subject, issue and expiry times are required", store.ErrInvalid)
		}
		chain, err := listArg(e.Chain)
		if err != nil {
			return err
		}
		_, err = t.q.ExecContext(ctx, `INSERT INTO exchanged_tokens (`+exchangedTokenCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			e.JTI, e.GrantID, e.AgentID, chain, e.Subject, e.ParentJTI, e.ParentAgentID,
			t.d.timeArg(e.ParentIssuedAt), t.d.timeArg(e.IssuedAt), t.d.timeArg(e.ExpiresAt))
		err = t.d.classify(err)
		if errors.Is(err, store.ErrInvalid) {
			return fmt.Errorf("grant %q does not exist: %w", e.GrantID, err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: record exchanged token %q: %w", e.JTI, err)
	}
	return nil
}

// CollectExchangedTokens implements store.GrantWriter. A zero now is
// ErrInvalid.
func (t *txn) CollectExchangedTokens(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := t.write(ctx, true, func(ctx context.Context) error {
		if now.IsZero() {
			return fmt.Errorf("%w: now is required", store.ErrInvalid)
		}
		res, err := t.q.ExecContext(ctx, `DELETE FROM exchanged_tokens WHERE expires_at <= $1`, t.d.timeArg(now))
		if err != nil {
			return t.d.classify(err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: collect exchanged tokens: %w", err)
	}
	return n, nil
}
