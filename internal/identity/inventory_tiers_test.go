package identity_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/policy"
)

// TestInventoryRiskTiersMatchPolicy fails when the policy package's risk
// tiers change without the inventory's ranking of them.
func TestInventoryRiskTiersMatchPolicy(t *testing.T) {
	if diff := cmp.Diff(policy.Tiers(), identity.RiskTiersForTest()); diff != "" {
		t.Errorf("risk tiers (-policy +inventory):\n%s", diff)
	}
}
