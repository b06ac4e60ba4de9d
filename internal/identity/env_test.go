package identity

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// forEachBackend runs fn against every store backend storetest offers
// (SQLite always, PostgreSQL when its DSN is set), each on a fresh store.
func forEachBackend(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Helper()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			fn(t, st)
		})
	}
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t   *testing.T
	ctx context.Context
	st  store.Store
	svc *Service
	clk *clock
}

const testTD = "example.org"

// testOrigin is the origin of every test call.
func testOrigin() audit.Origin {
	return audit.Origin{
		Actor:   audit.Actor{Type: audit.ActorAdmin, ID: "adm_tester"},
		Source:  audit.Source{IP: "192.0.2.7", UserAgent: "agentid-test"},
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	}
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)}
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Params{Store: st, Recorder: rec, TrustDomain: testTD, MaxTTLCap: 2 * time.Hour, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: t.Context(), st: st, svc: svc, clk: clk}
}

// snapshot is everything a failed call must leave unchanged.
type snapshot struct {
	Agents   []store.Agent
	Owners   []store.Owner
	HeadSeq  int64
	HeadHash []byte
}

func (e *env) snapshot() snapshot {
	e.t.Helper()
	var s snapshot
	for p := (store.Page{PageSize: store.MaxPageSize}); ; {
		agents, next, err := e.st.ListAgents(e.ctx, store.AgentFilter{}, p)
		if err != nil {
			e.t.Fatal(err)
		}
		s.Agents = append(s.Agents, agents...)
		if next == "" {
			break
		}
		p.PageToken = next
	}
	for p := (store.Page{PageSize: store.MaxPageSize}); ; {
		owners, next, err := e.st.ListOwners(e.ctx, store.OwnerFilter{}, p)
		if err != nil {
			e.t.Fatal(err)
		}
		s.Owners = append(s.Owners, owners...)
		if next == "" {
			break
		}
		p.PageToken = next
	}
	var err error
	if s.HeadSeq, s.HeadHash, err = e.st.AuditHead(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// unchanged fails the test when the store differs from before.
func (e *env) unchanged(before snapshot, what string) {
	e.t.Helper()
	if diff := cmp.Diff(before, e.snapshot()); diff != "" {
		e.t.Errorf("%s changed the store (-before +after):\n%s", what, diff)
	}
}

// event is the part of a recorded audit event the tests compare.
type event struct {
	Family  audit.Family
	Type    string
	Outcome audit.Outcome
	Actor   *audit.Actor
	Agent   *audit.Agent
	Source  *audit.Source
	TraceID string
	Details map[string]any
	Reason  string
}

// eventsAfter returns the events with seq > after, decoded.
func (e *env) eventsAfter(after int64) []event {
	e.t.Helper()
	recs, _, err := e.st.ListAudit(e.ctx, store.AuditQuery{AfterSeq: after}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]event, 0, len(recs))
	for _, r := range recs {
		var ev audit.Event
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			e.t.Fatalf("event %d: %v", r.Seq, err)
		}
		got := event{Family: ev.Family, Type: ev.Type, Outcome: ev.Outcome, Actor: ev.Actor, Agent: ev.Agent,
			Source: ev.Source, Details: ev.Details, Reason: ev.Reason}
		if ev.Task != nil {
			got.TraceID = ev.Task.TraceID
		}
		out = append(out, got)
	}
	return out
}

func (e *env) head() int64 {
	e.t.Helper()
	seq, _, err := e.st.AuditHead(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return seq
}

// verifyTrail fails the test when the audit chain does not verify.
func (e *env) verifyTrail() {
	e.t.Helper()
	rep, err := audit.Verify(e.ctx, e.st, audit.VerifyParams{})
	if err != nil {
		e.t.Fatal(err)
	}
	if !rep.OK {
		e.t.Fatalf("audit trail does not verify: %+v", rep)
	}
}

// wantEvent builds the expected decoded event for the test origin.
func wantEvent(f audit.Family, typ string, a *store.Agent, details map[string]any, reason string) event {
	o := testOrigin()
	ev := event{Family: f, Type: typ, Outcome: audit.Success, Actor: &o.Actor, Source: &o.Source,
		TraceID: o.TraceID, Details: jsonRoundTrip(details), Reason: reason}
	if a != nil {
		ev.Agent = &audit.Agent{ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID}
	}
	return ev
}

// jsonRoundTrip returns v as a JSON decoder would give it back.
func jsonRoundTrip(v map[string]any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// owner creates an owner. Like agent, it first advances the clock by a
// millisecond so that ids (millisecond-ordered) sort in creation order.
func (e *env) owner(email string) store.Owner {
	e.t.Helper()
	e.clk.Advance(time.Millisecond)
	own, err := e.svc.CreateOwner(e.ctx, testOrigin(), CreateOwnerParams{Kind: store.OwnerPerson, Email: email})
	if err != nil {
		e.t.Fatal(err)
	}
	return own
}

func (e *env) agent(name string, owners ...string) store.Agent {
	e.t.Helper()
	e.clk.Advance(time.Millisecond)
	a, err := e.svc.CreateAgent(e.ctx, testOrigin(), CreateAgentParams{Name: name, Owners: owners, Purpose: "test agent " + name})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}
