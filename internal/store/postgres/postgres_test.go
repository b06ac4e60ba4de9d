package postgres_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/postgres"
	"github.com/agentid/agentid/internal/store/sqlstore"
	"github.com/agentid/agentid/internal/store/storetest"
)

// schemaDSN creates a fresh schema and returns a DSN selecting it.
func schemaDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(storetest.PostgresDSNEnv)
	if dsn == "" {
		t.Skip("PostgreSQL tests skipped: " + storetest.PostgresDSNEnv + " not set")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { _ = admin.Close() })
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	return storetest.WithSearchPath(dsn, schema)
}

func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), postgres.Params{DSN: dsn})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func seal(id string) func(int64, []byte) (store.AuditRecord, error) {
	return func(seq int64, prev []byte) (store.AuditRecord, error) {
		h := sha256.Sum256(append(append([]byte{}, prev...), id...))
		return store.AuditRecord{Seq: seq, ID: id, Time: time.Now(), Body: []byte(id), PrevHash: prev, Hash: h[:]}, nil
	}
}

// TestReplicas runs three stores (as three replicas would) on one schema,
// opened concurrently, and has them append to the audit trail and update one
// agent at once: the advisory and row locks keep the chain linear and lose
// no update, and deadlock victims are run again (sqlstore.ErrRetry).
func TestReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := schemaDSN(t)
	const replicas = 3
	stores := make([]*postgres.Store, replicas)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() {
			s, err := postgres.Open(ctx, postgres.Params{DSN: dsn})
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
				return
			}
			stores[i] = s
		})
	}
	wg.Wait()
	for _, s := range stores {
		if s == nil {
			t.FailNow()
		}
		t.Cleanup(func() { _ = s.Close() })
	}
	err := stores[0].Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.CreateOwner(ctx, store.Owner{ID: "own_1", State: store.OwnerActive}); err != nil {
			return err
		}
		_, err := tx.CreateAgent(ctx, store.Agent{ID: "agt_1", Name: "a", Owners: []string{"own_1"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	const per = 30
	for r, s := range stores {
		for w := range 3 {
			wg.Go(func() {
				for i := range per / 3 {
					err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
						if _, err := tx.AppendAudit(ctx, seal(fmt.Sprintf("evt_%d_%d_%d", r, w, i))); err != nil {
							return err
						}
						_, err := tx.UpdateAgent(ctx, "agt_1", func(a store.Agent) (store.Agent, error) {
							if a.Labels == nil {
								a.Labels = map[string]string{}
							}
							a.Labels[fmt.Sprintf("%d_%d_%d", r, w, i)] = "x"
							return a, nil
						})
						return err
					})
					if err != nil {
						t.Errorf("replica %d: %v", r, err)
					}
				}
			})
		}
	}
	wg.Wait()
	a, err := stores[1].GetAgent(ctx, "agt_1")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	prev := make([]byte, 32)
	err = stores[2].ScanAudit(ctx, store.AuditQuery{}, func(r store.AuditRecord) error {
		n++
		if r.Seq != n || string(r.PrevHash) != string(prev) {
			return fmt.Errorf("event %d breaks the chain", r.Seq)
		}
		prev = r.Hash
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every Update committed (a deadlock victim runs again) and wrote one
	// event and one label.
	if int64(len(a.Labels)) != n || a.Version != 1+n || n != replicas*per {
		t.Errorf("%d events, %d labels, version %d; want %d of each (version one more)",
			n, len(a.Labels), a.Version, replicas*per)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	dsn := schemaDSN(t)
	s := open(t, dsn)
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at)
		VALUES (999, 'from_the_future', 'now')`); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping succeeded on a schema newer than the binary")
	}
	_, err := postgres.Open(ctx, postgres.Params{DSN: dsn})
	if !errors.Is(err, sqlstore.ErrSchemaTooNew) {
		t.Errorf("Open of a newer schema = %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenBadDSN(t *testing.T) {
	_, err := postgres.Open(context.Background(), postgres.Params{DSN: "postgres://u:secret@127.0.0.1:1/x?connect_timeout=1"})
	if err == nil {
		t.Fatal("Open of an unreachable database succeeded")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("Open error leaks the password: %v", err)
	}
}

// TestUpgradeFrom0001 runs storetest.UpgradeFrom0001 on this backend.
func TestUpgradeFrom0001(t *testing.T) {
	dsn := schemaDSN(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := sqlstore.Migrations(os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	d := postgres.Dialect()
	storetest.UpgradeFrom0001(t, db, &d, ms, func(t *testing.T) store.Store { return open(t, dsn) })
}

// TestDeadlockVictimRetried provokes a deadlock between two replicas: each
// updates one agent, waits for the other, then updates the other's agent.
// PostgreSQL aborts one statement (40P01); the victim's fn runs again in a
// later transaction (sqlstore.ErrRetry) and both updates commit.
func TestDeadlockVictimRetried(t *testing.T) {
	ctx := context.Background()
	dsn := schemaDSN(t)
	a, b := open(t, dsn), open(t, dsn)
	err := a.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.CreateOwner(ctx, store.Owner{ID: "own_1", State: store.OwnerActive}); err != nil {
			return err
		}
		for _, id := range []string{"agt_x", "agt_y"} {
			if _, err := tx.CreateAgent(ctx, store.Agent{ID: id, Name: id[4:], Owners: []string{"own_1"}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	label := func(key string) func(store.Agent) (store.Agent, error) {
		return func(ag store.Agent) (store.Agent, error) {
			if ag.Labels == nil {
				ag.Labels = map[string]string{}
			}
			ag.Labels[key] = "x"
			return ag, nil
		}
	}
	var (
		barrier sync.WaitGroup
		runs    [2]atomic.Int32
	)
	barrier.Add(2)
	cross := func(i int, first, second string) func(context.Context, store.Tx) error {
		return func(ctx context.Context, tx store.Tx) error {
			if _, err := tx.UpdateAgent(ctx, first, label(fmt.Sprintf("r%d-first", i))); err != nil {
				return err
			}
			if runs[i].Add(1) == 1 { // the first run waits for the other's first update
				barrier.Done()
				barrier.Wait()
			}
			_, err := tx.UpdateAgent(ctx, second, label(fmt.Sprintf("r%d-second", i)))
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = a.Update(ctx, cross(0, "agt_x", "agt_y")) })
	wg.Go(func() { errs[1] = b.Update(ctx, cross(1, "agt_y", "agt_x")) })
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("Update errors %v, %v; want both to commit", errs[0], errs[1])
	}
	if runs[0].Load()+runs[1].Load() < 3 {
		t.Errorf("fn runs %d and %d: want one of them run again after the deadlock", runs[0].Load(), runs[1].Load())
	}
	for _, id := range []string{"agt_x", "agt_y"} {
		ag, err := a.GetAgent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(ag.Labels) != 2 {
			t.Errorf("%s labels %v, want one from each replica", id, ag.Labels)
		}
	}
}
