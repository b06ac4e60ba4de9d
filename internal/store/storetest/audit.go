package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func testAuditEmpty(t *testing.T, s store.Store) {
	ctx := context.Background()
	seq, hash, err := s.AuditHead(ctx)
	if err != nil || seq != 0 || hash != nil {
		t.Errorf("AuditHead of an empty trail = %d, %x, %v; want 0, nil, nil", seq, hash, err)
	}
	es, next, err := s.ListAudit(ctx, store.AuditQuery{}, store.Page{})
	if err != nil || len(es) != 0 || next != "" {
		t.Errorf("ListAudit of an empty trail = %d, %q, %v", len(es), next, err)
	}
	if err := s.ScanAudit(ctx, store.AuditQuery{}, func(store.AuditRecord) error {
		t.Error("ScanAudit called fn on an empty trail")
		return nil
	}); err != nil {
		t.Errorf("ScanAudit: %v", err)
	}
}

// verifyChain checks that the trail is seq 1..n, gap-free, each PrevHash
// the previous Hash, and returns the records.
func verifyChain(t *testing.T, s store.Store, n int) []store.AuditRecord {
	t.Helper()
	var rs []store.AuditRecord
	prev := make([]byte, 32)
	err := s.ScanAudit(context.Background(), store.AuditQuery{}, func(r store.AuditRecord) error {
		if r.Seq != int64(len(rs)+1) {
			return fmt.Errorf("event at position %d has seq %d", len(rs)+1, r.Seq)
		}
		if !bytes.Equal(r.PrevHash, prev) {
			return fmt.Errorf("event %d: prev hash %x, want %x", r.Seq, r.PrevHash, prev)
		}
		want, _ := sealer(store.AuditRecord{ID: r.ID, Time: r.Time, Body: r.Body})(r.Seq, r.PrevHash)
		if !bytes.Equal(r.Hash, want.Hash) {
			return fmt.Errorf("event %d: hash does not match its body", r.Seq)
		}
		prev = r.Hash
		rs = append(rs, r)
		return nil
	})
	if err != nil {
		t.Fatalf("chain: %v", err)
	}
	if len(rs) != n {
		t.Fatalf("chain has %d events, want %d", len(rs), n)
	}
	seq, hash, err := s.AuditHead(context.Background())
	if err != nil || seq != int64(n) || (n > 0 && !bytes.Equal(hash, rs[n-1].Hash)) {
		t.Fatalf("AuditHead = %d, %x, %v; want %d and the last hash", seq, hash, err, n)
	}
	return rs
}

func testAuditConcurrentAppend(t *testing.T, s store.Store) {
	ctx := context.Background()
	const writers, each = 16, 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
					_, err := tx.AppendAudit(ctx, sealer(store.AuditRecord{
						ID:   fmt.Sprintf("evt_w%02d_%02d", w, i),
						Body: fmt.Appendf(nil, `{"writer":%d,"i":%d}`, w, i),
					}))
					return err
				})
				if err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
				}
			}
		})
	}
	wg.Wait()
	rs := verifyChain(t, s, writers*each)
	seen := map[string]bool{}
	for _, r := range rs {
		seen[r.ID] = true
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct event ids, want %d", len(seen), writers*each)
	}
}

func testAuditRollback(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	appendAudit(t, s, store.AuditRecord{})
	errFail := errors.New("fail after writing")
	err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.CreateAgent(ctx, newAgent(1, ownerID(1))); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, sealer(store.AuditRecord{Type: "agent.created", AgentID: agentID(1)})); err != nil {
			return err
		}
		return errFail
	})
	if !errors.Is(err, errFail) {
		t.Fatalf("Update = %v, want %v", err, errFail)
	}
	if _, err := s.GetAgent(ctx, agentID(1)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("agent of a failed Update: %v, want ErrNotFound", err)
	}
	verifyChain(t, s, 1)

	// The same work succeeds and takes the next seq.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.CreateAgent(ctx, newAgent(1, ownerID(1))); err != nil {
			return err
		}
		r, err := tx.AppendAudit(ctx, sealer(store.AuditRecord{Type: "agent.created", AgentID: agentID(1)}))
		if err == nil && r.Seq != 2 {
			return fmt.Errorf("appended seq %d, want 2", r.Seq)
		}
		return err
	})
	verifyChain(t, s, 2)
}

func testAuditSealChecks(t *testing.T, s store.Store) {
	ctx := context.Background()
	appendAudit(t, s, store.AuditRecord{ID: "evt_taken"})
	cases := map[string]struct {
		seal func(seq int64, prev []byte) (store.AuditRecord, error)
		want error
	}{
		"wrong seq": {func(seq int64, prev []byte) (store.AuditRecord, error) {
			r, err := sealer(store.AuditRecord{})(seq, prev)
			r.Seq++
			return r, err
		}, store.ErrInvalid},
		"wrong prev hash": {func(seq int64, prev []byte) (store.AuditRecord, error) {
			return sealer(store.AuditRecord{})(seq, make([]byte, 32))
		}, store.ErrInvalid},
		"taken id": {sealer(store.AuditRecord{ID: "evt_taken"}), store.ErrAlreadyExists},
	}
	for name, tc := range cases {
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.AppendAudit(ctx, tc.seal)
			return err
		})
		wantErr(t, name, err, tc.want)
	}
	verifyChain(t, s, 1)
}

func testAuditQueries(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := base().UTC().Truncate(time.Second)
	var in []store.AuditRecord
	// 300 events span several blocks of the lookup tables (ADR 0017
	// addendum: 64 sequence numbers each); agent 3 and the rare trace
	// appear in a few of them.
	for i := range 300 {
		r := store.AuditRecord{
			ID:      fmt.Sprintf("evt_%04d", i+1),
			Time:    t0.Add(time.Duration(i) * time.Minute),
			Family:  []string{"issuance", "authentication", "authorization"}[i%3],
			Type:    "test.event",
			Outcome: []string{"success", "failure"}[i%2],
			AgentID: []string{"", agentID(1), agentID(2)}[i%3],
			ActorID: "adm_1",
			TraceID: fmt.Sprintf("trace-%d", i%4),
		}
		if i%50 == 7 {
			r.AgentID = agentID(3)
		}
		if i%97 == 5 {
			r.TraceID = "trace-rare"
		}
		in = append(in, r)
	}
	appendAudit(t, s, in...)
	all := verifyChain(t, s, len(in))
	for i, r := range all {
		want := in[i]
		if r.ID != want.ID || !r.Time.Equal(want.Time) || r.Family != want.Family || r.Type != want.Type ||
			r.Outcome != want.Outcome || r.AgentID != want.AgentID || r.ActorID != want.ActorID || r.TraceID != want.TraceID {
			t.Errorf("event %d = %+v, want the fields of %+v", r.Seq, r, want)
		}
	}
	checkAuditQueries(t, s, all, "before indexing")
	if ix, ok := s.(store.AuditIndexer); ok {
		// ADR 0017: part of the trail indexed, all of it, then more events
		// after the mark; the answers are the same at every stage.
		if got, err := ix.IndexAudit(ctx, 130); err != nil || got != 130 {
			t.Fatalf("IndexAudit(130) = %d, %v", got, err)
		}
		checkAuditQueries(t, s, all, "indexed to 130")
		if got, err := ix.IndexAudit(ctx, 0); err != nil || got != int64(len(in)) {
			t.Fatalf("IndexAudit(0) = %d, %v", got, err)
		}
		checkAuditQueries(t, s, all, "indexed")
		more := in[:9]
		for i := range more {
			more[i].ID = fmt.Sprintf("evt_%04d", len(in)+i+1)
		}
		appendAudit(t, s, more...)
		all = verifyChain(t, s, len(in)+len(more))
		checkAuditQueries(t, s, all, "indexed, then 9 more")
		if indexed, head, err := ix.AuditIndexState(ctx); err != nil || indexed != int64(len(in)) || head != int64(len(all)) {
			t.Errorf("AuditIndexState = %d, %d, %v; want %d, %d", indexed, head, err, len(in), len(all))
		}
		if got, err := ix.IndexAudit(ctx, 0); err != nil || got != int64(len(all)) {
			t.Fatalf("IndexAudit(0) = %d, %v", got, err)
		}
		checkAuditQueries(t, s, all, "indexed again")
	}

	// fn's error stops the scan and is returned unchanged.
	errStop := errors.New("stop")
	calls := 0
	err := s.ScanAudit(ctx, store.AuditQuery{}, func(store.AuditRecord) error {
		calls++
		if calls == 3 {
			return errStop
		}
		return nil
	})
	if err != errStop || calls != 3 { //nolint:errorlint // identity is the contract
		t.Errorf("ScanAudit with a failing fn = %v after %d calls, want stop after 3", err, calls)
	}
}

// checkAuditQueries compares ListAudit and ScanAudit with a filter of
// all, for a set of queries.
func checkAuditQueries(t *testing.T, s store.Store, all []store.AuditRecord, stage string) {
	t.Helper()
	ctx := context.Background()
	t0 := base().UTC().Truncate(time.Second)
	match := func(q store.AuditQuery) []int64 {
		var seqs []int64
		for _, r := range all {
			if r.Seq > q.AfterSeq && (q.AgentID == "" || r.AgentID == q.AgentID) &&
				(q.Family == "" || r.Family == q.Family) && (q.TraceID == "" || r.TraceID == q.TraceID) &&
				(q.Since.IsZero() || !r.Time.Before(q.Since)) && (q.Until.IsZero() || r.Time.Before(q.Until)) {
				seqs = append(seqs, r.Seq)
			}
		}
		return seqs
	}
	queries := []store.AuditQuery{
		{},
		{AfterSeq: 10},
		{AgentID: agentID(1)},
		{Family: "authorization"},
		{TraceID: "trace-2"},
		{Since: t0.Add(5 * time.Minute)},
		{Until: t0.Add(5 * time.Minute)},
		{Since: t0.Add(5 * time.Minute), Until: t0.Add(20 * time.Minute), AgentID: agentID(2)},
		{AfterSeq: 4, Family: "issuance", TraceID: "trace-0"},
		{AgentID: "agt_nobody"},
		{AfterSeq: 1000},
		{AgentID: agentID(3)},
		{AgentID: agentID(3), AfterSeq: 60},
		{TraceID: "trace-rare"},
		{TraceID: "trace-1", AfterSeq: 127, Until: t0.Add(200 * time.Minute)},
	}
	for _, q := range queries {
		want := match(q)
		var scanned []int64
		if err := s.ScanAudit(ctx, q, func(r store.AuditRecord) error {
			scanned = append(scanned, r.Seq)
			return nil
		}); err != nil {
			t.Fatalf("%s: ScanAudit(%+v): %v", stage, q, err)
		}
		if diff := cmp.Diff(want, scanned); diff != "" {
			t.Errorf("%s: ScanAudit(%+v) (-want +got):\n%s", stage, q, diff)
		}
		listed := walkItems(t, "ListAudit", 4, func(p store.Page) ([]store.AuditRecord, string, error) {
			return s.ListAudit(ctx, q, p)
		}, auditKey)
		var wantKeys []string
		for _, seq := range want {
			wantKeys = append(wantKeys, fmt.Sprint(seq))
		}
		if diff := cmp.Diff(wantKeys, listed); diff != "" {
			t.Errorf("%s: ListAudit(%+v) (-want +got):\n%s", stage, q, diff)
		}
	}

}

// testAuditScanBatches appends more events than one scan batch holds.
func testAuditScanBatches(t *testing.T, s store.Store) {
	const n = 2100
	rs := make([]store.AuditRecord, n)
	appendAudit(t, s, rs...)
	verifyChain(t, s, n)
	if ix, ok := s.(store.AuditIndexer); ok { // more than one indexing chunk
		if got, err := ix.IndexAudit(context.Background(), 0); err != nil || got != n {
			t.Fatalf("IndexAudit(0) = %d, %v; want %d", got, err, n)
		}
	}
	var got []int64
	err := s.ScanAudit(context.Background(), store.AuditQuery{AfterSeq: 990}, func(r store.AuditRecord) error {
		got = append(got, r.Seq)
		return nil
	})
	if err != nil || len(got) != n-990 || got[0] != 991 || got[len(got)-1] != n {
		t.Errorf("ScanAudit(AfterSeq 990) = %d events, %v", len(got), err)
	}
}

func testCheckpoints(t *testing.T, s store.Store) {
	ctx := context.Background()
	cp := func(seq int64, b byte) store.Checkpoint {
		return store.Checkpoint{Seq: seq, Hash: []byte{b, 1}, Time: base().Add(time.Duration(seq) * time.Second), KeyID: "ack_1", Signature: []byte{b, 2}}
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, c := range []store.Checkpoint{cp(20, 'b'), cp(10, 'a'), cp(30, 'c')} {
			if err := tx.PutCheckpoint(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	// A second checkpoint for a seq is ignored, also in its own Update.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.PutCheckpoint(ctx, cp(20, 'x'))
	})
	want := []store.Checkpoint{cp(10, 'a'), cp(20, 'b'), cp(30, 'c')}
	for i := range want {
		want[i].Time = stored(want[i].Time)
	}
	for _, after := range []int64{0, 10, 25, 30} {
		got, err := s.ListCheckpoints(ctx, after)
		if err != nil {
			t.Fatalf("ListCheckpoints(%d): %v", after, err)
		}
		var w []store.Checkpoint
		for _, c := range want {
			if c.Seq > after {
				w = append(w, c)
			}
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("ListCheckpoints(%d) (-want +got):\n%s", after, diff)
		}
	}
}

func testAuditKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	key := func(id string, age time.Duration) store.AuditKey {
		return store.AuditKey{ID: id, Algorithm: "Ed25519", PublicKey: []byte(id + "-pub"), Sealed: []byte(id + "-sealed"),
			CreatedAt: base().Add(-age)}
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, k := range []store.AuditKey{key("ack_b", time.Hour), key("ack_a", 0), key("ack_c", 2*time.Hour)} {
			if err := tx.CreateAuditKey(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.CreateAuditKey(ctx, key("ack_a", 0))
	})
	wantErr(t, "CreateAuditKey with a taken id", err, store.ErrAlreadyExists)
	got, err := s.ListAuditKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.AuditKey{key("ack_c", 2*time.Hour), key("ack_b", time.Hour), key("ack_a", 0)}
	for i := range want {
		want[i].CreatedAt = stored(want[i].CreatedAt)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListAuditKeys (-want +got):\n%s", diff)
	}
}

// testAuditBatchedAppends checks appends of Update calls that share a
// batch (a backend may buffer them until commit): reads inside a tx see
// the fn's own appends, a fn that reads and then fails leaves no event
// while its batch-mates' land, and a taken id fails only the fn using it,
// whether the id is stored or appended earlier in the same batch.
func testAuditBatchedAppends(t *testing.T, s store.Store) {
	ctx := context.Background()
	appendAudit(t, s, store.AuditRecord{ID: "evt_stored"})
	errBoom := errors.New("boom")
	const n = 30
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		dups  atomic.Int32
	)
	wg.Go(func() { // hold the writer busy so that the others share a batch
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			close(start)
			time.Sleep(50 * time.Millisecond)
			return nil
		})
		if err != nil {
			t.Errorf("blocker: %v", err)
		}
	})
	<-start
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("evt_b%04d", i)
			err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
				switch i % 3 {
				case 0: // append, then read it back three ways
					r, err := tx.AppendAudit(ctx, sealer(store.AuditRecord{ID: id}))
					if err != nil {
						return err
					}
					seq, hash, err := tx.AuditHead(ctx)
					if err != nil {
						return err
					}
					if seq != r.Seq || !bytes.Equal(hash, r.Hash) {
						return fmt.Errorf("AuditHead in tx = %d; want %d and its hash", seq, r.Seq)
					}
					es, _, err := tx.ListAudit(ctx, store.AuditQuery{AfterSeq: r.Seq - 1}, store.Page{})
					if err != nil {
						return err
					}
					if len(es) != 1 || es[0].ID != id {
						return fmt.Errorf("ListAudit in tx = %d events; want %s", len(es), id)
					}
					found := false
					if err := tx.ScanAudit(ctx, store.AuditQuery{}, func(e store.AuditRecord) error {
						found = found || e.ID == id
						return nil
					}); err != nil {
						return err
					}
					if !found {
						return fmt.Errorf("ScanAudit in tx did not find %s", id)
					}
					// And the next append chains on it.
					r2, err := tx.AppendAudit(ctx, sealer(store.AuditRecord{ID: id + "_2"}))
					if err == nil && (r2.Seq != r.Seq+1 || !bytes.Equal(r2.PrevHash, r.Hash)) {
						return fmt.Errorf("second append: seq %d, want %d, chained %v", r2.Seq, r.Seq+1, bytes.Equal(r2.PrevHash, r.Hash))
					}
					return err
				case 1: // append, read (so that buffered rows are written), fail
					if _, err := tx.AppendAudit(ctx, sealer(store.AuditRecord{ID: id})); err != nil {
						return err
					}
					if _, _, err := tx.AuditHead(ctx); err != nil {
						return err
					}
					return errBoom
				default: // a taken id fails the append; the tx stays usable
					_, err := tx.AppendAudit(ctx, sealer(store.AuditRecord{ID: "evt_stored"}))
					if err == nil {
						return errors.New("append of a stored id succeeded, want ErrAlreadyExists")
					}
					if !errors.Is(err, store.ErrAlreadyExists) {
						return fmt.Errorf("append of a stored id: %w, want ErrAlreadyExists", err)
					}
					_, err = tx.AppendAudit(ctx, sealer(store.AuditRecord{ID: "evt_dup"}))
					if errors.Is(err, store.ErrAlreadyExists) {
						dups.Add(1)
						return nil
					}
					return err
				}
			})
			switch {
			case i%3 == 1 && !errors.Is(err, errBoom):
				t.Errorf("Update %d = %v, want boom", i, err)
			case i%3 != 1 && err != nil:
				t.Errorf("Update %d = %v, want nil", i, err)
			}
		})
	}
	wg.Wait()
	if got := dups.Load(); got != n/3-1 {
		t.Errorf("%d appends of evt_dup failed with ErrAlreadyExists, want %d", got, n/3-1)
	}
	rs := verifyChain(t, s, 1+2*n/3+1)
	ids := map[string]bool{}
	for _, r := range rs {
		ids[r.ID] = true
	}
	for i := range n {
		id := fmt.Sprintf("evt_b%04d", i)
		if ids[id] != (i%3 == 0) || ids[id+"_2"] != (i%3 == 0) {
			t.Errorf("event %s stored = %v, want %v", id, ids[id], i%3 == 0)
		}
	}
	if !ids["evt_dup"] {
		t.Error("evt_dup was not stored")
	}
}
