package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/admin"
)

const (
	scopeNode1 = "nod_01jx0000000000000000000001"
	scopeNode2 = "nod_01jx0000000000000000000002"
)

// TestAgentNodeScopeFlags checks the requests --node-id, --node-rule and
// --clear-node-scope send, and that a malformed --node-rule is a usage
// error that reaches no server.
func TestAgentNodeScopeFlags(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "create", "mailer", "--owner", "o", "--purpose", "p",
		"--node-id", scopeNode2+","+scopeNode1, "--node-rule", "prod k8s:ns:mail k8s:node:a,b", "--node-rule", "hosts x509:cn:web-*")
	wantCode(t, r, ExitOK)
	var got admin.CreateAgentRequest
	if err := json.Unmarshal([]byte(f.body("POST /v1/agents")), &got); err != nil {
		t.Fatal(err)
	}
	want := &admin.NodeScope{NodeIDs: []string{scopeNode2, scopeNode1}, Rules: []admin.AttestationRule{
		{Attestor: "prod", Matchers: []string{"k8s:ns:mail", "k8s:node:a,b"}}, {Attestor: "hosts", Matchers: []string{"x509:cn:web-*"}}}}
	if diff := cmp.Diff(want, got.NodeScope); diff != "" {
		t.Errorf("create node_scope (-want +got):\n%s", diff)
	}
	r = run(t, srv.URL, "agent", "create", "plain", "--owner", "o", "--purpose", "p")
	wantCode(t, r, ExitOK)
	if body := f.body("POST /v1/agents"); strings.Contains(body, "node_scope") {
		t.Errorf("create without scope flags sent %s", body)
	}

	for _, tc := range []struct {
		args []string
		body string
	}{
		// One half given: the other is read from the agent and kept, and the
		// update is conditional on the version read.
		{[]string{"--node-id", scopeNode2}, `{"version":3,"node_scope":{"node_ids":["` + scopeNode2 +
			`"],"rules":[{"attestor":"prod","matchers":["k8s:ns:support","k8s:node:worker-*"]}]}}`},
		{[]string{"--node-rule", "prod  k8s:ns:a "}, `{"version":3,"node_scope":{"node_ids":["` + scopeNode1 +
			`"],"rules":[{"attestor":"prod","matchers":["k8s:ns:a"]}]}}`},
		{[]string{"--clear-node-scope"}, `{"node_scope":{"node_ids":[],"rules":[]}}`},
		{[]string{"--clear-node-scope", "--node-id", scopeNode2}, `{"node_scope":{"node_ids":["` + scopeNode2 + `"],"rules":[]}}`},
	} {
		r := run(t, srv.URL, append([]string{"agent", "update", "ticket-triage"}, tc.args...)...)
		wantCode(t, r, ExitOK)
		if got := f.body("PATCH /v1/agents/ticket-triage"); got != tc.body {
			t.Errorf("%q: PATCH body = %s, want %s", tc.args, got, tc.body)
		}
	}

	n := len(f.requests)
	for _, args := range [][]string{
		{"agent", "create", "x", "--owner", "o", "--purpose", "p", "--node-rule", "prod"},
		{"agent", "update", "ticket-triage", "--node-rule", ""},
	} {
		r := run(t, srv.URL, args...)
		wantCode(t, r, ExitUsage)
		contains(t, "stderr", r.stderr, "ATTESTOR MATCHER")
	}
	if len(f.requests) != n {
		t.Errorf("usage errors reached the server: %v", f.requests[n:])
	}
}

// TestAgentNodeScopeAgainstServer creates a scoped agent with flags,
// shows it (text and JSON), replaces and clears the scope, and sees a
// malformed node id refused by the server.
func TestAgentNodeScopeAgainstServer(t *testing.T) {
	url, tok := realServer(t, nil)
	_, owner := newOwner(t, url, tok, "o@example.org")
	run := func(args ...string) result {
		t.Helper()
		return runAs(t, url, tok, args...)
	}
	r := run("agent", "create", "runner", "--owner", owner, "--purpose", "runs payments",
		"--node-id", scopeNode2, "--node-id", scopeNode1, "--node-id", scopeNode2, "--node-rule", "prod k8s:ns:payments k8s:node:worker-*")
	wantCode(t, r, ExitOK)
	contains(t, "agent create", r.stdout, "Node scope:      "+scopeNode1+"; "+scopeNode2+"; prod: k8s:ns:payments, k8s:node:worker-*\n")

	r = run("-o", "json", "agent", "show", "runner")
	wantCode(t, r, ExitOK)
	var a admin.Agent
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil {
		t.Fatalf("agent show -o json: %v\n%s", err, r.stdout)
	}
	want := admin.NodeScope{NodeIDs: []string{scopeNode1, scopeNode2},
		Rules: []admin.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments", "k8s:node:worker-*"}}}}
	if diff := cmp.Diff(want, a.NodeScope); diff != "" {
		t.Errorf("agent show -o json node_scope (-want +got):\n%s", diff)
	}
	contains(t, "agent show -o json", r.stdout, `"node_scope": {`, `"node_ids": [`)

	// One half given: the other is kept.
	r = run("agent", "update", "runner", "--node-rule", "hosts x509:cn:web-*")
	wantCode(t, r, ExitOK)
	contains(t, "agent update --node-rule", r.stdout, "Node scope:      "+scopeNode1+"; "+scopeNode2+"; hosts: x509:cn:web-*\n")
	r = run("agent", "update", "runner", "--node-id", scopeNode1)
	wantCode(t, r, ExitOK)
	contains(t, "agent update --node-id", r.stdout, "Node scope:      "+scopeNode1+"; hosts: x509:cn:web-*\n")
	// Both halves with --clear-node-scope: replaced whole.
	r = run("agent", "update", "runner", "--clear-node-scope", "--node-rule", "hosts x509:cn:api-*")
	wantCode(t, r, ExitOK)
	contains(t, "agent update --clear-node-scope --node-rule", r.stdout, "Node scope:      hosts: x509:cn:api-*\n")

	r = run("agent", "update", "runner", "--node-id", "nod_nope")
	wantCode(t, r, ExitError)
	contains(t, "agent update --node-id nod_nope", r.stderr, "node_ids[0]", "field node_scope")

	r = run("agent", "update", "runner", "--clear-node-scope")
	wantCode(t, r, ExitOK)
	r = run("agent", "show", "runner")
	wantCode(t, r, ExitOK)
	contains(t, "agent show after --clear-node-scope", r.stdout, "Node scope:      any node\n", "Version:         5\n")
	r = run("-o", "json", "agent", "show", "runner")
	contains(t, "agent show -o json after clearing", r.stdout, `"node_ids": []`, `"rules": []`)
}
