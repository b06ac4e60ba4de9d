package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/agentid/agentid/internal/store"
)

// clientKeyCols are the columns scanClientKey reads.
const clientKeyCols = `agent_id, key_id, algorithm, jwk, created_at, expires_at`

func scanClientKey(s rowScanner) (store.ClientKey, error) {
	var k store.ClientKey
	if err := s.Scan(&k.AgentID, &k.KeyID, &k.Algorithm, bytesCol{&k.JWK},
		timeCol{&k.CreatedAt}, timeCol{&k.ExpiresAt}); err != nil {
		return store.ClientKey{}, err
	}
	return k, nil
}

// clientSecretCols are the columns scanClientSecret reads.
const clientSecretCols = `id, agent_id, hash, created_at, expires_at` //nolint:gosec // G101: column names, not a credential

func scanClientSecret(s rowScanner) (store.ClientSecret, error) {
	var c store.ClientSecret
	if err := s.Scan(&c.ID, &c.AgentID, bytesCol{&c.Hash},
		timeCol{&c.CreatedAt}, timeCol{&c.ExpiresAt}); err != nil {
		return store.ClientSecret{}, err
	}
	return c, nil
}

// GetClientKey implements store.ClientReader.
func (r *reader) GetClientKey(ctx context.Context, agentID, keyID string) (store.ClientKey, error) {
	k, err := r.getClientKey(ctx, agentID, keyID)
	if err != nil {
		return store.ClientKey{}, fmt.Errorf("store: get client key %q of agent %q: %w", keyID, agentID, err)
	}
	return k, nil
}

func (r *reader) getClientKey(ctx context.Context, agentID, keyID string) (store.ClientKey, error) {
	return getOne(ctx, r, scanClientKey, `SELECT `+clientKeyCols+` FROM client_keys
		WHERE agent_id = $1 AND key_id = $2`, agentID, keyID)
}

// ListClientKeys implements store.ClientReader. An agent without keys, or
// no agent, has an empty list.
func (r *reader) ListClientKeys(ctx context.Context, agentID string) ([]store.ClientKey, error) {
	out, err := queryAll(ctx, r, scanClientKey, `SELECT `+clientKeyCols+` FROM client_keys
		WHERE agent_id = $1 ORDER BY key_id`, agentID)
	if err != nil {
		return nil, fmt.Errorf("store: list client keys of agent %q: %w", agentID, err)
	}
	return out, nil
}

// ListClientSecrets implements store.ClientReader. An agent without
// secrets, or no agent, has an empty list.
func (r *reader) ListClientSecrets(ctx context.Context, agentID string) ([]store.ClientSecret, error) {
	out, err := queryAll(ctx, r, scanClientSecret, `SELECT `+clientSecretCols+` FROM client_secrets
		WHERE agent_id = $1 ORDER BY id`, agentID)
	if err != nil {
		return nil, fmt.Errorf("store: list client secrets of agent %q: %w", agentID, err)
	}
	return out, nil
}

// agentMissing explains a foreign key violation of a credential insert,
// whose only foreign key is the agent.
func agentMissing(agentID string, err error) error {
	if errors.Is(err, store.ErrInvalid) {
		return fmt.Errorf("agent %q does not exist: %w", agentID, err)
	}
	return err
}

// CreateClientKey implements store.ClientWriter. A key without agent id,
// key id, algorithm or JWK is ErrInvalid.
func (t *txn) CreateClientKey(ctx context.Context, k store.ClientKey) (store.ClientKey, error) {
	var out store.ClientKey
	err := t.write(ctx, true, func(ctx context.Context) error {
		if k.AgentID == "" || k.KeyID == "" || k.Algorithm == "" || len(k.JWK) == 0 {
			return fmt.Errorf("%w: client key agent id, key id, algorithm and JWK are required", store.ErrInvalid)
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO client_keys (agent_id, key_id, algorithm,
			jwk, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			k.AgentID, k.KeyID, k.Algorithm, k.JWK, t.d.timeArg(k.CreatedAt),
			t.d.timeArg(k.ExpiresAt)); err != nil {
			return agentMissing(k.AgentID, t.d.classify(err))
		}
		var err error
		out, err = t.getClientKey(ctx, k.AgentID, k.KeyID)
		return err
	})
	if err != nil {
		return store.ClientKey{}, fmt.Errorf("store: create client key %q of agent %q: %w", k.KeyID, k.AgentID, err)
	}
	return out, nil
}

// DeleteClientKey implements store.ClientWriter.
func (t *txn) DeleteClientKey(ctx context.Context, agentID, keyID string) error {
	err := t.write(ctx, true, func(ctx context.Context) error {
		res, err := t.q.ExecContext(ctx, `DELETE FROM client_keys WHERE agent_id = $1 AND key_id = $2`,
			agentID, keyID)
		return checkDeleted(t.d, res, err)
	})
	if err != nil {
		return fmt.Errorf("store: delete client key %q of agent %q: %w", keyID, agentID, err)
	}
	return nil
}

// CreateClientSecret implements store.ClientWriter. A secret without id,
// agent id or hash is ErrInvalid.
func (t *txn) CreateClientSecret(ctx context.Context, s store.ClientSecret) (store.ClientSecret, error) {
	var out store.ClientSecret
	err := t.write(ctx, true, func(ctx context.Context) error {
		if s.ID == "" || s.AgentID == "" || len(s.Hash) == 0 {
			return fmt.Errorf("%w: client secret id, agent id and hash are required", store.ErrInvalid)
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO client_secrets (id, agent_id, hash,
			created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			s.ID, s.AgentID, s.Hash, t.d.timeArg(s.CreatedAt), t.d.timeArg(s.ExpiresAt)); err != nil {
			return agentMissing(s.AgentID, t.d.classify(err))
		}
		var err error
		out, err = scanClientSecret(t.q.QueryRowContext(ctx,
			`SELECT `+clientSecretCols+` FROM client_secrets WHERE id = $1`, s.ID))
		return t.d.classify(err)
	})
	if err != nil {
		return store.ClientSecret{}, fmt.Errorf("store: create client secret %q of agent %q: %w", s.ID, s.AgentID, err)
	}
	return out, nil
}

// DeleteClientSecret implements store.ClientWriter. A secret of another
// agent is ErrNotFound.
func (t *txn) DeleteClientSecret(ctx context.Context, agentID, id string) error {
	err := t.write(ctx, true, func(ctx context.Context) error {
		res, err := t.q.ExecContext(ctx, `DELETE FROM client_secrets WHERE id = $1 AND agent_id = $2`,
			id, agentID)
		return checkDeleted(t.d, res, err)
	})
	if err != nil {
		return fmt.Errorf("store: delete client secret %q of agent %q: %w", id, agentID, err)
	}
	return nil
}

// checkDeleted classifies a DELETE's error and requires it to remove a
// row; none is ErrNotFound.
func checkDeleted(d *Dialect, res sql.Result, err error) error {
	if err != nil {
		return d.classify(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
