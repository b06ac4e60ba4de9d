package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
)

func TestAppendRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, db := openSQLite(t)
	tr := newTrail(t, s, db, 1000)
	ev := sampleEvent(0)
	var rec store.AuditRecord
	err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		rec, err = tr.rec.Append(ctx, tx, ev)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := recordid.Valid(recordid.Event, rec.ID); err != nil {
		t.Errorf("id %q: %v", rec.ID, err)
	}
	if rec.Seq != 1 || !bytes.Equal(rec.PrevHash, make([]byte, 32)) {
		t.Errorf("seq %d prev %x, want 1 and zeros", rec.Seq, rec.PrevHash)
	}
	if want := ChainHash(rec.PrevHash, 1, rec.Body); !bytes.Equal(rec.Hash, want) {
		t.Errorf("hash %x, want %x", rec.Hash, want)
	}
	// The body decodes back to the event, completed with id and time.
	var got Event
	dec := json.NewDecoder(bytes.NewReader(rec.Body))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := ev
	want.ID = rec.ID
	want.Time = rec.Time
	if rec.Time.Nanosecond()%1000 != 0 || rec.Time.Location() != time.UTC || rec.Time.Before(newTestClock().Now().Truncate(time.Microsecond)) {
		t.Errorf("time %v is not the clock's, in UTC microseconds", rec.Time)
	}
	want.Details = map[string]any{
		"jti": "c0ffee", "ttl_s": json.Number("900"), "ratio": json.Number("0.25"),
		"policies": []any{"pol_a", "pol_b"}, "seq_hint": json.Number("0"),
		"nested": map[string]any{"z": true, "a": nil, "big": json.Number("18446744073709551615")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	// What the store returns is what Append returned.
	list, _, err := s.ListAudit(ctx, store.AuditQuery{}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.AuditRecord{rec}, list); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
	if rec.AgentID != ev.Agent.ID || rec.ActorID != ev.Actor.ID || rec.TraceID != ev.Task.TraceID ||
		rec.Family != "issuance" || rec.Type != "agent.created" || rec.Outcome != "success" {
		t.Errorf("index columns %+v", rec)
	}
}

func TestAppendKeepsGivenIDAndTime(t *testing.T) {
	s, db := openSQLite(t)
	tr := newTrail(t, s, db, 1000)
	ev := sampleEvent(1)
	ev.ID = "evt_01hzx3k4q5r6s7t8v9w0xyzabc"
	ev.Time = time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", -3600))
	rec, err := tr.rec.Record(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != ev.ID {
		t.Errorf("id %s, want %s", rec.ID, ev.ID)
	}
	if want := time.Date(2026, 1, 1, 0, 59, 59, 999999000, time.UTC); !rec.Time.Equal(want) {
		t.Errorf("time %v, want %v", rec.Time, want)
	}
	if !bytes.Contains(rec.Body, []byte(`"time":"2026-01-01T00:59:59.999999Z"`)) {
		t.Errorf("body time: %s", rec.Body)
	}
}

func TestAppendRejectsInvalid(t *testing.T) {
	s, db := openSQLite(t)
	tr := newTrail(t, s, db, 1000)
	base := Event{Family: Admin, Type: "x", Outcome: Success}
	tests := map[string]func(*Event){
		"unknown family":   func(e *Event) { e.Family = "billing" },
		"no family":        func(e *Event) { e.Family = "" },
		"unknown outcome":  func(e *Event) { e.Outcome = "maybe" },
		"empty type":       func(e *Event) { e.Type = "" },
		"unknown decision": func(e *Event) { e.Decision = "perhaps" },
		"bad id":           func(e *Event) { e.ID = "agt_01hzx3k4q5r6s7t8v9w0xyzabc" },
		"bad details":      func(e *Event) { e.Details = map[string]any{"c": make(chan int)} },
		"too big":          func(e *Event) { e.Reason = string(bytes.Repeat([]byte("x"), MaxBodySize)) },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			ev := base
			mutate(&ev)
			_, err := tr.rec.Record(context.Background(), ev)
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("error = %v, want ErrInvalidEvent", err)
			}
		})
	}
	head, _, err := s.AuditHead(context.Background())
	if err != nil || head != 0 {
		t.Fatalf("head = %d, %v; invalid events were written", head, err)
	}
}

// TestAppendFailsTheTransaction shows fail-closed: a failed append inside
// Update rolls back the state change, and a rolled-back state change takes
// its event with it.
func TestAppendFailsTheTransaction(t *testing.T) {
	ctx := context.Background()
	s, db := openSQLite(t)
	tr := newTrail(t, s, db, 1000)
	boom := errors.New("boom")
	err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tr.rec.Append(ctx, tx, sampleEvent(0)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if head, _, _ := s.AuditHead(ctx); head != 0 {
		t.Fatalf("head = %d after rollback", head)
	}
	if _, err := tr.rec.Record(ctx, sampleEvent(1)); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, s, VerifyParams{})
	if err != nil || !rep.OK || rep.HeadSeq != 1 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestRecordDurable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agentid.db")
	s, err := sqlite.Open(ctx, sqlite.Params{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	tr := newTrail(t, s, s.DB(), 3)
	var want []store.AuditRecord
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			rec, err := tr.rec.Record(ctx, sampleEvent(i))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			want = append(want, rec)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := sqlite.Open(ctx, sqlite.Params{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, w := range want {
		got, _, err := s2.ListAudit(ctx, store.AuditQuery{AfterSeq: w.Seq - 1}, store.Page{PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]store.AuditRecord{w}, got); diff != "" {
			t.Errorf("seq %d after reopen (-want +got):\n%s", w.Seq, diff)
		}
	}
	rep, err := Verify(ctx, s2, VerifyParams{PinnedKeys: nil})
	if err != nil || !rep.OK || rep.Events != 20 || rep.Checkpoints != 6 || rep.LastCheckpointSeq != 18 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	// A second Checkpointer on the same store loads the same key.
	cp2, err := NewCheckpointer(ctx, CheckpointerParams{Store: s2, Root: tr.root})
	if err != nil {
		t.Fatal(err)
	}
	if cp2.KeyID() != tr.cp.KeyID() || !cp2.PublicKey().Equal(tr.cp.PublicKey()) {
		t.Fatal("reloaded checkpointer has another key")
	}
	// A wrong root key cannot unseal it.
	if _, err := NewCheckpointer(ctx, CheckpointerParams{Store: s2, Root: testRootKey(t)}); err == nil {
		t.Fatal("wrong root key accepted")
	}
}

func TestCheckpointEveryN(t *testing.T) {
	ctx := context.Background()
	s, db := openSQLite(t)
	tr := newTrail(t, s, db, 5)
	recs := appendN(t, tr, 23)
	cps, err := s.ListCheckpoints(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, c := range cps {
		seqs = append(seqs, c.Seq)
		if !bytes.Equal(c.Hash, recs[c.Seq-1].Hash) || c.KeyID != tr.cp.KeyID() {
			t.Errorf("checkpoint %d: %+v", c.Seq, c)
		}
	}
	if diff := cmp.Diff([]int64{5, 10, 15, 20}, seqs); diff != "" {
		t.Errorf("checkpoint seqs (-want +got):\n%s", diff)
	}
	// CheckpointHead covers the tail once, then has nothing to do.
	if seq, err := tr.cp.CheckpointHead(ctx); err != nil || seq != 23 {
		t.Fatalf("CheckpointHead = %d, %v", seq, err)
	}
	if seq, err := tr.cp.CheckpointHead(ctx); err != nil || seq != 0 {
		t.Fatalf("second CheckpointHead = %d, %v", seq, err)
	}
	rep, err := Verify(ctx, s, VerifyParams{PinnedKeys: []ed25519.PublicKey{tr.cp.PublicKey()}})
	if err != nil || !rep.OK || rep.Checkpoints != 5 || rep.LastCheckpointSeq != 23 || rep.HeadSeq != 23 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestCheckpointerRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, db := openSQLite(t)
	tr := newTrail(t, s, db, 1000)
	appendN(t, tr, 3)
	done := make(chan error)
	go func() { done <- tr.cp.Run(ctx, 10*time.Millisecond) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		cps, err := s.ListCheckpoints(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(cps) == 1 && cps[0].Seq == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of the head: %+v", cps)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestCheckpointerCreateRace(t *testing.T) {
	ctx := context.Background()
	s, _ := openSQLite(t)
	root := testRootKey(t)
	const n = 8
	cps := make([]*Checkpointer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			if cps[i], err = NewCheckpointer(ctx, CheckpointerParams{Store: s, Root: root}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ks, err := s.ListAuditKeys(ctx)
	if err != nil || len(ks) != 1 {
		t.Fatalf("keys = %d, %v", len(ks), err)
	}
	for i, c := range cps {
		if c != nil && !c.PublicKey().Equal(ed25519.PublicKey(ks[0].PublicKey)) {
			t.Errorf("checkpointer %d has another key", i)
		}
	}
	if bytes.Contains(ks[0].Sealed, cps[0].priv.Seed()) {
		t.Fatal("private key stored in clear")
	}
}
