package oauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
	"github.com/agentid/agentid/sdk/dpop"
)

func TestTokenClientSecretBasic(t *testing.T) {
	e := sqliteEnv(t)
	e.clk.Advance(30 * time.Second)
	resp, oerr := e.srv.Token(e.ctx, e.basicRequest("scope", "tickets:read unknown", "resource", resourceA))
	if oerr != nil {
		t.Fatal(oerr)
	}
	if resp.TokenType != "Bearer" || resp.ExpiresIn != 300 || resp.Scope != "tickets:read" {
		t.Errorf("response = %+v", resp)
	}
	c := e.claims(resp.AccessToken)
	now := e.clk.Now().Unix()
	want := map[string]any{
		"iss": testIssuer, "sub": "spiffe://example.org/agent/bot", "aud": resourceA,
		"client_id": e.agent.ID, "iat": float64(now), "nbf": float64(now), "exp": float64(now + 300),
		"jti": c["jti"], "scope": "tickets:read",
		"agent": map[string]any{"id": e.agent.ID, "name": "bot"},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if jti, _ := c["jti"].(string); !strings.HasPrefix(jti, "tok_") {
		t.Errorf("jti = %q", jti)
	}
	issued := e.events("credential.issued")
	if len(issued) != 1 || issued[0]["outcome"] != "success" {
		t.Fatalf("credential.issued events = %v", issued)
	}
	details := issued[0]["details"].(map[string]any)
	if details["jti"] != c["jti"] || details["token_type"] != "Bearer" {
		t.Errorf("issued details = %v", details)
	}
	auth := e.events("client.authenticated")
	if len(auth) != 1 || auth[0]["details"].(map[string]any)["method"] != oauth.MethodClientSecretBasic {
		t.Errorf("client.authenticated = %v", auth)
	}
	if tr := e.trail(); strings.Contains(tr, e.secret) || strings.Contains(tr, resp.AccessToken) {
		t.Error("the audit trail holds the client secret or the token")
	}
}

func TestTokenClientSecretPost(t *testing.T) {
	e := sqliteEnv(t)
	r := &oauth.Request{Form: form("grant_type", "client_credentials", "client_id", e.agent.ID, "client_secret", e.secret)}
	resp, oerr := e.srv.Token(e.ctx, r)
	if oerr != nil {
		t.Fatal(oerr)
	}
	c := e.claims(resp.AccessToken)
	if diff := cmp.Diff([]any{resourceA, resourceB}, c["aud"]); diff != "" {
		t.Errorf("aud without resource (-want +got):\n%s", diff)
	}
	if c["scope"] != "tickets:read tickets:write" {
		t.Errorf("scope without scope parameter = %v", c["scope"])
	}
}

func TestTokenPrivateKeyJWT(t *testing.T) {
	e := sqliteEnv(t)
	for _, aud := range []any{testIssuer, testIssuer + "/oauth2/token", []string{"https://other", testIssuer}} {
		raw := e.assertion(func(a *assertion) { a.claims["aud"] = aud })
		resp, oerr := e.srv.Token(e.ctx, jwtRequest(raw, "reasoning_ref", "plan:42"))
		if oerr != nil {
			t.Fatalf("aud %v: %v", aud, oerr)
		}
		if c := e.claims(resp.AccessToken); c["reasoning_ref"] != "plan:42" {
			t.Errorf("reasoning_ref = %v", c["reasoning_ref"])
		}
	}
	// Without kid, every registered key of the algorithm is tried.
	raw := e.assertion(func(a *assertion) { delete(a.headers, "kid") })
	if _, oerr := e.srv.Token(e.ctx, jwtRequest(raw)); oerr != nil {
		t.Fatalf("no kid: %v", oerr)
	}
	// Replay.
	_, oerr := e.srv.Token(e.ctx, jwtRequest(raw))
	wantErr(t, oerr, oauth.CodeInvalidClient, http.StatusBadRequest)
	if got := e.events("client.authenticated"); got[len(got)-1]["reason"] != "assertion jti was already used" {
		t.Errorf("replay reason = %v", got[len(got)-1]["reason"])
	}
}

func TestTokenAssertionReplayConcurrent(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := newEnv(t, st)
			raw := e.assertion(nil)
			var ok, refused atomic.Int32
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					_, oerr := e.srv.Token(e.ctx, jwtRequest(raw))
					switch {
					case oerr == nil:
						ok.Add(1)
					case oerr.Code == oauth.CodeInvalidClient:
						refused.Add(1)
					default:
						t.Errorf("unexpected error %v", oerr)
					}
				})
			}
			wg.Wait()
			if ok.Load() != 1 || refused.Load() != 19 {
				t.Errorf("successes = %d, refusals = %d; want 1 and 19", ok.Load(), refused.Load())
			}
		})
	}
}

func wantErr(t *testing.T, oerr *oauth.Error, code string, status int) {
	t.Helper()
	if oerr == nil {
		t.Fatalf("no error, want %s", code)
	}
	if oerr.Code != code || oerr.Status != status {
		t.Fatalf("error = %s (%d) %q, want %s (%d)", oerr.Code, oerr.Status, oerr.Description, code, status)
	}
}

func TestTokenBadAssertions(t *testing.T) {
	e := sqliteEnv(t)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&e.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clk.Now()
	tests := []struct {
		name   string
		edit   func(*assertion)
		raw    func() string
		reason string
	}{
		{name: "alg none", raw: func() string {
			enc := base64.RawURLEncoding
			h := enc.EncodeToString([]byte(`{"alg":"none","kid":"` + e.kid + `"}`))
			p := enc.EncodeToString([]byte(`{"iss":"` + e.agent.ID + `","sub":"` + e.agent.ID + `","aud":"` + testIssuer + `","exp":` + jsonNum(now.Add(time.Minute).Unix()) + `,"jti":"x1"}`))
			return h + "." + p + "."
		}, reason: "client assertion is not a JWS with an allowed algorithm"},
		{name: "HS256 with the public key", edit: func(a *assertion) { a.alg, a.key = jose.HS256, pubDER },
			reason: "client assertion is not a JWS with an allowed algorithm"},
		{name: "unknown kid", edit: func(a *assertion) { a.headers["kid"] = "nope" }, reason: "unknown key id"},
		{name: "embedded jwk of another key", edit: func(a *assertion) { a.key, a.embed = other, true; delete(a.headers, "kid") },
			reason: "client assertion signature does not verify with a registered key"},
		{name: "jku header", edit: func(a *assertion) { a.key = other; a.headers["jku"] = "https://evil.example/jwks" },
			reason: "client assertion signature does not verify with a registered key"},
		{name: "x5u header", edit: func(a *assertion) { a.key = other; a.headers["x5u"] = "https://evil.example/cert" },
			reason: "client assertion signature does not verify with a registered key"},
		{name: "expired", edit: func(a *assertion) { a.claims["exp"] = now.Add(-2 * time.Minute).Unix() }, reason: "assertion expired"},
		{name: "not yet valid", edit: func(a *assertion) { a.claims["nbf"] = now.Add(2 * time.Minute).Unix() }, reason: "assertion is not yet valid"},
		{name: "far-future iat", edit: func(a *assertion) { a.claims["iat"] = now.Add(time.Hour).Unix() }, reason: "assertion iat is in the future"},
		{name: "exp too far ahead", edit: func(a *assertion) { a.claims["exp"] = now.Add(time.Hour).Unix() }, reason: "assertion exp is more than 5m0s ahead"},
		{name: "no exp", edit: func(a *assertion) { delete(a.claims, "exp") }, reason: "assertion has no exp"},
		{name: "wrong aud", edit: func(a *assertion) { a.claims["aud"] = "https://other.example" },
			reason: "assertion aud must contain the issuer or the token endpoint"},
		{name: "sub is not iss", edit: func(a *assertion) { a.claims["sub"] = "agt_other" }, reason: "assertion iss and sub must both be the client_id"},
		{name: "unknown client", edit: func(a *assertion) { a.claims["iss"], a.claims["sub"] = "agt_unknown", "agt_unknown" }, reason: "unknown client"},
		{name: "no jti", edit: func(a *assertion) { delete(a.claims, "jti") }, reason: "assertion has no jti"},
		{name: "oversized", edit: func(a *assertion) { a.claims["pad"] = strings.Repeat("x", oauth.MaxAssertionBytes) },
			reason: "client assertion is longer than 8192 bytes"},
		{name: "garbage", raw: func() string { return "not.a.jwt" }, reason: "client assertion is not a JWS with an allowed algorithm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.events("client.authenticated"))
			raw := ""
			if tc.raw != nil {
				raw = tc.raw()
			} else {
				raw = e.assertion(tc.edit)
			}
			_, oerr := e.srv.Token(e.ctx, jwtRequest(raw))
			wantErr(t, oerr, oauth.CodeInvalidClient, http.StatusBadRequest)
			if oerr.Description != "client authentication failed" {
				t.Errorf("description %q tells the client too much", oerr.Description)
			}
			evs := e.events("client.authenticated")
			if len(evs) != before+1 {
				t.Fatalf("%d new client.authenticated events, want 1", len(evs)-before)
			}
			if got := evs[len(evs)-1]; got["outcome"] != "failure" || got["reason"] != tc.reason {
				t.Errorf("event outcome %v reason %q, want failure %q", got["outcome"], got["reason"], tc.reason)
			}
		})
	}
	if n := len(e.events("credential.issued")); n != 0 {
		t.Errorf("%d tokens issued", n)
	}
}

func jsonNum(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestTokenBadRequests(t *testing.T) {
	e := sqliteEnv(t)
	good := e.basicRequest()
	tests := []struct {
		name   string
		req    *oauth.Request
		code   string
		status int
	}{
		{"missing grant_type", &oauth.Request{Form: form("client_id", "x"), Basic: good.Basic}, oauth.CodeInvalidRequest, 400},
		{"unsupported grant_type", &oauth.Request{Form: form("grant_type", "password"), Basic: good.Basic}, oauth.CodeUnsupportedGrantType, 400},
		{"repeated parameter", &oauth.Request{Form: form("grant_type", "client_credentials", "scope", "a", "scope", "b"), Basic: good.Basic}, oauth.CodeInvalidRequest, 400},
		{"repeated grant_type", &oauth.Request{Form: form("grant_type", "client_credentials", "grant_type", "client_credentials"), Basic: good.Basic}, oauth.CodeInvalidRequest, 400},
		{"two auth methods", &oauth.Request{Form: form("grant_type", "client_credentials", "client_secret", e.secret, "client_id", e.agent.ID), Basic: good.Basic}, oauth.CodeInvalidRequest, 400},
		{"no client auth", &oauth.Request{Form: form("grant_type", "client_credentials", "client_id", e.agent.ID)}, oauth.CodeInvalidClient, 400},
		{"wrong secret (basic)", &oauth.Request{Form: form("grant_type", "client_credentials"), Basic: &oauth.BasicCredentials{User: e.agent.ID, Password: "aidcs_wrong"}}, oauth.CodeInvalidClient, 401},
		{"wrong secret (post)", &oauth.Request{Form: form("grant_type", "client_credentials", "client_id", e.agent.ID, "client_secret", "nope")}, oauth.CodeInvalidClient, 400},
		{"basic not form-encoded", &oauth.Request{Form: form("grant_type", "client_credentials"), Basic: &oauth.BasicCredentials{User: "%zz", Password: "x"}}, oauth.CodeInvalidClient, 401},
		{"bad assertion type", &oauth.Request{Form: form("grant_type", "client_credentials", "client_assertion_type", "urn:x", "client_assertion", "a.b.c")}, oauth.CodeInvalidClient, 400},
		{"ungranted scope", e.basicRequest("scope", "admin"), oauth.CodeInvalidScope, 400},
		{"malformed scope", e.basicRequest("scope", "a\"b"), oauth.CodeInvalidScope, 400},
		{"resource not allowed", e.basicRequest("resource", "https://evil.example"), oauth.CodeInvalidTarget, 400},
		{"resource with fragment", e.basicRequest("resource", resourceA+"#x"), oauth.CodeInvalidTarget, 400},
		{"relative resource", e.basicRequest("resource", "/api"), oauth.CodeInvalidTarget, 400},
		{"bad expires_in", e.basicRequest("expires_in", "-5"), oauth.CodeInvalidRequest, 400},
		{"bad reasoning_ref", e.basicRequest("reasoning_ref", "line\nbreak"), oauth.CodeInvalidRequest, 400},
		{"bad DPoP proof", &oauth.Request{Form: good.Form, Basic: good.Basic, DPoP: []string{"x.y.z"}}, oauth.CodeInvalidDPoPProof, 400},
		{"two DPoP proofs", &oauth.Request{Form: good.Form, Basic: good.Basic, DPoP: []string{"x.y.z", "x.y.z"}}, oauth.CodeInvalidDPoPProof, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, oerr := e.srv.Token(e.ctx, tc.req)
			wantErr(t, oerr, tc.code, tc.status)
			if tc.status == 401 && oerr.Challenge == "" {
				t.Error("401 without a WWW-Authenticate challenge")
			}
		})
	}
	if n := len(e.events("credential.issued")); n != 5+2 {
		// scope ×2, resource ×3, expires_in, reasoning_ref happen before
		// or after authentication: only those after it record a denial.
		t.Logf("credential.issued failure events: %d", n)
	}
	for _, ev := range e.events("credential.issued") {
		if ev["outcome"] != "failure" {
			t.Errorf("a bad request issued a token: %v", ev)
		}
	}
}

func TestTokenAgentStates(t *testing.T) {
	e := sqliteEnv(t)
	if _, err := e.ids.SuspendAgent(e.ctx, adminOrigin(), identity.TransitionParams{Ref: e.agent.ID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	_, oerr := e.srv.Token(e.ctx, e.basicRequest())
	wantErr(t, oerr, oauth.CodeInvalidClient, http.StatusUnauthorized)
	_, oerr = e.srv.Token(e.ctx, jwtRequest(e.assertion(nil)))
	wantErr(t, oerr, oauth.CodeInvalidClient, http.StatusBadRequest)
	if ev := e.events("client.authenticated"); ev[len(ev)-1]["reason"] != "agent is suspended" {
		t.Errorf("reason = %v", ev[len(ev)-1]["reason"])
	}

	exp, _, _, secret := e.newAgent("expiring", func(p *identity.CreateAgentParams) { p.ExpiresAt = e.clk.Now().Add(time.Minute) })
	e.clk.Advance(2 * time.Minute)
	_, oerr = e.srv.Token(e.ctx, &oauth.Request{Form: form("grant_type", "client_credentials", "client_id", exp.ID, "client_secret", secret)})
	wantErr(t, oerr, oauth.CodeInvalidClient, http.StatusBadRequest)
}

func TestTokenTTL(t *testing.T) {
	e := sqliteEnv(t)
	for _, tc := range []struct {
		ask  string
		want int64
	}{{"", 300}, {"60", 60}, {"1800", 1800}, {"999999", 3600}} {
		resp, oerr := e.srv.Token(e.ctx, e.basicRequest("expires_in", tc.ask))
		if oerr != nil {
			t.Fatal(oerr)
		}
		if resp.ExpiresIn != tc.want {
			t.Errorf("expires_in=%q: got %d, want %d", tc.ask, resp.ExpiresIn, tc.want)
		}
	}
}

func TestTokenDPoP(t *testing.T) {
	e := sqliteEnv(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dpop.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	proof := func(url string) string {
		p, err := signer.Proof(http.MethodPost, url, dpop.ProofParams{Now: e.clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	r := e.basicRequest()
	r.DPoP = []string{proof(testIssuer + oauth.TokenPath)}
	resp, oerr := e.srv.Token(e.ctx, r)
	if oerr != nil {
		t.Fatal(oerr)
	}
	if resp.TokenType != "DPoP" {
		t.Errorf("token_type = %q", resp.TokenType)
	}
	c := e.claims(resp.AccessToken)
	if diff := cmp.Diff(map[string]any{"jkt": signer.Thumbprint()}, c["cnf"]); diff != "" {
		t.Errorf("cnf (-want +got):\n%s", diff)
	}
	// The same proof again is a replay.
	_, oerr = e.srv.Token(e.ctx, r)
	wantErr(t, oerr, oauth.CodeInvalidDPoPProof, 400)
	// A proof for another URL.
	r.DPoP = []string{proof("https://other.example/oauth2/token")}
	_, oerr = e.srv.Token(e.ctx, r)
	wantErr(t, oerr, oauth.CodeInvalidDPoPProof, 400)

	// An agent that requires DPoP gets nothing without a proof.
	a, _, _, secret := e.newAgent("strict", func(p *identity.CreateAgentParams) { p.RequireDPoP = true })
	strict := &oauth.Request{Form: form("grant_type", "client_credentials", "client_id", a.ID, "client_secret", secret)}
	_, oerr = e.srv.Token(e.ctx, strict)
	wantErr(t, oerr, oauth.CodeInvalidDPoPProof, 400)
	strict.DPoP = []string{proof(testIssuer + oauth.TokenPath)}
	if _, oerr := e.srv.Token(e.ctx, strict); oerr != nil {
		t.Fatal(oerr)
	}
}

func TestTokenDPoPNonce(t *testing.T) {
	e := sqliteEnv(t)
	nonces, err := oauth.NewNonces(make([]byte, 32), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = e.withParams(func(p *oauth.Params) { p.Nonces = nonces })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := dpop.NewSigner(key)
	r := e.basicRequest()
	p, _ := signer.Proof(http.MethodPost, testIssuer+oauth.TokenPath, dpop.ProofParams{Now: e.clk.Now()})
	r.DPoP = []string{p}
	_, oerr := e.srv.Token(e.ctx, r)
	wantErr(t, oerr, oauth.CodeUseDPoPNonce, 400)
	if oerr.Nonce == "" {
		t.Fatal("use_dpop_nonce without a nonce")
	}
	p, _ = signer.Proof(http.MethodPost, testIssuer+oauth.TokenPath, dpop.ProofParams{Now: e.clk.Now(), Nonce: oerr.Nonce})
	r.DPoP = []string{p}
	resp, oerr := e.srv.Token(e.ctx, r)
	if oerr != nil {
		t.Fatal(oerr)
	}
	// RFC 9449 §8.2: the success carries the current nonce; once the
	// window moves on it is a new one, which the next proof can use.
	if resp.Nonce != nonces.Nonce(e.clk.Now()) {
		t.Fatalf("success nonce = %q, want the current one", resp.Nonce)
	}
	e.clk.Advance(time.Minute)
	p, _ = signer.Proof(http.MethodPost, testIssuer+oauth.TokenPath, dpop.ProofParams{Now: e.clk.Now(), Nonce: resp.Nonce})
	r.DPoP = []string{p}
	next, oerr := e.srv.Token(e.ctx, r)
	if oerr != nil {
		t.Fatal(oerr)
	}
	if next.Nonce == resp.Nonce || !nonces.Valid(next.Nonce, e.clk.Now()) {
		t.Fatalf("nonce after a window = %q (before %q), want a new valid one", next.Nonce, resp.Nonce)
	}
	// Without a proof, no nonce.
	if plain, oerr := e.srv.Token(e.ctx, e.basicRequest()); oerr != nil || plain.Nonce != "" {
		t.Fatalf("bearer request = %+v, %v; want no nonce", plain, oerr)
	}
}

func TestTokenFailsClosedWhenAuditFails(t *testing.T) {
	e := sqliteEnv(t)
	e.srv = e.withParams(func(p *oauth.Params) { p.Store = failingAudit{e.st} })
	for name, r := range map[string]*oauth.Request{
		"success":      e.basicRequest(),
		"auth failure": {Form: form("grant_type", "client_credentials", "client_id", e.agent.ID, "client_secret", "wrong")},
	} {
		resp, oerr := e.srv.Token(e.ctx, r)
		if oerr == nil || oerr.Code != oauth.CodeServerError || oerr.Status != 500 || resp.AccessToken != "" {
			t.Errorf("%s: got %+v, %v; want server_error and no token", name, resp, oerr)
		}
	}
	raw := e.assertion(nil)
	if _, oerr := e.srv.Token(e.ctx, jwtRequest(raw)); oerr == nil {
		t.Fatal("token issued without audit")
	}
	// The assertion's jti was not spent by the failed request.
	e.srv = e.withParams(nil)
	if _, oerr := e.srv.Token(e.ctx, jwtRequest(raw)); oerr != nil {
		t.Errorf("assertion refused after an unrecorded attempt: %v", oerr)
	}
}

var _ = store.ErrNotFound
