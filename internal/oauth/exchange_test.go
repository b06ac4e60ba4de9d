package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/internal/store/storetest"
	"github.com/agentid/agentid/sdk/dpop"
)

// actor is an agent with its client key.
type actor struct {
	agent store.Agent
	key   *ecdsa.PrivateKey
	kid   string
}

// xenv is an env with delegation: a trusted IdP, the agent "bot" (from
// env) and a second agent "helper".
type xenv struct {
	*env
	idp    *idptest.IdP
	deleg  *delegation.Service
	bot    actor
	helper actor
}

func newXEnv(t *testing.T, st store.Store) *xenv { return newXEnvTB(t, st) }

func newXEnvTB(t testing.TB, st store.Store) *xenv {
	t.Helper()
	e := newEnv(t, st)
	idp := idptest.New(t)
	is, err := delegation.NewIssuers([]delegation.IssuerConfig{{
		Issuer: idp.URL, Audience: idptest.Audience, TLSCAFile: idp.CAFile,
	}}, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	deleg, err := delegation.New(delegation.Params{Store: st, Recorder: e.params.Recorder, Issuers: is,
		Issuer: testIssuer, MaxChainDepth: 3, Clock: e.clk.Now, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	e.params.Delegation = deleg
	e.srv = e.withParams(nil)
	x := &xenv{env: e, idp: idp, deleg: deleg, bot: actor{e.agent, e.key, e.kid}}
	a, k, kid, _ := e.newAgent("helper", nil)
	x.helper = actor{a, k, kid}
	return x
}

func sqliteXEnv(t *testing.T) *xenv {
	t.Helper()
	st, _ := storetest.Backends(t)[0].Open(t)
	return newXEnv(t, st)
}

// grant lets a act for the subject (alice at the IdP by default).
func (x *xenv) grant(a actor, edit func(*delegation.CreateGrantParams)) store.Grant {
	x.t.Helper()
	p := delegation.CreateGrantParams{
		SubjectIssuer: x.idp.URL, Subject: "alice", Agent: a.agent.ID,
		Scopes: []string{"tickets:read", "tickets:write"}, Audiences: []string{resourceA, resourceB},
		ExpiresAt: x.clk.Now().Add(24 * time.Hour), AllowSubdelegation: true,
	}
	if edit != nil {
		edit(&p)
	}
	g, err := x.deleg.CreateGrant(x.ctx, adminOrigin(), p)
	if err != nil {
		x.t.Fatal(err)
	}
	return g
}

// person is alice's token from the IdP, edited.
func (x *xenv) person(edit func(map[string]any)) string {
	c := x.idp.Claims("alice", x.clk.Now())
	if edit != nil {
		edit(c)
	}
	return x.idp.Mint("es1", c)
}

// assertionFor is a client assertion of a.
func (x *xenv) assertionFor(a actor) string {
	x.t.Helper()
	now := x.clk.Now()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: a.key},
		(&jose.SignerOptions{}).WithHeader("kid", a.kid).WithType("JWT"))
	if err != nil {
		x.t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(map[string]any{
		"iss": a.agent.ID, "sub": a.agent.ID, "aud": testIssuer,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": randomID(x.t),
	}).Serialize()
	if err != nil {
		x.t.Fatal(err)
	}
	return raw
}

// exchangeReq is a token exchange by a (private_key_jwt) of subject; kv
// add parameters (resource, audience) or replace them.
func (x *xenv) exchangeReq(a actor, subject string, kv ...string) *oauth.Request {
	f := form("grant_type", oauth.GrantTokenExchange,
		"client_assertion_type", oauth.AssertionType, "client_assertion", x.assertionFor(a),
		"subject_token", subject, "subject_token_type", oauth.TokenTypeJWT)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "resource" || kv[i] == "audience" {
			f.Add(kv[i], kv[i+1])
		} else {
			f.Set(kv[i], kv[i+1])
		}
	}
	return &oauth.Request{Form: f}
}

func (x *xenv) exchange(a actor, subject string, kv ...string) oauth.TokenResponse {
	x.t.Helper()
	resp, oerr := x.srv.Token(x.ctx, x.exchangeReq(a, subject, kv...))
	if oerr != nil {
		x.t.Fatalf("exchange: %v", oerr)
	}
	return resp
}

func (x *xenv) introspect(tok string) oauth.IntrospectionResponse {
	x.t.Helper()
	resp, oerr := x.srv.Introspect(x.ctx, adminReq("token", tok))
	if oerr != nil {
		x.t.Fatal(oerr)
	}
	return resp
}

func TestExchangeForPerson(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			x := newXEnv(t, st)
			g := x.grant(x.bot, func(p *delegation.CreateGrantParams) { p.Scopes = []string{"tickets:read"} })
			resp := x.exchange(x.bot, x.person(nil), "resource", resourceA, "reasoning_ref", "plan:1")
			if resp.IssuedTokenType != oauth.TokenTypeAccessToken || resp.TokenType != "Bearer" || resp.Scope != "tickets:read" || resp.ExpiresIn != 300 {
				t.Errorf("response = %+v", resp)
			}
			c := x.claims(resp.AccessToken)
			want := map[string]any{
				"sub":       "alice",
				"sub_id":    map[string]any{"format": "iss_sub", "iss": x.idp.URL, "sub": "alice"},
				"act":       map[string]any{"sub": x.bot.agent.SPIFFEID},
				"grant_id":  g.ID,
				"client_id": x.bot.agent.ID,
				"aud":       resourceA,
				"scope":     "tickets:read",
			}
			for k, v := range want {
				if diff := cmp.Diff(v, c[k]); diff != "" {
					t.Errorf("claim %s (-want +got):\n%s", k, diff)
				}
			}
			in := x.introspect(resp.AccessToken)
			if !in.Active || in.GrantID != g.ID || string(in.Act) != `{"sub":"`+x.bot.agent.SPIFFEID+`"}` || in.Sub != "alice" ||
				in.SubjectID == nil || in.SubjectID.Issuer != x.idp.URL {
				t.Errorf("introspection = %+v", in)
			}
			rec, err := st.GetExchangedToken(x.ctx, in.JTI)
			if err != nil || rec.GrantID != g.ID || !cmp.Equal(rec.Chain, []string{x.bot.agent.ID}) || rec.ParentJTI != "" {
				t.Errorf("exchanged token record = %+v, %v", rec, err)
			}
			issued := x.events("credential.issued")
			last := issued[len(issued)-1]
			d, _ := last["delegation"].(map[string]any)
			det, _ := last["details"].(map[string]any)
			if last["outcome"] != "success" || d["grant_id"] != g.ID || d["subject"] != "alice" ||
				det["grant_type"] != oauth.GrantTokenExchange || det["depth"] != float64(1) || det["subject_issuer"] != x.idp.URL {
				t.Errorf("credential.issued = %v", last)
			}
			if auth := x.events("client.authenticated"); auth[len(auth)-1]["outcome"] != "success" {
				t.Errorf("client.authenticated = %v", auth[len(auth)-1])
			}
		})
	}
}

func TestExchangeLifetime(t *testing.T) {
	x := sqliteXEnv(t)
	x.grant(x.bot, nil)
	// The subject token expires in 90 s: so does the delegated token.
	resp := x.exchange(x.bot, x.person(func(c map[string]any) { c["exp"] = x.clk.Now().Add(90 * time.Second).Unix() }))
	if resp.ExpiresIn != 90 {
		t.Errorf("expires_in = %d, want the subject token's 90", resp.ExpiresIn)
	}
	// A grant that ends in 40 s bounds it too.
	x.grant(x.helper, func(p *delegation.CreateGrantParams) { p.ExpiresAt = x.clk.Now().Add(40 * time.Second) })
	if resp := x.exchange(x.helper, x.person(nil)); resp.ExpiresIn != 40 {
		t.Errorf("expires_in = %d, want the grant's 40", resp.ExpiresIn)
	}
}

func TestExchangeRefusals(t *testing.T) {
	x := sqliteXEnv(t)
	x.grant(x.bot, func(p *delegation.CreateGrantParams) {
		p.Scopes, p.Audiences, p.AllowSubdelegation = []string{"tickets:read"}, []string{resourceA}, false
	})
	other := idptest.New(t)
	alice := x.person(nil)
	delegated := x.exchange(x.bot, alice).AccessToken
	for name, tc := range map[string]struct {
		r      *oauth.Request
		code   string
		status int
	}{
		"scope widening":        {x.exchangeReq(x.bot, alice, "scope", "tickets:read tickets:write"), oauth.CodeInvalidScope, 400},
		"scope outside":         {x.exchangeReq(x.bot, alice, "scope", "tickets:write"), oauth.CodeInvalidScope, 400},
		"audience outside":      {x.exchangeReq(x.bot, alice, "resource", resourceB), oauth.CodeInvalidTarget, 400},
		"audience name outside": {x.exchangeReq(x.bot, alice, "audience", "payments"), oauth.CodeInvalidTarget, 400},
		"bad resource":          {x.exchangeReq(x.bot, alice, "resource", "/relative"), oauth.CodeInvalidTarget, 400},
		"expired subject":       {x.exchangeReq(x.bot, x.person(func(c map[string]any) { c["exp"] = x.clk.Now().Add(-2 * time.Minute).Unix() })), oauth.CodeInvalidRequest, 400},
		"untrusted issuer":      {x.exchangeReq(x.bot, other.Mint("es1", other.Claims("alice", x.clk.Now()))), oauth.CodeInvalidRequest, 400},
		"garbage subject":       {x.exchangeReq(x.bot, "not.a.token"), oauth.CodeInvalidRequest, 400},
		"no grant":              {x.exchangeReq(x.helper, alice), oauth.CodeInvalidRequest, 400},
		"another person":        {x.exchangeReq(x.bot, x.idp.Mint("rs1", x.idp.Claims("bob", x.clk.Now()))), oauth.CodeInvalidRequest, 400},
		"may_act mismatch": {x.exchangeReq(x.bot, x.person(func(c map[string]any) {
			c["may_act"] = map[string]any{"sub": x.helper.agent.SPIFFEID}
		})), oauth.CodeInvalidRequest, 400},
		"may_act other issuer": {x.exchangeReq(x.bot, x.person(func(c map[string]any) {
			c["may_act"] = map[string]any{"sub": x.bot.agent.SPIFFEID, "iss": "https://elsewhere.example"}
		})), oauth.CodeInvalidRequest, 400},
		"sub-delegation not allowed": {x.exchangeReq(x.helper, delegated, "subject_token_type", oauth.TokenTypeAccessToken), oauth.CodeInvalidRequest, 400},
		"own token again":            {x.exchangeReq(x.bot, delegated), oauth.CodeInvalidRequest, 400},
		"txn token":                  {x.exchangeReq(x.bot, alice, "requested_token_type", "urn:ietf:params:oauth:token-type:txn_token"), oauth.CodeInvalidRequest, 400},
		"unknown subject type": {&oauth.Request{Form: form("grant_type", oauth.GrantTokenExchange, "client_assertion_type", oauth.AssertionType,
			"client_assertion", x.assertionFor(x.bot), "subject_token", alice, "subject_token_type", "urn:x:saml")}, oauth.CodeInvalidRequest, 400},
		"no subject token": {&oauth.Request{Form: form("grant_type", oauth.GrantTokenExchange, "client_assertion_type", oauth.AssertionType,
			"client_assertion", x.assertionFor(x.bot))}, oauth.CodeInvalidRequest, 400},
		"actor type without token": {x.exchangeReq(x.bot, alice, "actor_token_type", oauth.TokenTypeJWT), oauth.CodeInvalidRequest, 400},
		"no authentication": {&oauth.Request{Form: form("grant_type", oauth.GrantTokenExchange,
			"subject_token", alice, "subject_token_type", oauth.TokenTypeJWT)}, oauth.CodeInvalidClient, 400},
		"forged chain": {x.exchangeReq(x.bot, alice, "actor_token", x.assertionFor(x.helper), "actor_token_type", oauth.TokenTypeJWT),
			oauth.CodeInvalidRequest, 400},
	} {
		_, oerr := x.srv.Token(x.ctx, tc.r)
		if oerr == nil {
			t.Errorf("%s: a token was issued", name)
			continue
		}
		if oerr.Code != tc.code || oerr.Status != tc.status {
			t.Errorf("%s: %s %d (%s), want %s %d", name, oerr.Code, oerr.Status, oerr.Description, tc.code, tc.status)
		}
	}
	// Every refusal after authentication is on the record.
	if n := len(x.events("credential.issued")); n < 15 {
		t.Errorf("%d credential.issued events, want a failure per refused exchange", n)
	}
	if strings.Contains(x.trail(), alice) {
		t.Error("the audit trail holds a subject token")
	}
}

func TestExchangeDisabled(t *testing.T) {
	e := sqliteEnv(t)
	_, oerr := e.srv.Token(e.ctx, &oauth.Request{Form: form("grant_type", oauth.GrantTokenExchange)})
	wantErr(t, oerr, oauth.CodeUnsupportedGrantType, 400)
}

func TestSubDelegationAndDepth(t *testing.T) {
	x := sqliteXEnv(t)
	third, k, kid, _ := x.newAgent("third", nil)
	fourth, k4, kid4, _ := x.newAgent("fourth", nil)
	ag3, ag4 := actor{third, k, kid}, actor{fourth, k4, kid4}
	g := x.grant(x.bot, func(p *delegation.CreateGrantParams) { p.MaxDepth = 3 })
	t1 := x.exchange(x.bot, x.person(nil), "scope", "tickets:read tickets:write").AccessToken
	// helper narrows to tickets:read on resource A.
	r2 := x.exchange(x.helper, t1, "subject_token_type", oauth.TokenTypeAccessToken, "scope", "tickets:read", "resource", resourceA)
	c2 := x.claims(r2.AccessToken)
	wantAct := map[string]any{"sub": x.helper.agent.SPIFFEID, "act": map[string]any{"sub": x.bot.agent.SPIFFEID}}
	if diff := cmp.Diff(wantAct, c2["act"]); diff != "" || c2["grant_id"] != g.ID || c2["sub"] != "alice" || c2["scope"] != "tickets:read" {
		t.Errorf("sub-delegated token: act diff %s, claims %v", diff, c2)
	}
	// Never wider than its parent: tickets:write and resource B are gone.
	_, oerr := x.srv.Token(x.ctx, x.exchangeReq(ag3, r2.AccessToken, "scope", "tickets:write"))
	wantErr(t, oerr, oauth.CodeInvalidScope, 400)
	_, oerr = x.srv.Token(x.ctx, x.exchangeReq(ag3, r2.AccessToken, "resource", resourceB))
	wantErr(t, oerr, oauth.CodeInvalidTarget, 400)
	// A cycle back to bot is refused.
	_, oerr = x.srv.Token(x.ctx, x.exchangeReq(x.bot, r2.AccessToken))
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
	// Depth 3 is the grant's maximum; a fourth actor is refused.
	t3 := x.exchange(ag3, r2.AccessToken).AccessToken
	rec, err := x.st.GetExchangedToken(x.ctx, x.introspect(t3).JTI)
	if err != nil || !cmp.Equal(rec.Chain, []string{third.ID, x.helper.agent.ID, x.bot.agent.ID}) {
		t.Errorf("depth-3 record = %+v, %v", rec, err)
	}
	_, oerr = x.srv.Token(x.ctx, x.exchangeReq(ag4, t3))
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
	if ev := x.events("credential.issued"); ev[len(ev)-1]["reason"] == nil || !strings.Contains(ev[len(ev)-1]["reason"].(string), "depth") {
		t.Errorf("last refusal = %v, want a depth reason", ev[len(ev)-1])
	}
}

func TestCascadeRevocation(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			x := newXEnv(t, st)
			third, k, kid, _ := x.newAgent("third", nil)
			ag3 := actor{third, k, kid}
			chain := func() (string, string, string) {
				t1 := x.exchange(x.bot, x.person(nil)).AccessToken
				t2 := x.exchange(x.helper, t1, "subject_token_type", oauth.TokenTypeAccessToken).AccessToken
				t3 := x.exchange(ag3, t2, "subject_token_type", oauth.TokenTypeAccessToken).AccessToken
				for i, tok := range []string{t1, t2, t3} {
					if !x.introspect(tok).Active {
						t.Fatalf("token %d of a fresh chain is inactive", i+1)
					}
				}
				return t1, t2, t3
			}
			g := x.grant(x.bot, nil)

			// An upstream token revoked (RFC 7009, by its holder): its
			// descendants go with it; the event counts them.
			t1, t2, t3 := chain()
			r := &oauth.Request{Form: form("token", t2, "client_assertion_type", oauth.AssertionType, "client_assertion", x.assertionFor(x.helper))}
			if oerr := x.srv.Revoke(x.ctx, r); oerr != nil {
				t.Fatal(oerr)
			}
			if !x.introspect(t1).Active || x.introspect(t2).Active || x.introspect(t3).Active {
				t.Error("after revoking t2: want t1 active, t2 and t3 inactive")
			}
			rev := x.events("credential.revoked")
			if det, _ := rev[len(rev)-1]["details"].(map[string]any); det["tokens_affected"] != float64(1) {
				t.Errorf("credential.revoked details = %v, want tokens_affected 1", det)
			}

			// An agent in the middle of the chain suspended: everything
			// under it is inactive, the rest stays; resumed, it is back.
			t1, t2, t3 = chain()
			if _, err := x.ids.SuspendAgent(x.ctx, adminOrigin(), identity.TransitionParams{Ref: "helper"}); err != nil {
				t.Fatal(err)
			}
			if !x.introspect(t1).Active || x.introspect(t2).Active || x.introspect(t3).Active {
				t.Error("helper suspended: want t1 active, t2 and t3 inactive")
			}
			if _, err := x.ids.ResumeAgent(x.ctx, adminOrigin(), identity.TransitionParams{Ref: "helper"}); err != nil {
				t.Fatal(err)
			}
			if !x.introspect(t3).Active {
				t.Error("helper resumed: t3 still inactive")
			}

			// The grant revoked: every token under it, at every depth.
			_, n, err := x.deleg.RevokeGrant(x.ctx, adminOrigin(), delegation.RevokeGrantParams{ID: g.ID})
			if err != nil {
				t.Fatal(err)
			}
			if n != 6 { // two chains of three; the revoked ones are still live records
				t.Errorf("grant revocation affected %d tokens, want 6", n)
			}
			for i, tok := range []string{t1, t2, t3} {
				if x.introspect(tok).Active {
					t.Errorf("token %d active after its grant was revoked", i+1)
				}
			}
			// And nothing more can be exchanged under it.
			_, oerr := x.srv.Token(x.ctx, x.exchangeReq(x.bot, x.person(nil)))
			wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
		})
	}
}

func TestExchangeWithActorTokens(t *testing.T) {
	x := sqliteXEnv(t)
	x.grant(x.bot, nil)
	alice := x.person(nil)
	// The agent's own access token as actor_token, no client
	// authentication.
	own := x.token()
	resp, oerr := x.srv.Token(x.ctx, &oauth.Request{Form: form("grant_type", oauth.GrantTokenExchange,
		"subject_token", alice, "subject_token_type", oauth.TokenTypeIDToken,
		"actor_token", own, "actor_token_type", oauth.TokenTypeAccessToken)})
	if oerr != nil {
		t.Fatalf("exchange with an access token as actor: %v", oerr)
	}
	if c := x.claims(resp.AccessToken); c["client_id"] != x.bot.agent.ID {
		t.Errorf("client_id = %v", c["client_id"])
	}
	// A client assertion as actor_token; its jti is spent.
	assertion := x.assertionFor(x.bot)
	req := func() *oauth.Request {
		return &oauth.Request{Form: form("grant_type", oauth.GrantTokenExchange,
			"subject_token", alice, "subject_token_type", oauth.TokenTypeJWT,
			"actor_token", assertion, "actor_token_type", oauth.TokenTypeJWT)}
	}
	if _, oerr := x.srv.Token(x.ctx, req()); oerr != nil {
		t.Fatalf("exchange with an assertion as actor: %v", oerr)
	}
	_, oerr = x.srv.Token(x.ctx, req())
	wantErr(t, oerr, oauth.CodeInvalidClient, 400)
	// Client authentication and actor token of the same agent: fine.
	if _, oerr := x.srv.Token(x.ctx, x.exchangeReq(x.bot, alice, "actor_token", x.token(), "actor_token_type", oauth.TokenTypeAccessToken)); oerr != nil {
		t.Errorf("client and actor token of one agent: %v", oerr)
	}
	// A revoked or delegated actor token is refused.
	_, oerr = x.srv.Token(x.ctx, &oauth.Request{Form: form("grant_type", oauth.GrantTokenExchange,
		"subject_token", alice, "subject_token_type", oauth.TokenTypeJWT,
		"actor_token", resp.AccessToken, "actor_token_type", oauth.TokenTypeAccessToken)})
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
	_, oerr = x.srv.Token(x.ctx, &oauth.Request{Form: form("grant_type", oauth.GrantTokenExchange,
		"subject_token", alice, "subject_token_type", oauth.TokenTypeJWT,
		"actor_token", "garbage", "actor_token_type", oauth.TokenTypeAccessToken)})
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
}

func TestAgentDelegatesToAgent(t *testing.T) {
	x := sqliteXEnv(t)
	g, err := x.deleg.CreateGrant(x.ctx, adminOrigin(), delegation.CreateGrantParams{
		SubjectIssuer: testIssuer, Subject: x.bot.agent.SPIFFEID, Agent: "helper",
		Scopes: []string{"tickets:read"}, Audiences: []string{resourceA}, ExpiresAt: x.clk.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	own := x.token("resource", resourceA)
	resp := x.exchange(x.helper, own, "subject_token_type", oauth.TokenTypeAccessToken)
	c := x.claims(resp.AccessToken)
	if c["sub"] != x.bot.agent.SPIFFEID || c["grant_id"] != g.ID || c["scope"] != "tickets:read" {
		t.Errorf("agent-for-agent token = %v", c)
	}
	// The bot revokes its own token: the helper's goes with it.
	if oerr := x.srv.Revoke(x.ctx, &oauth.Request{Form: form("token", own), Basic: x.basicRequest().Basic}); oerr != nil {
		t.Fatal(oerr)
	}
	if x.introspect(resp.AccessToken).Active {
		t.Error("a token exchanged from a revoked agent token is active")
	}
}

func TestExchangeDPoP(t *testing.T) {
	x := sqliteXEnv(t)
	x.grant(x.bot, nil)
	x.grant(x.helper, nil)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dpop.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	proof := func() string {
		p, err := signer.Proof(http.MethodPost, testIssuer+oauth.TokenPath, dpop.ProofParams{Now: x.clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	r := x.exchangeReq(x.bot, x.person(nil))
	r.DPoP = []string{proof()}
	resp, oerr := x.srv.Token(x.ctx, r)
	if oerr != nil {
		t.Fatal(oerr)
	}
	if resp.TokenType != "DPoP" || !cmp.Equal(x.claims(resp.AccessToken)["cnf"], map[string]any{"jkt": signer.Thumbprint()}) {
		t.Errorf("DPoP exchange = %+v", resp)
	}
	// A DPoP-bound subject token needs a proof by its key.
	_, oerr = x.srv.Token(x.ctx, x.exchangeReq(x.helper, resp.AccessToken))
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
	r = x.exchangeReq(x.helper, resp.AccessToken)
	r.DPoP = []string{proof()}
	if _, oerr := x.srv.Token(x.ctx, r); oerr != nil {
		t.Errorf("DPoP-bound subject token with its key's proof: %v", oerr)
	}
	// A DPoP-bound actor token, with or without client authentication,
	// needs a proof by its key too.
	cc := x.basicRequest()
	cc.DPoP = []string{proof()}
	bound, oerr := x.srv.Token(x.ctx, cc)
	if oerr != nil {
		t.Fatal(oerr)
	}
	actorOnly := &oauth.Request{Form: form("grant_type", oauth.GrantTokenExchange,
		"subject_token", x.person(nil), "subject_token_type", oauth.TokenTypeJWT,
		"actor_token", bound.AccessToken, "actor_token_type", oauth.TokenTypeAccessToken)}
	_, oerr = x.srv.Token(x.ctx, actorOnly)
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
	_, oerr = x.srv.Token(x.ctx, x.exchangeReq(x.bot, x.person(nil), "actor_token", bound.AccessToken, "actor_token_type", oauth.TokenTypeAccessToken))
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
	actorOnly.DPoP = []string{proof()}
	if _, oerr := x.srv.Token(x.ctx, actorOnly); oerr != nil {
		t.Errorf("DPoP-bound actor token with its key's proof: %v", oerr)
	}
}

func TestExchangeFailsClosedWhenAuditFails(t *testing.T) {
	x := sqliteXEnv(t)
	x.grant(x.bot, nil)
	srv := x.withParams(func(p *oauth.Params) { p.Store = failingAudit{p.Store} })
	_, oerr := srv.Token(x.ctx, x.exchangeReq(x.bot, x.person(nil)))
	wantErr(t, oerr, oauth.CodeServerError, 500)
	var n int64
	for _, typ := range []string{"credential.issued"} {
		for _, ev := range x.events(typ) {
			if d, _ := ev["details"].(map[string]any); d["grant_type"] == oauth.GrantTokenExchange {
				n++
			}
		}
	}
	if n != 0 {
		t.Errorf("%d exchange events recorded with a failing trail", n)
	}
	if got, err := x.st.CountExchangedTokens(x.ctx, store.ExchangedTokenFilter{AgentID: x.bot.agent.ID, LiveAt: x.clk.Now()}); err != nil || got != 0 {
		t.Errorf("exchanged tokens recorded with a failing trail: %d, %v", got, err)
	}
}

// FuzzTokenExchangeForm feeds arbitrary token exchange parameters (seeded
// with a working exchange, a sub-delegation and bad tokens) to the token
// endpoint: every answer is a token or a 4xx, never a 5xx or a panic.
func FuzzTokenExchangeForm(f *testing.F) {
	st, err := sqlite.Open(context.Background(), sqlite.Params{Path: filepath.Join(f.TempDir(), "agentid.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	x := newXEnvTB(f, st)
	x.grant(x.bot, nil)
	alice := x.person(nil)
	delegated := x.exchange(x.bot, alice).AccessToken
	base := "grant_type=" + url.QueryEscape(oauth.GrantTokenExchange) + "&client_id=" + x.bot.agent.ID + "&client_secret=" + x.secret
	f.Add(base + "&subject_token=" + alice + "&subject_token_type=" + url.QueryEscape(oauth.TokenTypeJWT) + "&scope=tickets:read&resource=" + url.QueryEscape(resourceA))
	f.Add(base + "&subject_token=" + delegated + "&subject_token_type=" + url.QueryEscape(oauth.TokenTypeAccessToken) + "&audience=x&audience=y")
	f.Add(base + "&subject_token=a.b.c&subject_token_type=x&actor_token=a.b.c&actor_token_type=" + url.QueryEscape(oauth.TokenTypeJWT))
	f.Add("grant_type=" + url.QueryEscape(oauth.GrantTokenExchange) + "&actor_token=" + delegated + "&actor_token_type=" + url.QueryEscape(oauth.TokenTypeAccessToken) + "&subject_token=" + alice + "&subject_token_type=" + url.QueryEscape(oauth.TokenTypeIDToken))
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		form.Set("grant_type", oauth.GrantTokenExchange)
		if _, oerr := x.srv.Token(context.Background(), &oauth.Request{Form: form}); oerr != nil && (oerr.Status < 400 || oerr.Status > 499) {
			t.Fatalf("status %d: %v", oerr.Status, oerr)
		}
	})
}
