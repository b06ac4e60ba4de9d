package resource_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/agent"
	"github.com/agentid/agentid/sdk/dpop"
	"github.com/agentid/agentid/sdk/resource"
)

// TestEndToEnd: an agent with sdk/agent calls an API guarded by
// resource.Middleware, with a DPoP-bound token minted by a token endpoint
// written here (it trusts any client: client authentication is sdk/agent's
// tests' business).
func TestEndToEnd(t *testing.T) {
	k := newES256(t, "k1")
	is := newIssuer(t, k)
	clock := &fakeClock{now: time.Now().Truncate(time.Second)}
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := dpop.Verify(r.Header.Get("DPoP"), dpop.VerifyParams{Method: "POST", URL: "http://" + r.Host + r.URL.Path, Now: clock.Now()})
		if err != nil {
			t.Errorf("token request proof: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c := is.claims(clock.Now())
		c["cnf"] = map[string]any{"jkt": p.Thumbprint}
		c["trace_id"] = r.Header.Get("Traceparent")[3:35]
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": mint(t, k, c, nil), "token_type": "DPoP", "expires_in": 300})
	}))
	defer tokens.Close()

	v := newVerifier(t, is, clock, nil)
	var got *resource.Claims
	api := httptest.NewServer(resource.Middleware(v, resource.RequireScopes("tickets:read"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = resource.ClaimsFromContext(r.Context())
		_, _ = io.WriteString(w, "ok")
	})))
	defer api.Close()

	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dpopKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dpop.NewSigner(dpopKey)
	if err != nil {
		t.Fatal(err)
	}
	src, err := agent.NewTokenSource(agent.TokenSourceParams{
		TokenURL: tokens.URL + "/oauth2/token", ClientID: "agt_1", Key: clientKey, DPoP: signer, Clock: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: agent.NewTransport(src, nil)}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for i := range 2 { // a fresh proof per request: the second is no replay
		req, _ := http.NewRequestWithContext(agent.WithTraceparent(t.Context(), tp), http.MethodGet, api.URL+"/tickets?page=1", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d, WWW-Authenticate %q", i, resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
		}
	}
	if got == nil || got.CnfJKT != signer.Thumbprint() || got.TraceID != tp[3:35] {
		t.Fatalf("claims = %+v", got)
	}
}
