package oauth_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/internal/store/storetest"
)

// txnXEnv is an xenv whose server issues transaction tokens for testTD.
func txnXEnv(t *testing.T) *xenv {
	t.Helper()
	x := sqliteXEnv(t)
	x.params.TrustDomain = testTD
	x.srv = x.withParams(nil)
	return x
}

// txnReq asks a transaction token for subject (a person's token unless
// kv change subject_token_type).
func (x *xenv) txnReq(a actor, subject string, kv ...string) *oauth.Request {
	r := x.exchangeReq(a, subject, append([]string{"requested_token_type", oauth.TokenTypeTxnToken,
		"audience", testTD}, kv...)...)
	r.Origin = audit.Origin{Source: audit.Source{IP: "192.0.2.7"}, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	return r
}

// txnClaims verifies a transaction token with the published key
// (independently of credential.ParseTxnToken), checks its header, and
// returns its claims.
func (x *xenv) txnClaims(raw string) map[string]any {
	x.t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		x.t.Fatal(err)
	}
	if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "txntoken+jwt" {
		x.t.Fatalf("typ = %v, want txntoken+jwt", typ)
	}
	pub, _, ok := x.keys.PublicKey(tok.Headers[0].KeyID)
	if !ok {
		x.t.Fatalf("kid %q is not published", tok.Headers[0].KeyID)
	}
	var m map[string]any
	if err := tok.Claims(pub, &m); err != nil {
		x.t.Fatal(err)
	}
	return m
}

func TestTxnTokenForPerson(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			x := newXEnv(t, st)
			x.params.TrustDomain = testTD
			x.srv = x.withParams(nil)
			g := x.grant(x.bot, nil)
			resp, oerr := x.srv.Token(x.ctx, x.txnReq(x.bot, x.person(nil), "scope", "tickets:read",
				"request_details", `{"action": "refund", "ticket": "T-1"}`,
				"request_context", `{"req_ip": "203.0.113.9", "channel": "chat"}`))
			if oerr != nil {
				t.Fatal(oerr)
			}
			if resp.TokenType != "N_A" || resp.IssuedTokenType != oauth.TokenTypeTxnToken || resp.ExpiresIn != 300 || resp.Scope != "tickets:read" {
				t.Errorf("response = %+v", resp)
			}
			c := x.txnClaims(resp.AccessToken)
			txn, _ := c["txn"].(string)
			if !strings.HasPrefix(txn, "txn_") {
				t.Errorf("txn = %v", c["txn"])
			}
			want := map[string]any{
				"iss": testIssuer, "aud": testTD, "sub": "alice", "scope": "tickets:read",
				"sub_id":   map[string]any{"format": "iss_sub", "iss": x.idp.URL, "sub": "alice"},
				"req_wl":   x.bot.agent.SPIFFEID,
				"act":      map[string]any{"sub": x.bot.agent.SPIFFEID},
				"grant_id": g.ID,
				"tctx":     map[string]any{"action": "refund", "ticket": "T-1"},
				// agentid's req_ip wins over the requester's.
				"rctx":     map[string]any{"req_ip": "192.0.2.7", "channel": "chat", "authn": "private_key_jwt"},
				"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
			}
			for k, v := range want {
				if diff := cmp.Diff(v, c[k]); diff != "" {
					t.Errorf("claim %s (-want +got):\n%s", k, diff)
				}
			}
			if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 300 {
				t.Errorf("lifetime = %v s, want 300", exp-iat)
			}
			// Not an access token: introspection says inactive.
			if in := x.introspect(resp.AccessToken); in.Active {
				t.Error("a transaction token introspects as an active access token")
			}
			// The txn id is on the transaction's events.
			issued := x.events("credential.issued")
			last := issued[len(issued)-1]
			task, _ := last["task"].(map[string]any)
			det, _ := last["details"].(map[string]any)
			if task["txn"] != txn || det["kind"] != "txn_token" || det["issued_token_type"] != oauth.TokenTypeTxnToken || last["outcome"] != "success" {
				t.Errorf("credential.issued = %v", last)
			}
			auth := x.events("client.authenticated")
			if at, _ := auth[len(auth)-1]["task"].(map[string]any); at["txn"] != txn {
				t.Errorf("client.authenticated = %v, want txn %s", auth[len(auth)-1], txn)
			}
		})
	}
}

func TestTxnTokenFromOwnTokens(t *testing.T) {
	x := txnXEnv(t)
	x.grant(x.bot, nil)
	// The agent's own access token: its own transaction, no act.
	own := x.token("scope", "tickets:read")
	resp, oerr := x.srv.Token(x.ctx, x.txnReq(x.bot, own, "subject_token_type", oauth.TokenTypeAccessToken, "scope", "tickets:read"))
	if oerr != nil {
		t.Fatal(oerr)
	}
	c := x.txnClaims(resp.AccessToken)
	if c["sub"] != x.bot.agent.SPIFFEID || c["act"] != nil || c["grant_id"] != nil {
		t.Errorf("own transaction = %v", c)
	}
	// Wider than the access token it came from: refused.
	_, oerr = x.srv.Token(x.ctx, x.txnReq(x.bot, own, "subject_token_type", oauth.TokenTypeAccessToken, "scope", "tickets:write"))
	wantErr(t, oerr, oauth.CodeInvalidScope, 400)
	// A delegated token the agent holds: the chain stays as it is.
	deleg := x.exchange(x.bot, x.person(nil), "scope", "tickets:read").AccessToken
	resp, oerr = x.srv.Token(x.ctx, x.txnReq(x.bot, deleg, "subject_token_type", oauth.TokenTypeAccessToken, "scope", "tickets:read"))
	if oerr != nil {
		t.Fatal(oerr)
	}
	c = x.txnClaims(resp.AccessToken)
	if diff := cmp.Diff(map[string]any{"sub": x.bot.agent.SPIFFEID}, c["act"]); diff != "" || c["sub"] != "alice" {
		t.Errorf("delegated transaction: act diff %s, claims %v", diff, c)
	}
}

func TestTxnTokenCannotWiden(t *testing.T) {
	x := txnXEnv(t)
	x.grant(x.bot, nil)
	x.grant(x.helper, nil)
	first, oerr := x.srv.Token(x.ctx, x.txnReq(x.bot, x.person(nil), "scope", "tickets:read tickets:write",
		"request_details", `{"ticket": "T-1"}`))
	if oerr != nil {
		t.Fatal(oerr)
	}
	txn := first.AccessToken
	c1 := x.txnClaims(txn)
	asTxn := []string{"subject_token_type", oauth.TokenTypeTxnToken}

	// A narrower replacement keeps txn, sub, aud and tctx, and records the
	// call chain of requesting workloads.
	r, oerr := x.srv.Token(x.ctx, x.txnReq(x.helper, txn, append(asTxn, "scope", "tickets:read")...))
	if oerr != nil {
		t.Fatal(oerr)
	}
	c2 := x.txnClaims(r.AccessToken)
	for _, k := range []string{"txn", "sub", "aud", "tctx", "act", "grant_id"} {
		if diff := cmp.Diff(c1[k], c2[k]); diff != "" {
			t.Errorf("replacement changed %s:\n%s", k, diff)
		}
	}
	if c2["scope"] != "tickets:read" || c2["req_wl"] != x.bot.agent.SPIFFEID+","+x.helper.agent.SPIFFEID ||
		c2["exp"].(float64) > c1["exp"].(float64) {
		t.Errorf("replacement = %v", c2)
	}
	issued := x.events("credential.issued")
	if task, _ := issued[len(issued)-1]["task"].(map[string]any); task["txn"] != c1["txn"] {
		t.Errorf("replacement event txn = %v, want %v", task["txn"], c1["txn"])
	}

	access := func(kv ...string) *oauth.Request {
		return x.exchangeReq(x.helper, txn, kv...)
	}
	expired := func() string {
		x2 := x.txnReq(x.bot, x.person(nil), "scope", "tickets:read")
		resp, oerr := x.srv.Token(x.ctx, x2)
		if oerr != nil {
			t.Fatal(oerr)
		}
		return resp.AccessToken
	}()
	for name, tc := range map[string]struct {
		r    *oauth.Request
		code string
	}{
		"for an access token":         {access("subject_token_type", oauth.TokenTypeTxnToken), oauth.CodeInvalidRequest},
		"posing as an access token":   {access("subject_token_type", oauth.TokenTypeAccessToken), oauth.CodeInvalidRequest},
		"as an actor token":           {&oauth.Request{Form: form("grant_type", oauth.GrantTokenExchange, "actor_token", txn, "actor_token_type", oauth.TokenTypeAccessToken, "subject_token", x.person(nil), "subject_token_type", oauth.TokenTypeJWT)}, oauth.CodeInvalidRequest},
		"wider scope":                 {x.txnReq(x.helper, txn, append(asTxn, "scope", "tickets:read admin")...), oauth.CodeInvalidScope},
		"another audience":            {x.exchangeReq(x.helper, txn, append(asTxn, "requested_token_type", oauth.TokenTypeTxnToken, "audience", "other.example", "scope", "tickets:read")...), oauth.CodeInvalidTarget},
		"a resource":                  {x.txnReq(x.helper, txn, append(asTxn, "scope", "tickets:read", "resource", resourceA)...), oauth.CodeInvalidTarget},
		"new tctx":                    {x.txnReq(x.helper, txn, append(asTxn, "scope", "tickets:read", "request_details", `{"ticket": "T-2"}`)...), oauth.CodeInvalidRequest},
		"no scope":                    {x.txnReq(x.helper, txn, asTxn...), oauth.CodeInvalidRequest},
		"forged txn token":            {x.txnReq(x.helper, txn[:len(txn)-4]+"AAAA", append(asTxn, "scope", "tickets:read")...), oauth.CodeInvalidRequest},
		"request_details not object":  {x.txnReq(x.bot, x.person(nil), "scope", "tickets:read", "request_details", `[1]`), oauth.CodeInvalidRequest},
		"request_context not JSON":    {x.txnReq(x.bot, x.person(nil), "scope", "tickets:read", "request_context", `{`), oauth.CodeInvalidRequest},
		"wider than the grant":        {x.txnReq(x.bot, x.person(nil), "scope", "admin"), oauth.CodeInvalidScope},
		"request_details too big":     {x.txnReq(x.bot, x.person(nil), "scope", "tickets:read", "request_details", `{"a":"`+strings.Repeat("x", oauth.MaxContextBytes)+`"}`), oauth.CodeInvalidRequest},
		"unsupported requested type":  {x.exchangeReq(x.bot, x.person(nil), "requested_token_type", "urn:ietf:params:oauth:token-type:saml2"), oauth.CodeInvalidRequest},
		"subject type txn, form only": {x.exchangeReq(x.bot, txn, "subject_token_type", oauth.TokenTypeTxnToken, "requested_token_type", oauth.TokenTypeAccessToken), oauth.CodeInvalidRequest},
	} {
		_, oerr := x.srv.Token(x.ctx, tc.r)
		if oerr == nil {
			t.Errorf("%s: a token was issued", name)
			continue
		}
		if oerr.Code != tc.code {
			t.Errorf("%s: %s (%s), want %s", name, oerr.Code, oerr.Description, tc.code)
		}
	}
	// An expired transaction token is not replaced.
	x.clk.Advance(6 * time.Minute)
	_, oerr = x.srv.Token(x.ctx, x.txnReq(x.helper, expired, append(asTxn, "scope", "tickets:read")...))
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
	if strings.Contains(x.trail(), txn) {
		t.Error("the audit trail holds a transaction token")
	}
}

func TestTxnTokenGrantRevoked(t *testing.T) {
	x := txnXEnv(t)
	g := x.grant(x.bot, nil)
	resp, oerr := x.srv.Token(x.ctx, x.txnReq(x.bot, x.person(nil), "scope", "tickets:read"))
	if oerr != nil {
		t.Fatal(oerr)
	}
	if _, _, err := x.deleg.RevokeGrant(x.ctx, adminOrigin(), delegation.RevokeGrantParams{ID: g.ID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	_, oerr = x.srv.Token(x.ctx, x.txnReq(x.bot, resp.AccessToken, "subject_token_type", oauth.TokenTypeTxnToken, "scope", "tickets:read"))
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
}

func TestTxnTokenDisabled(t *testing.T) {
	x := sqliteXEnv(t) // no trust domain configured
	x.grant(x.bot, nil)
	_, oerr := x.srv.Token(x.ctx, x.txnReq(x.bot, x.person(nil), "scope", "tickets:read"))
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
}

// FuzzTxnTokenRequest feeds transaction token requests with arbitrary
// request_details, request_context and subject tokens (a person's, a
// transaction token) to the token endpoint: every answer is a token or a
// 4xx, never a 5xx or a panic.
func FuzzTxnTokenRequest(f *testing.F) {
	st, err := sqlite.Open(context.Background(), sqlite.Params{Path: filepath.Join(f.TempDir(), "agentid.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	x := newXEnvTB(f, st)
	x.params.TrustDomain = testTD
	x.srv = x.withParams(nil)
	x.grant(x.bot, nil)
	alice := x.person(nil)
	resp, oerr := x.srv.Token(context.Background(), &oauth.Request{Form: form("grant_type", oauth.GrantTokenExchange,
		"client_id", x.bot.agent.ID, "client_secret", x.secret, "requested_token_type", oauth.TokenTypeTxnToken,
		"audience", testTD, "scope", "tickets:read", "subject_token", alice, "subject_token_type", oauth.TokenTypeJWT)})
	if oerr != nil {
		f.Fatal(oerr)
	}
	f.Add(`{"a":1}`, `{"req_ip":"1.2.3.4"}`, alice, oauth.TokenTypeJWT)
	f.Add(`[]`, `null`, resp.AccessToken, oauth.TokenTypeTxnToken)
	f.Add(`{"a":{"b":[1,2,{"c":null}]}}`, `{"x":"y"} {}`, resp.AccessToken, oauth.TokenTypeAccessToken)
	f.Add(`{"a":1e999}`, `{"authn":"x"}`, "a.b.c", oauth.TokenTypeTxnToken)
	f.Fuzz(func(t *testing.T, details, rctx, subject, subjectType string) {
		form := form("grant_type", oauth.GrantTokenExchange, "client_id", x.bot.agent.ID, "client_secret", x.secret,
			"requested_token_type", oauth.TokenTypeTxnToken, "audience", testTD, "scope", "tickets:read",
			"subject_token", subject, "subject_token_type", subjectType,
			"request_details", details, "request_context", rctx)
		if _, oerr := x.srv.Token(context.Background(), &oauth.Request{Form: form}); oerr != nil && (oerr.Status < 400 || oerr.Status > 499) {
			t.Fatalf("status %d: %v", oerr.Status, oerr)
		}
	})
}
