package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/admin"
)

// TestAgentNodeScopeWire sets, shows, replaces and clears an agent's node
// scope (ADR 0019) through the admin API, and refuses bad ones with a 400
// problem naming node_scope that changes nothing.
func TestAgentNodeScopeWire(t *testing.T) {
	const (
		node1 = "nod_01jx0000000000000000000001"
		node2 = "nod_01jx0000000000000000000002"
	)
	e := newEnv(t)
	ctx := context.Background()
	e.seed(t)
	a, err := e.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "worker", Purpose: "p", Owners: []string{"alice@example.com"},
		NodeScope: &admin.NodeScope{NodeIDs: []string{node2, node1, node2},
			Rules: []admin.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments", "k8s:ns:payments"}}}}})
	want := admin.NodeScope{NodeIDs: []string{node1, node2},
		Rules: []admin.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments"}}}}
	if err != nil || !cmp.Equal(a.NodeScope, want) {
		t.Fatalf("CreateAgent = %+v, %v; want scope %+v", a.NodeScope, err, want)
	}
	if got, err := e.admin.GetAgent(ctx, "worker"); err != nil || !cmp.Equal(got.NodeScope, want) {
		t.Errorf("GetAgent = %+v, %v; want scope %+v", got.NodeScope, err, want)
	}

	// An unscoped agent answers "node_scope": {"node_ids": [], "rules": []}.
	if got := rawAgent(t, e.url, e.token, "invoice-bot")["node_scope"]; string(got) != `{"node_ids":[],"rules":[]}` {
		t.Errorf("unscoped agent: node_scope %s", got)
	}

	// Absent leaves the scope alone; a new one replaces it; {} clears it.
	purpose := "q"
	a, err = e.admin.UpdateAgent(ctx, "worker", admin.UpdateAgentRequest{Purpose: &purpose})
	if err != nil || !cmp.Equal(a.NodeScope, want) || a.Version != 2 {
		t.Fatalf("update without node_scope: %+v, %v", a, err)
	}
	only := admin.NodeScope{NodeIDs: []string{}, Rules: []admin.AttestationRule{{Attestor: "hosts", Matchers: []string{"x509:cn:web-*"}}}}
	a, err = e.admin.UpdateAgent(ctx, "worker", admin.UpdateAgentRequest{NodeScope: &only, Version: 2})
	if err != nil || !cmp.Equal(a.NodeScope, only) || a.Version != 3 {
		t.Fatalf("replace: %+v, %v", a, err)
	}
	status, _, p := e.raw(t, http.MethodPatch, "/v1/agents/worker", e.token, "application/json", strings.NewReader(`{"node_scope":{}}`), nil)
	if status != http.StatusOK {
		t.Fatalf("clear with {}: %d %+v", status, p)
	}
	if got := rawAgent(t, e.url, e.token, "worker"); string(got["node_scope"]) != `{"node_ids":[],"rules":[]}` || string(got["version"]) != "4" {
		t.Errorf("cleared agent: node_scope %s, version %s", got["node_scope"], got["version"])
	}

	before := e.snapshot(t)
	tooMany := make([]string, 17)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("nod_01jx%022d", i)
	}
	for _, tc := range []struct {
		name  string
		scope admin.NodeScope
		text  string
	}{
		{"agent id", admin.NodeScope{NodeIDs: []string{"agt_01jx0000000000000000000001"}}, "node_ids[0]"},
		{"malformed id", admin.NodeScope{NodeIDs: []string{node1, "nod_nope"}}, "node_ids[1]"},
		{"too many ids", admin.NodeScope{NodeIDs: tooMany}, "at most 16"},
		{"bad attestor", admin.NodeScope{Rules: []admin.AttestationRule{{Attestor: "Prod!", Matchers: []string{"k8s:ns:a"}}}}, "rule 0"},
		{"no matchers", admin.NodeScope{Rules: []admin.AttestationRule{{Attestor: "prod"}}}, "rule 0"},
		{"bad matcher", admin.NodeScope{Rules: []admin.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:zone:a"}}}}, "k8s:zone:a"},
	} {
		_, err = e.admin.UpdateAgent(ctx, "worker", admin.UpdateAgentRequest{NodeScope: &tc.scope})
		wantProblem(t, "update: "+tc.name, err, http.StatusBadRequest, admin.ProblemValidation)
		var p *admin.Problem
		if errors.As(err, &p) && (p.Field != "node_scope" || !strings.Contains(p.Detail, tc.text)) {
			t.Errorf("%s: field %q, detail %q; want node_scope and %q", tc.name, p.Field, p.Detail, tc.text)
		}
		_, err = e.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "bad", Purpose: "p", Owners: []string{"alice@example.com"}, NodeScope: &tc.scope})
		wantProblem(t, "create: "+tc.name, err, http.StatusBadRequest, admin.ProblemValidation)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"node_scope":{"node_ids":"nod_01jx0000000000000000000001"}}`, "node_scope.node_ids"},
		{`{"node_scope":{"rules":[{"attestor":"prod","matchers":"k8s:ns:a"}]}}`, "node_scope.rules.matchers"},
		{`{"node_scope":{"nodes":[]}}`, "nodes"},
		{`{"node_scope":[]}`, "node_scope"},
	} {
		status, _, p := e.raw(t, http.MethodPatch, "/v1/agents/worker", e.token, "application/json", strings.NewReader(tc.body), nil)
		if status != http.StatusBadRequest || p.Type != admin.ProblemBadRequest || p.Field != tc.field {
			t.Errorf("PATCH %s: %d %s field %q, want 400 %s field %q", tc.body, status, p.Type, p.Field, admin.ProblemBadRequest, tc.field)
		}
	}
	if diff := cmp.Diff(before, e.snapshot(t)); diff != "" {
		t.Errorf("refused node scopes changed state (-before +after):\n%s", diff)
	}
}

// rawAgent GETs an agent and returns its top-level JSON members.
func rawAgent(t *testing.T, url, token, ref string) map[string]json.RawMessage {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url+"/v1/agents/"+ref, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("GET /v1/agents/%s: %v: %s", ref, err, b)
	}
	return raw
}
