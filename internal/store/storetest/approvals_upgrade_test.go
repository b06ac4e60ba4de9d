package storetest

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/postgres"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/internal/store/sqlstore"
)

// upgradeBackend is a backend for upgrade tests: a raw database to migrate
// by hand and fill with SQL, then the store opened on it.
type upgradeBackend struct {
	name  string
	dir   string // its migrations
	d     sqlstore.Dialect
	blob  string // a one-byte blob literal in its SQL
	db    func(t *testing.T) *sql.DB
	store func(t *testing.T) store.Store
}

// upgradeBackends returns SQLite, and PostgreSQL when PostgresDSNEnv is
// set, each on a fresh database.
func upgradeBackends(t *testing.T) []upgradeBackend {
	path := filepath.Join(t.TempDir(), "a.db")
	bs := []upgradeBackend{{
		name: "sqlite", dir: "../sqlite/migrations", d: sqlite.Dialect(), blob: "x'00'",
		db: func(t *testing.T) *sql.DB {
			db, err := sql.Open("sqlite", "file:"+path+"?_foreign_keys=1")
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		store: func(t *testing.T) store.Store {
			s, err := sqlite.Open(context.Background(), sqlite.Params{Path: path})
			if err != nil {
				t.Fatalf("sqlite.Open: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	}}
	if dsn := os.Getenv(PostgresDSNEnv); dsn != "" {
		var schemaDSN string
		bs = append(bs, upgradeBackend{
			name: "postgres", dir: "../postgres/migrations", d: postgres.Dialect(), blob: `'\x00'::bytea`,
			db: func(t *testing.T) *sql.DB {
				schemaDSN = createSchema(t, dsn)
				db, err := sql.Open("pgx", schemaDSN)
				if err != nil {
					t.Fatal(err)
				}
				return db
			},
			store: func(t *testing.T) store.Store {
				s, err := postgres.Open(context.Background(), postgres.Params{DSN: schemaDSN})
				if err != nil {
					t.Fatalf("postgres.Open: %v", err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			},
		})
	}
	return bs
}

// migrated returns b's raw database with the first n migrations applied.
func (b upgradeBackend) migrated(t *testing.T, n int) *sql.DB {
	t.Helper()
	ms, err := sqlstore.Migrations(os.DirFS(b.dir))
	if err != nil {
		t.Fatal(err)
	}
	db := b.db(t)
	if v, err := sqlstore.Migrate(context.Background(), db, &b.d, ms[:n]); err != nil || v != n {
		t.Fatalf("Migrate to %04d = %d, %v", n, v, err)
	}
	return db
}

// TestApprovalsUpgradeTo0015 stores an agent's approval under schema 0014
// and checks that migration 0015 (user approvals, ADR 0020; a table rebuild
// on SQLite) keeps it, and that its agent is still a foreign key.
func TestApprovalsUpgradeTo0015(t *testing.T) {
	for _, b := range upgradeBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.migrated(t, 14)
			created := "1700000000000000"
			if b.name == "postgres" {
				created = "'2023-11-14T22:13:20Z'"
			}
			for _, q := range []string{
				`INSERT INTO owners (id, kind, display_name, state, version) VALUES ('own_1', 'person', 'O', 'active', 1)`,
				`INSERT INTO agents (id, name, spiffe_id, purpose, action_classes, audiences, max_ttl, labels,
					state, created_by, version) VALUES ('agt_1', 'a', '', '', '["read"]', '[]', 0, '{}', 'active', 'adm_1', 1)`,
				`INSERT INTO approvals (id, state, scope_key, agent_id, agent_name, person, action, resource_type,
					resource_id, obligations, limits, created_at, expires_at, version)
					VALUES ('apr_1', 'pending', 'scope', 'agt_1', 'a', 'alice', 'invoice.pay', 'invoice', '7',
					'["approval"]', '{"amount":"10"}', ` + created + `, ` + created + `, 1)`,
			} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			s := b.store(t)
			got, err := s.GetApproval(ctx, "apr_1")
			if err != nil {
				t.Fatalf("GetApproval after the upgrade: %v", err)
			}
			want := store.Approval{ID: "apr_1", State: store.ApprovalPending, ScopeKey: "scope", AgentID: "agt_1",
				AgentName: "a", Person: "alice", Action: "invoice.pay", ResourceType: "invoice", ResourceID: "7",
				Obligations: []string{"approval"}, Limits: map[string]string{"amount": "10"},
				CreatedAt: got.CreatedAt, ExpiresAt: got.ExpiresAt, Version: 1}
			if diff := cmp.Diff(want, got); diff != "" || got.CreatedAt.Unix() != 1700000000 {
				t.Errorf("approval after the upgrade (-want +got):\n%s (created %v)", diff, got.CreatedAt)
			}
			if ids := listApprovalIDs(t, s, store.ApprovalFilter{AgentID: "agt_1"}, 10); len(ids) != 1 {
				t.Errorf("approvals of agt_1 after the upgrade = %v; want apr_1", ids)
			}
			a := newUserApproval(2, "carol", "scope-u")
			createApprovals(t, s, a)
			b := newApproval(3, 9, "scope")
			b.AgentID = "agt_9"
			_, err = inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Approval, error) { return tx.CreateApproval(ctx, b) })
			wantErr(t, "CreateApproval for an unknown agent after the upgrade", err, store.ErrInvalid)
		})
	}
}
