package audit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/store"
)

var pruner = Origin{Actor: Actor{Type: ActorAdmin, ID: "adm_01hzx3k4q5r6s7t8v9w0xyzabc"}}

// checkpointTime is the signing time of the checkpoint at seq.
func checkpointTime(t *testing.T, s store.Store, seq int64) time.Time {
	t.Helper()
	cps, err := s.ListCheckpoints(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cps {
		if c.Seq == seq {
			return c.Time
		}
	}
	t.Fatalf("no checkpoint at seq %d", seq)
	return time.Time{}
}

// TestPrune: events up to the last checkpoint signed before the cutoff go,
// the trail (and its export) still verifies and says where it was pruned,
// and a second prune continues from there.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	s, db := openSQLite(t)
	tr := newTrail(t, s, db, 10)
	appendN(t, tr, 45)
	if rep, err := tr.rec.Prune(ctx, pruner, checkpointTime(t, s, 10)); err != nil || rep.ThroughSeq != 0 {
		t.Fatalf("cutoff at the first checkpoint's time = %+v, %v; want nothing pruned", rep, err)
	}
	rep, err := tr.rec.Prune(ctx, pruner, checkpointTime(t, s, 30).Add(time.Nanosecond))
	if err != nil || rep.ThroughSeq != 30 || rep.Events != 30 || rep.EventID == "" {
		t.Fatalf("Prune = %+v, %v; want through 30, 30 events", rep, err)
	}
	for name, got := range map[string]Report{"store": verifyStore(t, s), "export": verifyExport(t, s)} {
		if !got.OK || got.FirstSeq != 31 || got.PrunedThrough != 30 || got.HeadSeq != 46 {
			t.Errorf("%s: Verify after the prune = %+v", name, got)
		}
	}
	l, _, err := s.ListAudit(ctx, store.AuditQuery{Family: string(Admin)}, store.Page{})
	if err != nil || len(l) != 1 || l[0].Type != PrunedType || l[0].ActorID != pruner.Actor.ID {
		t.Fatalf("the prune's event = %+v, %v", l, err)
	}

	appendN(t, tr, 20) // up to 66, checkpoints 40, 50, 60
	rep, err = tr.rec.Prune(ctx, pruner, time.Now().Add(time.Hour))
	if err != nil || rep.ThroughSeq != 60 || rep.Events != 30 {
		t.Fatalf("second Prune = %+v, %v; want through 60, 30 events", rep, err)
	}
	if got := verifyStore(t, s); !got.OK || got.PrunedThrough != 60 {
		t.Errorf("Verify after the second prune = %+v", got)
	}
}

// TestPruneChunks: a prune larger than one chunk ends each chunk at a
// checkpoint.
func TestPruneChunks(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 25,000 events")
	}
	ctx := context.Background()
	s, db := openSQLite(t)
	tr := newTrail(t, s, db, 1000)
	for range 25 {
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			for i := range 1000 {
				if _, err := tr.rec.Append(ctx, tx, sampleEvent(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rep, err := tr.rec.Prune(ctx, pruner, time.Now().Add(time.Hour))
	if err != nil || rep.ThroughSeq != 24000 || rep.Events != 24000 {
		t.Fatalf("Prune = %+v, %v", rep, err)
	}
	if got := verifyStore(t, s); !got.OK || got.PrunedThrough != 24000 || got.FirstSeq != 24001 {
		t.Errorf("Verify = %+v", got)
	}
}

// TestPruneTamper: a prefix deleted without the record of a prune, or
// beyond what the record says, does not verify, even at a checkpoint.
func TestPruneTamper(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, tr *trail)
		want   string
	}{
		{"prefix deleted at a checkpoint, no record", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `DELETE FROM audit_events WHERE seq <= 20`)
			exec(t, tr.db, `DELETE FROM audit_checkpoints WHERE seq < 20`)
		}, "no audit.pruned event"},
		{"more deleted than the record says", func(t *testing.T, tr *trail) {
			if _, err := tr.rec.Prune(context.Background(), pruner, checkpointTime(t, tr.store, 10).Add(time.Nanosecond)); err != nil {
				t.Fatal(err)
			}
			exec(t, tr.db, `DELETE FROM audit_events WHERE seq <= 20`)
			exec(t, tr.db, `DELETE FROM audit_checkpoints WHERE seq < 20`)
		}, "no audit.pruned event"},
		{"prefix deleted between checkpoints", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `DELETE FROM audit_events WHERE seq <= 15`)
		}, "missing"},
		{"the vouching checkpoint deleted too", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `DELETE FROM audit_events WHERE seq <= 20`)
			exec(t, tr.db, `DELETE FROM audit_checkpoints WHERE seq <= 20`)
		}, "missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, db := openSQLite(t)
			tr := newTrail(t, s, db, 10)
			appendN(t, tr, 35)
			tc.tamper(t, tr)
			for name, got := range map[string]Report{"store": verifyStore(t, s), "export": verifyExport(t, s)} {
				if got.OK || !strings.Contains(got.Problem, tc.want) {
					t.Errorf("%s: Verify = %+v; want a failure mentioning %q", name, got, tc.want)
				}
			}
		})
	}
}

func verifyStore(t *testing.T, s store.Store) Report {
	t.Helper()
	rep, err := Verify(context.Background(), s, VerifyParams{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
