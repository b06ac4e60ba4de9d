package resource_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/resource"
	jose "github.com/go-jose/go-jose/v4"
)

const audience = "https://api.example.com"

var t0 = time.Unix(1_700_000_000, 0)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// signingKey is an issuer key.
type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func newES256(t testing.TB, kid string) signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.ES256, key: k}
}

func newEdDSA(t testing.TB, kid string) signingKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.EdDSA, key: k}
}

func (k signingKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// testIssuer serves RFC 8414 metadata and a JWKS, and counts JWKS fetches.
type testIssuer struct {
	srv *httptest.Server

	mu           sync.Mutex
	keys         []signingKey
	cacheControl string
	status       int
	fetches      int
}

func newIssuer(t testing.TB, keys ...signingKey) *testIssuer {
	is := &testIssuer{keys: keys, status: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/oauth2/jwks"})
	})
	mux.HandleFunc("GET /oauth2/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		defer is.mu.Unlock()
		is.fetches++
		if is.cacheControl != "" {
			w.Header().Set("Cache-Control", is.cacheControl)
		}
		if is.status != http.StatusOK {
			w.WriteHeader(is.status)
			return
		}
		var set jose.JSONWebKeySet
		for _, k := range is.keys {
			set.Keys = append(set.Keys, k.jwk())
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(set)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *testIssuer) set(f func(is *testIssuer)) {
	is.mu.Lock()
	defer is.mu.Unlock()
	f(is)
}

func (is *testIssuer) count() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.fetches
}

// claims returns valid claims for a token of is issued at now.
func (is *testIssuer) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss": is.srv.URL, "sub": "spiffe://example.org/agent/triage", "aud": audience,
		"client_id": "agt_1", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": "tok_1", "scope": "tickets:read tickets:write", "agent": map[string]any{"id": "agt_1", "name": "triage"},
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
	}
}

// mint signs claims with go-jose directly, typ at+jwt unless the header
// says otherwise.
func mint(t testing.TB, k signingKey, claims map[string]any, header map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", k.kid)
	for name, v := range header {
		opts.WithHeader(jose.HeaderKey(name), v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// handMade builds a JWS by hand: alg none (no signature) or HS256 with
// macKey.
func handMade(t testing.TB, header, claims map[string]any, macKey []byte) string {
	t.Helper()
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	if macKey == nil {
		return input + "."
	}
	m := hmac.New(sha256.New, macKey)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func newVerifier(t testing.TB, is *testIssuer, clock *fakeClock, mod func(p *resource.VerifierParams)) *resource.Verifier {
	t.Helper()
	p := resource.VerifierParams{Issuer: is.srv.URL, Audience: audience, Clock: clock.Now}
	if mod != nil {
		mod(&p)
	}
	v, err := resource.NewVerifier(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
