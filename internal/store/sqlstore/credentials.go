package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// credentialCols are the columns scanCredential reads.
const credentialCols = `kind, id, agent_id, instance_id, spiffe_id, audience, key_id, issued_at, expires_at` //nolint:gosec // G101: column names, not a credential

func scanCredential(s rowScanner) (store.IssuedCredential, error) {
	var c store.IssuedCredential
	if err := s.Scan(&c.Kind, &c.ID, &c.AgentID, &c.InstanceID, &c.SPIFFEID, listCol{&c.Audience}, &c.KeyID,
		timeCol{&c.IssuedAt}, timeCol{&c.ExpiresAt}); err != nil {
		return store.IssuedCredential{}, err
	}
	return c, nil
}

// credentialsToken is the page-token kind of ListCredentials; its key is
// "<issued_at unix µs>:<kind>:<id>" of the last credential of the page.
const credentialsToken = "credentials"

func decodeCredentialToken(token string) (at time.Time, kind, id string, err error) {
	key, err := decodeToken(credentialsToken, token)
	if err != nil || key == "" {
		return time.Time{}, "", "", err
	}
	parts := strings.SplitN(key, ":", 3)
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return time.Time{}, "", "", badToken(credentialsToken)
	}
	us, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || us <= 0 {
		return time.Time{}, "", "", badToken(credentialsToken)
	}
	return time.UnixMicro(us).UTC(), parts[1], parts[2], nil
}

// ListCredentials implements store.CredentialReader. Pages are keyset
// pages over (issued_at, kind, id), so credentials recorded while a caller
// pages are neither skipped nor repeated once the caller is past them.
func (r *reader) ListCredentials(ctx context.Context, f store.CredentialFilter, p store.Page) ([]store.IssuedCredential, string, error) {
	at, kind, id, err := decodeCredentialToken(p.PageToken)
	if err != nil {
		return nil, "", err
	}
	var (
		where []string
		args  queryArgs
	)
	if !at.IsZero() {
		where = append(where, "(issued_at, kind, id) > ("+args.add(r.d.timeArg(at))+", "+args.add(kind)+", "+args.add(id)+")")
	}
	if f.Kind != "" {
		where = append(where, "kind = "+args.add(f.Kind))
	}
	if f.AgentID != "" {
		where = append(where, "agent_id = "+args.add(f.AgentID))
	}
	if f.KeyID != "" {
		where = append(where, "key_id = "+args.add(f.KeyID))
	}
	if !f.LiveAt.IsZero() {
		where = append(where, "expires_at > "+args.add(r.d.timeArg(f.LiveAt)))
	}
	q := `SELECT ` + credentialCols + ` FROM credentials`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	out, err := queryAll(ctx, r, scanCredential, q+` ORDER BY issued_at, kind, id`+limit(p.Size()), args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list credentials: %w", err)
	}
	out, next := nextPage(out, p.Size(), credentialsToken, func(c store.IssuedCredential) string {
		return strconv.FormatInt(c.IssuedAt.UnixMicro(), 10) + ":" + c.Kind + ":" + c.ID
	})
	return out, next, nil
}

// RecordCredential implements store.CredentialWriter in one INSERT: the
// primary key (kind, id) makes a second record of a serial or jti
// ErrAlreadyExists, and the foreign key to agents makes an unknown agent
// ErrInvalid.
func (t *txn) RecordCredential(ctx context.Context, c store.IssuedCredential) error {
	err := t.write(ctx, true, func(ctx context.Context) error {
		if c.Kind == "" || c.ID == "" || c.AgentID == "" || c.SPIFFEID == "" || c.KeyID == "" ||
			c.IssuedAt.IsZero() || c.ExpiresAt.IsZero() {
			return fmt.Errorf("%w: credential kind, id, agent id, SPIFFE ID, key id, issue and expiry times are required", store.ErrInvalid)
		}
		aud, err := listArg(c.Audience)
		if err != nil {
			return err
		}
		_, err = t.q.ExecContext(ctx, `INSERT INTO credentials (`+credentialCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			c.Kind, c.ID, c.AgentID, c.InstanceID, c.SPIFFEID, aud, c.KeyID,
			t.d.timeArg(c.IssuedAt), t.d.timeArg(c.ExpiresAt))
		return agentMissing(c.AgentID, t.d.classify(err))
	})
	if err != nil {
		return fmt.Errorf("store: record credential %s %q: %w", c.Kind, c.ID, err)
	}
	return nil
}

// CollectCredentials implements store.CredentialWriter: it deletes the
// credentials whose expiry is not after now, those ListCredentials with
// LiveAt now leaves out. A zero now is ErrInvalid.
func (t *txn) CollectCredentials(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := t.write(ctx, true, func(ctx context.Context) error {
		if now.IsZero() {
			return fmt.Errorf("%w: now is required", store.ErrInvalid)
		}
		res, err := t.q.ExecContext(ctx, `DELETE FROM credentials WHERE expires_at <= $1`, t.d.timeArg(now))
		if err != nil {
			return t.d.classify(err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: collect credentials: %w", err)
	}
	return n, nil
}
