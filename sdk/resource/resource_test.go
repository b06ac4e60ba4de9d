package resource_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/resource"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

func TestVerify(t *testing.T) {
	ec, ed := newES256(t, "k-ec"), newEdDSA(t, "k-ed")
	is := newIssuer(t, ec, ed)
	clock := &fakeClock{now: t0}
	v := newVerifier(t, is, clock, nil)
	for _, k := range []signingKey{ec, ed} {
		c := is.claims(t0)
		c["aud"] = []string{"https://other.example.com", audience}
		c["agent_instance"] = "ins_1"
		c["act"] = map[string]any{"sub": "user@example.com"}
		c["reasoning_ref"] = "plan-42"
		c["cnf"] = map[string]any{"jkt": "abc"}
		c["iat"] = float64(t0.Unix()) + 0.5
		got, err := v.Verify(context.Background(), mint(t, k, c, nil))
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		b, _ := json.Marshal(c)
		_ = json.Unmarshal(b, &raw)
		want := &resource.Claims{
			Issuer: is.srv.URL, Subject: "spiffe://example.org/agent/triage",
			Audience: []string{"https://other.example.com", audience}, ClientID: "agt_1",
			Scope: []string{"tickets:read", "tickets:write"}, JTI: "tok_1",
			IssuedAt: t0.Add(500 * time.Millisecond), NotBefore: t0, Expiry: t0.Add(5 * time.Minute),
			Agent: resource.Agent{ID: "agt_1", Name: "triage"}, AgentInstance: "ins_1",
			Act: json.RawMessage(`{"sub":"user@example.com"}`), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
			ReasoningRef: "plan-42", CnfJKT: "abc", Raw: raw,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s: claims (-want +got):\n%s", k.alg, diff)
		}
		if !got.HasScope("tickets:read") || got.HasScope("tickets") {
			t.Fatal("HasScope")
		}
	}
	for _, typ := range []string{"AT+JWT", "application/at+jwt"} {
		if _, err := v.Verify(context.Background(), mint(t, ec, is.claims(t0), map[string]any{"typ": typ})); err != nil {
			t.Fatalf("typ %q: %v", typ, err)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	ec, ed, unknown := newES256(t, "k-ec"), newEdDSA(t, "k-ed"), newES256(t, "k-unknown")
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs := signingKey{kid: "k-rsa", alg: jose.RS256, key: rk}
	impostor := ec
	impostor.key = newES256(t, "x").key // another key that claims kid k-ec
	is := newIssuer(t, ec, ed, rs)
	clock := &fakeClock{now: t0}
	v := newVerifier(t, is, clock, nil)
	pubDER, err := x509.MarshalPKIXPublicKey(ec.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	ecJWK, _ := json.Marshal(ec.jwk())

	with := func(mod func(c map[string]any)) map[string]any {
		c := is.claims(t0)
		mod(c)
		return c
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", resource.ErrInvalidToken},
		{"garbage", "not-a-jwt", resource.ErrInvalidToken},
		{"too large", strings.Repeat("a", 20<<10) + ".b.c", resource.ErrInvalidToken},
		{"JSON serialization", `{"payload":"e30","signatures":[]}`, resource.ErrInvalidToken},
		{"typ JWT", mint(t, ec, is.claims(t0), map[string]any{"typ": "JWT"}), resource.ErrInvalidToken},
		{"typ dpop+jwt", mint(t, ec, is.claims(t0), map[string]any{"typ": "dpop+jwt"}), resource.ErrInvalidToken},
		{"no typ", handMade(t, map[string]any{"alg": "none", "kid": "k-ec"}, is.claims(t0), nil), resource.ErrInvalidToken},
		{"alg none", handMade(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": "k-ec"}, is.claims(t0), nil), resource.ErrInvalidToken},
		{"HS256 keyed with the public key PEM", handMade(t, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": "k-ec"}, is.claims(t0), pubPEM), resource.ErrInvalidToken},
		{"HS256 keyed with the public JWK", handMade(t, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": "k-ec"}, is.claims(t0), ecJWK), resource.ErrInvalidToken},
		{"RS256 not allowed", mint(t, rs, is.claims(t0), nil), resource.ErrInvalidToken},
		{"no kid", mint(t, signingKey{alg: ec.alg, key: ec.key}, is.claims(t0), nil), resource.ErrInvalidToken},
		{"unknown kid", mint(t, unknown, is.claims(t0), nil), resource.ErrUnknownKey},
		{"signed by another key", mint(t, impostor, is.claims(t0), nil), resource.ErrInvalidToken},
		{"alg of another key", mint(t, signingKey{kid: "k-ed", alg: jose.ES256, key: ec.key}, is.claims(t0), nil), resource.ErrInvalidToken},
		{"signature stripped", strings.TrimRight(mint(t, ec, is.claims(t0), nil), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), resource.ErrInvalidToken},
		{"expired", mint(t, ec, with(func(c map[string]any) { c["exp"] = t0.Add(-61 * time.Second).Unix() }), nil), resource.ErrExpired},
		{"not yet valid", mint(t, ec, with(func(c map[string]any) { c["nbf"] = t0.Add(61 * time.Second).Unix() }), nil), resource.ErrNotYetValid},
		{"iat in the future", mint(t, ec, with(func(c map[string]any) { c["iat"] = t0.Add(61 * time.Second).Unix() }), nil), resource.ErrInvalidToken},
		{"no exp", mint(t, ec, with(func(c map[string]any) { delete(c, "exp") }), nil), resource.ErrInvalidToken},
		{"no iat", mint(t, ec, with(func(c map[string]any) { delete(c, "iat") }), nil), resource.ErrInvalidToken},
		{"exp a string", mint(t, ec, with(func(c map[string]any) { c["exp"] = "2100-01-01" }), nil), resource.ErrInvalidToken},
		{"wrong issuer", mint(t, ec, with(func(c map[string]any) { c["iss"] = "https://evil.example.com" }), nil), resource.ErrInvalidToken},
		{"issuer with a trailing slash", mint(t, ec, with(func(c map[string]any) { c["iss"] = is.srv.URL + "/" }), nil), resource.ErrInvalidToken},
		{"wrong audience", mint(t, ec, with(func(c map[string]any) { c["aud"] = "https://other.example.com" }), nil), resource.ErrInvalidToken},
		{"no audience", mint(t, ec, with(func(c map[string]any) { delete(c, "aud") }), nil), resource.ErrInvalidToken},
		{"audience a number", mint(t, ec, with(func(c map[string]any) { c["aud"] = 1 }), nil), resource.ErrInvalidToken},
		{"no sub", mint(t, ec, with(func(c map[string]any) { delete(c, "sub") }), nil), resource.ErrInvalidToken},
		{"no client_id", mint(t, ec, with(func(c map[string]any) { delete(c, "client_id") }), nil), resource.ErrInvalidToken},
		{"no jti", mint(t, ec, with(func(c map[string]any) { delete(c, "jti") }), nil), resource.ErrInvalidToken},
		{"unsupported crit", mint(t, ec, is.claims(t0), map[string]any{"crit": []string{"x"}, "x": 1}), resource.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tt.token)
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("Verify = %v, %v; want %v", c, err, tt.want)
			}
			var e *resource.Error
			if !errors.As(err, &e) || !errors.Is(err, resource.ErrInvalidToken) || e.Reason == "" {
				t.Fatalf("Verify = %#v: want an *Error of an invalid token with a reason", err)
			}
		})
	}
	// Within the leeway.
	for name, mod := range map[string]func(c map[string]any){
		"exp 59 s ago":         func(c map[string]any) { c["exp"] = t0.Add(-59 * time.Second).Unix() },
		"nbf in 59 s":          func(c map[string]any) { c["nbf"] = t0.Add(59 * time.Second).Unix() },
		"iat in 59 s":          func(c map[string]any) { c["iat"] = t0.Add(59 * time.Second).Unix() },
		"no nbf":               func(c map[string]any) { delete(c, "nbf") },
		"aud array":            func(c map[string]any) { c["aud"] = []string{audience} },
		"no scope, no agent":   func(c map[string]any) { delete(c, "scope"); delete(c, "agent") },
		"extra claims ignored": func(c map[string]any) { c["grant_id"] = "grt_1"; c["txn"] = "t" },
	} {
		if _, err := v.Verify(context.Background(), mint(t, ec, with(mod), nil)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNewVerifier(t *testing.T) {
	is := newIssuer(t, newES256(t, "k"))
	for name, p := range map[string]resource.VerifierParams{
		"no issuer":       {Audience: audience},
		"no audience":     {Issuer: is.srv.URL},
		"only HMAC":       {Issuer: is.srv.URL, Audience: audience, Algorithms: []string{"HS256", "none"}},
		"bad JWKS URL":    {Issuer: is.srv.URL, Audience: audience, JWKSURL: "file:///etc/jwks"},
		"bad ExternalURL": {Issuer: is.srv.URL, Audience: audience, ExternalURL: "api.example.com"},
		"wrong issuer":    {Issuer: is.srv.URL + "/", Audience: audience},
		"no metadata":     {Issuer: is.srv.URL + "/tenant", Audience: audience},
	} {
		if _, err := resource.NewVerifier(context.Background(), p); err == nil {
			t.Errorf("%s: NewVerifier succeeded", name)
		}
	}
	// An explicit JWKS URL needs no discovery.
	v, err := resource.NewVerifier(context.Background(), resource.VerifierParams{
		Issuer: "https://issuer.example.com", Audience: audience, JWKSURL: is.srv.URL + "/oauth2/jwks",
	})
	if err != nil || v == nil {
		t.Fatal(err)
	}
}

func TestJWKSCacheControl(t *testing.T) {
	k := newES256(t, "k1")
	tests := []struct {
		name         string
		cacheControl string
		steps        []time.Duration // advance, then verify
		wantFetches  []int           // after each step
	}{
		// max-age: fresh for 60 s, then fetched again.
		{"max-age", "public, max-age=60", []time.Duration{0, 59 * time.Second, time.Second, 30 * time.Second}, []int{1, 1, 2, 2}},
		// no header: DefaultJWKSMaxAge.
		{"default", "", []time.Duration{0, resource.DefaultJWKSMaxAge - time.Second, time.Second}, []int{1, 1, 2}},
		// no-store: fetched whenever needed, but at most every 30 s.
		{"no-store", "no-store", []time.Duration{0, 10 * time.Second, 19 * time.Second, time.Second, 0}, []int{1, 1, 1, 2, 2}},
		{"no-cache", "no-cache", []time.Duration{0, 30 * time.Second}, []int{1, 2}},
		{"max-age=0", "max-age=0", []time.Duration{0, 29 * time.Second, time.Second}, []int{1, 1, 2}},
		{"invalid max-age is stale", "max-age=soon", []time.Duration{0, 30 * time.Second}, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := newIssuer(t, k)
			is.set(func(is *testIssuer) { is.cacheControl = tt.cacheControl })
			clock := &fakeClock{now: t0}
			v := newVerifier(t, is, clock, nil)
			for i, d := range tt.steps {
				clock.Advance(d)
				if _, err := v.Verify(context.Background(), mint(t, k, is.claims(clock.Now()), nil)); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got := is.count(); got != tt.wantFetches[i] {
					t.Fatalf("step %d: %d fetches, want %d", i, got, tt.wantFetches[i])
				}
			}
		})
	}
}

func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	k := newES256(t, "k1")
	is := newIssuer(t, k)
	clock := &fakeClock{now: t0}
	v := newVerifier(t, is, clock, func(p *resource.VerifierParams) { p.MinRefetchInterval = 10 * time.Second })
	forged := mint(t, newES256(t, "k-unknown"), is.claims(t0), nil)
	for i, want := range []int{1, 1, 1} {
		if _, err := v.Verify(context.Background(), forged); !errors.Is(err, resource.ErrUnknownKey) {
			t.Fatalf("Verify = %v, want ErrUnknownKey", err)
		}
		if is.count() != want {
			t.Fatalf("attempt %d: %d fetches, want %d", i, is.count(), want)
		}
		clock.Advance(4 * time.Second)
	}
	if _, err := v.Verify(context.Background(), forged); !errors.Is(err, resource.ErrUnknownKey) || is.count() != 2 {
		t.Fatalf("after the interval: %v, %d fetches, want a second fetch", err, is.count())
	}
}

func TestKeyRotation(t *testing.T) {
	old, next := newES256(t, "k-old"), newEdDSA(t, "k-new")
	is := newIssuer(t, old)
	is.set(func(is *testIssuer) { is.cacheControl = "max-age=3600" })
	clock := &fakeClock{now: t0}
	v := newVerifier(t, is, clock, nil)
	if _, err := v.Verify(context.Background(), mint(t, old, is.claims(t0), nil)); err != nil {
		t.Fatal(err)
	}
	// The issuer publishes the new key and, later, signs with it; the old
	// key leaves the set.
	is.set(func(is *testIssuer) { is.keys = []signingKey{next} })
	clock.Advance(resource.DefaultMinRefetchInterval)
	if _, err := v.Verify(context.Background(), mint(t, next, is.claims(clock.Now()), nil)); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	if is.count() != 2 {
		t.Fatalf("%d fetches, want 2", is.count())
	}
	// Still fresh: the cached set (now without the old key) answers.
	if _, err := v.Verify(context.Background(), mint(t, old, is.claims(clock.Now()), nil)); !errors.Is(err, resource.ErrUnknownKey) {
		t.Fatalf("token of the retired key: %v, want ErrUnknownKey", err)
	}
}

func TestConcurrentVerifiesShareOneFetch(t *testing.T) {
	k := newES256(t, "k1")
	is := newIssuer(t, k)
	clock := &fakeClock{now: t0}
	v := newVerifier(t, is, clock, nil)
	tok := mint(t, k, is.claims(t0), nil)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if is.count() != 1 {
		t.Fatalf("%d fetches, want 1", is.count())
	}
}

func TestKeySetUnavailable(t *testing.T) {
	k := newES256(t, "k1")
	is := newIssuer(t, k)
	is.set(func(is *testIssuer) { is.status = http.StatusInternalServerError; is.cacheControl = "max-age=60" })
	clock := &fakeClock{now: t0}
	v := newVerifier(t, is, clock, nil)
	tok := mint(t, k, is.claims(t0), nil)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, resource.ErrKeySetUnavailable) || errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("Verify = %v, want ErrKeySetUnavailable", err)
	}
	// The issuer recovers; the next fetch waits for the interval.
	is.set(func(is *testIssuer) { is.status = http.StatusOK })
	clock.Advance(resource.DefaultMinRefetchInterval)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	// It fails again once the set is stale: the cached keys keep serving.
	is.set(func(is *testIssuer) { is.status = http.StatusBadGateway })
	clock.Advance(2 * time.Minute)
	if _, err := v.Verify(context.Background(), mint(t, k, is.claims(clock.Now()), nil)); err != nil {
		t.Fatalf("Verify with a stale set and the issuer down = %v", err)
	}
	if is.count() != 3 {
		t.Fatalf("%d fetches, want 3", is.count())
	}
}

func TestVerifyHonoursContext(t *testing.T) {
	k := newES256(t, "k1")
	block := make(chan struct{})
	defer close(block)
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		<-block
		return nil, errors.New("unreachable")
	})}
	v, err := resource.NewVerifier(context.Background(), resource.VerifierParams{
		Issuer: "https://issuer.example.com", Audience: audience, JWKSURL: "https://issuer.example.com/jwks", HTTPClient: hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := v.Verify(ctx, mint(t, k, map[string]any{}, nil)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify = %v, want the context's error", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
