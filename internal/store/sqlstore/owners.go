package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/agentid/agentid/internal/store"
)

const ownerCols = `id, kind, COALESCE(email, ''), COALESCE(subject, ''), subject_issuer, display_name, user_name,
	external_id, state, created_at, updated_at, version`

func scanOwner(s rowScanner) (store.Owner, error) {
	var (
		o           store.Owner
		kind, state string
	)
	if err := s.Scan(&o.ID, &kind, &o.Email, &o.Subject, &o.SubjectIssuer, &o.DisplayName, &o.UserName, &o.ExternalID, &state,
		timeCol{&o.CreatedAt}, timeCol{&o.UpdatedAt}, &o.Version); err != nil {
		return store.Owner{}, err
	}
	o.Kind, o.State = store.OwnerKind(kind), store.OwnerState(state)
	return o, nil
}

// GetOwner implements store.OwnerReader.
func (r *reader) GetOwner(ctx context.Context, id string) (store.Owner, error) {
	o, err := r.getOwner(ctx, "id", id, "")
	if err != nil {
		return store.Owner{}, fmt.Errorf("store: get owner %q: %w", id, err)
	}
	return o, nil
}

// GetOwnerByEmail implements store.OwnerReader. The empty email matches no
// owner.
func (r *reader) GetOwnerByEmail(ctx context.Context, email string) (store.Owner, error) {
	o, err := r.getOwner(ctx, "email", email, "")
	if err != nil {
		return store.Owner{}, fmt.Errorf("store: get owner by email %q: %w", email, err)
	}
	return o, nil
}

// GetOwnerByUserName implements store.OwnerReader. The empty user name
// matches no owner.
func (r *reader) GetOwnerByUserName(ctx context.Context, userName string) (store.Owner, error) {
	if userName == "" {
		return store.Owner{}, fmt.Errorf("store: get owner by user name %q: %w", userName, store.ErrNotFound)
	}
	o, err := r.getOwner(ctx, "user_name_key", store.FoldUserName(userName), "")
	if err != nil {
		return store.Owner{}, fmt.Errorf("store: get owner by user name %q: %w", userName, err)
	}
	return o, nil
}

func (r *reader) getOwner(ctx context.Context, col, key, suffix string) (store.Owner, error) {
	return getOne(ctx, r, scanOwner, `SELECT `+ownerCols+` FROM owners WHERE `+col+` = $1`+suffix, key)
}

// ownerWhere is the WHERE clause of f (with "1 = 1" for no filter).
func ownerWhere(f store.OwnerFilter, args *queryArgs) string {
	where := []string{"1 = 1"}
	for _, c := range []struct{ col, v string }{
		{"state", string(f.State)}, {"kind", string(f.Kind)}, {"id", f.ID}, {"email", f.Email},
		{"external_id", f.ExternalID},
	} {
		if c.v != "" {
			where = append(where, c.col+" = "+args.add(c.v))
		}
	}
	if f.UserName != "" {
		where = append(where, "user_name_key = "+args.add(store.FoldUserName(f.UserName)))
	}
	return strings.Join(where, " AND ")
}

// ListOwners implements store.OwnerReader.
func (r *reader) ListOwners(ctx context.Context, f store.OwnerFilter, p store.Page) ([]store.Owner, string, error) {
	after, err := decodeToken("owners", p.PageToken)
	if err != nil {
		return nil, "", err
	}
	var args queryArgs
	q := `SELECT ` + ownerCols + ` FROM owners WHERE id > ` + args.add(after) + ` AND ` + ownerWhere(f, &args)
	out, err := queryAll(ctx, r, scanOwner, q+` ORDER BY id`+limit(p.Size()), args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list owners: %w", err)
	}
	out, next := nextPage(out, p.Size(), "owners", func(o store.Owner) string { return o.ID })
	return out, next, nil
}

// CountOwners implements store.OwnerReader.
func (r *reader) CountOwners(ctx context.Context, f store.OwnerFilter) (int, error) {
	ctx, err := r.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: count owners: %w", err)
	}
	var args queryArgs
	var n int
	if err := r.q.QueryRowContext(ctx, `SELECT count(*) FROM owners WHERE `+ownerWhere(f, &args), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count owners: %w", r.d.classify(err))
	}
	return n, nil
}

// CreateOwner implements store.OwnerWriter.
func (t *txn) CreateOwner(ctx context.Context, o store.Owner) (store.Owner, error) {
	var out store.Owner
	err := t.write(ctx, true, func(ctx context.Context) error {
		if o.ID == "" {
			return fmt.Errorf("%w: owner id is required", store.ErrInvalid)
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO owners (id, kind, email, subject,
			display_name, user_name, user_name_key, external_id, state, created_at, updated_at, version, subject_issuer)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12)`,
			o.ID, string(o.Kind), nullIfEmpty(o.Email), nullIfEmpty(o.Subject), o.DisplayName,
			o.UserName, nullIfEmpty(store.OwnerUserNameKey(o)), o.ExternalID,
			string(o.State), t.d.timeArg(o.CreatedAt), t.d.timeArg(o.UpdatedAt), o.SubjectIssuer); err != nil {
			return t.d.classify(err)
		}
		var err error
		out, err = t.getOwner(ctx, "id", o.ID, "")
		return err
	})
	if err != nil {
		return store.Owner{}, fmt.Errorf("store: create owner %q: %w", o.ID, err)
	}
	return out, nil
}

// UpdateOwner implements store.OwnerWriter.
func (t *txn) UpdateOwner(ctx context.Context, id string, fn func(store.Owner) (store.Owner, error)) (store.Owner, error) {
	var out store.Owner
	err := t.write(ctx, true, func(ctx context.Context) error {
		old, err := t.getOwner(ctx, "id", id, t.d.ForUpdate)
		if err != nil {
			return err
		}
		o, err := fn(old)
		if err != nil {
			return &fnError{err}
		}
		res, err := t.q.ExecContext(ctx, `UPDATE owners SET kind = $2, email = $3, subject = $4,
			display_name = $5, user_name = $6, user_name_key = $7, external_id = $8,
			state = $9, updated_at = $10, version = $11, subject_issuer = $13
			WHERE id = $1 AND version = $12`,
			id, string(o.Kind), nullIfEmpty(o.Email), nullIfEmpty(o.Subject), o.DisplayName,
			o.UserName, nullIfEmpty(store.OwnerUserNameKey(o)), o.ExternalID,
			string(o.State), t.d.timeArg(o.UpdatedAt), old.Version+1, old.Version, o.SubjectIssuer)
		if err := checkOne(t.d, res, err); err != nil {
			return err
		}
		out, err = t.getOwner(ctx, "id", id, "")
		return err
	})
	if err != nil {
		return store.Owner{}, unwrapFn(err, "store: update owner %q", id)
	}
	return out, nil
}
