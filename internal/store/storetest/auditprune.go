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
	// 210 events over four blocks of the lookup tables (ADR 0017
	// addendum: 64 sequence numbers each), pruned at 70 and 140, inside
	// blocks.
	rs := make([]store.AuditRecord, 210)
	for i := range rs {
		rs[i] = store.AuditRecord{AgentID: []string{agentID(1), agentID(2)}[i%2], TraceID: fmt.Sprintf("trace-%d", i%3)}
	}
	appendAudit(t, s, rs...)
	all := verifyChain(t, s, len(rs))
	for _, seq := range []int64{70, 140, 210} {
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
	for _, through := range []int64{105, 210, 280} { // no checkpoint; the head; beyond the head
		if n, err := prune(through); !errors.Is(err, store.ErrInvalid) || n != 0 {
			t.Errorf("PruneAudit(%d) = %d, %v; want ErrInvalid", through, n, err)
		}
	}
	if got := seqs(t, s, store.AuditQuery{}); len(got) != 210 {
		t.Fatalf("after refused prunes: %d events, want 210", len(got))
	}

	// Not indexed yet: the indexer must step over the gap afterwards.
	if n, err := prune(70); err != nil || n != 70 {
		t.Fatalf("PruneAudit(70) = %d, %v; want 70", n, err)
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
			if diff := cmp.Diff(want(71, agent), seqs(t, s, store.AuditQuery{AgentID: agent})); diff != "" {
				t.Errorf("%s: events of agent %q (-want +got):\n%s", stage, agent, diff)
			}
		}
	}
	check("pruned, not indexed")
	if ix, ok := s.(store.AuditIndexer); ok {
		if got, err := ix.IndexAudit(ctx, 0); err != nil || got != 210 {
			t.Fatalf("IndexAudit after a prune = %d, %v; want 210", got, err)
		}
		check("pruned, indexed")
	}
	cps, err := s.ListCheckpoints(ctx, 0)
	if err != nil || len(cps) != 3 || cps[0].Seq != 70 {
		t.Fatalf("checkpoints after PruneAudit(70) = %+v, %v; want 70, 140, 210", cps, err)
	}
	if n, err := prune(140); err != nil || n != 70 {
		t.Fatalf("PruneAudit(140) = %d, %v; want 70", n, err)
	}
	if got := seqs(t, s, store.AuditQuery{}); len(got) != 70 || got[0] != 141 {
		t.Errorf("after PruneAudit(140): %v", got)
	}
	for _, q := range []store.AuditQuery{{AgentID: agentID(2)}, {TraceID: "trace-1"}} {
		var w []int64
		for _, r := range all[140:] {
			if (q.AgentID == "" || r.AgentID == q.AgentID) && (q.TraceID == "" || r.TraceID == q.TraceID) {
				w = append(w, r.Seq)
			}
		}
		if diff := cmp.Diff(w, seqs(t, s, q)); diff != "" {
			t.Errorf("after PruneAudit(140): %+v (-want +got):\n%s", q, diff)
		}
	}
	if cps, err := s.ListCheckpoints(ctx, 0); err != nil || len(cps) != 2 || cps[0].Seq != 140 {
		t.Errorf("checkpoints after PruneAudit(140) = %+v, %v; want 140, 210", cps, err)
	}
	if seq, _, err := s.AuditHead(ctx); err != nil || seq != 210 {
		t.Errorf("head after pruning = %d, %v; want 210", seq, err)
	}
	// Appends continue the chain.
	appendAudit(t, s, store.AuditRecord{AgentID: agentID(1)})
	if got := seqs(t, s, store.AuditQuery{AgentID: agentID(1)}); len(got) == 0 || got[len(got)-1] != 211 {
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
