package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/admin"
)

// sampleAgents is a registry with an ordinary, an orphaned and an expired
// agent.
func sampleAgents() []admin.Agent {
	exp := t0.Add(-time.Hour)
	later := t0.Add(720 * time.Hour)
	revoked := t0.Add(-90 * time.Minute)
	return []admin.Agent{
		{ID: "agt_01", ClientID: "agt_01", Name: "ticket-triage", SPIFFEID: "spiffe://example.org/agent/ticket-triage",
			Owners: []string{"own_alice"}, Purpose: "Triage support tickets", ActionClasses: []string{"read:tickets", "write:labels"},
			Audiences: []string{"https://tickets.example.org"}, Scopes: []string{"tickets:read", "tickets:write"},
			Permissions: []string{"introspect"}, RequireDPoP: true, FederatesWith: []string{"partner.example"},
			Selectors: []string{"unix:path:/usr/local/bin/triage", "unix:uid:1000"},
			NodeScope: admin.NodeScope{NodeIDs: []string{"nod_01jx0000000000000000000001"},
				Rules: []admin.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:support", "k8s:node:worker-*"}}}},
			MaxTTLSeconds: 900, Labels: map[string]string{"team": "support", "env": "prod"},
			ExpiresAt: &later, TokensRevokedAt: &revoked, State: "active", CreatedBy: "adt_boot", CreatedAt: t0, UpdatedAt: t0, Version: 3},
		{ID: "agt_02", ClientID: "agt_02", Name: "report-writer", SPIFFEID: "spiffe://example.org/agent/report-writer",
			Owners: []string{"own_bob", "own_carol"}, Purpose: "Weekly reports", MaxTTLSeconds: 300,
			State: "suspended", Orphaned: true, CreatedBy: "adt_boot", CreatedAt: t0, UpdatedAt: t0, Version: 5},
		{ID: "agt_03", ClientID: "agt_03", Name: "old-bot", SPIFFEID: "spiffe://example.org/agent/old-bot",
			Owners: []string{"own_alice"}, Purpose: "Legacy migration", MaxTTLSeconds: 900,
			ExpiresAt: &exp, Expired: true, State: "active", CreatedBy: "adt_boot", CreatedAt: t0, UpdatedAt: t0, Version: 1},
	}
}

func TestAgentListTable(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "list")
	wantCode(t, r, ExitOK)
	golden(t, "agent_list", r.stdout)
}

func TestAgentListJSONPage(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	r := run(t, srv.URL, "-o", "json", "agent", "list", "--page-size", "2")
	wantCode(t, r, ExitOK)
	var got admin.List[admin.Agent]
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("output is not a page: %v\n%s", err, r.stdout)
	}
	if len(got.Items) != 2 || got.NextPageToken != "2" {
		t.Errorf("got %d items, next %q; want 2 items, next \"2\"", len(got.Items), got.NextPageToken)
	}
	if !strings.Contains(r.stdout, "\n  \"items\": [") {
		t.Errorf("JSON is not indented:\n%s", r.stdout)
	}
}

func TestAgentListTableMoreHint(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "list", "--page-size", "2")
	wantCode(t, r, ExitOK)
	contains(t, "stderr", r.stderr, "--page-token 2")
	if strings.Contains(r.stdout, "old-bot") {
		t.Errorf("first page shows the third agent:\n%s", r.stdout)
	}
}

func TestAgentListAllFollowsPageTokens(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	r := run(t, srv.URL, "-o", "json", "agent", "list", "--all", "--page-size", "1", "--state", "active")
	wantCode(t, r, ExitOK)
	var got []admin.Agent
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("--all -o json is not an array: %v\n%s", err, r.stdout)
	}
	var names []string
	for _, a := range got {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff([]string{"ticket-triage", "report-writer", "old-bot"}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	want := []string{
		"GET /v1/agents?page_size=1&state=active",
		"GET /v1/agents?page_size=1&page_token=1&state=active",
		"GET /v1/agents?page_size=1&page_token=2&state=active",
	}
	if diff := cmp.Diff(want, f.requests); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestAgentShowFlagsOrphanedAndExpired(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	for _, name := range []string{"ticket-triage", "report-writer", "old-bot"} {
		t.Run(name, func(t *testing.T) {
			r := run(t, srv.URL, "agent", "show", name)
			wantCode(t, r, ExitOK)
			golden(t, "agent_show_"+name, r.stdout)
		})
	}
}

func TestAgentCreateSendsFlags(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "create", "mailer", "--owner", "alice@example.org", "--owner", "own_team",
		"--purpose", "Send mail", "--action-class", "send:mail", "--audience", "smtp", "--max-ttl", "10m",
		"--label", "team=ops", "--label", "note=a,b", "--expires-at", "2030-01-02T03:04:05Z",
		"--federates-with", "partner.example,acme.example",
		"--selector", "unix:uid:1000", "--selector", "unix:path:/opt/a,b/mailer")
	wantCode(t, r, ExitOK)
	contains(t, "stdout", r.stdout, "Agent mailer created.", "spiffe://example.org/agent/mailer",
		"Federates with:  partner.example, acme.example", "Selectors:       unix:uid:1000, unix:path:/opt/a,b/mailer")
	var got admin.CreateAgentRequest
	if err := json.Unmarshal([]byte(f.body("POST /v1/agents")), &got); err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	want := admin.CreateAgentRequest{Name: "mailer", Purpose: "Send mail", Owners: []string{"alice@example.org", "own_team"},
		ActionClasses: []string{"send:mail"}, Audiences: []string{"smtp"}, FederatesWith: []string{"partner.example", "acme.example"},
		Selectors: []string{"unix:uid:1000", "unix:path:/opt/a,b/mailer"}, MaxTTLSeconds: 600,
		Labels: map[string]string{"team": "ops", "note": "a,b"}, ExpiresAt: &exp}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestAgentCreateUsageErrors(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	for name, args := range map[string][]string{
		"no owner":      {"agent", "create", "x", "--purpose", "p"},
		"no purpose":    {"agent", "create", "x", "--owner", "o"},
		"bad label":     {"agent", "create", "x", "--owner", "o", "--purpose", "p", "--label", "novalue"},
		"both expiries": {"agent", "create", "x", "--owner", "o", "--purpose", "p", "--expires-in", "1h", "--expires-at", "2030-01-01T00:00:00Z"},
		"sub-second":    {"agent", "create", "x", "--owner", "o", "--purpose", "p", "--max-ttl", "1500ms"},
	} {
		t.Run(name, func(t *testing.T) {
			r := run(t, srv.URL, args...)
			wantCode(t, r, ExitUsage)
		})
	}
	if len(f.requests) != 0 {
		t.Errorf("usage errors reached the server: %v", f.requests)
	}
}

func TestAgentCreateProblemIsReadable(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "create", "Bad_Name", "--owner", "o", "--purpose", "p")
	wantCode(t, r, ExitError)
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	want := "agentid: Invalid request: name must be a lowercase DNS label (field name)\n"
	if r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

func TestAgentUpdateSendsOnlyGivenFlags(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "update", "ticket-triage", "--purpose", "Triage and route tickets",
		"--clear-audiences", "--if-version", "3")
	wantCode(t, r, ExitOK)
	contains(t, "stdout", r.stdout, "Agent ticket-triage updated.", "Triage and route tickets", "Version:         4")
	got := f.body("PATCH /v1/agents/ticket-triage")
	want := `{"version":3,"purpose":"Triage and route tickets","audiences":[]}`
	if got != want {
		t.Errorf("PATCH body = %s, want %s", got, want)
	}

	for _, tc := range []struct {
		args []string
		body string
		show string
	}{
		{[]string{"--federates-with", "b.example", "--federates-with", "a.example"}, `{"federates_with":["b.example","a.example"]}`, "Federates with:  b.example, a.example"},
		{[]string{"--clear-federates-with"}, `{"federates_with":[]}`, "Federates with:  -\n"},
		{[]string{"--selector", "unix:gid:0", "--selector", "unix:path:/bin/a,b"}, `{"selectors":["unix:gid:0","unix:path:/bin/a,b"]}`, "Selectors:       unix:gid:0, unix:path:/bin/a,b\n"},
		{[]string{"--clear-selectors"}, `{"selectors":[]}`, "Selectors:       -\n"},
	} {
		r := run(t, srv.URL, append([]string{"agent", "update", "ticket-triage"}, tc.args...)...)
		wantCode(t, r, ExitOK)
		if got := f.body("PATCH /v1/agents/ticket-triage"); got != tc.body {
			t.Errorf("%v: PATCH body = %s, want %s", tc.args, got, tc.body)
		}
		contains(t, "stdout", r.stdout, tc.show)
	}
}

func TestAgentUpdateStaleVersion(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "update", "ticket-triage", "--purpose", "x", "--if-version", "2")
	wantCode(t, r, ExitError)
	contains(t, "stderr", r.stderr, "Version mismatch: the agent is at version 3, not 2")
}

func TestAgentUpdateNothing(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "update", "ticket-triage")
	wantCode(t, r, ExitUsage)
	contains(t, "stderr", r.stderr, "nothing to change")
}

func TestAgentTransitions(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	for _, tc := range []struct{ verb, state string }{
		{"suspend", "suspended"}, {"resume", "active"}, {"deprovision", "deprovisioned"},
	} {
		t.Run(tc.verb, func(t *testing.T) {
			r := run(t, srv.URL, "agent", tc.verb, "agt_01", "--reason", "because", "--if-version", "3")
			wantCode(t, r, ExitOK)
			want := "Agent ticket-triage (agt_01) is now " + tc.state + " (version 4).\n"
			if r.stdout != want {
				t.Errorf("stdout = %q, want %q", r.stdout, want)
			}
			if got := f.body("POST /v1/agents/agt_01/" + tc.verb); got != `{"version":3,"reason":"because"}` {
				t.Errorf("body = %s", got)
			}
		})
	}
}

func TestAgentShowNotFound(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "show", "nope")
	wantCode(t, r, ExitError)
	if want := "agentid: Not found: no such agent\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

func TestBadTokenIsReadable(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	var out, errb strings.Builder
	code := Run(t.Context(), []string{"--server", srv.URL, "--token", "wrong", "agent", "list"},
		Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if code != ExitError {
		t.Fatalf("exit %d, want %d", code, ExitError)
	}
	if want := "agentid: Unauthenticated: missing or invalid admin token\n"; errb.String() != want {
		t.Errorf("stderr = %q, want %q", errb.String(), want)
	}
}
