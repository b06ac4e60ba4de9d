package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/agent"
	"github.com/agentid/agentid/sdk/dpop"
	"github.com/agentid/agentid/sdk/resource"
)

// TestSDKEndToEnd is the whole path with the public SDK on both sides: an
// agent's TokenSource gets tokens from the real server with
// private_key_jwt (bearer and DPoP-bound), its Transport calls a resource
// server, and the resource server's middleware verifies them offline.
func TestSDKEndToEnd(t *testing.T) {
	ls := startServer(t)
	ctx := t.Context()
	v, err := resource.NewVerifier(ctx, resource.VerifierParams{Issuer: ls.url, Audience: apiAudience})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(resource.Middleware(v, resource.RequireScopes("tickets:read"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := resource.ClaimsFromContext(r.Context())
			_ = json.NewEncoder(w).Encode(map[string]string{
				"agent": c.Agent.Name, "jkt": c.CnfJKT, "trace": c.TraceID,
			})
		})))
	t.Cleanup(api.Close)

	ds := newDPoPSigner(t)
	for name, signer := range map[string]*dpop.Signer{"bearer": nil, "dpop": ds} {
		t.Run(name, func(t *testing.T) {
			src, err := agent.NewTokenSource(agent.TokenSourceParams{
				Issuer: ls.url, ClientID: ls.agent.ClientID, Key: ls.key, KeyID: ls.kid,
				Scopes: []string{"tickets:read"}, Resources: []string{apiAudience}, DPoP: signer,
			})
			if err != nil {
				t.Fatal(err)
			}
			hc := &http.Client{Transport: agent.NewTransport(src, nil)}
			for range 3 { // the second and third calls reuse the cached token
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL+"/tickets", nil)
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("resource answered %d: %s (%s)", resp.StatusCode, b, resp.Header.Get("WWW-Authenticate"))
				}
				var got map[string]string
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatal(err)
				}
				if got["agent"] != "bot" || len(got["trace"]) != 32 {
					t.Errorf("claims seen by the resource: %v", got)
				}
				if signer != nil && got["jkt"] != signer.Thumbprint() {
					t.Errorf("jkt = %q, want the DPoP key's", got["jkt"])
				}
			}
		})
	}
}

// TestDPoPNonceOverHTTP: with credentials.dpop_nonce on, the SDK's first
// DPoP token request is refused with use_dpop_nonce and a nonce, the retry
// with it succeeds, and the success carries the current nonce too
// (RFC 9449 §8.2), so a client can keep its nonce fresh without errors.
func TestDPoPNonceOverHTTP(t *testing.T) {
	ls := startLive(t, func(c *server.Config) { c.Credentials.DPoPNonce = true }, nil)
	ds := newDPoPSigner(t)
	rec := &nonceRecorder{next: http.DefaultTransport}
	src, err := agent.NewTokenSource(agent.TokenSourceParams{
		Issuer: ls.url, ClientID: ls.agent.ClientID, Key: ls.key, KeyID: ls.kid,
		Scopes: []string{"tickets:read"}, Resources: []string{apiAudience}, DPoP: ds,
		HTTPClient: &http.Client{Transport: rec},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" {
		t.Fatalf("token type %q, want DPoP", tok.TokenType)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) != 2 || rec.seen[0].status != http.StatusBadRequest || rec.seen[1].status != http.StatusOK ||
		rec.seen[0].nonce == "" || rec.seen[1].nonce != rec.seen[0].nonce {
		t.Fatalf("token endpoint answers = %+v; want 400 with a nonce, then 200 with the same nonce", rec.seen)
	}
}

// nonceRecorder records the status and DPoP-Nonce of token endpoint
// answers.
type nonceRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []struct {
		status int
		nonce  string
	}
}

func (r *nonceRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/oauth2/token") {
		r.mu.Lock()
		r.seen = append(r.seen, struct {
			status int
			nonce  string
		}{resp.StatusCode, resp.Header.Get("DPoP-Nonce")})
		r.mu.Unlock()
	}
	return resp, err
}

// newDPoPSigner is a DPoP signer with a fresh P-256 key.
func newDPoPSigner(t *testing.T) *dpop.Signer {
	t.Helper()
	dk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := dpop.NewSigner(dk)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}
