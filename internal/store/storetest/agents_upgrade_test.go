package storetest

import (
	"context"
	"testing"

	"github.com/agentid/agentid/internal/store"
)

// TestAgentsUpgradeTo0018 stores an agent under schema 0017 and checks
// that migration 0018 (the SCIM externalId of agents, ADR 0025) keeps it
// with an empty external id, which can be set and filtered on after it.
func TestAgentsUpgradeTo0018(t *testing.T) {
	for _, b := range upgradeBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.migrated(t, 17)
			for _, q := range []string{
				`INSERT INTO owners (id, kind, display_name, state, version) VALUES ('own_1', 'person', 'O', 'active', 1)`,
				`INSERT INTO agents (id, name, spiffe_id, purpose, action_classes, audiences, max_ttl, labels,
					state, created_by, version) VALUES ('agt_1', 'a', '', 'p', '["read"]', '[]', 0, '{}', 'suspended', 'adm_1', 3)`,
				`INSERT INTO agent_owners (agent_id, owner_id) VALUES ('agt_1', 'own_1')`,
			} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			s := b.store(t)
			a, err := s.GetAgent(ctx, "agt_1")
			if err != nil || a.ExternalID != "" || a.State != store.AgentSuspended || a.Version != 3 || a.Purpose != "p" {
				t.Fatalf("agent after the upgrade = %+v, %v; want it unchanged with no external id", a, err)
			}
			if n, err := s.CountAgents(ctx, store.AgentFilter{ExternalID: "x"}); err != nil || n != 0 {
				t.Errorf("CountAgents by external id after the upgrade = %d, %v; want 0", n, err)
			}
			if _, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Agent, error) {
				return tx.UpdateAgent(ctx, "agt_1", func(a store.Agent) (store.Agent, error) {
					a.ExternalID = "x"
					return a, nil
				})
			}); err != nil {
				t.Fatalf("set an external id after the upgrade: %v", err)
			}
			if got, _, err := s.ListAgents(ctx, store.AgentFilter{ExternalID: "x", Live: true}, store.Page{}); err != nil ||
				len(got) != 1 || got[0].ID != "agt_1" {
				t.Errorf("ListAgents by external id after the upgrade = %v, %v; want agt_1", got, err)
			}
		})
	}
}
