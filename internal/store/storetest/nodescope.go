package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// testNodeScope: an agent's node scope and a node's attestation evidence
// round-trip (ADR 0019); an agent without a scope reads back as the zero
// scope.
func testNodeScope(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	plain, scoped := newAgent(1, ownerID(1)), newAgent(2, ownerID(1))
	scoped.NodeScope = store.NodeScope{
		NodeIDs: []string{nodeID(1)},
		Rules:   []store.AttestationRule{{Attestor: "prod-cluster", Matchers: []string{"k8s:ns:payments", "k8s:node:worker-*"}}},
	}
	createAgents(t, s, plain, scoped)
	for _, want := range []store.Agent{plain, scoped} {
		got, err := s.GetAgent(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want.NodeScope, got.NodeScope); diff != "" {
			t.Errorf("%s node scope (-want +got):\n%s", want.ID, diff)
		}
	}
	if got, _ := s.GetAgent(ctx, plain.ID); !got.NodeScope.IsZero() {
		t.Errorf("unscoped agent: %+v, want the zero scope", got.NodeScope)
	}
	updated, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Agent, error) {
		return tx.UpdateAgent(ctx, scoped.ID, func(a store.Agent) (store.Agent, error) {
			a.NodeScope.NodeIDs = nil
			return a, nil
		})
	})
	if err != nil || len(updated.NodeScope.NodeIDs) != 0 || len(updated.NodeScope.Rules) != 1 {
		t.Fatalf("UpdateAgent of the scope = %+v, %v", updated.NodeScope, err)
	}

	n := newNode(1)
	n.AttestationMethod, n.Attestor = "kubernetes", "prod-cluster"
	n.Facts = map[string]string{"k8s:ns": "agentid", "k8s:node": "worker-3"}
	n.FactValues = map[string][]string{"x509:ou": {"a", "b"}}
	createNodes(t, s, n, newNode(2))
	for _, want := range []store.Node{n, newNode(2)} {
		got, err := s.GetNode(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(storedNode(want), got); diff != "" {
			t.Errorf("node %s (-want +got):\n%s", want.ID, diff)
		}
	}
}
