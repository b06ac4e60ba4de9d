package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/postgres"
	"github.com/agentid/agentid/internal/store/sqlite"
)

// PostgresDSNEnv names the environment variable holding the DSN of a
// PostgreSQL database the tests may create schemas in.
const PostgresDSNEnv = "AGENTID_TEST_POSTGRES_DSN"

// Backend is one store implementation the tests run against.
type Backend struct {
	// Name is "sqlite" or "postgres".
	Name string
	// Open returns a fresh, empty, migrated store and the raw database
	// handle under it (for tests that edit rows behind the store's back).
	// The store is closed, and its database removed, when t ends.
	Open func(t *testing.T) (store.Store, *sql.DB)
}

// Backends returns every backend available here: SQLite on a file in
// t.TempDir() always, and PostgreSQL when AGENTID_TEST_POSTGRES_DSN is set
// (each Open then creates a schema t_<random>, opens the store with
// search_path set to it and drops it when the test ends). Without the
// variable it logs that PostgreSQL was skipped.
func Backends(t *testing.T) []Backend {
	t.Helper()
	bs := []Backend{{Name: "sqlite", Open: openSQLite}}
	dsn := os.Getenv(PostgresDSNEnv)
	if dsn == "" {
		t.Log("PostgreSQL conformance skipped: " + PostgresDSNEnv + " not set")
		return bs
	}
	return append(bs, Backend{Name: "postgres", Open: func(t *testing.T) (store.Store, *sql.DB) {
		return openPostgres(t, dsn)
	}})
}

func openSQLite(t *testing.T) (store.Store, *sql.DB) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Params{Path: filepath.Join(t.TempDir(), "agentid.db")})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, s.DB()
}

// Replicas is like Backends, but each Backend's Open returns n independent
// stores on one database — the same SQLite file, the same PostgreSQL
// schema — as n processes or replicas would have, for tests of behaviour
// across processes.
func Replicas(t *testing.T, n int) []ReplicaSet {
	t.Helper()
	sets := []ReplicaSet{{Name: "sqlite", Open: func(t *testing.T) []store.Store {
		t.Helper()
		path := filepath.Join(t.TempDir(), "agentid.db")
		out := make([]store.Store, n)
		for i := range out {
			s, err := sqlite.Open(context.Background(), sqlite.Params{Path: path})
			if err != nil {
				t.Fatalf("sqlite.Open: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			out[i] = s
		}
		return out
	}}}
	dsn := os.Getenv(PostgresDSNEnv)
	if dsn == "" {
		t.Log("PostgreSQL replicas skipped: " + PostgresDSNEnv + " not set")
		return sets
	}
	return append(sets, ReplicaSet{Name: "postgres", Open: func(t *testing.T) []store.Store {
		t.Helper()
		schemaDSN := createSchema(t, dsn)
		out := make([]store.Store, n)
		for i := range out {
			s, err := postgres.Open(context.Background(), postgres.Params{DSN: schemaDSN})
			if err != nil {
				t.Fatalf("postgres.Open: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			out[i] = s
		}
		return out
	}})
}

// ReplicaSet is one backend opened as several replicas; see Replicas.
type ReplicaSet struct {
	Name string
	Open func(t *testing.T) []store.Store
}

func openPostgres(t *testing.T, dsn string) (store.Store, *sql.DB) {
	t.Helper()
	s, err := postgres.Open(context.Background(), postgres.Params{DSN: createSchema(t, dsn)})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, s.DB()
}

// createSchema creates a schema t_<random>, drops it when t ends, and
// returns dsn selecting it.
func createSchema(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("postgres: %s: %v", PostgresDSNEnv, err)
	}
	admin := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { _ = admin.Close() })
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("postgres: create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("postgres: drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(dsn, schema)
}

// WithSearchPath returns dsn (URL or key=value form) with search_path set
// to schema.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}
