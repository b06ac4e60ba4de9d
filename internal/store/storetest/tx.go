package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func testConcurrentCAS(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	a := newAgent(1, ownerID(1))
	a.Labels = nil
	createAgents(t, s, a)
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := tx.UpdateAgent(ctx, a.ID, func(a store.Agent) (store.Agent, error) {
					if a.Labels == nil {
						a.Labels = map[string]string{}
					}
					a.Labels[fmt.Sprintf("l%02d", i)] = "x"
					return a, nil
				})
				return err
			})
			if err != nil {
				t.Errorf("Update %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetAgent(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Labels) != n || got.Version != 1+n {
		t.Errorf("after %d concurrent updates: %d labels, version %d; want %d labels, version %d",
			n, len(got.Labels), got.Version, n, 1+n)
	}
}

// testFnErrorIsolation runs many Update calls at once (so that a batching
// store puts several in one transaction); every other one fails after
// writing. Only the failing ones' writes are gone.
func testFnErrorIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	const n = 40
	errBoom := errors.New("boom")
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	// Hold the writer busy so that the others queue up behind it.
	wg.Go(func() {
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			close(start)
			time.Sleep(50 * time.Millisecond)
			_, err := tx.CreateAgent(ctx, newAgent(1000, ownerID(1)))
			return err
		})
		if err != nil {
			t.Errorf("blocker: %v", err)
		}
	})
	<-start
	for i := range n {
		wg.Go(func() {
			err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
				if _, err := tx.CreateAgent(ctx, newAgent(i, ownerID(1))); err != nil {
					return err
				}
				if _, err := tx.AppendAudit(ctx, sealer(store.AuditRecord{ID: fmt.Sprintf("evt_%04d", i), AgentID: agentID(i)})); err != nil {
					return err
				}
				if i%2 == 1 {
					return errBoom
				}
				return nil
			})
			if i%2 == 1 && !errors.Is(err, errBoom) {
				t.Errorf("Update %d = %v, want boom", i, err)
			}
			if i%2 == 0 && err != nil {
				t.Errorf("Update %d = %v, want nil", i, err)
			}
		})
	}
	wg.Wait()
	for i := range n {
		_, err := s.GetAgent(ctx, agentID(i))
		switch {
		case i%2 == 0 && err != nil:
			t.Errorf("agent %d of a successful Update: %v", i, err)
		case i%2 == 1 && !errors.Is(err, store.ErrNotFound):
			t.Errorf("agent %d of a failed Update: got %v, want ErrNotFound", i, err)
		}
	}
	var seqs []int64
	var agents []string
	prev := make([]byte, 32)
	err := s.ScanAudit(ctx, store.AuditQuery{}, func(r store.AuditRecord) error {
		seqs = append(seqs, r.Seq)
		agents = append(agents, r.AgentID)
		if !cmp.Equal(prev, r.PrevHash) {
			t.Errorf("event %d: prev hash does not match event %d", r.Seq, r.Seq-1)
		}
		prev = r.Hash
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != n/2 || seqs[len(seqs)-1] != n/2 {
		t.Errorf("audit seqs %v, want 1..%d", seqs, n/2)
	}
	for _, id := range agents {
		var i int
		if _, err := fmt.Sscanf(id, "agt_%04d", &i); err != nil || i%2 == 1 {
			t.Errorf("audit event of failed Update for %s survived", id)
		}
	}
}

func testFnErrorUnchanged(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)))
	errMine := fmt.Errorf("mine: %w", store.ErrConflict)
	cases := map[string]func(ctx context.Context, tx store.Tx) error{
		"fn": func(context.Context, store.Tx) error { return errMine },
		"UpdateAgent updater": func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateAgent(ctx, agentID(1), func(store.Agent) (store.Agent, error) { return store.Agent{}, errMine })
			return err
		},
		"UpdateOwner updater": func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateOwner(ctx, ownerID(1), func(store.Owner) (store.Owner, error) { return store.Owner{}, errMine })
			return err
		},
		"AppendAudit seal": func(ctx context.Context, tx store.Tx) error {
			_, err := tx.AppendAudit(ctx, func(int64, []byte) (store.AuditRecord, error) { return store.AuditRecord{}, errMine })
			return err
		},
	}
	for name, fn := range cases {
		if err := s.Update(ctx, fn); err != errMine { //nolint:errorlint // identity is the contract
			t.Errorf("%s: Update = %v, want the fn's error unchanged", name, err)
		}
	}
	got, err := s.GetAgent(ctx, agentID(1))
	if err != nil || got.Version != 1 {
		t.Errorf("agent after failed updates: version %d, %v; want 1", got.Version, err)
	}
	if seq, _, err := s.AuditHead(ctx); err != nil || seq != 0 {
		t.Errorf("AuditHead = %d, %v; want 0", seq, err)
	}
}

func testTxUsableAfterFailedWrite(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)))
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		dup := newAgent(2, ownerID(1))
		dup.Name = newAgent(1).Name
		if _, err := tx.CreateAgent(ctx, dup); !errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("duplicate CreateAgent = %w, want ErrAlreadyExists", err)
		}
		if _, err := tx.CreateAgent(ctx, newAgent(3, ownerID(1), "own_missing")); !errors.Is(err, store.ErrInvalid) {
			return fmt.Errorf("CreateAgent with unknown owner = %w, want ErrInvalid", err)
		}
		_, err := tx.CreateAgent(ctx, newAgent(4, ownerID(1)))
		return err
	})
	for i, want := range map[int]error{2: store.ErrNotFound, 3: store.ErrNotFound, 4: nil} {
		if _, err := s.GetAgent(ctx, agentID(i)); !errors.Is(err, want) {
			t.Errorf("GetAgent(%d) = %v, want %v", i, err, want)
		}
	}
}

func testTxReadsOwnWrites(t *testing.T, s store.Store) {
	ctx := context.Background()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.CreateOwner(ctx, newOwner(1)); err != nil {
			return err
		}
		if _, err := tx.CreateAgent(ctx, newAgent(1, ownerID(1))); err != nil {
			return err
		}
		a, err := tx.GetAgentByName(ctx, newAgent(1).Name)
		if err != nil {
			return fmt.Errorf("GetAgentByName in tx: %w", err)
		}
		as, _, err := tx.ListAgents(ctx, store.AgentFilter{OwnerID: ownerID(1)}, store.Page{})
		if err != nil || len(as) != 1 || as[0].ID != a.ID {
			return fmt.Errorf("ListAgents in tx = %d agents, %w", len(as), err)
		}
		if _, err := tx.AppendAudit(ctx, sealer(store.AuditRecord{})); err != nil {
			return err
		}
		if seq, _, err := tx.AuditHead(ctx); err != nil || seq != 1 {
			return fmt.Errorf("AuditHead in tx = %d, %w", seq, err)
		}
		return nil
	})
	// Outside, the committed state is visible.
	if _, err := s.GetAgent(ctx, agentID(1)); err != nil {
		t.Errorf("GetAgent after commit: %v", err)
	}
}

func testTxAfterFn(t *testing.T, s store.Store) {
	ctx := context.Background()
	var kept store.Tx
	update(t, s, func(_ context.Context, tx store.Tx) error {
		kept = tx
		return nil
	})
	if _, err := kept.CreateOwner(ctx, newOwner(1)); err == nil {
		t.Error("CreateOwner on a Tx whose fn returned succeeded")
	}
	if _, err := s.GetOwner(ctx, ownerID(1)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetOwner = %v, want ErrNotFound", err)
	}
}

func testUpdateCancelled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	err := s.Update(ctx, func(context.Context, store.Tx) error {
		called = true
		return nil
	})
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("Update(cancelled ctx) = %v, fn called %v; want context.Canceled, not called", err, called)
	}
}

func testUpdatePanic(t *testing.T, s store.Store) {
	ctx := context.Background()
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want the fn's panic", v)
			}
		}()
		_ = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			if _, err := tx.CreateOwner(ctx, newOwner(1)); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if _, err := s.GetOwner(ctx, ownerID(1)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("write of a panicking fn: GetOwner = %v, want ErrNotFound", err)
	}
	createOwners(t, s, newOwner(2)) // the store still works
}

func testPingClose(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err := s.Update(ctx, func(context.Context, store.Tx) error { return nil })
	wantErr(t, "Update after Close", err, store.ErrClosed)
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded")
	}
}
