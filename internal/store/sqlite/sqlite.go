// Package sqlite is agentid's embedded storage backend: store.Store on one
// SQLite file through modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode with synchronous=FULL, so a committed
// Update survives power loss, and foreign keys on. Writes go through one
// writer connection that starts every batch with BEGIN IMMEDIATE; the group
// commit of package sqlstore lets concurrent writers share its fsync. Reads
// use a separate pool of query-only connections and never wait for writers.
//
// Migrations are embedded SQL files (migrations/NNNN_name.sql), forward only,
// recorded in schema_migrations and applied by Open inside one write
// transaction, which is the lock that keeps two processes from applying
// them twice.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"runtime"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// busyTimeoutMS is how long a connection waits for another process's lock.
const busyTimeoutMS = 10000

// Params configures Open.
type Params struct {
	// Path is the database file; it is created when missing. Required.
	Path string
	// Logger receives batch failures; nil discards them.
	Logger *slog.Logger
}

// Store is the SQLite store.Store. It is safe for concurrent use; see package
// sqlstore for the semantics of its methods.
type Store struct {
	*sqlstore.Store
	db *sql.DB // the writer pool
}

var _ store.Store = (*Store)(nil)

// Dialect returns the SQLite dialect of sqlstore.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:            "sqlite",
		Begin:           "BEGIN IMMEDIATE",
		TimeMicros:      true,
		CacheStatements: true,
		OwnerIDs:        `(SELECT group_concat(owner_id, ',') FROM agent_owners WHERE agent_id = a.id)`,
		Classify:        classify,
	}
}

// classify maps SQLite constraint errors to store sentinels.
func classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return store.ErrAlreadyExists
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, sqlite3.SQLITE_CONSTRAINT_NOTNULL,
		sqlite3.SQLITE_CONSTRAINT_CHECK:
		return store.ErrInvalid
	}
	return nil
}

// dsn builds the modernc DSN for path with the given extra query keys.
func dsn(path string, extra url.Values) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeoutMS))
	q.Set("_foreign_keys", "1")
	q.Set("_synchronous", "FULL")
	for k, v := range extra {
		q[k] = v
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Open opens (creating it if needed) the database at p.Path, applies the
// migrations it lacks and starts the store. It fails with an error wrapping
// sqlstore.ErrSchemaTooNew when the file was migrated by a newer binary.
func Open(ctx context.Context, p Params) (*Store, error) {
	if p.Path == "" {
		return nil, errors.New("sqlite: open: Params.Path is required")
	}
	ms, err := sqlstore.Migrations(mustSub(migrationFS, "migrations"))
	if err != nil {
		return nil, err
	}
	d := Dialect()
	write, err := sql.Open("sqlite", dsn(p.Path, url.Values{"_journal_mode": {"WAL"}, "_txlock": {"immediate"}}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", p.Path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	version, err := sqlstore.Migrate(ctx, write, &d, ms)
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", p.Path, err)
	}
	read, err := sql.Open("sqlite", dsn(p.Path, url.Values{"_query_only": {"1"}}))
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", p.Path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	s, err := sqlstore.New(sqlstore.Params{
		Dialect:       d,
		Write:         write,
		Read:          read,
		SchemaVersion: version,
		Logger:        p.Logger,
	})
	if err != nil {
		_ = write.Close()
		_ = read.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", p.Path, err)
	}
	return &Store{Store: s, db: write}, nil
}

// DB returns the writer pool (one connection, shared with the committer, so
// raw writes through it are serialised with Update). It is for tests and
// operator tooling, which may read and change rows behind the store's back;
// application code must use the store.Store methods. Closing the Store
// closes it.
func (s *Store) DB() *sql.DB { return s.db }

// mustSub returns the migrations directory of the embedded FS; the
// directory is part of the binary, so failing is a programming error.
func mustSub(fsys embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(fmt.Sprintf("sqlite: embedded migrations: %v", err))
	}
	return sub
}
