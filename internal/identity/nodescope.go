package identity

import (
	"slices"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// MaxScopeNodeIDs is the most node ids an agent's node scope may name;
// rules over the nodes' attestation evidence scope larger fleets.
const MaxScopeNodeIDs = 16

// NormalizeNodeScope validates an agent's node scope (ADR 0019) and
// returns its canonical form: node ids deduplicated and sorted, rules
// with canonical matchers (as attestation rules: at most 16, each naming
// an attestor and holding 1 to 16 matchers), and nil slices when empty,
// so an empty scope is the zero NodeScope (every node may serve the
// agent). Node ids must be well-formed node ids (nod_…); they need not
// name an existing node. Errors are *ValidationError for field
// "node_scope", the reason naming the part ("node_ids[1]: …",
// "rules: rule 0: …").
func NormalizeNodeScope(sc store.NodeScope) (store.NodeScope, error) {
	// Bound the work before looking at the values.
	if len(sc.NodeIDs) > 4*MaxScopeNodeIDs {
		return store.NodeScope{}, invalid(FieldNodeScope, "node_ids: must have at most %d entries", MaxScopeNodeIDs)
	}
	var out store.NodeScope
	for i, id := range sc.NodeIDs {
		if recordid.Valid(recordid.Node, id) != nil {
			return store.NodeScope{}, invalid(FieldNodeScope, "node_ids[%d]: %s is not a node id (nod_…)", i, quote(id))
		}
		out.NodeIDs = append(out.NodeIDs, id)
	}
	slices.Sort(out.NodeIDs)
	out.NodeIDs = slices.Compact(out.NodeIDs)
	if len(out.NodeIDs) > MaxScopeNodeIDs {
		return store.NodeScope{}, invalid(FieldNodeScope, "node_ids: must have at most %d entries", MaxScopeNodeIDs)
	}
	rules, err := attest.CheckRules(sc.Rules)
	if err != nil {
		return store.NodeScope{}, invalid(FieldNodeScope, "rules: %s", ruleReason(err))
	}
	if len(rules) > 0 {
		out.Rules = rules
	}
	return out, nil
}

// nodeScopeEqual reports whether two canonical scopes are the same.
func nodeScopeEqual(a, b store.NodeScope) bool {
	return slices.Equal(a.NodeIDs, b.NodeIDs) && rulesEqual(a.Rules, b.Rules)
}

// nodeScopeDetail is the audit detail value of a node scope: its node ids
// and its rules as "attestor: m1, m2" strings, both empty when unscoped.
func nodeScopeDetail(sc store.NodeScope) map[string]any {
	return map[string]any{"node_ids": nonNil(sc.NodeIDs), "rules": rulesDetail(sc.Rules)}
}
