package storetest

import (
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

func instanceID(i int) string { return fmt.Sprintf("ins_%04d", i) }

// newInstance returns instance i of the agent, first seen at base().
func newInstance(i int, agent string) store.Instance {
	return store.Instance{
		ID: instanceID(i), AgentID: agent, Method: "kubernetes", Attestor: "prod-cluster",
		Key:         fmt.Sprintf("pod-uid-%d", i),
		Evidence:    map[string]string{"namespace": "payments", "service_account": "runner", "pod_name": "p-<ü>&"},
		SourceIP:    "192.0.2.7",
		FirstSeenAt: base(), LastSeenAt: base(), ExpiresAt: base().Add(time.Hour),
	}
}

// storedInstance is in as the store returns it.
func storedInstance(in store.Instance, version int64) store.Instance {
	in.FirstSeenAt, in.LastSeenAt, in.ExpiresAt, in.RevokedAt =
		stored(in.FirstSeenAt), stored(in.LastSeenAt), stored(in.ExpiresAt), stored(in.RevokedAt)
	in.Version = version
	return in
}

func createInstance(s store.Store, in store.Instance) (store.Instance, error) {
	return inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Instance, error) { return tx.CreateInstance(ctx, in) })
}

func updateInstance(s store.Store, id string, fn func(store.Instance) (store.Instance, error)) (store.Instance, error) {
	return inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Instance, error) { return tx.UpdateInstance(ctx, id, fn) })
}

// testInstances covers instance create, get (by id and by key), update
// (refresh and revoke, immutable fields kept), the unique key, required
// fields, the agent foreign key, list filters and pages.
func testInstances(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)), newAgent(2, ownerID(1)))

	in := newInstance(1, agentID(1))
	got, err := createInstance(s, in)
	if err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	if want := storedInstance(in, 1); !cmp.Equal(got, want) {
		t.Errorf("CreateInstance = %s", cmp.Diff(want, got))
	}
	if g, err := s.GetInstance(ctx, in.ID); err != nil || !cmp.Equal(g, got) {
		t.Errorf("GetInstance = %+v, %v; want %+v", g, err, got)
	}
	if g, err := s.GetInstanceByKey(ctx, in.AgentID, in.Attestor, in.Key); err != nil || !cmp.Equal(g, got) {
		t.Errorf("GetInstanceByKey = %+v, %v; want %+v", g, err, got)
	}
	for _, k := range [][3]string{{agentID(2), in.Attestor, in.Key}, {in.AgentID, "other", in.Key}, {in.AgentID, in.Attestor, "x"}} {
		if _, err := s.GetInstanceByKey(ctx, k[0], k[1], k[2]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetInstanceByKey%q = %v, want ErrNotFound", k, err)
		}
	}
	if _, err := s.GetInstance(ctx, "ins_none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetInstance(unknown) = %v, want ErrNotFound", err)
	}

	// The same key for the same agent and attestor is taken; for another
	// agent or attestor it is not.
	dup := newInstance(2, agentID(1))
	dup.Key = in.Key
	if _, err := createInstance(s, dup); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("CreateInstance(same key) = %v, want ErrAlreadyExists", err)
	}
	sameID := newInstance(1, agentID(2))
	if _, err := createInstance(s, sameID); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("CreateInstance(same id) = %v, want ErrAlreadyExists", err)
	}
	other := newInstance(3, agentID(2))
	other.Key = in.Key
	if _, err := createInstance(s, other); err != nil {
		t.Errorf("CreateInstance(same key, other agent) = %v", err)
	}
	noAgent := newInstance(4, "agt_none")
	if _, err := createInstance(s, noAgent); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("CreateInstance(unknown agent) = %v, want ErrInvalid", err)
	}
	for name, mut := range map[string]func(*store.Instance){
		"id": func(i *store.Instance) { i.ID = "" }, "agent": func(i *store.Instance) { i.AgentID = "" },
		"method": func(i *store.Instance) { i.Method = "" }, "attestor": func(i *store.Instance) { i.Attestor = "" },
		"key": func(i *store.Instance) { i.Key = "" }, "expiry": func(i *store.Instance) { i.ExpiresAt = time.Time{} },
		"first seen": func(i *store.Instance) { i.FirstSeenAt = time.Time{} },
	} {
		bad := newInstance(5, agentID(1))
		mut(&bad)
		if _, err := createInstance(s, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateInstance(no %s) = %v, want ErrInvalid", name, err)
		}
	}

	// Refresh, then revoke; the immutable fields stay as created.
	later := base().Add(10 * time.Minute)
	up, err := updateInstance(s, in.ID, func(i store.Instance) (store.Instance, error) {
		i.LastSeenAt, i.ExpiresAt, i.SourceIP = later, later.Add(time.Hour), "2001:db8::1"
		i.Evidence = map[string]string{"namespace": "payments"}
		i.Key, i.Attestor, i.AgentID, i.Method, i.FirstSeenAt = "changed", "changed", agentID(2), "oidc", later
		return i, nil
	})
	if err != nil {
		t.Fatalf("UpdateInstance: %v", err)
	}
	want := storedInstance(in, 2)
	want.LastSeenAt, want.ExpiresAt, want.SourceIP = stored(later), stored(later.Add(time.Hour)), "2001:db8::1"
	want.Evidence = map[string]string{"namespace": "payments"}
	if !cmp.Equal(up, want) {
		t.Errorf("UpdateInstance = %s", cmp.Diff(want, up))
	}
	sentinel := errors.New("refused")
	if _, err := updateInstance(s, in.ID, func(store.Instance) (store.Instance, error) { return store.Instance{}, sentinel }); err != sentinel { //nolint:errorlint // returned unchanged
		t.Errorf("UpdateInstance(fn error) = %v, want it unchanged", err)
	}
	if _, err := updateInstance(s, "ins_none", func(i store.Instance) (store.Instance, error) { return i, nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateInstance(unknown) = %v, want ErrNotFound", err)
	}
	rev, err := updateInstance(s, in.ID, func(i store.Instance) (store.Instance, error) {
		i.RevokedAt, i.RevokedBy = later, "adm_1"
		return i, nil
	})
	if err != nil || !rev.RevokedAt.Equal(stored(later)) || rev.RevokedBy != "adm_1" || rev.Version != 3 {
		t.Errorf("revoke = %+v, %v", rev, err)
	}

	// Lists: by agent, live, in pages.
	for i := 10; i < 15; i++ {
		if _, err := createInstance(s, newInstance(i, agentID(1))); err != nil {
			t.Fatal(err)
		}
	}
	expired := newInstance(20, agentID(1))
	expired.ExpiresAt = base().Add(time.Minute)
	if _, err := createInstance(s, expired); err != nil {
		t.Fatal(err)
	}
	ids := func(f store.InstanceFilter, size int) []string {
		t.Helper()
		var out []string
		p := store.Page{PageSize: size}
		for {
			is, next, err := s.ListInstances(ctx, f, p)
			if err != nil {
				t.Fatalf("ListInstances(%+v): %v", f, err)
			}
			for _, i := range is {
				out = append(out, i.ID)
			}
			if next == "" {
				return out
			}
			p.PageToken = next
		}
	}
	all1 := []string{instanceID(1), instanceID(10), instanceID(11), instanceID(12), instanceID(13), instanceID(14), instanceID(20)}
	if got := ids(store.InstanceFilter{AgentID: agentID(1)}, 2); !cmp.Equal(got, all1) {
		t.Errorf("ListInstances(agent 1) = %q, want %q", got, all1)
	}
	if got := ids(store.InstanceFilter{AgentID: agentID(1), LiveAt: base().Add(2 * time.Minute)}, 0); !cmp.Equal(got, all1[1:6]) {
		t.Errorf("ListInstances(agent 1, live) = %q, want %q (not the revoked, not the expired)", got, all1[1:6])
	}
	if got := ids(store.InstanceFilter{}, 3); len(got) != len(all1)+1 {
		t.Errorf("ListInstances() = %q, want %d", got, len(all1)+1)
	}
	if _, _, err := s.ListInstances(ctx, store.InstanceFilter{}, store.Page{PageToken: "bogus"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("ListInstances(bad token) = %v, want ErrInvalid", err)
	}
}

// testInstanceCreateRace creates one key from many goroutines: exactly one
// wins, the rest get ErrAlreadyExists.
func testInstanceCreateRace(t *testing.T, s store.Store) {
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)))
	const n = 16
	var (
		wg   sync.WaitGroup
		wins atomic.Int32
	)
	for i := range n {
		wg.Go(func() {
			in := newInstance(100+i, agentID(1))
			in.Key = "one-pod"
			_, err := createInstance(s, in)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrAlreadyExists):
				t.Errorf("CreateInstance %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := wins.Load(); got != 1 {
		t.Errorf("%d concurrent creations of one key: %d won, want 1", n, got)
	}
}

// testInstanceConcurrentCAS refreshes one instance from many goroutines:
// no update is lost.
func testInstanceConcurrentCAS(t *testing.T, s store.Store) {
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)))
	if _, err := createInstance(s, newInstance(1, agentID(1))); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := updateInstance(s, instanceID(1), func(in store.Instance) (store.Instance, error) {
				in.LastSeenAt = in.LastSeenAt.Add(time.Second)
				return in, nil
			}); err != nil {
				t.Errorf("UpdateInstance %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetInstance(context.Background(), instanceID(1))
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != n+1 || !got.LastSeenAt.Equal(stored(base().Add(n*time.Second))) {
		t.Errorf("after %d concurrent refreshes: version %d, last seen %v", n, got.Version, got.LastSeenAt)
	}
}

// testAgentAttestationRules round-trips an agent's attestation rules
// through create, get, list and update.
func testAgentAttestationRules(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	in := newAgent(1, ownerID(1))
	in.AttestationRules = []store.AttestationRule{
		{Attestor: "prod-cluster", Matchers: []string{"k8s:ns:payments", "k8s:sa:runner"}},
		{Attestor: "github", Matchers: []string{"repository=org/*", "ref=refs/heads/main"}},
	}
	plain := newAgent(2, ownerID(1))
	createAgents(t, s, in, plain)
	if a, err := s.GetAgent(ctx, in.ID); err != nil || !cmp.Equal(a.AttestationRules, in.AttestationRules) {
		t.Errorf("GetAgent: rules = %+v, %v; want %+v", a.AttestationRules, err, in.AttestationRules)
	}
	if a, err := s.GetAgent(ctx, plain.ID); err != nil || a.AttestationRules != nil {
		t.Errorf("agent without rules: %+v, %v; want nil", a.AttestationRules, err)
	}
	as, _, err := s.ListAgents(ctx, store.AgentFilter{}, store.Page{})
	if err != nil || len(as) != 2 || !cmp.Equal(as[0].AttestationRules, in.AttestationRules) {
		t.Errorf("ListAgents = %+v, %v", as, err)
	}
	for _, set := range [][]store.AttestationRule{{{Attestor: "x", Matchers: []string{"k8s:ns:a"}}}, nil} {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateAgent(ctx, in.ID, func(a store.Agent) (store.Agent, error) {
				a.AttestationRules = set
				return a, nil
			})
			return err
		})
		if a, err := s.GetAgent(ctx, in.ID); err != nil || !cmp.Equal(a.AttestationRules, set) {
			t.Errorf("after update: rules = %+v, %v; want %+v", a.AttestationRules, err, set)
		}
	}
}
