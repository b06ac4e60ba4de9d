package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestApprovalScopeKeyStable: the scope keys of agents' approvals stay
// what they were before user approvals (ADR 0020), so that stored
// approvals keep covering their requests; a user's key differs from an
// agent's of the same id.
func TestApprovalScopeKeyStable(t *testing.T) {
	sc := approvalScope{AgentID: "agt_1", Person: "own_alice", Action: "payments", ResourceType: "invoice", ResourceID: "42",
		Obligations: []string{"approval"}}
	sum := sha256.Sum256([]byte(`{"agent_id":"agt_1","person":"own_alice","action":"payments","resource_type":"invoice",` +
		`"resource_id":"42","obligations":["approval"]}`))
	if got, want := sc.key(), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("agent scope key = %s; want %s (the key before ADR 0020)", got, want)
	}
	user := approvalScope{User: "agt_1", Person: "own_alice", Action: "payments", ResourceType: "invoice", ResourceID: "42",
		Obligations: []string{"approval"}}
	if user.key() == sc.key() {
		t.Error("a user's scope key equals an agent's")
	}
}
