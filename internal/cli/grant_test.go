package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// TestGrantCommandsAgainstServer drives agentid grant against a real
// server: create (for a person at a trusted IdP and for an agent), list,
// show, revoke, and the errors a person at the terminal sees.
func TestGrantCommandsAgainstServer(t *testing.T) {
	idp := idptest.New(t)
	url, tok := realServer(t, func(cfg *server.Config) {
		cfg.Delegation.Issuers = []server.TrustedIssuerConfig{{Issuer: idp.URL, Audience: idptest.Audience, TLSCAFile: idp.CAFile}}
	})
	cl, owner := newOwner(t, url, tok, "o@example.org")
	var agents []admin.Agent
	for _, name := range []string{"booker", "helper"} {
		a, err := cl.CreateAgent(t.Context(), admin.CreateAgentRequest{
			Name: name, Owners: []string{owner}, Purpose: "travel", Scopes: []string{"travel:book", "travel:read"},
			Audiences: []string{"https://api.example.org"},
		})
		if err != nil {
			t.Fatal(err)
		}
		agents = append(agents, a)
	}
	run := func(args ...string) result { return runAs(t, url, tok, args...) }

	r := run("grant", "create", "--agent", "booker", "--subject", "alice", "--subject-issuer", idp.URL,
		"--email", "alice@example.com", "--scope", "travel:book,travel:read", "--audience", "https://api.example.org",
		"--expires-in", "2h", "--allow-subdelegation", "-o", "json")
	wantCode(t, r, 0)
	var g admin.Grant
	if err := json.Unmarshal([]byte(r.stdout), &g); err != nil {
		t.Fatalf("grant create -o json: %v\n%s", err, r.stdout)
	}
	if g.Subject != "alice" || g.AgentID != agents[0].ID || !g.AllowSubdelegation || g.MaxDepth != 3 || len(g.Scopes) != 2 {
		t.Errorf("created grant = %+v", g)
	}

	// An agent lets another act for it: the subject issuer defaults to
	// agentid for a SPIFFE ID.
	r = run("grant", "create", "--agent", "helper", "--subject", agents[0].SPIFFEID,
		"--scope", "travel:read", "--audience", "https://api.example.org", "--max-depth", "2")
	wantCode(t, r, 0)
	contains(t, "grant create", r.stdout, "Grant grt_", "helper may act for "+agents[0].SPIFFEID, "Max depth:", "2")

	r = run("grant", "list")
	wantCode(t, r, 0)
	contains(t, "grant list", r.stdout, "SUBJECT", "alice", agents[0].SPIFFEID, "active")
	r = run("grant", "list", "--agent", "helper", "-o", "json")
	wantCode(t, r, 0)
	if strings.Contains(r.stdout, `"alice"`) {
		t.Errorf("grant list --agent helper lists alice's grant:\n%s", r.stdout)
	}

	r = run("grant", "show", g.ID)
	wantCode(t, r, 0)
	contains(t, "grant show", r.stdout, "Subject issuer:", idp.URL, "alice@example.com", "Sub-delegation:", "yes")

	r = run("grant", "revoke", g.ID, "--reason", "trip cancelled")
	wantCode(t, r, 0)
	contains(t, "grant revoke", r.stdout, "revoked; 0 live token(s)")
	r = run("grant", "show", g.ID)
	contains(t, "grant show after revoke", r.stdout, "revoked", "trip cancelled")
	r = run("grant", "list", "--active")
	if strings.Contains(r.stdout, g.ID) {
		t.Errorf("grant list --active shows the revoked grant:\n%s", r.stdout)
	}

	// Errors: a second revocation, a scope the agent lacks, an untrusted
	// issuer, a malformed id, no such grant.
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"revoke twice": {[]string{"grant", "revoke", g.ID}, "already revoked"},
		"scope not agent's": {[]string{"grant", "create", "--agent", "booker", "--subject", "bob", "--subject-issuer", idp.URL,
			"--scope", "payments:send", "--audience", "https://api.example.org"}, "scopes[0]"},
		"untrusted issuer": {[]string{"grant", "create", "--agent", "booker", "--subject", "bob", "--subject-issuer", "https://evil.example",
			"--scope", "travel:read", "--audience", "https://api.example.org"}, "subject_issuer"},
		"bad id":   {[]string{"grant", "show", "nope"}, "grant id"},
		"no grant": {[]string{"grant", "show", "grt_00000000000000000000000000"}, "not found"},
	} {
		r := run(tc.args...)
		if r.code != ExitError || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d mentioning %q", name, r.code, r.stderr, ExitError, tc.want)
		}
	}
	r = run("grant", "create", "--agent", "booker")
	if r.code != ExitUsage {
		t.Errorf("grant create without --subject: exit %d, want %d", r.code, ExitUsage)
	}
}
