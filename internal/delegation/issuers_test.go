package delegation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/delegation/idptest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func issuers(t *testing.T, clk *clock, cfgs ...delegation.IssuerConfig) *delegation.Issuers {
	t.Helper()
	is, err := delegation.NewIssuers(cfgs, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func idpConfig(idp *idptest.IdP) delegation.IssuerConfig {
	return delegation.IssuerConfig{Issuer: idp.URL, Audience: idptest.Audience, TLSCAFile: idp.CAFile}
}

func TestVerifySubjectToken(t *testing.T) {
	idp := idptest.New(t)
	clk := newClock()
	is := issuers(t, clk, idpConfig(idp))
	for _, kid := range []string{"rs1", "es1"} {
		c := idp.Claims("alice", clk.Now())
		c["scope"] = "travel:book travel:read"
		c["may_act"] = map[string]any{"sub": "spiffe://example.org/agent/booker"}
		got, err := is.Verify(t.Context(), idp.Mint(kid, c))
		if err != nil {
			t.Fatalf("Verify(%s): %v", kid, err)
		}
		want := delegation.Subject{
			Issuer: idp.URL, Subject: "alice", Email: "alice@example.com", EmailClaimed: true, EmailVerified: true, SoleIssuer: true,
			Scopes: []string{"travel:book", "travel:read"}, Scoped: true,
			MayAct: &delegation.MayAct{Sub: "spiffe://example.org/agent/booker"},
			Expiry: clk.Now().Add(10 * time.Minute),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Verify(%s) (-want +got):\n%s", kid, diff)
		}
	}
	// One discovery, one JWKS fetch: the keys are cached for max-age.
	if n := idp.JWKSFetches(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
	// scp as an array, no email, no scope at all.
	c := idp.Claims("bob", clk.Now())
	delete(c, "email")
	c["scp"] = []string{"a", "b"}
	if got, err := is.Verify(t.Context(), idp.Mint("es1", c)); err != nil || !got.Scoped || !cmp.Equal(got.Scopes, []string{"a", "b"}) || got.Email != "" {
		t.Errorf("Verify with scp = %+v, %v", got, err)
	}
	if got, err := is.Verify(t.Context(), idp.Mint("es1", idp.Claims("bob", clk.Now()))); err != nil || got.Scoped {
		t.Errorf("Verify without scope = %+v, %v; want unscoped", got, err)
	}
}

// TestVerifyEmail: the email claim is the person's address only when the
// token says email_verified: true (or "true"), or when the issuer is
// configured with TrustEmail (ADR 0027, OpenID Connect Core §5.1); and
// SoleIssuer says whether the issuer is the only trusted one.
func TestVerifyEmail(t *testing.T) {
	idp, trusting := idptest.New(t), idptest.New(t)
	clk := newClock()
	cfg := idpConfig(trusting)
	cfg.TrustEmail = true
	is := issuers(t, clk, idpConfig(idp), cfg)
	for _, tc := range []struct {
		name      string
		idp       *idptest.IdP
		verified  any // nil: no email_verified claim
		wantEmail string
	}{
		{"verified", idp, true, "alice@example.com"},
		{"verified as a string", idp, "true", "alice@example.com"},
		{"unverified", idp, false, ""},
		{"no email_verified", idp, nil, ""},
		{"email_verified not a boolean", idp, 1, ""},
		{"trusted issuer, unverified", trusting, false, "alice@example.com"},
		{"trusted issuer, no email_verified", trusting, nil, "alice@example.com"},
	} {
		c := tc.idp.Claims("alice", clk.Now())
		delete(c, "email_verified")
		if tc.verified != nil {
			c["email_verified"] = tc.verified
		}
		got, err := is.Verify(t.Context(), tc.idp.Mint("es1", c))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got.Email != tc.wantEmail || !got.EmailClaimed || got.EmailVerified != (tc.verified == true || tc.verified == "true") || got.SoleIssuer {
			t.Errorf("%s: Verify = %+v; want email %q", tc.name, got, tc.wantEmail)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	idp := idptest.New(t)
	clk := newClock()
	other := idptest.New(t)
	is := issuers(t, clk, idpConfig(idp))
	now := clk.Now()
	stranger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	with := func(edit func(map[string]any)) map[string]any {
		c := idp.Claims("alice", now)
		edit(c)
		return c
	}
	b64 := base64.RawURLEncoding.EncodeToString
	unsigned := func(header, claims map[string]any) string {
		h, _ := json.Marshal(header)
		c, _ := json.Marshal(claims)
		return b64(h) + "." + b64(c) + "."
	}
	for name, tc := range map[string]struct {
		raw  string
		kind error
	}{
		"untrusted issuer":  {other.Mint("es1", other.Claims("alice", now)), delegation.ErrUntrustedIssuer},
		"not a JWT":         {"not-a-jwt", delegation.ErrUntrustedIssuer},
		"alg none":          {unsigned(map[string]any{"alg": "none", "kid": "es1"}, idp.Claims("alice", now)), delegation.ErrUntrustedIssuer},
		"HS256":             {idptest.Sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "es1", idp.Claims("alice", now)), delegation.ErrInvalidToken},
		"stranger's key":    {idptest.Sign(t, jose.ES256, stranger, "es1", idp.Claims("alice", now)), delegation.ErrInvalidToken},
		"unknown kid":       {idptest.Sign(t, jose.ES256, stranger, "nope", idp.Claims("alice", now)), delegation.ErrInvalidToken},
		"expired":           {idp.Mint("es1", with(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), delegation.ErrInvalidToken},
		"no exp":            {idp.Mint("es1", with(func(c map[string]any) { delete(c, "exp") })), delegation.ErrInvalidToken},
		"not yet valid":     {idp.Mint("es1", with(func(c map[string]any) { c["nbf"] = now.Add(5 * time.Minute).Unix() })), delegation.ErrInvalidToken},
		"future iat":        {idp.Mint("es1", with(func(c map[string]any) { c["iat"] = now.Add(5 * time.Minute).Unix() })), delegation.ErrInvalidToken},
		"wrong audience":    {idp.Mint("es1", with(func(c map[string]any) { c["aud"] = "someone-else" })), delegation.ErrInvalidToken},
		"no subject":        {idp.Mint("es1", with(func(c map[string]any) { delete(c, "sub") })), delegation.ErrInvalidToken},
		"numeric subject":   {idp.Mint("es1", with(func(c map[string]any) { c["sub"] = 42 })), delegation.ErrInvalidToken},
		"control subject":   {idp.Mint("es1", with(func(c map[string]any) { c["sub"] = "a\nb" })), delegation.ErrInvalidToken},
		"long subject":      {idp.Mint("es1", with(func(c map[string]any) { c["sub"] = strings.Repeat("a", 257) })), delegation.ErrInvalidToken},
		"bad scope":         {idp.Mint("es1", with(func(c map[string]any) { c["scope"] = []int{1} })), delegation.ErrInvalidToken},
		"bad may_act":       {idp.Mint("es1", with(func(c map[string]any) { c["may_act"] = "agent" })), delegation.ErrInvalidToken},
		"may_act no sub":    {idp.Mint("es1", with(func(c map[string]any) { c["may_act"] = map[string]any{"iss": "x"} })), delegation.ErrInvalidToken},
		"oversized":         {strings.Repeat("a", delegation.MaxTokenBytes+1), delegation.ErrInvalidToken},
		"embedded jwk only": {signEmbedded(t, stranger, idp.Claims("alice", now)), delegation.ErrInvalidToken},
	} {
		_, err := is.Verify(t.Context(), tc.raw)
		var te *delegation.TokenError
		if !errors.Is(err, tc.kind) || !errors.As(err, &te) || te.Reason == "" {
			t.Errorf("%s: Verify = %v, want a TokenError of kind %v", name, err, tc.kind)
		}
	}
}

// signEmbedded signs with a key carried in the jwk header (never trusted).
func signEmbedded(t *testing.T, k *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, &jose.SignerOptions{EmbedJWK: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	obj, err := sig.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestIssuerAlgorithmsAndClaims(t *testing.T) {
	idp := idptest.New(t)
	clk := newClock()
	cfg := idpConfig(idp)
	cfg.Algorithms = []string{"ES256"}
	cfg.SubjectClaim, cfg.EmailClaim = "oid", "upn"
	is := issuers(t, clk, cfg)
	c := idp.Claims("ignored", clk.Now())
	c["oid"], c["upn"] = "0000-1111", "alice@corp.example"
	got, err := is.Verify(t.Context(), idp.Mint("es1", c))
	if err != nil || got.Subject != "0000-1111" || got.Email != "alice@corp.example" {
		t.Errorf("Verify with mapped claims = %+v, %v", got, err)
	}
	if _, err := is.Verify(t.Context(), idp.Mint("rs1", c)); !errors.Is(err, delegation.ErrInvalidToken) {
		t.Errorf("RS256 token to an ES256-only issuer: %v, want ErrInvalidToken", err)
	}
}

func TestJWKSRefreshAndOutage(t *testing.T) {
	idp := idptest.New(t)
	clk := newClock()
	is := issuers(t, clk, idpConfig(idp))
	mint := func(kid string) string { return idp.Mint(kid, idp.Claims("alice", clk.Now())) }
	if _, err := is.Verify(t.Context(), mint("es1")); err != nil {
		t.Fatal(err)
	}
	// A rotated-in key is fetched when a token names it, but a flood of
	// unknown kids does not hammer the IdP: one fetch per 30 s.
	idp.AddKey("es2", jose.ES256)
	clk.Advance(delegation.MinRefetchInterval)
	if _, err := is.Verify(t.Context(), mint("es2")); err != nil {
		t.Fatalf("Verify with a new kid: %v", err)
	}
	idp.AddKey("es3", jose.ES256)
	for range 5 {
		if _, err := is.Verify(t.Context(), mint("es3")); !errors.Is(err, delegation.ErrInvalidToken) {
			t.Fatalf("Verify with a kid within 30 s of the last fetch = %v, want ErrInvalidToken", err)
		}
	}
	if n := idp.JWKSFetches(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
	clk.Advance(delegation.MinRefetchInterval)
	if _, err := is.Verify(t.Context(), mint("es3")); err != nil {
		t.Errorf("Verify after the interval: %v", err)
	}
	// The IdP goes down: the cached keys keep working past their max-age.
	idp.SetDown(true)
	clk.Advance(time.Hour)
	if _, err := is.Verify(t.Context(), mint("es1")); err != nil {
		t.Errorf("Verify during an outage with cached keys: %v", err)
	}
}

func TestKeysUnavailable(t *testing.T) {
	idp := idptest.New(t)
	idp.SetDown(true)
	clk := newClock()
	is := issuers(t, clk, idpConfig(idp))
	_, err := is.Verify(t.Context(), idp.Mint("es1", idp.Claims("alice", clk.Now())))
	if !errors.Is(err, delegation.ErrKeysUnavailable) {
		t.Errorf("Verify with the IdP down = %v, want ErrKeysUnavailable", err)
	}
	// Without the CA, TLS fails: the keys are unavailable too.
	cfg := idpConfig(idp)
	cfg.TLSCAFile = ""
	idp.SetDown(false)
	is = issuers(t, clk, cfg)
	if _, err := is.Verify(t.Context(), idp.Mint("es1", idp.Claims("alice", clk.Now()))); !errors.Is(err, delegation.ErrKeysUnavailable) {
		t.Errorf("Verify against an untrusted TLS certificate = %v, want ErrKeysUnavailable", err)
	}
}

func TestStaticJWKS(t *testing.T) {
	idp := idptest.New(t)
	clk := newClock()
	b, err := json.Marshal(idp.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	idp.SetDown(true)
	is := issuers(t, clk, delegation.IssuerConfig{Issuer: idp.URL, Audience: idptest.Audience, JWKSFile: file})
	if _, err := is.Verify(t.Context(), idp.Mint("rs1", idp.Claims("alice", clk.Now()))); err != nil {
		t.Errorf("Verify with a static JWKS: %v", err)
	}
	if n := idp.JWKSFetches(); n != 0 {
		t.Errorf("JWKS fetched %d times with a static file, want 0", n)
	}
}

func TestNewIssuersRejects(t *testing.T) {
	clk := newClock()
	for name, cfgs := range map[string][]delegation.IssuerConfig{
		"http issuer":  {{Issuer: "http://idp.example.com", Audience: "a"}},
		"query":        {{Issuer: "https://idp.example.com?x=1", Audience: "a"}},
		"no audience":  {{Issuer: "https://idp.example.com"}},
		"both jwks":    {{Issuer: "https://idp.example.com", Audience: "a", JWKSURL: "https://idp.example.com/k", JWKSFile: "x"}},
		"http jwks":    {{Issuer: "https://idp.example.com", Audience: "a", JWKSURL: "http://idp.example.com/k"}},
		"HS256":        {{Issuer: "https://idp.example.com", Audience: "a", Algorithms: []string{"HS256"}}},
		"none":         {{Issuer: "https://idp.example.com", Audience: "a", Algorithms: []string{"none"}}},
		"missing file": {{Issuer: "https://idp.example.com", Audience: "a", JWKSFile: "/nonexistent"}},
		"missing CA":   {{Issuer: "https://idp.example.com", Audience: "a", TLSCAFile: "/nonexistent"}},
		"duplicate":    {{Issuer: "https://idp.example.com", Audience: "a"}, {Issuer: "https://idp.example.com", Audience: "b"}},
		"userinfo":     {{Issuer: "https://u:p@idp.example.com", Audience: "a"}},
		"not a URL":    {{Issuer: "idp", Audience: "a"}},
	} {
		if _, err := delegation.NewIssuers(cfgs, clk.Now); err == nil {
			t.Errorf("%s: NewIssuers accepted %+v", name, cfgs)
		}
	}
	if _, err := delegation.NewIssuers([]delegation.IssuerConfig{{Issuer: "http://127.0.0.1:9", Audience: "a"}}, clk.Now); err != nil {
		t.Errorf("http on loopback refused: %v", err)
	}
}
