package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// joinTokenCols are the columns scanJoinToken reads.
const joinTokenCols = `id, hash, created_by, created_at, expires_at, used_at, node_id` //nolint:gosec // G101: column names, not a credential

func scanJoinToken(s rowScanner) (store.JoinToken, error) {
	var t store.JoinToken
	if err := s.Scan(&t.ID, bytesCol{&t.Hash}, &t.CreatedBy, timeCol{&t.CreatedAt},
		timeCol{&t.ExpiresAt}, timeCol{&t.UsedAt}, &t.NodeID); err != nil {
		return store.JoinToken{}, err
	}
	return t, nil
}

// GetJoinToken implements store.JoinTokenReader.
func (r *reader) GetJoinToken(ctx context.Context, id string) (store.JoinToken, error) {
	t, err := r.getJoinToken(ctx, "id", id)
	if err != nil {
		return store.JoinToken{}, fmt.Errorf("store: get join token %q: %w", id, err)
	}
	return t, nil
}

// GetJoinTokenByHash implements store.JoinTokenReader.
func (r *reader) GetJoinTokenByHash(ctx context.Context, hash []byte) (store.JoinToken, error) {
	t, err := r.getJoinToken(ctx, "hash", bytesArg(hash))
	if err != nil {
		return store.JoinToken{}, fmt.Errorf("store: get join token by hash: %w", err)
	}
	return t, nil
}

func (r *reader) getJoinToken(ctx context.Context, col string, key any) (store.JoinToken, error) {
	ctx, err := r.begin(ctx)
	if err != nil {
		return store.JoinToken{}, err
	}
	t, err := scanJoinToken(r.q.QueryRowContext(ctx,
		`SELECT `+joinTokenCols+` FROM join_tokens WHERE `+col+` = $1`, key))
	if err != nil {
		return store.JoinToken{}, r.d.classify(err)
	}
	return t, nil
}

// joinTokensToken is the page-token kind of ListJoinTokens; its key is the
// id of the last token of the page.
const joinTokensToken = "join-tokens" //nolint:gosec // G101: a page-token kind, not a credential

// joinTokenState is the SQL of a join token's store.JoinTokenState at $2,
// its id spent in $3 (store.JoinTokenSpendNS). A spend row counts
// whatever its expiry until it is collected.
const joinTokenState = `CASE WHEN used_at IS NOT NULL THEN 'used'
	WHEN EXISTS (SELECT 1 FROM used_once u WHERE u.ns = $3 AND u.id = join_tokens.id) THEN 'revoked'
	WHEN expires_at <= $2 THEN 'expired' ELSE 'unused' END`

// ListJoinTokens implements store.JoinTokenReader in one query: the state
// is computed in SQL, so that the filter and the page agree.
func (r *reader) ListJoinTokens(ctx context.Context, f store.JoinTokenFilter, p store.Page) ([]store.ListedJoinToken, string, error) {
	switch f.State {
	case "", store.JoinTokenUnused, store.JoinTokenUsed, store.JoinTokenRevoked, store.JoinTokenExpired:
	default:
		return nil, "", fmt.Errorf("store: list join tokens: %w: unknown join token state %q", store.ErrInvalid, f.State)
	}
	if f.Now.IsZero() {
		return nil, "", fmt.Errorf("store: list join tokens: %w: now is required", store.ErrInvalid)
	}
	after, err := decodeToken(joinTokensToken, p.PageToken)
	if err != nil {
		return nil, "", err
	}
	const cols = `id, created_by, created_at, expires_at, used_at, node_id`
	q := `SELECT ` + cols + `, state FROM (SELECT ` + cols + `, ` + joinTokenState +
		` AS state FROM join_tokens WHERE id > $1) t WHERE ($4 = '' OR state = $4) ORDER BY id` + limit(p.Size())
	out, err := queryAll(ctx, r, func(s rowScanner) (store.ListedJoinToken, error) {
		var (
			t     store.ListedJoinToken
			state string
		)
		if err := s.Scan(&t.ID, &t.CreatedBy, timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt},
			timeCol{&t.UsedAt}, &t.NodeID, &state); err != nil {
			return store.ListedJoinToken{}, err
		}
		t.State = store.JoinTokenState(state)
		return t, nil
	}, q, after, r.d.timeArg(f.Now), store.JoinTokenSpendNS, string(f.State))
	if err != nil {
		return nil, "", fmt.Errorf("store: list join tokens: %w", err)
	}
	out, next := nextPage(out, p.Size(), joinTokensToken, func(t store.ListedJoinToken) string { return t.ID })
	return out, next, nil
}

// CreateJoinToken implements store.JoinTokenWriter.
func (t *txn) CreateJoinToken(ctx context.Context, j store.JoinToken) (store.JoinToken, error) {
	var out store.JoinToken
	err := t.write(ctx, true, func(ctx context.Context) error {
		switch {
		case j.ID == "" || len(j.Hash) == 0 || j.CreatedAt.IsZero() || j.ExpiresAt.IsZero():
			return fmt.Errorf("%w: join token id, hash, creation and expiry times are required", store.ErrInvalid)
		case !j.UsedAt.IsZero() || j.NodeID != "":
			return fmt.Errorf("%w: a new join token is unused", store.ErrInvalid)
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO join_tokens (id, hash, created_by, created_at,
			expires_at, used_at, node_id) VALUES ($1, $2, $3, $4, $5, NULL, '')`,
			j.ID, j.Hash, j.CreatedBy, t.d.timeArg(j.CreatedAt), t.d.timeArg(j.ExpiresAt)); err != nil {
			return t.d.classify(err)
		}
		var err error
		out, err = t.getJoinToken(ctx, "id", j.ID)
		return err
	})
	if err != nil {
		return store.JoinToken{}, fmt.Errorf("store: create join token %q: %w", j.ID, err)
	}
	return out, nil
}

// ConsumeJoinToken implements store.JoinTokenWriter in one UPDATE whose
// WHERE clause is the whole precondition (unused, not expired at now) and
// whose affected-row count is the answer: there is no read-then-write
// window. On PostgreSQL a racer on another replica blocks on the winner's
// row lock and, once the winner commits, re-evaluates the clause against
// the committed row (READ COMMITTED) and updates nothing. Only when
// nothing was updated is the token read, to tell "no such token" from
// "used or expired".
func (t *txn) ConsumeJoinToken(ctx context.Context, hash []byte, nodeID string, now time.Time) (store.JoinToken, error) {
	var out store.JoinToken
	err := t.write(ctx, true, func(ctx context.Context) error {
		if len(hash) == 0 || nodeID == "" || now.IsZero() {
			return fmt.Errorf("%w: join token hash, node id and now are required", store.ErrInvalid)
		}
		res, err := t.q.ExecContext(ctx, `UPDATE join_tokens SET used_at = $2, node_id = $3
			WHERE hash = $1 AND used_at IS NULL AND expires_at > $2`,
			hash, t.d.timeArg(now), nodeID)
		if err != nil {
			return t.d.classify(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		out, err = t.getJoinToken(ctx, "hash", hash)
		switch {
		case err != nil:
			return err
		case n == 0 && !out.UsedAt.IsZero():
			return fmt.Errorf("%w: the join token was used at %s", store.ErrConflict, out.UsedAt.Format(time.RFC3339Nano))
		case n == 0:
			return fmt.Errorf("%w: the join token expired at %s", store.ErrConflict, out.ExpiresAt.Format(time.RFC3339Nano))
		}
		return nil
	})
	if err != nil {
		return store.JoinToken{}, fmt.Errorf("store: consume join token: %w", err)
	}
	return out, nil
}

// CollectJoinTokens implements store.JoinTokenWriter. A zero before is
// ErrInvalid.
func (t *txn) CollectJoinTokens(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := t.write(ctx, true, func(ctx context.Context) error {
		if before.IsZero() {
			return fmt.Errorf("%w: before is required", store.ErrInvalid)
		}
		res, err := t.q.ExecContext(ctx, `DELETE FROM join_tokens WHERE expires_at <= $1`, t.d.timeArg(before))
		if err != nil {
			return t.d.classify(err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: collect join tokens: %w", err)
	}
	return n, nil
}

// nodeCols are the columns scanNode reads.
const nodeCols = `id, spiffe_id, attestation_method, attested_at, last_seen_at, svid_serial,
	svid_key_id, svid_expires_at, evicted_at, evicted_by, version, attestor, evidence`

// nodeEvidence is the evidence column of a node.
type nodeEvidence struct {
	Facts  map[string]string   `json:"facts,omitempty"`
	Values map[string][]string `json:"values,omitempty"`
}

func scanNode(s rowScanner) (store.Node, error) {
	var (
		n  store.Node
		ev string
	)
	if err := s.Scan(&n.ID, &n.SPIFFEID, &n.AttestationMethod, timeCol{&n.AttestedAt},
		timeCol{&n.LastSeenAt}, &n.SVIDSerial, &n.SVIDKeyID, timeCol{&n.SVIDExpiresAt},
		timeCol{&n.EvictedAt}, &n.EvictedBy, &n.Version, &n.Attestor, &ev); err != nil {
		return store.Node{}, err
	}
	var e nodeEvidence
	if err := json.Unmarshal([]byte(ev), &e); err != nil {
		return store.Node{}, fmt.Errorf("sqlstore: decode node evidence: %w", err)
	}
	n.Facts, n.FactValues = e.Facts, e.Values
	return n, nil
}

// GetNode implements store.NodeReader.
func (r *reader) GetNode(ctx context.Context, id string) (store.Node, error) {
	n, err := r.getNode(ctx, id, "")
	if err != nil {
		return store.Node{}, fmt.Errorf("store: get node %q: %w", id, err)
	}
	return n, nil
}

func (r *reader) getNode(ctx context.Context, id, suffix string) (store.Node, error) {
	return getOne(ctx, r, scanNode, `SELECT `+nodeCols+` FROM nodes WHERE id = $1`+suffix, id)
}

// nodesToken is the page-token kind of ListNodes; its key is the id of the
// last node of the page.
const nodesToken = "nodes"

// ListNodes implements store.NodeReader. An unknown filter state is
// ErrInvalid.
func (r *reader) ListNodes(ctx context.Context, f store.NodeFilter, p store.Page) ([]store.Node, string, error) {
	after, err := decodeToken(nodesToken, p.PageToken)
	if err != nil {
		return nil, "", err
	}
	q := `SELECT ` + nodeCols + ` FROM nodes WHERE id > $1`
	switch f.State {
	case "":
	case store.NodeActive:
		q += ` AND evicted_at IS NULL`
	case store.NodeEvicted:
		q += ` AND evicted_at IS NOT NULL`
	default:
		return nil, "", fmt.Errorf("store: list nodes: %w: unknown node state %q", store.ErrInvalid, f.State)
	}
	out, err := queryAll(ctx, r, scanNode, q+` ORDER BY id`+limit(p.Size()), after)
	if err != nil {
		return nil, "", fmt.Errorf("store: list nodes: %w", err)
	}
	out, next := nextPage(out, p.Size(), nodesToken, func(n store.Node) string { return n.ID })
	return out, next, nil
}

// checkNode reports a node missing a field CreateNode requires.
func checkNode(n store.Node) error {
	if n.ID == "" || n.SPIFFEID == "" || n.AttestationMethod == "" || n.AttestedAt.IsZero() ||
		n.LastSeenAt.IsZero() || n.SVIDSerial == "" || n.SVIDKeyID == "" || n.SVIDExpiresAt.IsZero() {
		return fmt.Errorf("%w: node id, SPIFFE ID, attestation method and time, last seen time and SVID serial, key and expiry are required", store.ErrInvalid)
	}
	return nil
}

// CreateNode implements store.NodeWriter.
func (t *txn) CreateNode(ctx context.Context, n store.Node) (store.Node, error) {
	var out store.Node
	err := t.write(ctx, true, func(ctx context.Context) error {
		if err := checkNode(n); err != nil {
			return err
		}
		ev, err := jsonArg("node evidence", nodeEvidence{Facts: n.Facts, Values: n.FactValues})
		if err != nil {
			return err
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO nodes (`+nodeCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $12)`,
			n.ID, n.SPIFFEID, n.AttestationMethod, t.d.timeArg(n.AttestedAt), t.d.timeArg(n.LastSeenAt),
			n.SVIDSerial, n.SVIDKeyID, t.d.timeArg(n.SVIDExpiresAt), t.d.timeArg(n.EvictedAt), n.EvictedBy,
			n.Attestor, ev); err != nil {
			return t.d.classify(err)
		}
		out, err = t.getNode(ctx, n.ID, "")
		return err
	})
	if err != nil {
		return store.Node{}, fmt.Errorf("store: create node %q: %w", n.ID, err)
	}
	return out, nil
}

// UpdateNode implements store.NodeWriter: a SELECT … FOR UPDATE, fn, and
// an UPDATE that also checks the version read (compare-and-swap). The
// immutable fields are kept as read, whatever fn returns.
func (t *txn) UpdateNode(ctx context.Context, id string, fn func(store.Node) (store.Node, error)) (store.Node, error) {
	var out store.Node
	err := t.write(ctx, true, func(ctx context.Context) error {
		old, err := t.getNode(ctx, id, t.d.ForUpdate)
		if err != nil {
			return err
		}
		n, err := fn(old)
		if err != nil {
			return &fnError{err}
		}
		n.ID, n.SPIFFEID, n.AttestationMethod, n.AttestedAt = old.ID, old.SPIFFEID, old.AttestationMethod, old.AttestedAt
		if err := checkNode(n); err != nil {
			return err
		}
		res, err := t.q.ExecContext(ctx, `UPDATE nodes SET last_seen_at = $2, svid_serial = $3,
			svid_key_id = $4, svid_expires_at = $5, evicted_at = $6, evicted_by = $7, version = $8
			WHERE id = $1 AND version = $9`,
			id, t.d.timeArg(n.LastSeenAt), n.SVIDSerial, n.SVIDKeyID, t.d.timeArg(n.SVIDExpiresAt),
			t.d.timeArg(n.EvictedAt), n.EvictedBy, old.Version+1, old.Version)
		if err := checkOne(t.d, res, err); err != nil {
			return err
		}
		out, err = t.getNode(ctx, id, "")
		return err
	})
	if err != nil {
		return store.Node{}, unwrapFn(err, "store: update node %q", id)
	}
	return out, nil
}
