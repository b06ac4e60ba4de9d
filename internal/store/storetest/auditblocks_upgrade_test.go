package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// TestAuditBlocksUpgradeTo0016 indexes part of a trail under schema 0015
// (one lookup row per event, ADR 0017) and checks that after migration
// 0016 (blocks of 64, the ADR's addendum) queries by agent and by trace
// answer exactly, below and above the mark, which keeps its value.
func TestAuditBlocksUpgradeTo0016(t *testing.T) {
	const events, indexed = 150, 100
	for _, b := range upgradeBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.migrated(t, 15)
			agentOf := func(seq int) string { return []string{"", "agt_1", "agt_2"}[seq%3] }
			traceOf := func(seq int) string { return fmt.Sprintf("trace-%d", seq%7) }
			for seq := 1; seq <= events; seq++ {
				ts := fmt.Sprint(1_700_000_000_000_000 + seq)
				if b.name == "postgres" {
					ts = fmt.Sprintf("to_timestamp(%d)", 1_700_000_000+seq)
				}
				qs := []string{fmt.Sprintf(`INSERT INTO audit_events (seq, id, time, family, type, outcome, agent_id, actor_id,
					trace_id, body, prev_hash, hash) VALUES (%d, 'evt_%d', %s, 'admin', 't', 'success', '%s', 'adm_1', '%s', %s, %s, %s)`,
					seq, seq, ts, agentOf(seq), traceOf(seq), b.blob, b.blob, b.blob)}
				if seq <= indexed {
					if a := agentOf(seq); a != "" {
						qs = append(qs, fmt.Sprintf(`INSERT INTO audit_by_agent (agent_id, seq) VALUES ('%s', %d)`, a, seq))
					}
					qs = append(qs, fmt.Sprintf(`INSERT INTO audit_by_trace (trace_id, seq) VALUES ('%s', %d)`, traceOf(seq), seq))
				}
				for _, q := range qs {
					if _, err := db.ExecContext(ctx, q); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
			}
			if _, err := db.ExecContext(ctx, fmt.Sprintf(`UPDATE audit_index_state SET upto = %d WHERE id = 1`, indexed)); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			s := b.store(t)
			ix, ok := s.(store.AuditIndexer)
			if !ok {
				t.Fatal("the store is not an AuditIndexer")
			}
			if upto, head, err := ix.AuditIndexState(ctx); err != nil || upto != indexed || head != events {
				t.Fatalf("AuditIndexState after the upgrade = %d, %d, %v; want %d, %d", upto, head, err, indexed, events)
			}
			check := func(stage string) {
				t.Helper()
				for _, q := range []store.AuditQuery{{AgentID: "agt_1"}, {AgentID: "agt_2", AfterSeq: 70}, {TraceID: "trace-3"}} {
					var want []int64
					for seq := 1; seq <= events; seq++ {
						if int64(seq) > q.AfterSeq && (q.AgentID == "" || agentOf(seq) == q.AgentID) && (q.TraceID == "" || traceOf(seq) == q.TraceID) {
							want = append(want, int64(seq))
						}
					}
					if diff := cmp.Diff(want, seqs(t, s, q)); diff != "" {
						t.Errorf("%s: %+v (-want +got):\n%s", stage, q, diff)
					}
				}
			}
			check("upgraded")
			if got, err := ix.IndexAudit(ctx, 0); err != nil || got != events {
				t.Fatalf("IndexAudit after the upgrade = %d, %v", got, err)
			}
			check("upgraded, indexed")
		})
	}
}
