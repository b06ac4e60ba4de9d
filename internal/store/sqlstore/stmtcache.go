package sqlstore

import (
	"context"
	"database/sql"
)

// maxPrepared bounds how many distinct statements a Store keeps prepared.
const maxPrepared = 128

// stmtCache is the querier of one batch when Dialect.CacheStatements is
// set. SQLite parses every unprepared statement anew, which otherwise
// dominates the cost of a batched write; so statements the committer has
// prepared on the write pool are bound to the batch's transaction with
// Tx.StmtContext, which reuses the connection's prepared statement. Other
// statements run unprepared and are remembered, and the committer prepares
// them between batches (when the single write connection is free).
type stmtCache struct {
	tx       *sql.Tx
	prepared map[string]*sql.Stmt // owned by the committer goroutine
	local    map[string]*sql.Stmt // bound to tx
	seen     map[string]bool      // unprepared statements run in this batch
}

func newStmtCache(tx *sql.Tx, prepared map[string]*sql.Stmt) *stmtCache {
	return &stmtCache{tx: tx, prepared: prepared, local: map[string]*sql.Stmt{}, seen: map[string]bool{}}
}

// stmt returns the statement bound to the batch, or nil to run query
// unprepared.
func (c *stmtCache) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := c.local[query]; ok {
		return st
	}
	if ps, ok := c.prepared[query]; ok {
		st := c.tx.StmtContext(ctx, ps)
		c.local[query] = st
		return st
	}
	c.seen[query] = true
	return nil
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.tx.ExecContext(ctx, query, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.tx.QueryContext(ctx, query, args...)
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.tx.QueryRowContext(ctx, query, args...)
}

// prepareSeen prepares, on the write pool, the statements the last batch ran
// unprepared. It runs between batches; a statement that fails to prepare
// simply stays unprepared.
func (s *Store) prepareSeen(ctx context.Context, seen map[string]bool) {
	for q := range seen {
		if len(s.prepared) >= maxPrepared {
			return
		}
		if _, ok := s.prepared[q]; ok {
			continue
		}
		st, err := s.write.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		s.prepared[q] = st
	}
}
