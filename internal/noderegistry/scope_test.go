package noderegistry_test

import (
	"testing"

	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/store"
)

// TestServes: an empty scope lets every node; otherwise the node's id or
// one rule over its kept evidence (attestor and every matcher, single- or
// multi-valued facts) must match.
func TestServes(t *testing.T) {
	const (
		k8sID  = "nod_01jd0000000000000000000001"
		hostID = "nod_01jd0000000000000000000002"
		joinID = "nod_01jd0000000000000000000003"
	)
	k8s := store.Node{ID: k8sID, AttestationMethod: noderegistry.MethodKubernetes, Attestor: "prod",
		Facts: map[string]string{"k8s:ns": "payments", "k8s:sa": "agentid-node", "k8s:node": "worker-3"}}
	host := store.Node{ID: hostID, AttestationMethod: noderegistry.MethodX509, Attestor: "hosts",
		Facts:      map[string]string{"x509:cn": "host-1"},
		FactValues: map[string][]string{"x509:san-dns": {"host-1.example.com", "host-1.nodes.example.com"}}}
	join := store.Node{ID: joinID, AttestationMethod: noderegistry.MethodJoinToken}
	nodes := []store.Node{k8s, host, join}
	for _, tc := range []struct {
		name  string
		scope store.NodeScope
		want  []bool // k8s, host, join
	}{
		{"empty scope", store.NodeScope{}, []bool{true, true, true}},
		{"by id", store.NodeScope{NodeIDs: []string{joinID, "nod_01jd0000000000000000000009"}}, []bool{false, false, true}},
		{"rule over single facts", store.NodeScope{Rules: []store.AttestationRule{
			{Attestor: "prod", Matchers: []string{"k8s:ns:payments", "k8s:node:worker-*"}}}}, []bool{true, false, false}},
		{"every matcher must hold", store.NodeScope{Rules: []store.AttestationRule{
			{Attestor: "prod", Matchers: []string{"k8s:ns:payments", "k8s:node:edge-*"}}}}, []bool{false, false, false}},
		{"the rule's attestor must be the node's", store.NodeScope{Rules: []store.AttestationRule{
			{Attestor: "staging", Matchers: []string{"k8s:ns:payments"}}}}, []bool{false, false, false}},
		{"rule over multi-valued facts", store.NodeScope{Rules: []store.AttestationRule{
			{Attestor: "hosts", Matchers: []string{"x509:san-dns:*.nodes.example.com"}}}}, []bool{false, true, false}},
		{"one rule suffices", store.NodeScope{Rules: []store.AttestationRule{
			{Attestor: "prod", Matchers: []string{"k8s:ns:billing"}},
			{Attestor: "hosts", Matchers: []string{"x509:cn:host-*"}}}}, []bool{false, true, false}},
		{"ids or rules", store.NodeScope{NodeIDs: []string{joinID}, Rules: []store.AttestationRule{
			{Attestor: "prod", Matchers: []string{"k8s:sa:agentid-node"}}}}, []bool{true, false, true}},
		{"a malformed stored matcher never holds", store.NodeScope{Rules: []store.AttestationRule{
			{Attestor: "prod", Matchers: []string{"k8s:bogus:x"}}}}, []bool{false, false, false}},
	} {
		a := store.Agent{ID: "agt_01jd0000000000000000000001", NodeScope: tc.scope}
		for i, n := range nodes {
			if got := noderegistry.Serves(a, n); got != tc.want[i] {
				t.Errorf("%s: Serves(node %s) = %t, want %t", tc.name, n.AttestationMethod, got, tc.want[i])
			}
		}
	}
}
