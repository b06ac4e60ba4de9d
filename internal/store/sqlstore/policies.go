package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// policyVersionCols are the columns scanPolicyVersion reads.
const policyVersionCols = `version, text, sha256, policy_ids, author, comment, created_at`

func scanPolicyVersion(s rowScanner) (store.PolicyVersion, error) {
	var v store.PolicyVersion
	if err := s.Scan(&v.Version, &v.Text, bytesCol{&v.SHA256}, listCol{&v.PolicyIDs}, &v.Author, &v.Comment,
		timeCol{&v.CreatedAt}); err != nil {
		return store.PolicyVersion{}, err
	}
	return v, nil
}

// GetPolicyHead implements store.PolicyReader.
func (r *reader) GetPolicyHead(ctx context.Context) (store.PolicyHead, error) {
	h, err := r.getPolicyHead(ctx, "")
	if err != nil {
		return store.PolicyHead{}, fmt.Errorf("store: get policy head: %w", err)
	}
	return h, nil
}

func (r *reader) getPolicyHead(ctx context.Context, suffix string) (store.PolicyHead, error) {
	ctx, err := r.begin(ctx)
	if err != nil {
		return store.PolicyHead{}, err
	}
	var h store.PolicyHead
	if err := r.q.QueryRowContext(ctx, `SELECT active_version, generation, updated_at, updated_by,
		(SELECT COALESCE(MAX(version), 0) FROM policy_versions) FROM policy_head WHERE id = 1`+suffix).
		Scan(&h.ActiveVersion, &h.Generation, timeCol{&h.UpdatedAt}, &h.UpdatedBy, &h.LatestVersion); err != nil {
		return store.PolicyHead{}, r.d.classify(err)
	}
	return h, nil
}

// GetPolicyVersion implements store.PolicyReader.
func (r *reader) GetPolicyVersion(ctx context.Context, version int64) (store.PolicyVersion, error) {
	v, err := getOne(ctx, r, scanPolicyVersion, `SELECT `+policyVersionCols+` FROM policy_versions WHERE version = $1`, version)
	if err != nil {
		return store.PolicyVersion{}, fmt.Errorf("store: get policy version %d: %w", version, err)
	}
	return v, nil
}

// policyVersionsToken is the page-token kind of ListPolicyVersions; its
// key is the last version of the page.
const policyVersionsToken = "policy_versions"

// ListPolicyVersions implements store.PolicyReader.
func (r *reader) ListPolicyVersions(ctx context.Context, p store.Page) ([]store.PolicyVersion, string, error) {
	before, err := decodeSeqToken(policyVersionsToken, p.PageToken)
	if err != nil {
		return nil, "", err
	}
	q := `SELECT ` + policyVersionCols + ` FROM policy_versions`
	var args queryArgs
	if before > 0 {
		q += ` WHERE version < ` + args.add(before)
	}
	out, err := queryAll(ctx, r, scanPolicyVersion, q+` ORDER BY version DESC`+limit(p.Size()), args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list policy versions: %w", err)
	}
	out, next := nextPage(out, p.Size(), policyVersionsToken, func(v store.PolicyVersion) string {
		return strconv.FormatInt(v.Version, 10)
	})
	return out, next, nil
}

// actionClassCols are the columns scanActionClass reads.
const actionClassCols = `name, risk_tier, description, actions, updated_at, updated_by, version`

func scanActionClass(s rowScanner) (store.ActionClass, error) {
	var c store.ActionClass
	if err := s.Scan(&c.Name, &c.RiskTier, &c.Description, listCol{&c.Actions}, timeCol{&c.UpdatedAt},
		&c.UpdatedBy, &c.Version); err != nil {
		return store.ActionClass{}, err
	}
	return c, nil
}

// ListActionClasses implements store.PolicyReader.
func (r *reader) ListActionClasses(ctx context.Context) ([]store.ActionClass, error) {
	out, err := queryAll(ctx, r, scanActionClass, `SELECT `+actionClassCols+` FROM action_classes ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list action classes: %w", err)
	}
	return out, nil
}

// CreatePolicyVersion implements store.PolicyWriter.
func (t *txn) CreatePolicyVersion(ctx context.Context, v store.PolicyVersion) (store.PolicyVersion, error) {
	err := t.write(ctx, true, func(ctx context.Context) error {
		switch {
		case v.Version < 1:
			return fmt.Errorf("%w: policy version numbers start at 1", store.ErrInvalid)
		case v.Text == "" || len(v.SHA256) == 0 || v.Author == "" || v.CreatedAt.IsZero():
			return fmt.Errorf("%w: policy version text, SHA-256, author and creation time are required", store.ErrInvalid)
		}
		ids, err := listArg(v.PolicyIDs)
		if err != nil {
			return err
		}
		_, err = t.q.ExecContext(ctx, `INSERT INTO policy_versions (`+policyVersionCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			v.Version, v.Text, v.SHA256, ids, v.Author, v.Comment, t.d.timeArg(v.CreatedAt))
		return t.d.classify(err)
	})
	if err != nil {
		return store.PolicyVersion{}, fmt.Errorf("store: create policy version %d: %w", v.Version, err)
	}
	v.CreatedAt = v.CreatedAt.UTC().Truncate(time.Microsecond)
	if len(v.PolicyIDs) == 0 {
		v.PolicyIDs = nil
	}
	return v, nil
}

// bumpGeneration moves the head's generation from expect to expect+1 and
// sets the other columns; ErrConflict when it is no longer expect.
func (t *txn) bumpGeneration(ctx context.Context, expect int64, h store.PolicyHead) error {
	if h.UpdatedAt.IsZero() {
		return fmt.Errorf("%w: the update time is required", store.ErrInvalid)
	}
	res, err := t.q.ExecContext(ctx, `UPDATE policy_head SET active_version = $1, generation = $2,
		updated_at = $3, updated_by = $4 WHERE id = 1 AND generation = $5`,
		h.ActiveVersion, expect+1, t.d.timeArg(h.UpdatedAt), h.UpdatedBy, expect)
	if err := checkOne(t.d, res, err); err != nil {
		return fmt.Errorf("%w: the policy head moved past generation %d", store.ErrConflict, expect)
	}
	return nil
}

// SetPolicyHead implements store.PolicyWriter.
func (t *txn) SetPolicyHead(ctx context.Context, expect int64, h store.PolicyHead) (store.PolicyHead, error) {
	var out store.PolicyHead
	err := t.write(ctx, false, func(ctx context.Context) error {
		if h.ActiveVersion < 0 {
			return fmt.Errorf("%w: policy version %d does not exist", store.ErrInvalid, h.ActiveVersion)
		}
		if h.ActiveVersion > 0 {
			var one int
			err := t.q.QueryRowContext(ctx, `SELECT 1 FROM policy_versions WHERE version = $1`, h.ActiveVersion).Scan(&one)
			if err := t.d.classify(err); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("%w: policy version %d does not exist", store.ErrInvalid, h.ActiveVersion)
				}
				return err
			}
		}
		if err := t.bumpGeneration(ctx, expect, h); err != nil {
			return err
		}
		var err error
		out, err = t.getPolicyHead(ctx, "")
		return err
	})
	if err != nil {
		return store.PolicyHead{}, fmt.Errorf("store: set policy head: %w", err)
	}
	return out, nil
}

// PutActionClass implements store.PolicyWriter: the generation's
// compare-and-swap first (which serialises writers on the head row), then
// an insert or an update of the class.
func (t *txn) PutActionClass(ctx context.Context, expect int64, c store.ActionClass) (store.ActionClass, error) {
	var out store.ActionClass
	err := t.write(ctx, false, func(ctx context.Context) error {
		if c.Name == "" || c.RiskTier == "" || c.UpdatedAt.IsZero() {
			return fmt.Errorf("%w: action class name, risk tier and update time are required", store.ErrInvalid)
		}
		actions, err := listArg(c.Actions)
		if err != nil {
			return err
		}
		head, err := t.getPolicyHead(ctx, "")
		if err != nil {
			return err
		}
		head.UpdatedAt, head.UpdatedBy = c.UpdatedAt, c.UpdatedBy
		if err := t.bumpGeneration(ctx, expect, head); err != nil {
			return err
		}
		res, err := t.q.ExecContext(ctx, `UPDATE action_classes SET risk_tier = $2, description = $3,
			actions = $4, updated_at = $5, updated_by = $6, version = version + 1 WHERE name = $1`,
			c.Name, c.RiskTier, c.Description, actions, t.d.timeArg(c.UpdatedAt), c.UpdatedBy)
		if err != nil {
			return t.d.classify(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if _, err := t.q.ExecContext(ctx, `INSERT INTO action_classes (`+actionClassCols+`)
				VALUES ($1, $2, $3, $4, $5, $6, 1)`,
				c.Name, c.RiskTier, c.Description, actions, t.d.timeArg(c.UpdatedAt), c.UpdatedBy); err != nil {
				return t.d.classify(err)
			}
		}
		out, err = scanActionClass(t.q.QueryRowContext(ctx,
			`SELECT `+actionClassCols+` FROM action_classes WHERE name = $1`, c.Name))
		return t.d.classify(err)
	})
	if err != nil {
		return store.ActionClass{}, fmt.Errorf("store: put action class %q: %w", c.Name, err)
	}
	return out, nil
}
