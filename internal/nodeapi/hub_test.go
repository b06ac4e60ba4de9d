package nodeapi_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/bundle"
	"github.com/agentid/agentid/internal/federation"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// fakeFederation is a FederatedBundles with bundles the test sets.
type fakeFederation struct {
	mu      sync.Mutex
	bundles map[string]federation.Bundle
	changed chan struct{}
}

func (f *fakeFederation) set(td, doc string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bundles[td] = federation.Bundle{TrustDomain: td, JSON: []byte(doc)}
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeFederation) BundlesFor(tds []string) map[string]federation.Bundle {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]federation.Bundle{}
	for _, td := range tds {
		if b, ok := f.bundles[td]; ok {
			out[td] = b
		}
	}
	return out
}

func (f *fakeFederation) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// hubEnv is a Hub over a real store, the real registry (whose change hook
// pokes the hub), the real bundle of a test CA and fake federation.
type hubEnv struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	reg    *identity.Service
	hub    *nodeapi.Hub
	ca     *testCA
	bundle *bundle.Bundle
	fed    *fakeFederation
	clock  *clock
	owner  string
}

func newHubEnv(t *testing.T, st store.Store, sync time.Duration) *hubEnv {
	t.Helper()
	e := &hubEnv{t: t, ctx: t.Context(), st: st, ca: newTestCA(t, trustDomain), clock: newClock(),
		fed: &fakeFederation{bundles: map[string]federation.Bundle{}, changed: make(chan struct{})}}
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if e.bundle, err = bundle.New(bundle.Params{TrustDomain: trustDomain, X509: e.ca, Clock: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	if e.hub, err = nodeapi.NewHub(nodeapi.HubParams{
		Agents: st, Bundle: e.bundle, Federation: e.fed, CA: e.ca, SyncInterval: sync, Clock: e.clock.Now,
	}); err != nil {
		t.Fatal(err)
	}
	if e.reg, err = identity.New(identity.Params{
		Store: st, Recorder: rec, TrustDomain: trustDomain, Clock: e.clock.Now, OnChange: e.hub.Poke,
	}); err != nil {
		t.Fatal(err)
	}
	o, err := e.reg.CreateOwner(e.ctx, adminOrigin(), identity.CreateOwnerParams{Kind: store.OwnerPerson, Email: "alice@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	e.owner = o.ID
	return e
}

func adminOrigin() audit.Origin {
	return audit.Origin{Actor: audit.Actor{Type: audit.ActorAdmin, ID: "adm_test"}}
}

func (e *hubEnv) agent(name string, selectors, federates []string, expires time.Time) store.Agent {
	e.t.Helper()
	a, err := e.reg.CreateAgent(e.ctx, adminOrigin(), identity.CreateAgentParams{
		Name: name, Owners: []string{e.owner}, Purpose: "tests", Selectors: selectors, FederatesWith: federates, ExpiresAt: expires,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *hubEnv) sync() (nodeapi.Snapshot, bool) {
	e.t.Helper()
	changed, err := e.hub.Sync(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	s, ok := e.hub.Current()
	if !ok {
		e.t.Fatal("no snapshot after Sync")
	}
	return s, changed
}

func ids(s nodeapi.Snapshot) []string {
	out := []string{}
	for _, a := range s.Agents {
		out = append(out, a.Name)
	}
	return out
}

// TestHubSnapshot: which agents, bundles and fingerprints a snapshot
// holds, and that its revision follows its contents only.
func TestHubSnapshot(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := newHubEnv(t, st, time.Hour)
			if _, ok := e.hub.Current(); ok {
				t.Fatal("a snapshot before the first Sync")
			}
			web := e.agent("web", []string{"unix:uid:1000"}, []string{"partner.example", "other.example"}, time.Time{})
			e.agent("no-selectors", nil, nil, time.Time{})
			soon := e.agent("soon", []string{"unix:uid:7"}, nil, e.clock.Now().Add(time.Hour))
			paused := e.agent("paused", []string{"unix:uid:8"}, nil, time.Time{})
			if _, err := e.reg.SuspendAgent(e.ctx, adminOrigin(), identity.TransitionParams{Ref: paused.ID}); err != nil {
				t.Fatal(err)
			}
			e.fed.set("partner.example", `{ "keys": [] }`)
			e.fed.set("unused.example", `{"keys":[]}`)

			s, changed := e.sync()
			if !changed {
				t.Error("the first Sync published nothing")
			}
			if diff := cmp.Diff([]string{"soon", "web"}, sortedNames(s)); diff != "" {
				t.Errorf("agents (-want +got):\n%s", diff)
			}
			for _, a := range s.Agents {
				if a.ID == web.ID {
					want := nodeapi.Agent{ID: web.ID, Name: "web", SPIFFEID: "spiffe://example.org/agent/web",
						Selectors: []string{"unix:uid:1000"}, FederatesWith: []string{"other.example", "partner.example"}, Version: web.Version}
					if diff := cmp.Diff(want, a); diff != "" {
						t.Errorf("web (-want +got):\n%s", diff)
					}
				}
				if a.ID == soon.ID && (a.ExpiresAt == nil || !a.ExpiresAt.Equal(soon.ExpiresAt)) {
					t.Errorf("soon expires at %v, want %v", a.ExpiresAt, soon.ExpiresAt)
				}
			}
			doc, _ := e.bundle.Current()
			if string(s.Bundle) != string(doc.JSON) {
				t.Errorf("bundle %s, want %s", s.Bundle, doc.JSON)
			}
			if diff := cmp.Diff(map[string]json.RawMessage{"partner.example": json.RawMessage(`{ "keys": [] }`)}, s.FederatedBundles); diff != "" {
				t.Errorf("federated bundles (-want +got):\n%s", diff)
			}
			if s.TaintedAuthorities != nil {
				t.Errorf("tainted authorities %v, want none", s.TaintedAuthorities)
			}
			if rev, err := nodeapi.Revision(s); err != nil || rev != s.Revision || len(rev) != 64 {
				t.Errorf("revision %q, want %q (%v)", s.Revision, rev, err)
			}

			// Nothing changed: same revision, nothing published.
			if s2, changed := e.sync(); changed || s2.Revision != s.Revision {
				t.Errorf("Sync without a change: published %v, revision %s → %s", changed, s.Revision, s2.Revision)
			}
			// A replica with the same data and the same bundle document
			// computes the same revision.
			twin, err := nodeapi.NewHub(nodeapi.HubParams{Agents: st, Bundle: e.bundle, Federation: e.fed, CA: e.ca, Clock: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := twin.Sync(e.ctx); err != nil {
				t.Fatal(err)
			}
			if ts, _ := twin.Current(); ts.Revision != s.Revision {
				t.Errorf("two hubs over the same data: revisions %s and %s", ts.Revision, s.Revision)
			}

			// Taint, expiry.
			tainted := e.ca.Taint()
			e.clock.Advance(2 * time.Hour)
			s3, changed := e.sync()
			if !changed || s3.Revision == s.Revision {
				t.Error("a taint and an expiry published nothing")
			}
			if diff := cmp.Diff([]string{"web"}, sortedNames(s3)); diff != "" {
				t.Errorf("agents after soon expired (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{nodeapi.Fingerprint(tainted)}, s3.TaintedAuthorities); diff != "" {
				t.Errorf("tainted authorities (-want +got):\n%s", diff)
			}
		})
	}
}

func sortedNames(s nodeapi.Snapshot) []string {
	names := ids(s)
	slices.Sort(names)
	return names
}

// TestHubRun: Run publishes the first snapshot at once, a new one when the
// registry's change hook pokes it (the sync interval is an hour), when the
// federated bundles change, and on its interval.
func TestHubRun(t *testing.T) {
	st, _ := storetest.Backends(t)[0].Open(t)
	e := newHubEnv(t, st, time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	changed := e.hub.Changed()
	go func() { defer close(done); e.hub.Run(ctx) }()
	defer func() { cancel(); <-done }()

	wait := func(what string) nodeapi.Snapshot {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("no snapshot published after %s", what)
		}
		changed = e.hub.Changed()
		s, _ := e.hub.Current()
		return s
	}
	wait("start")
	web := e.agent("web", []string{"unix:uid:1000"}, []string{"partner.example"}, time.Time{})
	if s := wait("an agent was created"); len(s.Agents) != 1 || s.Agents[0].ID != web.ID {
		t.Errorf("after the agent was created: %v", ids(s))
	}
	sel := []string{"unix:uid:1001"}
	if _, err := e.reg.UpdateAgent(e.ctx, adminOrigin(), identity.UpdateAgentParams{Ref: web.ID, Selectors: &sel}); err != nil {
		t.Fatal(err)
	}
	if s := wait("an agent was updated"); len(s.Agents) != 1 || s.Agents[0].Selectors[0] != "unix:uid:1001" {
		t.Errorf("after the update: %+v", s.Agents)
	}
	e.fed.set("partner.example", `{"keys":[]}`)
	if s := wait("a federated bundle changed"); len(s.FederatedBundles) != 1 {
		t.Errorf("federated bundles: %v", s.FederatedBundles)
	}
	if _, err := e.reg.SuspendAgent(e.ctx, adminOrigin(), identity.TransitionParams{Ref: web.ID}); err != nil {
		t.Fatal(err)
	}
	if s := wait("an agent was suspended"); len(s.Agents) != 0 || len(s.FederatedBundles) != 0 {
		t.Errorf("after the suspension: %v %v", ids(s), s.FederatedBundles)
	}
}

// TestHubInterval: what no hook reports (a taint, another replica's
// change) is published within the sync interval.
func TestHubInterval(t *testing.T) {
	st, _ := storetest.Backends(t)[0].Open(t)
	e := newHubEnv(t, st, 50*time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); e.hub.Run(ctx) }()
	defer func() { cancel(); <-done }()
	tainted := nodeapi.Fingerprint(e.ca.Taint())
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s, ok := e.hub.Current(); ok && len(s.TaintedAuthorities) == 1 && s.TaintedAuthorities[0] == tainted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the taint did not reach the snapshot")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scope sets an agent's node scope in the store (the admin API's
// validation is not under test here).
func (e *hubEnv) scope(id string, s store.NodeScope) {
	e.t.Helper()
	if err := e.st.Update(e.ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateAgent(ctx, id, func(a store.Agent) (store.Agent, error) {
			a.NodeScope = s
			return a, nil
		})
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
}

// TestHubFor: each node sees only the agents it serves (ADR 0019) and the
// federated bundles those need, under the revision of that content; a
// change to agents a node does not serve leaves its revision, and a
// change of a scope alone is published.
func TestHubFor(t *testing.T) {
	st, _ := storetest.Backends(t)[0].Open(t)
	e := newHubEnv(t, st, time.Hour)
	k8s := store.Node{ID: newNodeID(t), AttestationMethod: "kubernetes", Attestor: "prod",
		Facts: map[string]string{"k8s:ns": "payments", "k8s:node": "worker-3"}}
	host := store.Node{ID: newNodeID(t), AttestationMethod: "join_token"}
	other := store.Node{ID: newNodeID(t), AttestationMethod: "join_token"}

	web := e.agent("web", []string{"unix:uid:1000"}, []string{"partner.example"}, time.Time{})
	pay := e.agent("pay", []string{"unix:uid:1003"}, []string{"bank.example"}, time.Time{})
	batch := e.agent("batch", []string{"unix:uid:1001"}, nil, time.Time{})
	e.fed.set("partner.example", `{"keys":[]}`)
	e.fed.set("bank.example", `{"keys":[{"kty":"EC"}]}`)

	// No agent is scoped: every node sees the whole snapshot.
	all, _ := e.sync()
	for _, n := range []store.Node{k8s, host, other} {
		if s, ok := e.hub.For(n); !ok || s.Revision != all.Revision {
			t.Errorf("unscoped agents: node %s sees revision %s, want %s", n.ID, s.Revision, all.Revision)
		}
	}

	e.scope(pay.ID, store.NodeScope{Rules: []store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments"}}}})
	e.scope(batch.ID, store.NodeScope{NodeIDs: []string{host.ID}})
	all, changed := e.sync()
	if !changed {
		t.Fatal("scoping agents published nothing")
	}
	if diff := cmp.Diff([]string{"batch", "pay", "web"}, sortedNames(all)); diff != "" {
		t.Errorf("Current (-want +got):\n%s", diff)
	}
	views := map[string]nodeapi.Snapshot{}
	for _, tc := range []struct {
		name   string
		node   store.Node
		agents []string
		fed    []string
	}{
		{"k8s node (rule)", k8s, []string{"pay", "web"}, []string{"bank.example", "partner.example"}},
		{"host (id)", host, []string{"batch", "web"}, []string{"partner.example"}},
		{"other", other, []string{"web"}, []string{"partner.example"}},
	} {
		s, ok := e.hub.For(tc.node)
		if !ok {
			t.Fatalf("%s: no snapshot", tc.name)
		}
		if diff := cmp.Diff(tc.agents, sortedNames(s)); diff != "" {
			t.Errorf("%s: agents (-want +got):\n%s", tc.name, diff)
		}
		var fed []string
		for td := range s.FederatedBundles {
			fed = append(fed, td)
		}
		slices.Sort(fed)
		if diff := cmp.Diff(tc.fed, fed); diff != "" {
			t.Errorf("%s: federated bundles (-want +got):\n%s", tc.name, diff)
		}
		if rev, err := nodeapi.Revision(s); err != nil || rev != s.Revision || rev == all.Revision {
			t.Errorf("%s: revision %s, want that of its content %s, not the whole snapshot's", tc.name, s.Revision, rev)
		}
		if string(s.Bundle) != string(all.Bundle) {
			t.Errorf("%s: another bundle", tc.name)
		}
		views[tc.node.ID] = s
	}

	// A change to batch, which only host serves: host's view changes, the
	// others' revisions do not.
	sel := []string{"unix:uid:1002"}
	if _, err := e.reg.UpdateAgent(e.ctx, adminOrigin(), identity.UpdateAgentParams{Ref: batch.ID, Selectors: &sel}); err != nil {
		t.Fatal(err)
	}
	if _, changed := e.sync(); !changed {
		t.Fatal("updating batch published nothing")
	}
	for _, n := range []store.Node{k8s, host, other} {
		s, _ := e.hub.For(n)
		if moved := s.Revision != views[n.ID].Revision; moved != (n.ID == host.ID) {
			t.Errorf("node %s: revision moved %t after a change to batch", n.ID, moved)
		}
		views[n.ID] = s
	}

	// A change of a scope is published: web leaves other's view.
	e.scope(web.ID, store.NodeScope{NodeIDs: []string{host.ID, k8s.ID}})
	if _, changed := e.sync(); !changed {
		t.Fatal("a change of a scope published nothing")
	}
	if v, _ := e.hub.For(other); len(v.Agents) != 0 || v.FederatedBundles != nil || v.Agents == nil {
		t.Errorf("other after web was scoped away: agents %v, federated bundles %v; want [] and none", ids(v), v.FederatedBundles)
	}
	if v, _ := e.hub.For(k8s); len(v.Agents) != 2 {
		t.Errorf("k8s node after web was scoped to it: %v", ids(v))
	}
}
