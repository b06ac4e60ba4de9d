package sqlstore

import (
	"context"
	"fmt"

	"github.com/agentid/agentid/internal/store"
)

// adminTokenCols are the columns scanAdminToken reads.
const adminTokenCols = `id, name, role, hash, created_by, created_at, expires_at, revoked_at, version` //nolint:gosec // G101: column names, not a credential

func scanAdminToken(s rowScanner) (store.AdminToken, error) {
	var (
		t    store.AdminToken
		role string
	)
	if err := s.Scan(&t.ID, &t.Name, &role, bytesCol{&t.Hash}, &t.CreatedBy,
		timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timeCol{&t.RevokedAt}, &t.Version); err != nil {
		return store.AdminToken{}, err
	}
	t.Role = store.Role(role)
	return t, nil
}

// GetAdminToken implements store.AdminTokenReader.
func (r *reader) GetAdminToken(ctx context.Context, id string) (store.AdminToken, error) {
	t, err := r.getAdminToken(ctx, "id", id, "")
	if err != nil {
		return store.AdminToken{}, fmt.Errorf("store: get admin token %q: %w", id, err)
	}
	return t, nil
}

// GetAdminTokenByHash implements store.AdminTokenReader.
func (r *reader) GetAdminTokenByHash(ctx context.Context, hash []byte) (store.AdminToken, error) {
	t, err := r.getAdminToken(ctx, "hash", bytesArg(hash), "")
	if err != nil {
		return store.AdminToken{}, fmt.Errorf("store: get admin token by hash: %w", err)
	}
	return t, nil
}

func (r *reader) getAdminToken(ctx context.Context, col string, key any, suffix string) (store.AdminToken, error) {
	return getOne(ctx, r, scanAdminToken, `SELECT `+adminTokenCols+` FROM admin_tokens WHERE `+col+` = $1`+suffix, key)
}

// ListAdminTokens implements store.AdminTokenReader.
func (r *reader) ListAdminTokens(ctx context.Context, p store.Page) ([]store.AdminToken, string, error) {
	after, err := decodeToken("admin_tokens", p.PageToken)
	if err != nil {
		return nil, "", err
	}
	out, err := queryAll(ctx, r, scanAdminToken, `SELECT `+adminTokenCols+` FROM admin_tokens
		WHERE id > $1 ORDER BY id`+limit(p.Size()), after)
	if err != nil {
		return nil, "", fmt.Errorf("store: list admin tokens: %w", err)
	}
	out, next := nextPage(out, p.Size(), "admin_tokens", func(t store.AdminToken) string { return t.ID })
	return out, next, nil
}

// CreateAdminToken implements store.AdminTokenWriter. A token without id,
// name or hash is ErrInvalid.
func (t *txn) CreateAdminToken(ctx context.Context, a store.AdminToken) (store.AdminToken, error) {
	var out store.AdminToken
	err := t.write(ctx, true, func(ctx context.Context) error {
		if a.ID == "" || a.Name == "" || len(a.Hash) == 0 {
			return fmt.Errorf("%w: admin token id, name and hash are required", store.ErrInvalid)
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO admin_tokens (id, name, role, hash,
			created_by, created_at, expires_at, revoked_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)`,
			a.ID, a.Name, string(a.Role), a.Hash, a.CreatedBy, t.d.timeArg(a.CreatedAt),
			t.d.timeArg(a.ExpiresAt), t.d.timeArg(a.RevokedAt)); err != nil {
			return t.d.classify(err)
		}
		var err error
		out, err = t.getAdminToken(ctx, "id", a.ID, "")
		return err
	})
	if err != nil {
		return store.AdminToken{}, fmt.Errorf("store: create admin token %q: %w", a.ID, err)
	}
	return out, nil
}

// UpdateAdminToken implements store.AdminTokenWriter. ID, Name, CreatedAt
// and CreatedBy cannot change; a changed Hash must stay unique.
func (t *txn) UpdateAdminToken(ctx context.Context, id string, fn func(store.AdminToken) (store.AdminToken, error)) (store.AdminToken, error) {
	var out store.AdminToken
	err := t.write(ctx, true, func(ctx context.Context) error {
		old, err := t.getAdminToken(ctx, "id", id, t.d.ForUpdate)
		if err != nil {
			return err
		}
		a, err := fn(old)
		if err != nil {
			return &fnError{err}
		}
		if len(a.Hash) == 0 {
			return fmt.Errorf("%w: admin token hash is required", store.ErrInvalid)
		}
		res, err := t.q.ExecContext(ctx, `UPDATE admin_tokens SET role = $2, hash = $3,
			expires_at = $4, revoked_at = $5, version = $6
			WHERE id = $1 AND version = $7`,
			id, string(a.Role), a.Hash, t.d.timeArg(a.ExpiresAt), t.d.timeArg(a.RevokedAt),
			old.Version+1, old.Version)
		if err := checkOne(t.d, res, err); err != nil {
			return err
		}
		out, err = t.getAdminToken(ctx, "id", id, "")
		return err
	})
	if err != nil {
		return store.AdminToken{}, unwrapFn(err, "store: update admin token %q", id)
	}
	return out, nil
}
