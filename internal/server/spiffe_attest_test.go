package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/sdk/admin"
)

// TestJWTSVIDClientAuthOverHTTP: a server federating with partner.example
// (go-spiffe's bundle endpoint handler behind TLS) and a spiffe attestor
// for it gives an agent's token to a partner workload that authenticates
// with its JWT-SVID (draft-ietf-oauth-spiffe-client-auth-02 §3.1), checked
// against the trust domain's bundle as the federation manager holds it;
// discovery lists spiffe_jwt and spiffe_x509.
func TestJWTSVIDClientAuthOverHTTP(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("partner.example")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b := spiffebundle.New(td)
	if err := b.AddJWTAuthority("k1", &key.PublicKey); err != nil {
		t.Fatal(err)
	}
	b.SetSequenceNumber(1)
	cp := servePartner(t, b, b, "attestors:\n  - name: partner\n    kind: spiffe\n    trust_domain: partner.example\n", nil)
	ctx := t.Context()
	owner, err := cp.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: "o@example.org", DisplayName: "O"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "courier", Purpose: "ships", Owners: []string{owner.ID}, Audiences: []string{"https://api.example.org"},
		AttestationRules: []admin.AttestationRule{{Attestor: "partner", Matchers: []string{"spiffe:id:spiffe://partner.example/shipping/*"}}},
	}); err != nil {
		t.Fatal(err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	token := func(sub string) (int, map[string]any) {
		svid, err := jwt.Signed(sig).Claims(map[string]any{"sub": sub, "aud": cp.url, "iat": time.Now().Unix(),
			"exp": time.Now().Add(5 * time.Minute).Unix()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.PostForm(cp.url+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"courier"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"}, "client_assertion": {svid}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if status, body := token("spiffe://partner.example/shipping/c1"); status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("token: %d %v", status, body)
	}
	if status, body := token("spiffe://partner.example/billing/c1"); status >= 500 || body["error"] != "invalid_client" {
		t.Errorf("mismatch: %d %v", status, body)
	}
	resp, err := http.Get(cp.url + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&meta)
	_ = resp.Body.Close()
	if got := toJSON(meta["token_endpoint_auth_methods_supported"]); got != `["private_key_jwt","client_secret_basic","client_secret_post","spiffe_jwt","spiffe_x509"]` {
		t.Errorf("auth methods = %s", got)
	}
}

// TestAgentJoinTokenOverHTTP: an admin creates a join token for an agent
// with sdk/admin; an instance redeems it with a plain form post, once.
func TestAgentJoinTokenOverHTTP(t *testing.T) {
	cp := startDev(t, nil)
	ctx := t.Context()
	owner, err := cp.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: "o@example.org", DisplayName: "O"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "batch", Purpose: "nightly batch", Owners: []string{owner.ID},
		Audiences: []string{"https://api.example.org"}}); err != nil {
		t.Fatal(err)
	}
	jt, err := cp.admin.CreateAgentJoinToken(ctx, "batch", admin.CreateJoinTokenRequest{TTLSeconds: 300})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.admin.CreateAgentJoinToken(ctx, "nobody", admin.CreateJoinTokenRequest{}); !admin.IsProblem(err, admin.ProblemNotFound) {
		t.Errorf("unknown agent: %v", err)
	}
	if _, err := cp.admin.CreateAgentJoinToken(ctx, "batch", admin.CreateJoinTokenRequest{TTLSeconds: 7200}); !admin.IsProblem(err, admin.ProblemValidation) {
		t.Errorf("2h: %v", err)
	}
	redeem := func() (int, map[string]any) {
		resp, err := http.PostForm(cp.url+"/oauth2/token", url.Values{"grant_type": {"urn:agentid:params:oauth:grant-type:join-token"},
			"join_token": {jt.Token}, "client_id": {"batch"}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if status, body := redeem(); status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("redeem: %d %v", status, body)
	}
	if status, body := redeem(); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("replay: %d %v", status, body)
	}
	ins, err := cp.admin.ListInstances(ctx, "batch", admin.ListInstancesParams{})
	if err != nil || len(ins.Items) != 1 || ins.Items[0].Method != "join_token" || ins.Items[0].Key != jt.ID {
		t.Errorf("instances = %+v, %v", ins, err)
	}
}
