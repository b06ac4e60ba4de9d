package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// readStmts caches statements prepared on the read pool when
// Dialect.CacheStatements is set. SQLite compiles every unprepared
// statement anew, which made compiling the reads of a token request cost
// more than running them; a prepared *sql.Stmt is compiled once per pool
// connection and reused. It is safe for concurrent use.
type readStmts struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newReadStmts(db *sql.DB) *readStmts {
	return &readStmts{db: db, m: map[string]*sql.Stmt{}}
}

// stmt returns the prepared statement for query, preparing it on first
// use, or nil (run it unprepared) when the cache is full or preparing
// failed (the unprepared run then reports the error).
func (c *readStmts) stmt(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	st, ok := c.m[query]
	full := len(c.m) >= maxPrepared
	c.mu.Unlock()
	if ok || full {
		return st
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok {
		_ = st.Close()
		return prev
	}
	c.m[query] = st
	return st
}

// close releases every prepared statement.
func (c *readStmts) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for q, st := range c.m {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.m, q)
	}
	return first
}

// pooledReads is the read pool's querier with cached statements.
type pooledReads struct{ c *readStmts }

func (p pooledReads) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.c.db.ExecContext(ctx, query, args...)
}

func (p pooledReads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.c.db.QueryContext(ctx, query, args...)
}

func (p pooledReads) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.c.db.QueryRowContext(ctx, query, args...)
}
