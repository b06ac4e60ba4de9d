package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// delegationServer starts a control plane that trusts idp for people's
// tokens and returns its URL and the bootstrap admin token.
func delegationServer(t *testing.T, idp *idptest.IdP) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.DevConfig(t.TempDir(), ln.Addr().String())
	cfg.Issuer = "http://" + ln.Addr().String()
	cfg.Delegation.Issuers = []server.TrustedIssuerConfig{{Issuer: idp.URL, Audience: idptest.Audience, TLSCAFile: idp.CAFile}}
	srv, err := server.New(ctx, cfg, server.Params{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := srv.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		_ = srv.Close()
	})
	return cfg.Issuer, tok
}

// TestGrantCommandsAgainstServer drives agentid grant against a real
// server: create (for a person at a trusted IdP and for an agent), list,
// show, revoke, and the errors a person at the terminal sees.
func TestGrantCommandsAgainstServer(t *testing.T) {
	idp := idptest.New(t)
	url, tok := delegationServer(t, idp)
	cl, err := admin.New(url, tok)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := cl.CreateOwner(t.Context(), admin.CreateOwnerRequest{Kind: "person", Email: "o@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	var agents []admin.Agent
	for _, name := range []string{"booker", "helper"} {
		a, err := cl.CreateAgent(t.Context(), admin.CreateAgentRequest{
			Name: name, Owners: []string{owner.ID}, Purpose: "travel", Scopes: []string{"travel:book", "travel:read"},
			Audiences: []string{"https://api.example.org"},
		})
		if err != nil {
			t.Fatal(err)
		}
		agents = append(agents, a)
	}
	run := func(args ...string) result {
		var out, errb bytes.Buffer
		env := Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		code := Run(t.Context(), append([]string{"--server", url, "--token", tok, "--data", t.TempDir()}, args...), env)
		return result{code: code, stdout: out.String(), stderr: errb.String()}
	}

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
