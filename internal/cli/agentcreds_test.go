package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/admin"
)

// Fixed values of the fake's client credentials, so output is stable.
const (
	fakeKID    = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	fakeJWK    = `{"use":"sig","kty":"EC","kid":"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs","crv":"P-256","alg":"ES256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}`
	fakeSecret = "aidcs_fake-secret-value-for-tests-only-0000000"
	testPubPEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n-----END PUBLIC KEY-----\n"
)

// serveClientCredentials adds the key, secret and revocation endpoints to
// the fake.
func (f *fakeAPI) serveClientCredentials(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/agents/{ref}/keys", func(w http.ResponseWriter, r *http.Request) {
		var req admin.AddClientKeyRequest
		if !decode(w, r, &req) {
			return
		}
		a, ok := f.agent(r.PathValue("ref"))
		if !ok {
			notFound(w, "agent")
			return
		}
		if strings.Contains(req.PublicKey, "PRIVATE KEY") {
			writeProblem(w, admin.Problem{Type: admin.ProblemValidation, Title: "Invalid field", Status: 400,
				Detail: "invalid public_key: this is a private key; give the public key", Field: "public_key"})
			return
		}
		alg := req.Algorithm
		if alg == "" {
			alg = "ES256"
		}
		k := admin.ClientKey{ClientID: a.ID, KeyID: fakeKID, Algorithm: alg, Thumbprint: fakeKID,
			JWK: json.RawMessage(fakeJWK), CreatedAt: t0, ExpiresAt: req.ExpiresAt}
		f.mu.Lock()
		f.clientKeys[a.ID] = append(f.clientKeys[a.ID], k)
		f.mu.Unlock()
		writeJSON(w, http.StatusCreated, k)
	})
	mux.HandleFunc("GET /v1/agents/{ref}/keys", func(w http.ResponseWriter, r *http.Request) {
		a, ok := f.agent(r.PathValue("ref"))
		if !ok {
			notFound(w, "agent")
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, admin.List[admin.ClientKey]{Items: append([]admin.ClientKey{}, f.clientKeys[a.ID]...)})
	})
	mux.HandleFunc("DELETE /v1/agents/{ref}/keys/{kid}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := f.agent(r.PathValue("ref"))
		if !ok {
			notFound(w, "agent")
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, k := range f.clientKeys[a.ID] {
			if k.KeyID == r.PathValue("kid") {
				f.clientKeys[a.ID] = append(f.clientKeys[a.ID][:i], f.clientKeys[a.ID][i+1:]...)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		notFound(w, "key")
	})
	mux.HandleFunc("POST /v1/agents/{ref}/secrets", func(w http.ResponseWriter, r *http.Request) {
		var req admin.CreateClientSecretRequest
		if !decode(w, r, &req) {
			return
		}
		a, ok := f.agent(r.PathValue("ref"))
		if !ok {
			notFound(w, "agent")
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.secrets[a.ID]) >= 2 {
			writeProblem(w, admin.Problem{Type: admin.ProblemLimitExceeded, Title: "Limit exceeded", Status: 409,
				Detail: "agent \"" + a.Name + "\" already has 2 unexpired client secrets, the most allowed; remove one first"})
			return
		}
		s := admin.ClientSecret{ID: "sec_0" + string(rune('1'+len(f.secrets[a.ID]))), ClientID: a.ID, CreatedAt: t0, ExpiresAt: req.ExpiresAt}
		f.secrets[a.ID] = append(f.secrets[a.ID], s)
		writeJSON(w, http.StatusCreated, admin.CreatedClientSecret{ClientSecret: s, Secret: fakeSecret})
	})
	mux.HandleFunc("GET /v1/agents/{ref}/secrets", func(w http.ResponseWriter, r *http.Request) {
		a, ok := f.agent(r.PathValue("ref"))
		if !ok {
			notFound(w, "agent")
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, admin.List[admin.ClientSecret]{Items: append([]admin.ClientSecret{}, f.secrets[a.ID]...)})
	})
	mux.HandleFunc("DELETE /v1/agents/{ref}/secrets/{id}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := f.agent(r.PathValue("ref"))
		if !ok {
			notFound(w, "agent")
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, s := range f.secrets[a.ID] {
			if s.ID == r.PathValue("id") {
				f.secrets[a.ID] = append(f.secrets[a.ID][:i], f.secrets[a.ID][i+1:]...)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		notFound(w, "client secret")
	})
	mux.HandleFunc("POST /v1/tokens/revoke", func(w http.ResponseWriter, r *http.Request) {
		var req admin.RevokeTokensRequest
		if !decode(w, r, &req) {
			return
		}
		if req.Agent != "" {
			a, ok := f.agent(req.Agent)
			if !ok {
				notFound(w, "agent")
				return
			}
			at := t0.Add(1500 * time.Millisecond)
			a.TokensRevokedAt, a.Version = &at, a.Version+1
			writeJSON(w, http.StatusOK, admin.TokenRevocation{Agent: &a, RevokedAt: at})
			return
		}
		keep := t0.Add(time.Hour)
		writeJSON(w, http.StatusOK, admin.TokenRevocation{JTI: req.JTI, RevokedAt: t0, KeptUntil: &keep})
	})
}

// keyFile writes content to a file in a temporary directory.
func keyFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.pub")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAgentKeyAdd(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	path := keyFile(t, testPubPEM)
	r := run(t, srv.URL, "agent", "key", "add", "ticket-triage", "--public-key", path, "--expires-at", "2026-01-01T00:00:00Z")
	wantCode(t, r, ExitOK)
	golden(t, "agent_key_add", r.stdout)
	var got admin.AddClientKeyRequest
	if err := json.Unmarshal([]byte(f.body("POST /v1/agents/ticket-triage/keys")), &got); err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if diff := cmp.Diff(admin.AddClientKeyRequest{PublicKey: testPubPEM, ExpiresAt: &exp}, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}

	// -o json prints the key as the API answered it, with the JWK.
	r = run(t, srv.URL, "-o", "json", "agent", "key", "add", "ticket-triage", "--public-key", path, "--alg", "ES256")
	wantCode(t, r, ExitOK)
	var k admin.ClientKey
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || k.KeyID != fakeKID || k.Algorithm != "ES256" || !strings.Contains(string(k.JWK), `"kty": "EC"`) {
		t.Fatalf("JSON output %q: %+v, %v", r.stdout, k, err)
	}
	if !strings.Contains(f.body("POST /v1/agents/ticket-triage/keys"), `"algorithm":"ES256"`) {
		t.Errorf("--alg not sent: %s", f.body("POST /v1/agents/ticket-triage/keys"))
	}
}

func TestAgentKeyAddRefused(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "key", "add", "ticket-triage", "--public-key", keyFile(t, "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"))
	wantCode(t, r, ExitError)
	if want := "agentid: Invalid field: invalid public_key: this is a private key; give the public key (field public_key)\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	for name, args := range map[string][]string{
		"missing file":  {"agent", "key", "add", "ticket-triage", "--public-key", filepath.Join(t.TempDir(), "nope.pem")},
		"no file":       {"agent", "key", "add", "ticket-triage"},
		"unknown alg":   {"agent", "key", "add", "ticket-triage", "--public-key", keyFile(t, testPubPEM), "--alg", "HS256"},
		"huge file":     {"agent", "key", "add", "ticket-triage", "--public-key", keyFile(t, strings.Repeat("x", maxPublicKeyFile+1))},
		"both expiries": {"agent", "key", "add", "ticket-triage", "--public-key", keyFile(t, testPubPEM), "--expires-in", "1h", "--expires-at", "2030-01-01T00:00:00Z"},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(f.requests)
			r := run(t, srv.URL, args...)
			wantCode(t, r, ExitUsage)
			if len(f.requests) != before {
				t.Errorf("a usage error reached the server: %v", f.requests[before:])
			}
		})
	}
}

func TestAgentKeyListAndRemove(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	exp := t0.Add(-time.Hour)
	f.clientKeys["agt_01"] = []admin.ClientKey{
		{ClientID: "agt_01", KeyID: fakeKID, Algorithm: "ES256", Thumbprint: fakeKID, JWK: json.RawMessage(fakeJWK), CreatedAt: t0},
		{ClientID: "agt_01", KeyID: "laptop-2024", Algorithm: "EdDSA", Thumbprint: "8hG2Pzqoh6pJ7tm6Ey9FGp1jB0-cTbzdr2hW0wFSdF0", JWK: json.RawMessage(`{}`),
			CreatedAt: t0, ExpiresAt: &exp, Expired: true},
	}
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "key", "list", "ticket-triage")
	wantCode(t, r, ExitOK)
	golden(t, "agent_key_list", r.stdout)

	r = run(t, srv.URL, "-o", "json", "agent", "key", "list", "agt_01")
	wantCode(t, r, ExitOK)
	var l admin.List[admin.ClientKey]
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l.Items) != 2 {
		t.Fatalf("JSON list %q: %v", r.stdout, err)
	}

	r = run(t, srv.URL, "agent", "key", "remove", "ticket-triage", "laptop-2024")
	wantCode(t, r, ExitOK)
	if want := "Key laptop-2024 removed from agent ticket-triage.\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
	r = run(t, srv.URL, "agent", "key", "remove", "ticket-triage", "laptop-2024")
	wantCode(t, r, ExitError)
	contains(t, "stderr", r.stderr, "Not found: no such key")
}

func TestAgentSecretCreate(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "secret", "create", "ticket-triage")
	wantCode(t, r, ExitOK)
	golden(t, "agent_secret_create", r.stdout)
	if got := f.body("POST /v1/agents/ticket-triage/secrets"); got != `{}` {
		t.Errorf("body = %s, want {}", got)
	}

	// -o json: client_id and client_secret, for a script to capture.
	r = run(t, srv.URL, "-o", "json", "agent", "secret", "create", "ticket-triage", "--expires-at", "2026-01-01T00:00:00Z")
	wantCode(t, r, ExitOK)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got["client_id"] != "agt_01" || got["client_secret"] != fakeSecret || got["id"] != "sec_02" || got["expires_at"] != "2026-01-01T00:00:00Z" {
		t.Errorf("JSON output %v", got)
	}

	// A third is refused with the server's explanation.
	r = run(t, srv.URL, "agent", "secret", "create", "ticket-triage")
	wantCode(t, r, ExitError)
	contains(t, "stderr", r.stderr, "Limit exceeded", "remove one first")
	if strings.Contains(r.stdout, "aidcs_") {
		t.Errorf("a refused creation printed a secret: %q", r.stdout)
	}
}

func TestAgentSecretListAndRemove(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	exp := t0.Add(30 * 24 * time.Hour)
	f.secrets["agt_01"] = []admin.ClientSecret{
		{ID: "sec_01", ClientID: "agt_01", CreatedAt: t0},
		{ID: "sec_02", ClientID: "agt_01", CreatedAt: t0, ExpiresAt: &exp},
	}
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "secret", "list", "ticket-triage")
	wantCode(t, r, ExitOK)
	golden(t, "agent_secret_list", r.stdout)

	r = run(t, srv.URL, "-o", "json", "agent", "secret", "remove", "ticket-triage", "sec_01")
	wantCode(t, r, ExitOK)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got["removed"] != true || got["id"] != "sec_01" {
		t.Errorf("JSON output %q: %v", r.stdout, err)
	}
	if len(f.secrets["agt_01"]) != 1 {
		t.Errorf("secrets after removal: %+v", f.secrets["agt_01"])
	}
}

func TestAgentCreateSendsOAuthFlags(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "create", "api-bot", "--owner", "o", "--purpose", "p",
		"--scope", "tickets:read,tickets:write", "--scope", "openid", "--permission", "introspect", "--require-dpop")
	wantCode(t, r, ExitOK)
	contains(t, "stdout", r.stdout, "Client ID:       agt_api-bot", "Scopes:          tickets:read tickets:write openid",
		"Permissions:     introspect", "Require DPoP:    yes")
	var got admin.CreateAgentRequest
	if err := json.Unmarshal([]byte(f.body("POST /v1/agents")), &got); err != nil {
		t.Fatal(err)
	}
	want := admin.CreateAgentRequest{Name: "api-bot", Purpose: "p", Owners: []string{"o"},
		Scopes: []string{"tickets:read", "tickets:write", "openid"}, Permissions: []string{"introspect"}, RequireDPoP: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestAgentUpdateSendsOAuthFlags(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-require-dpop", "--clear-scopes"}, `{"scopes":[],"require_dpop":false}`},
		{[]string{"--require-dpop", "--permission", "introspect"}, `{"permissions":["introspect"],"require_dpop":true}`},
		{[]string{"--scope", "a", "--clear-permissions"}, `{"scopes":["a"],"permissions":[]}`},
	} {
		r := run(t, srv.URL, append([]string{"agent", "update", "ticket-triage"}, tc.args...)...)
		wantCode(t, r, ExitOK)
		if got := f.body("PATCH /v1/agents/ticket-triage"); got != tc.want {
			t.Errorf("%v: PATCH body = %s, want %s", tc.args, got, tc.want)
		}
	}
}

func TestTokenRevoke(t *testing.T) {
	f := newFakeAPI()
	f.agents = sampleAgents()
	srv := f.serve(t)
	r := run(t, srv.URL, "token", "revoke", "--jti", "tok_01hx")
	wantCode(t, r, ExitOK)
	golden(t, "token_revoke_jti", r.stdout)
	if got := f.body("POST /v1/tokens/revoke"); got != `{"jti":"tok_01hx"}` {
		t.Errorf("body = %s", got)
	}

	r = run(t, srv.URL, "token", "revoke", "--agent", "ticket-triage")
	wantCode(t, r, ExitOK)
	golden(t, "token_revoke_agent", r.stdout)
	if got := f.body("POST /v1/tokens/revoke"); got != `{"agent":"ticket-triage"}` {
		t.Errorf("body = %s", got)
	}

	r = run(t, srv.URL, "-o", "json", "token", "revoke", "--agent", "ticket-triage")
	wantCode(t, r, ExitOK)
	var rev admin.TokenRevocation
	if err := json.Unmarshal([]byte(r.stdout), &rev); err != nil || rev.Agent == nil || rev.Agent.TokensRevokedAt == nil {
		t.Fatalf("JSON output %q: %v", r.stdout, err)
	}

	r = run(t, srv.URL, "token", "revoke", "--agent", "nobody")
	wantCode(t, r, ExitError)
	if want := "agentid: Not found: no such agent\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}

	before := len(f.requests)
	for _, args := range [][]string{
		{"token", "revoke"},
		{"token", "revoke", "--jti", "a", "--agent", "b"},
	} {
		r := run(t, srv.URL, args...)
		wantCode(t, r, ExitUsage)
	}
	if len(f.requests) != before {
		t.Errorf("usage errors reached the server: %v", f.requests[before:])
	}
}
