package audit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
)

// testClock is a clock that advances a millisecond per reading.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

// openSQLite opens the real SQLite store in a temporary directory.
func openSQLite(t testing.TB) (store.Store, *sql.DB) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Params{Path: filepath.Join(t.TempDir(), "agentid.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, s.DB()
}

func testRootKey(t testing.TB) *keys.RootKey {
	t.Helper()
	k, err := keys.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// trail is a store with a Recorder and Checkpointer on it.
type trail struct {
	store store.Store
	db    *sql.DB
	root  *keys.RootKey
	cp    *Checkpointer
	rec   *Recorder
	clock *testClock
}

func newTrail(t testing.TB, s store.Store, db *sql.DB, every int) *trail {
	t.Helper()
	tr := &trail{store: s, db: db, root: testRootKey(t), clock: newTestClock()}
	var err error
	tr.cp, err = NewCheckpointer(context.Background(), CheckpointerParams{
		Store: s, Root: tr.root, Every: every, Clock: tr.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	tr.rec, err = NewRecorder(RecorderParams{Store: s, Checkpoints: tr.cp, Clock: tr.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// sampleEvent returns a fully populated event, varied by i.
func sampleEvent(i int) Event {
	o := Origin{
		Actor:   Actor{Type: ActorAdmin, ID: "adm_01hzx3k4q5r6s7t8v9w0xyzabc"},
		Source:  Source{IP: "192.0.2.7", UserAgent: "agentid-cli/1.0 <test> & co", Node: "node-1"},
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	}
	ev := o.Event(Issuance, "agent.created")
	ev.Agent = &Agent{ID: "agt_01hzx3k4q5r6s7t8v9w0xyzab" + string(rune('a'+i%26)), Name: "billing-bot", SPIFFEID: "spiffe://example.org/agent/billing-bot"}
	ev.Task.Scope = "billing:read"
	ev.Task.ActionClasses = []string{"read", "write"}
	ev.Details = map[string]any{
		"jti":      "c0ffee",
		"ttl_s":    900,
		"ratio":    0.25,
		"policies": []any{"pol_a", "pol_b"},
		"nested":   map[string]any{"z": true, "a": nil, "big": uint64(18446744073709551615)},
		"seq_hint": i,
	}
	ev.Reason = "créé pour \"facturation\"\n"
	return ev
}

func appendN(t testing.TB, tr *trail, n int) []store.AuditRecord {
	t.Helper()
	out := make([]store.AuditRecord, 0, n)
	for i := range n {
		rec, err := tr.rec.Record(context.Background(), sampleEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// sealChain seals evs into a chain from seq 1, as a store would.
func sealChain(t testing.TB, evs []Event) []store.AuditRecord {
	t.Helper()
	prev := make([]byte, HashSize)
	out := make([]store.AuditRecord, 0, len(evs))
	for i, ev := range evs {
		body, err := ev.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		rec := Seal(ev, body, int64(i+1), prev)
		prev = rec.Hash
		out = append(out, rec)
	}
	return out
}
