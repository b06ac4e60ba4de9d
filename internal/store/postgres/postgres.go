// Package postgres is agentid's shared storage backend: store.Store on
// PostgreSQL through pgx v5's database/sql driver, for several stateless
// replicas on one database.
//
// Each process runs the group committer of package sqlstore; correctness
// across processes comes from the database: Update* methods read the row
// with SELECT … FOR UPDATE, AppendAudit takes a transaction-level
// advisory lock before it reads the chain head, so replicas never fork the
// audit chain, and UseOnce and AcquireLease are single upserts on a primary
// key. Lock keys are derived from current_schema(), so databases
// holding several agentid schemas do not contend.
//
// Migrations are embedded SQL files (migrations/NNNN_name.sql) with the same
// numbers and meaning as the SQLite ones, recorded in schema_migrations and
// applied by Open under a session advisory lock, so replicas starting
// together apply each once.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Advisory lock class ids (the first key of the two-key form); the second
// key is hashtext(current_schema()).
const (
	lockClassAudit   = 0x61676964 // "agid"
	lockClassMigrate = 0x61676d67 // "agmg"
)

// maxConns bounds the pool: one connection for the committer, the rest for
// reads.
const maxConns = 16

// Params configures Open.
type Params struct {
	// DSN is a pgx connection string (URL or key=value). A search_path
	// parameter selects the schema. Required.
	DSN string
	// Logger receives batch failures; nil discards them.
	Logger *slog.Logger
}

// Store is the PostgreSQL store.Store. It is safe for concurrent use, also
// with other processes on the same database; see package sqlstore for the
// semantics of its methods.
type Store struct {
	*sqlstore.Store
	db *sql.DB
}

var _ store.Store = (*Store)(nil)

// Dialect returns the PostgreSQL dialect of sqlstore.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:                "postgres",
		Begin:               "BEGIN ISOLATION LEVEL READ COMMITTED",
		TxOptions:           &sql.TxOptions{Isolation: sql.LevelReadCommitted},
		ForUpdate:           " FOR UPDATE",
		AuditLock:           fmt.Sprintf("SELECT pg_advisory_xact_lock(%d, hashtext(current_schema()))", lockClassAudit),
		MigrationLock:       fmt.Sprintf("SELECT pg_advisory_lock(%d, hashtext(current_schema()))", lockClassMigrate),
		MigrationUnlock:     fmt.Sprintf("SELECT pg_advisory_unlock(%d, hashtext(current_schema()))", lockClassMigrate),
		StatementSavepoints: true,
		OwnerIDs:            `(SELECT string_agg(owner_id, ',') FROM agent_owners WHERE agent_id = a.id)`,
		Classify:            classify,
	}
}

// classify maps PostgreSQL SQLSTATEs to store sentinels.
func classify(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return nil
	}
	switch pe.Code {
	case "23505": // unique_violation
		return store.ErrAlreadyExists
	case "23503", "23502", "23514": // foreign_key, not_null, check violation
		return store.ErrInvalid
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return sqlstore.ErrRetry
	}
	return nil
}

// Open connects to p.DSN, applies the migrations the schema lacks and starts
// the store. It fails with an error wrapping sqlstore.ErrSchemaTooNew when
// the schema was migrated by a newer binary.
func Open(ctx context.Context, p Params) (*Store, error) {
	if p.DSN == "" {
		return nil, errors.New("postgres: open: Params.DSN is required")
	}
	ms, err := sqlstore.Migrations(mustSub(migrationFS, "migrations"))
	if err != nil {
		return nil, err
	}
	d := Dialect()
	cfg, err := pgconnConfig(p.DSN)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	version, err := sqlstore.Migrate(ctx, db, &d, ms)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s, err := sqlstore.New(sqlstore.Params{
		Dialect:       d,
		Write:         db,
		Read:          db,
		SchemaVersion: version,
		Logger:        p.Logger,
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return &Store{Store: s, db: db}, nil
}

// DB returns the connection pool. It is for tests and operator tooling,
// which may read and change rows behind the store's back; application code
// must use the store.Store methods. Closing the Store closes it.
func (s *Store) DB() *sql.DB { return s.db }

// mustSub returns the migrations directory of the embedded FS; the
// directory is part of the binary, so failing is a programming error.
func mustSub(fsys embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(fmt.Sprintf("postgres: embedded migrations: %v", err))
	}
	return sub
}
