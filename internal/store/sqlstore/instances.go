package sqlstore

import (
	"context"
	"fmt"

	"github.com/agentid/agentid/internal/store"
)

// instanceCols are the columns scanInstance reads.
const instanceCols = `id, agent_id, method, attestor, instance_key, evidence, source_ip,
	first_seen_at, last_seen_at, expires_at, revoked_at, revoked_by, version`

func scanInstance(s rowScanner) (store.Instance, error) {
	var in store.Instance
	if err := s.Scan(&in.ID, &in.AgentID, &in.Method, &in.Attestor, &in.Key, mapCol{&in.Evidence}, &in.SourceIP,
		timeCol{&in.FirstSeenAt}, timeCol{&in.LastSeenAt}, timeCol{&in.ExpiresAt},
		timeCol{&in.RevokedAt}, &in.RevokedBy, &in.Version); err != nil {
		return store.Instance{}, err
	}
	return in, nil
}

// GetInstance implements store.InstanceReader.
func (r *reader) GetInstance(ctx context.Context, id string) (store.Instance, error) {
	in, err := r.getInstance(ctx, `id = $1`, id)
	if err != nil {
		return store.Instance{}, fmt.Errorf("store: get instance %q: %w", id, err)
	}
	return in, nil
}

// GetInstanceByKey implements store.InstanceReader.
func (r *reader) GetInstanceByKey(ctx context.Context, agentID, attestor, key string) (store.Instance, error) {
	in, err := r.getInstance(ctx, `agent_id = $1 AND attestor = $2 AND instance_key = $3`, agentID, attestor, key)
	if err != nil {
		return store.Instance{}, fmt.Errorf("store: get instance of agent %q by key: %w", agentID, err)
	}
	return in, nil
}

func (r *reader) getInstance(ctx context.Context, where string, args ...any) (store.Instance, error) {
	return getOne(ctx, r, scanInstance, `SELECT `+instanceCols+` FROM instances WHERE `+where, args...)
}

// instancesToken is the page-token kind of ListInstances; its key is the
// id of the last instance of the page.
const instancesToken = "instances"

// ListInstances implements store.InstanceReader.
func (r *reader) ListInstances(ctx context.Context, f store.InstanceFilter, p store.Page) ([]store.Instance, string, error) {
	after, err := decodeToken(instancesToken, p.PageToken)
	if err != nil {
		return nil, "", err
	}
	args := queryArgs{after}
	q := `SELECT ` + instanceCols + ` FROM instances WHERE id > $1`
	if f.AgentID != "" {
		q += ` AND agent_id = ` + args.add(f.AgentID)
	}
	if !f.LiveAt.IsZero() {
		q += ` AND revoked_at IS NULL AND expires_at > ` + args.add(r.d.timeArg(f.LiveAt))
	}
	out, err := queryAll(ctx, r, scanInstance, q+` ORDER BY id`+limit(p.Size()), args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list instances: %w", err)
	}
	out, next := nextPage(out, p.Size(), instancesToken, func(in store.Instance) string { return in.ID })
	return out, next, nil
}

// checkInstance reports an instance missing a field CreateInstance
// requires.
func checkInstance(in store.Instance) error {
	if in.ID == "" || in.AgentID == "" || in.Method == "" || in.Attestor == "" || in.Key == "" ||
		in.FirstSeenAt.IsZero() || in.LastSeenAt.IsZero() || in.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: instance id, agent, method, attestor, key and first seen, last seen and expiry times are required", store.ErrInvalid)
	}
	return nil
}

// CreateInstance implements store.InstanceWriter: one INSERT, whose unique
// constraints decide a race on the key.
func (t *txn) CreateInstance(ctx context.Context, in store.Instance) (store.Instance, error) {
	var out store.Instance
	err := t.write(ctx, true, func(ctx context.Context) error {
		if err := checkInstance(in); err != nil {
			return err
		}
		evidence, err := mapArg(in.Evidence)
		if err != nil {
			return err
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO instances (`+instanceCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)`,
			in.ID, in.AgentID, in.Method, in.Attestor, in.Key, evidence, in.SourceIP,
			t.d.timeArg(in.FirstSeenAt), t.d.timeArg(in.LastSeenAt), t.d.timeArg(in.ExpiresAt),
			t.d.timeArg(in.RevokedAt), in.RevokedBy); err != nil {
			return t.d.classify(err)
		}
		out, err = t.getInstance(ctx, `id = $1`, in.ID)
		return err
	})
	if err != nil {
		return store.Instance{}, fmt.Errorf("store: create instance %q: %w", in.ID, err)
	}
	return out, nil
}

// UpdateInstance implements store.InstanceWriter: a SELECT … FOR UPDATE,
// fn, and an UPDATE that also checks the version read (compare-and-swap).
func (t *txn) UpdateInstance(ctx context.Context, id string, fn func(store.Instance) (store.Instance, error)) (store.Instance, error) {
	var out store.Instance
	err := t.write(ctx, true, func(ctx context.Context) error {
		old, err := t.getInstance(ctx, `id = $1`+t.d.ForUpdate, id)
		if err != nil {
			return err
		}
		in, err := fn(old)
		if err != nil {
			return &fnError{err}
		}
		in.ID, in.AgentID, in.Method, in.Attestor, in.Key, in.FirstSeenAt =
			old.ID, old.AgentID, old.Method, old.Attestor, old.Key, old.FirstSeenAt
		if err := checkInstance(in); err != nil {
			return err
		}
		evidence, err := mapArg(in.Evidence)
		if err != nil {
			return err
		}
		res, err := t.q.ExecContext(ctx, `UPDATE instances SET evidence = $2, source_ip = $3,
			last_seen_at = $4, expires_at = $5, revoked_at = $6, revoked_by = $7, version = $8
			WHERE id = $1 AND version = $9`,
			id, evidence, in.SourceIP, t.d.timeArg(in.LastSeenAt), t.d.timeArg(in.ExpiresAt),
			t.d.timeArg(in.RevokedAt), in.RevokedBy, old.Version+1, old.Version)
		if err := checkOne(t.d, res, err); err != nil {
			return err
		}
		out, err = t.getInstance(ctx, `id = $1`, id)
		return err
	})
	if err != nil {
		return store.Instance{}, unwrapFn(err, "store: update instance %q", id)
	}
	return out, nil
}
