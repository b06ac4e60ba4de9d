package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// testAgentSelectors round-trips an agent's workload selectors through
// create, get, list and update. The store keeps the strings as given:
// validation and sorting are the registry's.
func testAgentSelectors(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	in := newAgent(1, ownerID(1))
	// A path with ':', ',', '&', '<' and non-ASCII text survives the JSON
	// encoding unchanged.
	in.Selectors = []string{"unix:path:/opt/a:b,c/<x>&ü", "unix:sha256:" + sha256Hex, "unix:uid:1000"}
	plain := newAgent(2, ownerID(1))
	createAgents(t, s, in, plain)
	get := func(id string) store.Agent {
		t.Helper()
		a, err := s.GetAgent(ctx, id)
		if err != nil {
			t.Fatalf("GetAgent %s: %v", id, err)
		}
		return a
	}
	if got := get(in.ID).Selectors; !cmp.Equal(got, in.Selectors) {
		t.Errorf("created: Selectors = %q, want %q", got, in.Selectors)
	}
	if got := get(plain.ID).Selectors; got != nil {
		t.Errorf("agent without selectors: Selectors = %q, want nil", got)
	}
	byName, err := s.GetAgentByName(ctx, in.Name)
	if err != nil || !cmp.Equal(byName.Selectors, in.Selectors) {
		t.Errorf("GetAgentByName = %q, %v; want %q", byName.Selectors, err, in.Selectors)
	}
	as, _, err := s.ListAgents(ctx, store.AgentFilter{}, store.Page{})
	if err != nil || len(as) != 2 || !cmp.Equal(as[0].Selectors, in.Selectors) || as[1].Selectors != nil {
		t.Errorf("ListAgents = %+v, %v; want the first with selectors %q", as, err, in.Selectors)
	}
	for _, step := range []struct {
		set  []string
		want []string
	}{
		{[]string{"unix:gid:0"}, []string{"unix:gid:0"}},
		{[]string{}, nil},
		{[]string{"unix:path:/usr/local/bin/x", "unix:uid:4294967295"}, []string{"unix:path:/usr/local/bin/x", "unix:uid:4294967295"}},
		{nil, nil},
	} {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateAgent(ctx, in.ID, func(a store.Agent) (store.Agent, error) {
				a.Selectors = step.set
				return a, nil
			})
			return err
		})
		a := get(in.ID)
		if !cmp.Equal(a.Selectors, step.want) {
			t.Errorf("after setting %q: Selectors = %q, want %q", step.set, a.Selectors, step.want)
		}
		if !cmp.Equal(a.ActionClasses, in.ActionClasses) || a.Purpose != in.Purpose || a.FederatesWith != nil {
			t.Errorf("updating Selectors changed other fields: %+v", a)
		}
	}
	// Updating another field keeps the selectors.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateAgent(ctx, plain.ID, func(a store.Agent) (store.Agent, error) {
			a.Selectors = []string{"unix:uid:7"}
			return a, nil
		})
		if err != nil {
			return err
		}
		_, err = tx.UpdateAgent(ctx, plain.ID, func(a store.Agent) (store.Agent, error) {
			a.Purpose = "changed"
			return a, nil
		})
		return err
	})
	if got := get(plain.ID); !cmp.Equal(got.Selectors, []string{"unix:uid:7"}) || got.Purpose != "changed" || got.Version != 3 {
		t.Errorf("after two updates: %+v", got)
	}
}

// sha256Hex is a SHA-256 in lowercase hex (of the empty input).
const sha256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
