package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// testAgentExternalID checks that an agent's external id (the SCIM
// externalId, ADR 0025) is stored as given on create, changed and cleared
// by UpdateAgent, and not unique.
func testAgentExternalID(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	a1, a2 := newAgent(1, ownerID(1)), newAgent(2, ownerID(1))
	a1.ExternalID, a2.ExternalID = "Ext-Ä-1", "Ext-Ä-1"
	createAgents(t, s, a1, a2)
	if got, err := s.GetAgent(ctx, a1.ID); err != nil || got.ExternalID != "Ext-Ä-1" {
		t.Fatalf("GetAgent external id = %q, %v; want it as given", got.ExternalID, err)
	}
	for _, want := range []string{"8ccc535b-716d-4d32-b3e9-57c8be449c82", ""} {
		got, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Agent, error) {
			return tx.UpdateAgent(ctx, a1.ID, func(a store.Agent) (store.Agent, error) {
				a.ExternalID = want
				return a, nil
			})
		})
		if err != nil || got.ExternalID != want {
			t.Fatalf("UpdateAgent external id %q = %q, %v", want, got.ExternalID, err)
		}
		if got, err := s.GetAgent(ctx, a1.ID); err != nil || got.ExternalID != want {
			t.Errorf("GetAgent after the update = %q, %v; want %q", got.ExternalID, err, want)
		}
	}
}

// testAgentSCIMFilters checks the AgentFilter fields SCIM filters use
// (ID, Name, ExternalID, Live), alone, together and with the others, in
// ListAgents and CountAgents.
func testAgentSCIMFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1), newOwner(2))
	a1, a2, a3, a4 := newAgent(1, ownerID(1)), newAgent(2, ownerID(2)), newAgent(3, ownerID(1)), newAgent(4, ownerID(2))
	a1.ExternalID, a2.ExternalID, a3.ExternalID = "ext-1", "ext-1", "ext-3"
	a3.State = store.AgentSuspended
	a4.State = store.AgentDeprovisioned
	createAgents(t, s, a1, a2, a3, a4)
	tests := []struct {
		name string
		f    store.AgentFilter
		want []string
	}{
		{"none", store.AgentFilter{}, []string{a1.ID, a2.ID, a3.ID, a4.ID}},
		{"live", store.AgentFilter{Live: true}, []string{a1.ID, a2.ID, a3.ID}},
		{"live and suspended", store.AgentFilter{Live: true, State: store.AgentSuspended}, []string{a3.ID}},
		{"live and deprovisioned", store.AgentFilter{Live: true, State: store.AgentDeprovisioned}, nil},
		{"id", store.AgentFilter{ID: a2.ID}, []string{a2.ID}},
		{"name", store.AgentFilter{Name: a3.Name}, []string{a3.ID}},
		{"name is case-exact", store.AgentFilter{Name: "AGENT-3"}, nil},
		{"external id", store.AgentFilter{ExternalID: "ext-1"}, []string{a1.ID, a2.ID}},
		{"external id is case-exact", store.AgentFilter{ExternalID: "EXT-1"}, nil},
		{"external id and owner", store.AgentFilter{ExternalID: "ext-1", OwnerID: ownerID(2)}, []string{a2.ID}},
		{"id and name, no match", store.AgentFilter{ID: a1.ID, Name: a2.Name}, nil},
		{"all", store.AgentFilter{State: store.AgentActive, Live: true, ID: a1.ID, Name: a1.Name, ExternalID: "ext-1",
			OwnerID: ownerID(1)}, []string{a1.ID}},
	}
	for _, tc := range tests {
		got := walkItems(t, "ListAgents "+tc.name, 1, func(p store.Page) ([]store.Agent, string, error) {
			p.PageSize = 1
			return s.ListAgents(ctx, tc.f, p)
		}, agentKey)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ListAgents %s (-want +got):\n%s", tc.name, diff)
		}
		n, err := s.CountAgents(ctx, tc.f)
		if err != nil || n != len(tc.want) {
			t.Errorf("CountAgents %s = %d, %v; want %d", tc.name, n, err, len(tc.want))
		}
	}
}
