package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// testAuditPrune: PruneAudit deletes the events up to a checkpoint, their
// lookup rows and the checkpoints before it (ADR 0018); it refuses a seq
// without a checkpoint or not below the head; queries and the indexer
// carry on over the gap.
func testAuditPrune(t *testing.T, s store.Store) {
	ctx := context.Background()
	rs := make([]store.AuditRecord, 30)
	for i := range rs {
		rs[i] = store.AuditRecord{AgentID: []string{agentID(1), agentID(2)}[i%2], TraceID: fmt.Sprintf("trace-%d", i%3)}
	}
	appendAudit(t, s, rs...)
	all := verifyChain(t, s, len(rs))
	for _, seq := range []int64{10, 20, 30} {
		c := store.Checkpoint{Seq: seq, Hash: all[seq-1].Hash, Time: base(), KeyID: "k1", Signature: []byte("sig")}
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutCheckpoint(ctx, c) })
	}
	prune := func(through int64) (int64, error) {
		var n int64
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			var err error
			n, err = tx.PruneAudit(ctx, through)
			return err
		})
		return n, err
	}
	for _, through := range []int64{15, 30, 40} { // no checkpoint; the head; beyond the head
		if n, err := prune(through); !errors.Is(err, store.ErrInvalid) || n != 0 {
			t.Errorf("PruneAudit(%d) = %d, %v; want ErrInvalid", through, n, err)
		}
	}
	if got := seqs(t, s, store.AuditQuery{}); len(got) != 30 {
		t.Fatalf("after refused prunes: %d events, want 30", len(got))
	}

	// Not indexed yet: the indexer must step over the gap afterwards.
	if n, err := prune(10); err != nil || n != 10 {
		t.Fatalf("PruneAudit(10) = %d, %v; want 10", n, err)
	}
	want := func(from int64, agent string) []int64 {
		var out []int64
		for _, r := range all[from-1:] {
			if agent == "" || r.AgentID == agent {
				out = append(out, r.Seq)
			}
		}
		return out
	}
	check := func(stage string) {
		t.Helper()
		for _, agent := range []string{"", agentID(1)} {
			if diff := cmp.Diff(want(11, agent), seqs(t, s, store.AuditQuery{AgentID: agent})); diff != "" {
				t.Errorf("%s: events of agent %q (-want +got):\n%s", stage, agent, diff)
			}
		}
	}
	check("pruned, not indexed")
	if ix, ok := s.(store.AuditIndexer); ok {
		if got, err := ix.IndexAudit(ctx, 0); err != nil || got != 30 {
			t.Fatalf("IndexAudit after a prune = %d, %v; want 30", got, err)
		}
		check("pruned, indexed")
	}
	cps, err := s.ListCheckpoints(ctx, 0)
	if err != nil || len(cps) != 3 || cps[0].Seq != 10 {
		t.Fatalf("checkpoints after PruneAudit(10) = %+v, %v; want 10, 20, 30", cps, err)
	}
	if n, err := prune(20); err != nil || n != 10 {
		t.Fatalf("PruneAudit(20) = %d, %v; want 10", n, err)
	}
	if got := seqs(t, s, store.AuditQuery{}); len(got) != 10 || got[0] != 21 {
		t.Errorf("after PruneAudit(20): %v", got)
	}
	if cps, err := s.ListCheckpoints(ctx, 0); err != nil || len(cps) != 2 || cps[0].Seq != 20 {
		t.Errorf("checkpoints after PruneAudit(20) = %+v, %v; want 20, 30", cps, err)
	}
	if seq, _, err := s.AuditHead(ctx); err != nil || seq != 30 {
		t.Errorf("head after pruning = %d, %v; want 30", seq, err)
	}
	// Appends continue the chain.
	appendAudit(t, s, store.AuditRecord{AgentID: agentID(1)})
	if got := seqs(t, s, store.AuditQuery{AgentID: agentID(1)}); len(got) == 0 || got[len(got)-1] != 31 {
		t.Errorf("after an append: %v", got)
	}
}

// seqs lists the seqs ScanAudit returns for q.
func seqs(t *testing.T, s store.Store, q store.AuditQuery) []int64 {
	t.Helper()
	var out []int64
	if err := s.ScanAudit(context.Background(), q, func(r store.AuditRecord) error {
		out = append(out, r.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
