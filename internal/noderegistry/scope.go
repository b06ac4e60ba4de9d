package noderegistry

import (
	"slices"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/store"
)

// Serves reports whether node n may obtain the SVIDs of agent a (ADR
// 0019): when a's node scope is empty, when it names n's id, or when one
// of its rules matches the evidence n attested with — the rule's attestor
// is n's and all its matchers hold on n's kept facts (attest.Match). A
// node without kept evidence (a join token, or attested before evidence
// was kept) matches by id only. An evicted node is not refused here: the
// node API refuses it before.
func Serves(a store.Agent, n store.Node) bool {
	s := a.NodeScope
	if s.IsZero() {
		return true
	}
	if n.ID != "" && slices.Contains(s.NodeIDs, n.ID) {
		return true
	}
	if n.Attestor == "" || len(s.Rules) == 0 {
		return false
	}
	return attest.Match(s.Rules, NodeEvidence(n)).Rule >= 0
}

// NodeEvidence is the evidence kept on n's record, as attest.Match reads
// it: its attestor, method and facts. It shares n's maps.
func NodeEvidence(n store.Node) attest.Evidence {
	return attest.Evidence{Attestor: n.Attestor, Method: n.AttestationMethod, Facts: n.Facts, Values: n.FactValues}
}
