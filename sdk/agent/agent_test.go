package agent_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/agent"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

// constReader yields one byte forever: it pins the renewal jitter (0x00:
// 50% of the lifetime, 0xff: 80%).
type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

func newSource(t *testing.T, as *fakeAS, key *ecdsa.PrivateKey, mod func(p *agent.TokenSourceParams)) *agent.TokenSource {
	t.Helper()
	p := agent.TokenSourceParams{
		Issuer:   as.srv.URL,
		ClientID: clientID,
		Key:      key,
		KeyID:    as.kid,
		Clock:    as.clock.Now,
		Rand:     constReader(0),
	}
	if mod != nil {
		mod(&p)
	}
	src, err := agent.NewTokenSource(p)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestTokenSourceDiscoversAndAuthenticates(t *testing.T) {
	key := newKey(t)
	as := newFakeAS(t, &key.PublicKey, newClock())
	src := newSource(t, as, key, func(p *agent.TokenSourceParams) {
		p.Scopes = []string{"tickets:read", "tickets:write"}
		p.Resources = []string{"https://api.example.com", "https://mcp.example.com"}
		p.ReasoningRef = "plan-42"
	})
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "tok-1." || tok.TokenType != "Bearer" || tok.Extra("scope") != "tickets:read tickets:write" {
		t.Fatalf("token = %+v", tok)
	}
	if want := as.clock.Now().Add(100 * time.Second); !tok.Expiry.Equal(want) {
		t.Fatalf("Expiry = %v, want %v", tok.Expiry, want)
	}
	f := as.forms[0]
	got := map[string][]string{"scope": f["scope"], "resource": f["resource"], "reasoning_ref": f["reasoning_ref"]}
	want := map[string][]string{
		"scope":         {"tickets:read tickets:write"},
		"resource":      {"https://api.example.com", "https://mcp.example.com"},
		"reasoning_ref": {"plan-42"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("form (-want +got):\n%s", diff)
	}
	// RFC 7523 §2.2: the audience names the issuer and the token endpoint.
	a, err := jwt.ParseSigned(f.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	if err := a.Claims(&key.PublicKey, &c); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(jwt.Audience{as.srv.URL, as.tokenURL()}, c.Audience); diff != "" {
		t.Fatalf("aud (-want +got):\n%s", diff)
	}
}

func TestTokenSourceWithTokenURL(t *testing.T) {
	key := newKey(t)
	as := newFakeAS(t, &key.PublicKey, newClock())
	src := newSource(t, as, key, func(p *agent.TokenSourceParams) { p.Issuer, p.TokenURL = "", as.tokenURL() })
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	a, err := jwt.ParseSigned(as.forms[0].Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	if err := a.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(jwt.Audience{as.tokenURL()}, c.Audience); diff != "" {
		t.Fatalf("aud (-want +got):\n%s", diff)
	}
}

func TestTokenSourceKeyTypes(t *testing.T) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  agent.TokenSourceParams
		pub  any
	}{
		{"Ed25519", agent.TokenSourceParams{Key: ed}, ed.Public()},
		{"RSA", agent.TokenSourceParams{Key: rk}, &rk.PublicKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := newFakeAS(t, tc.pub, newClock())
			src, err := agent.NewTokenSource(agent.TokenSourceParams{
				TokenURL: as.tokenURL(), ClientID: clientID, Key: tc.key.Key, KeyID: as.kid, Clock: as.clock.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := src.Token(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRefreshTiming(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jitter byte
		at     time.Duration // renewal point for a 100 s token
	}{
		{"earliest", 0x00, 50 * time.Second},
		{"latest", 0xff, 80 * time.Second},
		{"middle", 0x80, 66 * time.Second}, // 65.06 s
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := newKey(t)
			clock := newClock()
			as := newFakeAS(t, &key.PublicKey, clock)
			src := newSource(t, as, key, func(p *agent.TokenSourceParams) { p.Rand = constReader(tc.jitter) })
			get := func() *oauth2.Token {
				t.Helper()
				tok, err := src.Token()
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			first := get()
			clock.Advance(tc.at - time.Second)
			if tok := get(); tok.AccessToken != first.AccessToken || as.count() != 1 {
				t.Fatalf("before the renewal point: token %q after %d requests", tok.AccessToken, as.count())
			}
			clock.Advance(time.Second)
			if tok := get(); tok.AccessToken == first.AccessToken || as.count() != 2 {
				t.Fatalf("at the renewal point: token %q after %d requests", tok.AccessToken, as.count())
			}
		})
	}
}

func TestSingleFlight(t *testing.T) {
	key := newKey(t)
	as := newFakeAS(t, &key.PublicKey, newClock())
	as.gate = make(chan struct{})
	src := newSource(t, as, key, nil)
	const callers = 20
	var wg sync.WaitGroup
	toks := make([]string, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := src.Token()
			if err != nil {
				t.Error(err)
				return
			}
			toks[i] = tok.AccessToken
		}()
	}
	time.Sleep(50 * time.Millisecond) // let every caller queue up
	close(as.gate)
	wg.Wait()
	if as.count() != 1 {
		t.Fatalf("%d token requests, want 1", as.count())
	}
	for _, tok := range toks {
		if tok != "tok-1." {
			t.Fatalf("tokens = %v", toks)
		}
	}
}

func TestCallerContextBoundsOnlyItsWait(t *testing.T) {
	key := newKey(t)
	as := newFakeAS(t, &key.PublicKey, newClock())
	as.gate = make(chan struct{})
	src := newSource(t, as, key, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.TokenContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("TokenContext(cancelled) = %v", err)
	}
	close(as.gate)
	if tok, err := src.Token(); err != nil || tok.AccessToken != "tok-1." || as.count() != 1 {
		t.Fatalf("Token = %v, %v after %d requests: want the renewal the first caller started", tok, err, as.count())
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name string
		fail func(w http.ResponseWriter)
		want *agent.Error // nil: a non-*Error error
	}{
		{"invalid_client", func(w http.ResponseWriter) {
			oauthError(w, http.StatusUnauthorized, "invalid_client", "client assertion signature does not verify")
		}, &agent.Error{Code: "invalid_client", Description: "client assertion signature does not verify", StatusCode: 401}},
		{"invalid_scope", func(w http.ResponseWriter) { oauthError(w, http.StatusBadRequest, "invalid_scope", "") },
			&agent.Error{Code: "invalid_scope", StatusCode: 400}},
		{"JSON with charset", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_target","error_description":"bad\nresource"}`)
		}, &agent.Error{Code: "invalid_target", Description: "bad?resource", StatusCode: 400}},
		{"rate limited", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "7")
			oauthError(w, http.StatusTooManyRequests, "temporarily_unavailable", "too many failed authentications")
		}, &agent.Error{Code: "temporarily_unavailable", Description: "too many failed authentications", StatusCode: 429, RetryAfter: 7 * time.Second}},
		{"Retry-After as a date", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", time.Unix(1_700_000_000, 0).Add(90*time.Second).UTC().Format(http.TimeFormat))
			oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "")
		}, &agent.Error{Code: "temporarily_unavailable", StatusCode: 503, RetryAfter: 90 * time.Second}},
		{"Retry-After malformed", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "soon")
			oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "")
		}, &agent.Error{Code: "temporarily_unavailable", StatusCode: 503}},
		{"proxy error page", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>bad gateway</html>")
		}, &agent.Error{Description: "Bad Gateway", StatusCode: 502}},
		{"malformed success", func(w http.ResponseWriter) { writeJSON(w, 200, map[string]any{"token_type": "Bearer"}) }, nil},
		{"no expires_in", func(w http.ResponseWriter) {
			writeJSON(w, 200, map[string]any{"access_token": "x", "token_type": "Bearer"})
		}, nil},
		{"unknown token_type", func(w http.ResponseWriter) {
			writeJSON(w, 200, map[string]any{"access_token": "x", "token_type": "mac", "expires_in": 60})
		}, nil},
		{"DPoP token without a DPoP key", func(w http.ResponseWriter) {
			writeJSON(w, 200, map[string]any{"access_token": "x", "token_type": "DPoP", "expires_in": 60})
		}, nil},
		{"not JSON", func(w http.ResponseWriter) { _, _ = io.WriteString(w, "{") }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newKey(t)
			as := newFakeAS(t, &key.PublicKey, newClock())
			as.fail = tt.fail
			_, err := newSource(t, as, key, nil).Token()
			var e *agent.Error
			switch {
			case err == nil:
				t.Fatal("Token succeeded")
			case tt.want == nil && errors.As(err, &e):
				t.Fatalf("Token = %#v, want a non-OAuth error", e)
			case tt.want != nil:
				if !errors.As(err, &e) {
					t.Fatalf("Token = %v, want *agent.Error", err)
				}
				if diff := cmp.Diff(tt.want, e); diff != "" {
					t.Fatalf("error (-want +got):\n%s", diff)
				}
			}
			if strings.Contains(err.Error(), as.forms[0].Get("client_assertion")) {
				t.Fatal("the error carries the client assertion")
			}
		})
	}
}

func TestKeepsServingWhileRenewalFails(t *testing.T) {
	key := newKey(t)
	clock := newClock()
	as := newFakeAS(t, &key.PublicKey, clock)
	src := newSource(t, as, key, nil)
	first, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	as.mu.Lock()
	as.fail = func(w http.ResponseWriter) {
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "")
	}
	as.mu.Unlock()
	clock.Advance(60 * time.Second) // past the renewal point, 40 s left
	tok, err := src.Token()
	if err != nil || tok.AccessToken != first.AccessToken {
		t.Fatalf("Token during an outage = %v, %v: want the cached token", tok, err)
	}
	requests := len(as.forms)
	if _, err := src.Token(); err != nil || len(as.forms) != requests {
		t.Fatalf("Token right after a failed renewal: %v, %d requests: want no new request", err, len(as.forms)-requests)
	}
	clock.Advance(5 * time.Second) // the retry point: a tenth of the 40 s left
	if _, err := src.Token(); err != nil || len(as.forms) != requests+1 {
		t.Fatalf("Token at the retry point: %v, %d requests, want 1 retry", err, len(as.forms)-requests)
	}
	clock.Advance(40 * time.Second) // expired
	var e *agent.Error
	if _, err := src.Token(); !errors.As(err, &e) || e.Code != "temporarily_unavailable" {
		t.Fatalf("Token after expiry = %v, want the server's error", err)
	}
}

// TestHonoursRetryAfter: after an answer with Retry-After the source
// sends no token request before it has passed, whether or not it holds a
// valid token.
func TestHonoursRetryAfter(t *testing.T) {
	key := newKey(t)
	clock := newClock()
	as := newFakeAS(t, &key.PublicKey, clock)
	limited := func(secs string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", secs)
			oauthError(w, http.StatusTooManyRequests, "temporarily_unavailable", "")
		}
	}
	requests := func() int {
		as.mu.Lock()
		defer as.mu.Unlock()
		return len(as.forms)
	}
	setFail := func(f func(w http.ResponseWriter)) {
		as.mu.Lock()
		defer as.mu.Unlock()
		as.fail = f
	}

	// No token yet: the error, then the same error without a request.
	setFail(limited("3"))
	src := newSource(t, as, key, nil)
	var e *agent.Error
	if _, err := src.Token(); !errors.As(err, &e) || e.StatusCode != http.StatusTooManyRequests || e.RetryAfter != 3*time.Second {
		t.Fatalf("Token = %v, want a 429 *Error with RetryAfter 3s", err)
	}
	for range 3 {
		if _, err := src.Token(); !errors.As(err, &e) || e.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("Token within Retry-After = %v, want the same error", err)
		}
	}
	if n := requests(); n != 1 {
		t.Fatalf("%d token requests within Retry-After, want 1", n)
	}
	clock.Advance(3 * time.Second)
	setFail(nil)
	if _, err := src.Token(); err != nil || requests() != 2 {
		t.Fatalf("Token after Retry-After = %v (%d requests), want a token from a second request", err, requests())
	}

	// A valid token held: it is served, and the renewal waits for the
	// server's time rather than a tenth of the token's remaining life.
	clock.Advance(60 * time.Second) // past the renewal point, 40 s left
	setFail(limited("20"))
	if _, err := src.Token(); err != nil || requests() != 3 {
		t.Fatalf("Token at renewal = %v (%d requests), want the cached token after one request", err, requests())
	}
	clock.Advance(5 * time.Second) // a tenth of the life left would retry here
	if _, err := src.Token(); err != nil || requests() != 3 {
		t.Fatalf("Token before Retry-After = %v (%d requests), want the cached token, no request", err, requests())
	}
	clock.Advance(15 * time.Second)
	if _, err := src.Token(); err != nil || requests() != 4 {
		t.Fatalf("Token after Retry-After = %v (%d requests), want one more request", err, requests())
	}
}

func TestNewTokenSourceRejects(t *testing.T) {
	key := newKey(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]agent.TokenSourceParams{
		"no client id": {TokenURL: "https://as.example.com/token", Key: key},
		"no endpoint":  {ClientID: clientID, Key: key},
		"bad issuer":   {Issuer: "as.example.com", ClientID: clientID, Key: key},
		"no key":       {TokenURL: "https://as.example.com/token", ClientID: clientID},
		"P-384":        {TokenURL: "https://as.example.com/token", ClientID: clientID, Key: p384},
		"no key file":  {TokenURL: "https://as.example.com/token", ClientID: clientID, KeyFile: filepath.Join(t.TempDir(), "none.pem")},
	} {
		if _, err := agent.NewTokenSource(p); err == nil {
			t.Errorf("%s: NewTokenSource succeeded", name)
		}
	}
}

func TestDiscovery(t *testing.T) {
	key := newKey(t)
	as := newFakeAS(t, &key.PublicKey, newClock())
	tests := []struct {
		name    string
		path    string // the issuer's path
		answer  func(issuer string) (int, map[string]any)
		wantErr bool
	}{
		{"issuer with a path (RFC 8414 §3.1)", "/tenant", func(iss string) (int, map[string]any) {
			return 200, map[string]any{"issuer": iss, "token_endpoint": as.tokenURL()}
		}, false},
		{"another issuer", "", func(string) (int, map[string]any) {
			return 200, map[string]any{"issuer": "https://evil.example.com", "token_endpoint": as.tokenURL()}
		}, true},
		{"no token endpoint", "", func(iss string) (int, map[string]any) { return 200, map[string]any{"issuer": iss} }, true},
		{"not found", "", func(string) (int, map[string]any) { return 404, map[string]any{} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var issuer string
			md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/.well-known/oauth-authorization-server"+tt.path {
					http.NotFound(w, r)
					return
				}
				status, body := tt.answer(issuer)
				writeJSON(w, status, body)
			}))
			defer md.Close()
			issuer = md.URL + tt.path
			src := newSource(t, as, key, func(p *agent.TokenSourceParams) { p.Issuer = issuer })
			_, err := src.Token()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Token = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestLoadPrivateKey(t *testing.T) {
	dir := t.TempDir()
	ec := newKey(t)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k any) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	block := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	files := map[string][]byte{
		"ec-pkcs8.pem":  block("PRIVATE KEY", pkcs8(ec)),
		"ec-sec1.pem":   append(block("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}), block("EC PRIVATE KEY", sec1)...),
		"ed25519.pem":   block("PRIVATE KEY", pkcs8(ed)),
		"rsa-pkcs1.pem": block("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)),
		"encrypted.pem": block("ENCRYPTED PRIVATE KEY", []byte{1}),
		"cert.pem":      block("CERTIFICATE", []byte{1}),
		"garbage.pem":   block("PRIVATE KEY", []byte{1, 2, 3}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]any{"ec-pkcs8.pem": ec.Public(), "ec-sec1.pem": ec.Public(), "ed25519.pem": ed.Public(), "rsa-pkcs1.pem": rk.Public()} {
		k, err := agent.LoadPrivateKey(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(want) {
			t.Fatalf("%s: another key", name)
		}
	}
	for _, name := range []string{"encrypted.pem", "cert.pem", "garbage.pem", "missing.pem"} {
		if _, err := agent.LoadPrivateKey(filepath.Join(dir, name)); err == nil {
			t.Errorf("LoadPrivateKey(%s) succeeded", name)
		}
	}
	as := newFakeAS(t, ec.Public(), newClock())
	src, err := agent.NewTokenSource(agent.TokenSourceParams{
		TokenURL: as.tokenURL(), ClientID: clientID, KeyFile: filepath.Join(dir, "ec-sec1.pem"), KeyID: as.kid, Clock: as.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
}
