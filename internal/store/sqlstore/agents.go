package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// agentCols are the columns scanAgent reads: orphaned derived, then the
// owner ids aggregated by the dialect, last.
func (d *Dialect) agentCols() string {
	return `a.id, a.name, a.spiffe_id, a.purpose, a.action_classes, a.audiences,
	a.max_ttl, a.labels, a.expires_at, a.state, a.created_by, a.created_at,
	a.updated_at, a.version, a.scopes, a.permissions, a.require_dpop, a.tokens_revoked_at,
	a.federates_with, a.selectors, a.attestation_rules, a.node_scope, a.external_id,
	NOT EXISTS (SELECT 1 FROM agent_owners ao JOIN owners o ON o.id = ao.owner_id
		WHERE ao.agent_id = a.id AND o.state <> 'deactivated') AS orphaned,
	` + d.OwnerIDs + ` AS owner_ids`
}

type rowScanner interface{ Scan(dest ...any) error }

func scanAgent(s rowScanner) (store.Agent, error) {
	var (
		a        store.Agent
		ownerIDs sql.NullString
		rules    string
		scope    string
		maxTTL   int64
		state    string
	)
	err := s.Scan(&a.ID, &a.Name, &a.SPIFFEID, &a.Purpose, listCol{&a.ActionClasses}, listCol{&a.Audiences},
		&maxTTL, mapCol{&a.Labels}, timeCol{&a.ExpiresAt}, &state, &a.CreatedBy,
		timeCol{&a.CreatedAt}, timeCol{&a.UpdatedAt}, &a.Version,
		listCol{&a.Scopes}, listCol{&a.Permissions}, &a.RequireDPoP, timeCol{&a.TokensRevokedAt},
		listCol{&a.FederatesWith}, listCol{&a.Selectors}, &rules, &scope, &a.ExternalID, &a.Orphaned, &ownerIDs)
	if err != nil {
		return store.Agent{}, err
	}
	if ownerIDs.String != "" {
		a.Owners = strings.Split(ownerIDs.String, ",")
		slices.Sort(a.Owners)
	}
	a.State = store.AgentState(state)
	a.MaxTTL = time.Duration(maxTTL)
	if a.AttestationRules, err = parseRules(rules); err != nil {
		return store.Agent{}, err
	}
	if a.NodeScope, err = parseScope(scope); err != nil {
		return store.Agent{}, err
	}
	return a, nil
}

// GetAgent implements store.AgentReader.
func (r *reader) GetAgent(ctx context.Context, id string) (store.Agent, error) {
	a, err := r.getAgent(ctx, "a.id", id, "")
	if err != nil {
		return store.Agent{}, fmt.Errorf("store: get agent %q: %w", id, err)
	}
	return a, nil
}

// GetAgentVersion implements store.AgentReader.
func (r *reader) GetAgentVersion(ctx context.Context, id string) (int64, error) {
	ctx, err := r.begin(ctx)
	if err != nil {
		return 0, err
	}
	var v int64
	if err := r.q.QueryRowContext(ctx, `SELECT version FROM agents WHERE id = $1`, id).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: get agent version %q: %w", id, r.d.classify(err))
	}
	return v, nil
}

// GetAgentByName implements store.AgentReader.
func (r *reader) GetAgentByName(ctx context.Context, name string) (store.Agent, error) {
	a, err := r.getAgent(ctx, "a.name", name, "")
	if err != nil {
		return store.Agent{}, fmt.Errorf("store: get agent by name %q: %w", name, err)
	}
	return a, nil
}

func (r *reader) getAgent(ctx context.Context, col, key, suffix string) (store.Agent, error) {
	return getOne(ctx, r, scanAgent, `SELECT `+r.d.agentCols()+` FROM agents a WHERE `+col+` = $1`+suffix, key)
}

// ListAgents implements store.AgentReader.
func (r *reader) ListAgents(ctx context.Context, f store.AgentFilter, p store.Page) ([]store.Agent, string, error) {
	after, err := decodeToken("agents", p.PageToken)
	if err != nil {
		return nil, "", err
	}
	var args queryArgs
	where := agentWhere(f, &args)
	if after != "" {
		where = append(where, "a.id > "+args.add(after))
	}
	q := `SELECT ` + r.d.agentCols() + ` FROM agents a`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	out, err := queryAll(ctx, r, scanAgent, q+` ORDER BY a.id`+limit(p.Size()), args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list agents: %w", err)
	}
	out, next := nextPage(out, p.Size(), "agents", func(a store.Agent) string { return a.ID })
	return out, next, nil
}

// CountAgents implements store.AgentReader.
func (r *reader) CountAgents(ctx context.Context, f store.AgentFilter) (int, error) {
	ctx, err := r.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: count agents: %w", err)
	}
	var args queryArgs
	q := `SELECT count(*) FROM agents a`
	if where := agentWhere(f, &args); len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	var n int
	if err := r.q.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count agents: %w", r.d.classify(err))
	}
	return n, nil
}

// agentWhere returns the conditions of f over agents a, their values added
// to args.
func agentWhere(f store.AgentFilter, args *queryArgs) []string {
	var where []string
	if f.State != "" {
		where = append(where, "a.state = "+args.add(string(f.State)))
	}
	if f.Live {
		where = append(where, "a.state <> 'deprovisioned'")
	}
	if f.ID != "" {
		where = append(where, "a.id = "+args.add(f.ID))
	}
	if f.Name != "" {
		where = append(where, "a.name = "+args.add(f.Name))
	}
	if f.ExternalID != "" {
		where = append(where, "a.external_id = "+args.add(f.ExternalID))
	}
	if f.OwnerID != "" {
		where = append(where, "EXISTS (SELECT 1 FROM agent_owners fo WHERE fo.agent_id = a.id AND fo.owner_id = "+args.add(f.OwnerID)+")")
	}
	if f.Orphaned {
		where = append(where, `NOT EXISTS (SELECT 1 FROM agent_owners ao JOIN owners o ON o.id = ao.owner_id
			WHERE ao.agent_id = a.id AND o.state <> 'deactivated')`)
	}
	return where
}

// normOwners sorts and de-duplicates owner ids; an agent needs at least one.
func normOwners(owners []string) ([]string, error) {
	o := slices.Clone(owners)
	slices.Sort(o)
	o = slices.Compact(o)
	if len(o) == 0 || o[0] == "" {
		return nil, fmt.Errorf("%w: an agent needs at least one owner, and owner ids are not empty", store.ErrInvalid)
	}
	return o, nil
}

// CreateAgent implements store.AgentWriter. An agent without owners is
// ErrInvalid.
func (t *txn) CreateAgent(ctx context.Context, a store.Agent) (store.Agent, error) {
	var out store.Agent
	err := t.write(ctx, false, func(ctx context.Context) error {
		if a.ID == "" || a.Name == "" {
			return fmt.Errorf("%w: agent id and name are required", store.ErrInvalid)
		}
		owners, err := normOwners(a.Owners)
		if err != nil {
			return err
		}
		a.Owners = owners
		a.Version = 1
		if err := t.insertAgent(ctx, a); err != nil {
			return err
		}
		out, err = t.getAgent(ctx, "a.id", a.ID, "")
		return err
	})
	if err != nil {
		return store.Agent{}, fmt.Errorf("store: create agent %q: %w", a.ID, err)
	}
	return out, nil
}

func (t *txn) agentArgs(a store.Agent) ([]any, error) {
	actions, err := listArg(a.ActionClasses)
	if err != nil {
		return nil, err
	}
	audiences, err := listArg(a.Audiences)
	if err != nil {
		return nil, err
	}
	labels, err := mapArg(a.Labels)
	if err != nil {
		return nil, err
	}
	scopes, err := listArg(a.Scopes)
	if err != nil {
		return nil, err
	}
	permissions, err := listArg(a.Permissions)
	if err != nil {
		return nil, err
	}
	federatesWith, err := listArg(a.FederatesWith)
	if err != nil {
		return nil, err
	}
	selectors, err := listArg(a.Selectors)
	if err != nil {
		return nil, err
	}
	rules, err := rulesArg(a.AttestationRules)
	if err != nil {
		return nil, err
	}
	scope, err := jsonArg("node scope", a.NodeScope)
	if err != nil {
		return nil, err
	}
	return []any{a.ID, a.Name, a.SPIFFEID, a.Purpose, actions, audiences,
		int64(a.MaxTTL), labels, t.d.timeArg(a.ExpiresAt), string(a.State),
		a.CreatedBy, t.d.timeArg(a.CreatedAt), t.d.timeArg(a.UpdatedAt), a.Version,
		scopes, permissions, a.RequireDPoP, t.d.timeArg(a.TokensRevokedAt), federatesWith, selectors, rules, scope,
		a.ExternalID}, nil
}

func (t *txn) insertAgent(ctx context.Context, a store.Agent) error {
	args, err := t.agentArgs(a)
	if err != nil {
		return err
	}
	if _, err := t.q.ExecContext(ctx, `INSERT INTO agents (id, name, spiffe_id, purpose,
		action_classes, audiences, max_ttl, labels, expires_at, state, created_by,
		created_at, updated_at, version, scopes, permissions, require_dpop, tokens_revoked_at,
		federates_with, selectors, attestation_rules, node_scope, external_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`,
		args...); err != nil {
		return t.d.classify(err)
	}
	return t.insertOwners(ctx, a.ID, a.Owners)
}

func (t *txn) insertOwners(ctx context.Context, id string, owners []string) error {
	for _, o := range owners {
		if _, err := t.q.ExecContext(ctx,
			`INSERT INTO agent_owners (agent_id, owner_id) VALUES ($1, $2)`, id, o); err != nil {
			err = t.d.classify(err)
			if errors.Is(err, store.ErrInvalid) {
				return fmt.Errorf("owner %q does not exist: %w", o, err)
			}
			return err
		}
	}
	return nil
}

// UpdateAgent implements store.AgentWriter.
func (t *txn) UpdateAgent(ctx context.Context, id string, fn func(store.Agent) (store.Agent, error)) (store.Agent, error) {
	var out store.Agent
	err := t.write(ctx, false, func(ctx context.Context) error {
		old, err := t.getAgent(ctx, "a.id", id, t.d.ForUpdate)
		if err != nil {
			return err
		}
		a, err := fn(old)
		if err != nil {
			return &fnError{err}
		}
		a.ID, a.Name, a.CreatedAt, a.CreatedBy = old.ID, old.Name, old.CreatedAt, old.CreatedBy
		a.Version = old.Version + 1
		if a.Owners, err = normOwners(a.Owners); err != nil {
			return err
		}
		args, err := t.agentArgs(a)
		if err != nil {
			return err
		}
		// args: $1 id … $14 version, $15 scopes … $18 tokens_revoked_at,
		// $19 federates_with, $20 selectors, $21 attestation_rules,
		// $22 node_scope, $23 external_id; the immutable columns are not
		// written.
		res, err := t.q.ExecContext(ctx, `UPDATE agents SET spiffe_id = $2, purpose = $3,
			action_classes = $4, audiences = $5, max_ttl = $6, labels = $7, expires_at = $8,
			state = $9, updated_at = $10, version = $11, scopes = $12, permissions = $13,
			require_dpop = $14, tokens_revoked_at = $15, federates_with = $16, selectors = $17,
			attestation_rules = $19, node_scope = $20, external_id = $21
			WHERE id = $1 AND version = $18`,
			args[0], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9],
			args[12], args[13], args[14], args[15], args[16], args[17], args[18], args[19], old.Version, args[20], args[21],
			args[22])
		if err := checkOne(t.d, res, err); err != nil {
			return err
		}
		if !slices.Equal(a.Owners, old.Owners) {
			if _, err := t.q.ExecContext(ctx, `DELETE FROM agent_owners WHERE agent_id = $1`, id); err != nil {
				return t.d.classify(err)
			}
			if err := t.insertOwners(ctx, id, a.Owners); err != nil {
				return err
			}
		}
		out, err = t.getAgent(ctx, "a.id", id, "")
		return err
	})
	if err != nil {
		return store.Agent{}, unwrapFn(err, "store: update agent %q", id)
	}
	return out, nil
}

// checkOne classifies an UPDATE's error and requires it to change one row;
// zero rows means the row changed under us (ErrConflict).
func checkOne(d *Dialect, res sql.Result, err error) error {
	if err != nil {
		return d.classify(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("%w: row changed concurrently", store.ErrConflict)
	}
	return nil
}

// rulesArg encodes attestation rules as a JSON array; nil and empty alike
// as [].
func rulesArg(rs []store.AttestationRule) (string, error) {
	if len(rs) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(rs)
	if err != nil {
		return "", fmt.Errorf("sqlstore: encode attestation rules: %w", err)
	}
	return string(b), nil
}

// parseRules decodes attestation rules, reading an empty array as nil.
func parseRules(s string) ([]store.AttestationRule, error) {
	var rs []store.AttestationRule
	if err := json.Unmarshal([]byte(s), &rs); err != nil {
		return nil, fmt.Errorf("sqlstore: decode attestation rules: %w", err)
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return rs, nil
}

// jsonArg encodes v as a JSON column.
func jsonArg(what string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("sqlstore: encode %s: %w", what, err)
	}
	return string(b), nil
}

// parseScope decodes an agent's node scope; every node for {}.
func parseScope(s string) (store.NodeScope, error) {
	var sc store.NodeScope
	if err := json.Unmarshal([]byte(s), &sc); err != nil {
		return store.NodeScope{}, fmt.Errorf("sqlstore: decode node scope: %w", err)
	}
	return sc, nil
}
