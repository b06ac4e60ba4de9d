package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
)

const testIssuer = "http://ceiling.test"

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// joseAssertion signs claims with go-jose, an implementation independent
// of the ceiling's.
func joseAssertion(t *testing.T, key any, alg jose.SignatureAlgorithm, claims any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func goodClaims() jwt.Claims {
	return jwt.Claims{Issuer: "agt_1", Subject: "agt_1", Audience: jwt.Audience{testIssuer},
		IssuedAt: jwt.NewNumericDate(testNow), Expiry: jwt.NewNumericDate(testNow.Add(time.Minute)), ID: "jti-1"}
}

func newTestCeiling(t *testing.T, client *ecdsa.PrivateKey) *Ceiling {
	t.Helper()
	c, err := NewCeiling(CeilingParams{ClientKey: &client.PublicKey, Issuer: testIssuer,
		Clock: func() time.Time { return testNow }, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tokenRequest(assertion string, mod func(url.Values)) *http.Request {
	f := url.Values{"grant_type": {"client_credentials"}, "scope": {"tickets:read"},
		"client_assertion_type": {AssertionType}, "client_assertion": {assertion}}
	if mod != nil {
		mod(f)
	}
	r := httptest.NewRequest(http.MethodPost, tokenPath, strings.NewReader(f.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestCeilingIssuesAVerifiableToken(t *testing.T) {
	client := newKey(t)
	c := newTestCeiling(t, client)
	w := serve(c, tokenRequest(joseAssertion(t, client, jose.ES256, goodClaims()), nil))
	if w.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", w.Code, w.Body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
		t.Fatal(err)
	}
	if tr.TokenType != "Bearer" || tr.ExpiresIn != 300 || tr.Scope != "tickets:read" {
		t.Errorf("token response %+v", tr)
	}

	// The token verifies with the JWKS the ceiling serves, as a resource
	// server would check it.
	jw := serve(c, httptest.NewRequest(http.MethodGet, jwksPath, nil))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jw.Body.Bytes(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks %s: %v", jw.Body, err)
	}
	tok, err := jwt.ParseSigned(tr.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if h := tok.Headers[0]; h.KeyID != ceilingKeyID || h.ExtraHeaders["typ"] != "at+jwt" {
		t.Errorf("header %+v", h)
	}
	var got ceilingClaims
	if err := tok.Claims(set.Keys[0].Key, &got); err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	want := ceilingClaims{Iss: testIssuer, Sub: "spiffe://bench.invalid/agent/bench-agent", Aud: "https://api.example.com",
		ClientID: "agt_1", Iat: testNow.Unix(), Nbf: testNow.Unix(), Exp: testNow.Add(5 * time.Minute).Unix(), Scope: "tickets:read"}
	want.Agent.ID, want.Agent.Name = "agt_1", "bench-agent"
	if diff := cmp.Diff(want, got, cmpIgnoreRandom()); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(got.JTI, "tok_") || len(got.TraceID) != 32 {
		t.Errorf("jti %q, trace_id %q", got.JTI, got.TraceID)
	}

	// The metadata names the endpoints.
	mw := serve(c, httptest.NewRequest(http.MethodGet, metadataPath, nil))
	var md Metadata
	if err := json.Unmarshal(mw.Body.Bytes(), &md); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Metadata{Issuer: testIssuer, TokenEndpoint: testIssuer + tokenPath, JWKSURI: testIssuer + jwksPath}, md); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
}

// cmpIgnoreRandom ignores the random claims.
func cmpIgnoreRandom() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		s := p.String()
		return s == "JTI" || s == "TraceID"
	}, cmp.Ignore())
}

func TestCeilingRejects(t *testing.T) {
	client, other := newKey(t), newKey(t)
	good := joseAssertion(t, client, jose.ES256, goodClaims())
	with := func(mod func(*jwt.Claims)) string {
		c := goodClaims()
		mod(&c)
		return joseAssertion(t, client, jose.ES256, c)
	}
	parts := strings.Split(good, ".")
	tamperedPayload := b64.EncodeToString([]byte(`{"iss":"agt_2","sub":"agt_2","aud":"` + testIssuer + `","exp":9999999999,"jti":"x"}`))
	for _, tt := range []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"signed by another key", tokenRequest(joseAssertion(t, other, jose.ES256, goodClaims()), nil), http.StatusUnauthorized},
		{"tampered payload", tokenRequest(parts[0]+"."+tamperedPayload+"."+parts[2], nil), http.StatusUnauthorized},
		{"truncated signature", tokenRequest(good[:len(good)-4], nil), http.StatusUnauthorized},
		{"not a JWS", tokenRequest("abc", nil), http.StatusUnauthorized},
		{"extra segment", tokenRequest(good+".x", nil), http.StatusUnauthorized},
		{"HS256", tokenRequest(joseAssertion(t, bytes.Repeat([]byte{1}, 32), jose.HS256, goodClaims()), nil), http.StatusUnauthorized},
		{"wrong audience", tokenRequest(with(func(c *jwt.Claims) { c.Audience = jwt.Audience{"http://other.test"} }), nil), http.StatusUnauthorized},
		{"iss is not sub", tokenRequest(with(func(c *jwt.Claims) { c.Subject = "agt_2" }), nil), http.StatusUnauthorized},
		{"expired", tokenRequest(with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(testNow.Add(-time.Second)) }), nil), http.StatusUnauthorized},
		{"no jti", tokenRequest(with(func(c *jwt.Claims) { c.ID = "" }), nil), http.StatusUnauthorized},
		{"wrong assertion type", tokenRequest(good, func(f url.Values) { f.Set("client_assertion_type", "x") }), http.StatusBadRequest},
		{"wrong grant", tokenRequest(good, func(f url.Values) { f.Set("grant_type", "password") }), http.StatusBadRequest},
		{"GET", httptest.NewRequest(http.MethodGet, tokenPath, nil), http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCeiling(t, client)
			w := serve(c, tt.req)
			if w.Code != tt.status || strings.Contains(w.Body.String(), "access_token") {
				t.Fatalf("HTTP %d %s, want %d without a token", w.Code, w.Body, tt.status)
			}
		})
	}
}

func TestVerifyES256Errors(t *testing.T) {
	client := newKey(t)
	raw := joseAssertion(t, client, jose.ES256, goodClaims())
	if _, err := verifyES256(&client.PublicKey, raw); err != nil {
		t.Fatalf("good assertion: %v", err)
	}
	if _, err := verifyES256(&newKey(t).PublicKey, raw); !errors.Is(err, ErrAssertion) {
		t.Fatalf("another key: %v, want ErrAssertion", err)
	}
}

// TestAssertionSignerIsStandard: the load generator's assertions verify
// with go-jose and carry the RFC 7523 claims agentid checks.
func TestAssertionSignerIsStandard(t *testing.T) {
	key := newKey(t)
	s, err := newAssertionSigner(key, "kid-1", "agt_1", testIssuer, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.sign(testNow, "jti-7")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Headers[0].KeyID != "kid-1" {
		t.Errorf("kid %q", tok.Headers[0].KeyID)
	}
	var got jwt.Claims
	if err := tok.Claims(&key.PublicKey, &got); err != nil {
		t.Fatalf("does not verify: %v", err)
	}
	want := jwt.Claims{Issuer: "agt_1", Subject: "agt_1", Audience: jwt.Audience{testIssuer}, ID: "jti-7",
		IssuedAt: jwt.NewNumericDate(testNow), Expiry: jwt.NewNumericDate(testNow.Add(assertionLifetime))}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	// And the ceiling accepts it.
	c := newTestCeiling(t, key)
	if w := serve(c, tokenRequest(raw, nil)); w.Code != http.StatusOK {
		t.Fatalf("ceiling: HTTP %d %s", w.Code, w.Body)
	}
}

func TestServeCeiling(t *testing.T) {
	key := newKey(t)
	pub, err := encodePublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- ServeCeiling(ctx, ServeCeilingParams{Listen: "127.0.0.1:0", ClientKeyPEM: pub, Hello: pw,
			Clock: time.Now, Rand: rand.Reader})
	}()
	var h Hello
	if err := json.NewDecoder(pr).Decode(&h); err != nil {
		t.Fatal(err)
	}
	md, err := discover(ctx, http.DefaultClient, h.URL)
	if err != nil || md.Issuer != h.URL {
		t.Fatalf("discover: %+v, %v", md, err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("ServeCeiling after cancel: %v", err)
	}
	if _, err := ParsePublicKey([]byte("not pem")); err == nil {
		t.Fatal("ParsePublicKey accepted garbage")
	}
}
