package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
)

// Migration is one forward-only schema step, read from a file named
// NNNN_name.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Migrations reads the *.sql files at the root of fsys. Every file must be
// named NNNN_name.sql, and versions must run 1, 2, 3, … without gaps.
func Migrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("sqlstore: migration file %q is not named NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read migration %q: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("sqlstore: migration %04d_%s: want version %d (versions run 1, 2, 3, … without gaps)", m.Version, m.Name, i+1)
		}
	}
	return ms, nil
}

// ErrSchemaTooNew is returned by Migrate when the database has a migration
// this binary does not know: a newer binary has upgraded it.
var ErrSchemaTooNew = errors.New("sqlstore: database schema is newer than this binary")

// Migrate applies the migrations the database lacks, in order, in one
// transaction begun with d.Begin and, when d.MigrationLock is set, under that
// session lock, so that several processes starting together apply each
// migration once. Each applied version is recorded in schema_migrations. It
// returns the schema version, and ErrSchemaTooNew (wrapped) when the
// database is ahead of ms.
func Migrate(ctx context.Context, db *sql.DB, d *Dialect, ms []Migration) (version int, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: migrate: connect: %w", err)
	}
	defer conn.Close()
	if d.MigrationLock != "" {
		if _, err := conn.ExecContext(ctx, d.MigrationLock); err != nil {
			return 0, fmt.Errorf("sqlstore: migrate: lock: %w", err)
		}
		defer func() {
			if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), d.MigrationUnlock); uerr != nil {
				err = errors.Join(err, fmt.Errorf("sqlstore: migrate: unlock: %w", uerr))
			}
		}()
	}
	if _, err := conn.ExecContext(ctx, d.Begin); err != nil {
		return 0, fmt.Errorf("sqlstore: migrate: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TEXT NOT NULL)`); err != nil {
		return 0, fmt.Errorf("sqlstore: migrate: create schema_migrations: %w", err)
	}
	current, err := schemaVersion(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	if current > len(ms) {
		return 0, fmt.Errorf("%w: %s database is at schema version %d, this binary knows up to %d; run a newer agentid",
			ErrSchemaTooNew, d.Name, current, len(ms))
	}
	for _, m := range ms[current:] {
		if _, err := conn.ExecContext(ctx, m.SQL); err != nil {
			return 0, fmt.Errorf("sqlstore: migration %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at)
			VALUES ($1, $2, CURRENT_TIMESTAMP)`, m.Version, m.Name); err != nil {
			return 0, fmt.Errorf("sqlstore: record migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return 0, fmt.Errorf("sqlstore: migrate: commit: %w", err)
	}
	committed = true
	return len(ms), nil
}

// schemaVersion returns the highest applied migration, 0 for none.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}
