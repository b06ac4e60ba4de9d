package httpapi_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/admin"
)

func publicPEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestAgentOAuthFieldsThroughSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.seed(t)
	a, err := e.admin.CreateAgent(ctx, admin.CreateAgentRequest{
		Name: "oauth-bot", Purpose: "p", Owners: []string{"alice@example.com"},
		Scopes: []string{"tickets:write", "tickets:read"}, Permissions: []string{"introspect"}, RequireDPoP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.ClientID != a.ID || !cmp.Equal(a.Scopes, []string{"tickets:read", "tickets:write"}) ||
		!cmp.Equal(a.Permissions, []string{"introspect"}) || !a.RequireDPoP || a.TokensRevokedAt != nil {
		t.Fatalf("created agent %+v", a)
	}
	off := false
	u, err := e.admin.UpdateAgent(ctx, a.Name, admin.UpdateAgentRequest{Scopes: &[]string{}, RequireDPoP: &off})
	if err != nil || len(u.Scopes) != 0 || u.Scopes == nil || u.RequireDPoP || u.Version != 2 {
		t.Fatalf("UpdateAgent = %+v, %v", u, err)
	}
	// The wire shape always has client_id, scopes and permissions.
	var raw map[string]any
	status, body := e.get(t, "/v1/agents/oauth-bot")
	if status != http.StatusOK {
		t.Fatalf("GET agent: %d", status)
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"client_id", "scopes", "permissions", "require_dpop"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("agent JSON lacks %q: %s", f, body)
		}
	}
	if _, ok := raw["tokens_revoked_at"]; ok {
		t.Errorf("agent JSON has tokens_revoked_at before any revocation: %s", body)
	}
}

// get sends an authenticated GET and returns the status and body.
func (e *env) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestClientKeysThroughSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, a := e.seed(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	k, err := e.admin.AddClientKey(ctx, a.Name, admin.AddClientKeyRequest{PublicKey: publicPEM(t, ec.Public()), ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: ec.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if k.ClientID != a.ID || k.KeyID != base64.RawURLEncoding.EncodeToString(tp) || k.Thumbprint != k.KeyID || k.Algorithm != "ES256" ||
		k.ExpiresAt == nil || !k.ExpiresAt.Equal(exp) || k.Expired {
		t.Fatalf("added key %+v", k)
	}
	var stored jose.JSONWebKey
	if err := stored.UnmarshalJSON(k.JWK); err != nil || !stored.IsPublic() || stored.KeyID != k.KeyID || stored.Algorithm != "ES256" {
		t.Fatalf("answered JWK %s: %v", k.JWK, err)
	}

	// A JWK whose kid needs escaping in a URL path.
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edJWK, err := json.Marshal(jose.JSONWebKey{Key: ed.Public(), KeyID: "team/ci+1=%?#"})
	if err != nil {
		t.Fatal(err)
	}
	k2, err := e.admin.AddClientKey(ctx, a.ID, admin.AddClientKeyRequest{PublicKey: string(edJWK)})
	if err != nil || k2.KeyID != "team/ci+1=%?#" || k2.Algorithm != "EdDSA" || k2.ExpiresAt != nil {
		t.Fatalf("add JWK: %+v, %v", k2, err)
	}
	keys, err := e.admin.ListClientKeys(ctx, a.Name)
	if err != nil || len(keys) != 2 {
		t.Fatalf("ListClientKeys = %+v, %v", keys, err)
	}
	if err := e.admin.RemoveClientKey(ctx, a.Name, "team/ci+1=%?#"); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.RemoveClientKey(ctx, a.Name, "team/ci+1=%?#"); !admin.IsProblem(err, admin.ProblemNotFound) {
		t.Fatalf("remove again = %v, want not-found", err)
	}
	keys, err = e.admin.ListClientKeys(ctx, a.Name)
	if err != nil || len(keys) != 1 || keys[0].KeyID != k.KeyID {
		t.Fatalf("keys after removal = %+v, %v", keys, err)
	}
	// The agent's version moved with each addition and the removal.
	got, err := e.admin.GetAgent(ctx, a.ID)
	if err != nil || got.Version != 4 {
		t.Fatalf("agent after two keys and a removal: version %d, %v", got.Version, err)
	}
}

func TestClientSecretsThroughSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, a := e.seed(t)
	s1, err := e.admin.CreateClientSecret(ctx, a.Name, admin.CreateClientSecretRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if s1.ClientID != a.ID || !strings.HasPrefix(s1.Secret, "aidcs_") || !strings.HasPrefix(s1.ID, "sec_") || s1.ExpiresAt != nil {
		t.Fatalf("created secret %+v", s1)
	}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	s2, err := e.admin.CreateClientSecret(ctx, a.ID, admin.CreateClientSecretRequest{ExpiresAt: &exp})
	if err != nil || s2.ExpiresAt == nil || !s2.ExpiresAt.Equal(exp) {
		t.Fatalf("second secret %+v, %v", s2, err)
	}
	_, err = e.admin.CreateClientSecret(ctx, a.ID, admin.CreateClientSecretRequest{})
	var p *admin.Problem
	if !admin.IsProblem(err, admin.ProblemLimitExceeded) || !errors.As(err, &p) || p.Status != http.StatusConflict ||
		!strings.Contains(p.Detail, "remove one") {
		t.Fatalf("third secret = %v, want 409 limit-exceeded", err)
	}
	list, err := e.admin.ListClientSecrets(ctx, a.Name)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListClientSecrets = %+v, %v", list, err)
	}
	// No answer but the creating one has the secret, and none a hash.
	status, body := e.get(t, "/v1/agents/"+a.Name+"/secrets")
	if status != http.StatusOK || strings.Contains(string(body), s1.Secret) || strings.Contains(string(body), "hash") {
		t.Fatalf("secret list %d: %s", status, body)
	}
	if err := e.admin.RemoveClientSecret(ctx, a.Name, s1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateClientSecret(ctx, a.Name, admin.CreateClientSecretRequest{}); err != nil {
		t.Fatalf("secret after removing one: %v", err)
	}
	// The audit trail records the secrets by id only.
	var trail strings.Builder
	if err := e.admin.ExportAudit(ctx, admin.AuditQuery{}, func(l []byte) error {
		trail.Write(l)
		trail.WriteByte('\n')
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{s1.Secret, s2.Secret, strings.TrimPrefix(s1.Secret, "aidcs_")} {
		if strings.Contains(trail.String(), s) {
			t.Fatalf("the audit trail contains a client secret")
		}
	}
	for _, typ := range []string{"client_secret.created", "client_secret.removed"} {
		if !strings.Contains(trail.String(), `"type":"`+typ+`"`) {
			t.Errorf("the audit trail lacks %s", typ)
		}
	}
}

func TestRevokeTokensThroughSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, a := e.seed(t)
	rev, err := e.admin.RevokeTokens(ctx, admin.RevokeTokensRequest{Agent: a.Name})
	if err != nil {
		t.Fatal(err)
	}
	if rev.Agent == nil || rev.Agent.ID != a.ID || rev.Agent.TokensRevokedAt == nil || !rev.Agent.TokensRevokedAt.Equal(rev.RevokedAt) ||
		rev.KeptUntil != nil || rev.JTI != "" {
		t.Fatalf("revoke by agent = %+v", rev)
	}
	got, err := e.admin.GetAgent(ctx, a.ID)
	if err != nil || got.TokensRevokedAt == nil || got.Version != 2 {
		t.Fatalf("agent after revocation %+v, %v", got, err)
	}
	rev, err = e.admin.RevokeTokens(ctx, admin.RevokeTokensRequest{JTI: "tok_01abc"})
	if err != nil {
		t.Fatal(err)
	}
	// The record outlives any token: the server cap is 1 h, plus a minute for clock skew.
	if rev.JTI != "tok_01abc" || rev.Agent != nil || rev.KeptUntil == nil || rev.KeptUntil.Sub(rev.RevokedAt) != time.Hour+time.Minute {
		t.Fatalf("revoke by jti = %+v", rev)
	}
}

func TestClientCredentialsBadInput(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, a := e.seed(t)
	if _, err := e.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "gone-bot", Purpose: "p", Owners: []string{"alice@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.DeprovisionAgent(ctx, "gone-bot", admin.TransitionRequest{}); err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	keyBody := func(pemText, extra string) string {
		b, _ := json.Marshal(pemText)
		return `{"public_key":` + string(b) + extra + `}`
	}
	pub := publicPEM(t, ec.Public())
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantType, wantField      string
	}{
		{"private key", "POST", "/v1/agents/invoice-bot/keys", keyBody(privPEM, ""), 400, admin.ProblemValidation, "public_key"},
		{"no key", "POST", "/v1/agents/invoice-bot/keys", `{}`, 400, admin.ProblemValidation, "public_key"},
		{"bad algorithm", "POST", "/v1/agents/invoice-bot/keys", keyBody(pub, `,"algorithm":"HS256"`), 400, admin.ProblemValidation, "algorithm"},
		{"past key expiry", "POST", "/v1/agents/invoice-bot/keys", keyBody(pub, `,"expires_at":"2001-01-01T00:00:00Z"`), 400, admin.ProblemValidation, "expires_at"},
		{"unknown key field", "POST", "/v1/agents/invoice-bot/keys", keyBody(pub, `,"kid":"x"`), 400, admin.ProblemBadRequest, "kid"},
		{"key for unknown agent", "POST", "/v1/agents/nobody/keys", keyBody(pub, ""), 404, admin.ProblemNotFound, ""},
		{"key for deprovisioned agent", "POST", "/v1/agents/gone-bot/keys", keyBody(pub, ""), 409, admin.ProblemIllegalTransition, ""},
		{"remove unknown key", "DELETE", "/v1/agents/invoice-bot/keys/nope", "", 404, admin.ProblemNotFound, ""},
		{"secret for deprovisioned agent", "POST", "/v1/agents/gone-bot/secrets", "", 409, admin.ProblemIllegalTransition, ""},
		{"secret with past expiry", "POST", "/v1/agents/invoice-bot/secrets", `{"expires_at":"2001-01-01T00:00:00Z"}`, 400, admin.ProblemValidation, "expires_at"},
		{"remove malformed secret id", "DELETE", "/v1/agents/invoice-bot/secrets/nope", "", 400, admin.ProblemValidation, "id"},
		{"remove unknown secret", "DELETE", "/v1/agents/invoice-bot/secrets/sec_01j00000000000000000000000", "", 404, admin.ProblemNotFound, ""},
		{"revoke nothing", "POST", "/v1/tokens/revoke", `{}`, 400, admin.ProblemValidation, ""},
		{"revoke both", "POST", "/v1/tokens/revoke", `{"jti":"x","agent":"invoice-bot"}`, 400, admin.ProblemValidation, ""},
		{"revoke bad jti", "POST", "/v1/tokens/revoke", `{"jti":"a b"}`, 400, admin.ProblemValidation, "jti"},
		{"revoke unknown agent", "POST", "/v1/tokens/revoke", `{"agent":"nobody"}`, 404, admin.ProblemNotFound, ""},
		{"revoke malformed agent", "POST", "/v1/tokens/revoke", `{"agent":"No Body"}`, 400, admin.ProblemValidation, "agent"},
		{"bad scope", "POST", "/v1/agents", `{"name":"s-bot","purpose":"p","owners":["alice@example.com"],"scopes":["a b"]}`, 400, admin.ProblemValidation, "scopes[0]"},
		{"bad permission", "PATCH", "/v1/agents/invoice-bot", `{"permissions":["root"]}`, 400, admin.ProblemValidation, "permissions[0]"},
		{"wrong method on keys", "PUT", "/v1/agents/invoice-bot/keys", `{}`, 405, admin.ProblemMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.snapshot(t)
			keysBefore, err := e.store.ListClientKeys(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			var body io.Reader
			ct := ""
			if tt.body != "" {
				body, ct = strings.NewReader(tt.body), "application/json"
			}
			status, _, p := e.raw(t, tt.method, tt.path, e.token, ct, body, nil)
			if status != tt.wantStatus || p.Type != tt.wantType || p.Field != tt.wantField {
				t.Fatalf("got %d %s field %q (%s), want %d %s field %q", status, p.Type, p.Field, p.Detail, tt.wantStatus, tt.wantType, tt.wantField)
			}
			if diff := cmp.Diff(before, e.snapshot(t)); diff != "" {
				t.Fatalf("bad request changed state (-before +after):\n%s", diff)
			}
			keysAfter, err := e.store.ListClientKeys(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(keysBefore, keysAfter); diff != "" {
				t.Fatalf("bad request changed keys:\n%s", diff)
			}
		})
	}
}
