package sqlite_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/internal/store/sqlstore"
	"github.com/agentid/agentid/internal/store/storetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Params{Path: path})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func seal(id string) func(int64, []byte) (store.AuditRecord, error) {
	return func(seq int64, prev []byte) (store.AuditRecord, error) {
		body := []byte(id)
		h := sha256.Sum256(append(append([]byte{}, prev...), body...))
		return store.AuditRecord{Seq: seq, ID: id, Time: time.Now(), Family: "admin", Body: body, PrevHash: prev, Hash: h[:]}, nil
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	s := open(t, path)
	if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.AppendAudit(ctx, seal("evt_1"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after reopen: %v", err)
	}
	if seq, _, err := s.AuditHead(ctx); err != nil || seq != 1 {
		t.Errorf("AuditHead after reopen = %d, %v; want 1", seq, err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	s := open(t, path)
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at)
		VALUES (999, 'from_the_future', 'now')`); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping succeeded on a schema newer than the binary")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(ctx, sqlite.Params{Path: path})
	if !errors.Is(err, sqlstore.ErrSchemaTooNew) {
		t.Errorf("Open of a newer schema = %v, want ErrSchemaTooNew", err)
	}
}

// TestTwoProcesses opens the file twice (as two processes would) and appends
// from both at once: the write lock keeps the chain linear.
func TestTwoProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	stores := []*sqlite.Store{open(t, path), open(t, path)}
	const per = 40
	var wg sync.WaitGroup
	for i, s := range stores {
		for w := range 4 {
			wg.Go(func() {
				for j := range per / 4 {
					err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
						_, err := tx.AppendAudit(ctx, seal(fmt.Sprintf("evt_%d_%d_%d", i, w, j)))
						return err
					})
					if err != nil {
						t.Errorf("append: %v", err)
					}
				}
			})
		}
	}
	wg.Wait()
	checkChain(t, stores[0], 2*per)
}

func checkChain(t *testing.T, s store.Store, n int64) {
	t.Helper()
	var next int64 = 1
	prev := make([]byte, 32)
	err := s.ScanAudit(context.Background(), store.AuditQuery{}, func(r store.AuditRecord) error {
		if r.Seq != next || string(r.PrevHash) != string(prev) {
			return fmt.Errorf("event %d breaks the chain", r.Seq)
		}
		next++
		prev = r.Hash
		return nil
	})
	if err != nil || next-1 != n {
		t.Errorf("chain: %d events, %v; want %d", next-1, err, n)
	}
}

// BenchmarkAppendAudit measures durable appends, one Update per event.
func BenchmarkAppendAudit(b *testing.B) {
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			dir := b.TempDir()
			if d := os.Getenv("BENCH_DIR"); d != "" {
				dir, _ = os.MkdirTemp(d, "bench")
			}
			s := open(b, filepath.Join(dir, "a.db"))
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism(writers)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("evt_%d", n.Add(1))
					if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
						_, err := tx.AppendAudit(ctx, seal(id))
						return err
					}); err != nil {
						b.Error(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestUpgradeFrom0001 runs storetest.UpgradeFrom0001 on this backend.
func TestUpgradeFrom0001(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := sqlstore.Migrations(os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	d := sqlite.Dialect()
	storetest.UpgradeFrom0001(t, db, &d, ms, func(t *testing.T) store.Store { return open(t, path) })
}
