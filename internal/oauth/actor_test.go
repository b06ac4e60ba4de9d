package oauth_test

import (
	"crypto"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/store"
)

// svidMinter mints a JWT-SVID for a, issued at iat (go-spiffe checks exp
// against the wall clock, not the server's).
type svidMinter func(a store.Agent, iat time.Time, aud ...string) string

// svidXEnv is a txnXEnv whose server accepts JWT-SVIDs of its trust
// domain as actor tokens; mint makes one for an agent, issued now.
func svidXEnv(t *testing.T) (*xenv, func(a store.Agent, aud ...string) string) {
	x, m := svidXEnvAt(t)
	return x, func(a store.Agent, aud ...string) string { return m(a, time.Now(), aud...) }
}

func svidXEnvAt(t *testing.T) (*xenv, svidMinter) {
	t.Helper()
	x := txnXEnv(t)
	root, err := keys.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	km, err := keys.NewManager(x.ctx, keys.ManagerParams{
		Store: x.st, Root: root, Purpose: "jwt-svid", Algorithm: "ES256", MaxTokenTTL: time.Hour, Holder: "test", Clock: x.clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	x.params.JWTAuthorities = func() (map[string]crypto.PublicKey, error) {
		out := map[string]crypto.PublicKey{}
		for _, k := range km.Published() {
			if pub, _, ok := km.PublicKey(k.ID); ok {
				out[k.ID] = pub
			}
		}
		return out, nil
	}
	x.srv = x.withParams(nil)
	si, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{JWTKeys: km, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	return x, func(a store.Agent, iat time.Time, aud ...string) string {
		t.Helper()
		if len(aud) == 0 {
			aud = []string{testIssuer}
		}
		s, err := si.JWTSVID(credential.JWTSVIDParams{SPIFFEID: a.SPIFFEID, Audience: aud, IssuedAt: iat})
		if err != nil {
			t.Fatal(err)
		}
		return s.Token
	}
}

// svidExchange is an exchange authenticated only by a JWT-SVID actor token.
func svidExchange(svid, subject string, kv ...string) *oauth.Request {
	f := form(append([]string{"grant_type", oauth.GrantTokenExchange, "actor_token", svid, "actor_token_type", oauth.TokenTypeJWT,
		"subject_token", subject, "subject_token_type", oauth.TokenTypeJWT}, kv...)...)
	return &oauth.Request{Form: f}
}

func TestExchangeWithJWTSVIDActor(t *testing.T) {
	x, mintAt := svidXEnvAt(t)
	mint := func(a store.Agent, aud ...string) string { return mintAt(a, time.Now(), aud...) }
	g := x.grant(x.bot, nil)
	alice := x.person(nil)
	resp, oerr := x.srv.Token(x.ctx, svidExchange(mint(x.bot.agent), alice, "scope", "tickets:read"))
	if oerr != nil {
		t.Fatal(oerr)
	}
	c := x.claims(resp.AccessToken)
	if act, _ := c["act"].(map[string]any); act["sub"] != x.bot.agent.SPIFFEID || c["grant_id"] != g.ID || c["client_id"] != x.bot.agent.ID {
		t.Errorf("claims = %v", c)
	}
	auth := x.events("client.authenticated")
	if last := auth[len(auth)-1]; last["outcome"] != "success" || !strings.Contains(x.trail(), oauth.MethodJWTSVID) {
		t.Errorf("client.authenticated = %v", last)
	}
	// With client authentication too, both must name one agent.
	r := x.exchangeReq(x.bot, alice, "actor_token", mint(x.helper.agent), "actor_token_type", oauth.TokenTypeJWT)
	_, oerr = x.srv.Token(x.ctx, r)
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
	if _, oerr := x.srv.Token(x.ctx, x.exchangeReq(x.bot, alice, "actor_token", mint(x.bot.agent), "actor_token_type", oauth.TokenTypeJWT)); oerr != nil {
		t.Errorf("matching client and JWT-SVID: %v", oerr)
	}

	suspended, _, _, _ := x.newAgent("gone", nil)
	x.grant(actor{agent: suspended}, nil)
	goneSVID := mint(suspended)
	if _, err := x.ids.SuspendAgent(x.ctx, adminOrigin(), identity.TransitionParams{Ref: "gone"}); err != nil {
		t.Fatal(err)
	}
	forged := mint(x.bot.agent)
	forged = forged[:len(forged)-6] + "AAAAAA"
	for name, svid := range map[string]string{
		"wrong audience":  mint(x.bot.agent, "https://elsewhere.example"),
		"forged":          forged,
		"suspended agent": goneSVID,
		"not an agent":    mintFor(t, mint, "spiffe://example.org/node/n1"),
	} {
		_, oerr := x.srv.Token(x.ctx, svidExchange(svid, alice))
		if oerr == nil || oerr.Code != oauth.CodeInvalidRequest {
			t.Errorf("%s: %v, want invalid_request", name, oerr)
		}
	}
	// Expired.
	old := mintAt(x.bot.agent, time.Now().Add(-10*time.Minute))
	_, oerr = x.srv.Token(x.ctx, svidExchange(old, x.person(nil)))
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
	if strings.Contains(x.trail(), old) {
		t.Error("the audit trail holds a JWT-SVID")
	}
}

// mintFor mints a JWT-SVID for a SPIFFE ID that is no agent.
func mintFor(t *testing.T, mint func(store.Agent, ...string) string, id string) string {
	t.Helper()
	return mint(store.Agent{SPIFFEID: id})
}

func TestExchangeWithoutJWTSVIDTrust(t *testing.T) {
	x := txnXEnv(t) // no JWT authorities
	x.grant(x.bot, nil)
	_, mint := svidXEnv(t)
	_, oerr := x.srv.Token(x.ctx, svidExchange(mint(x.bot.agent), x.person(nil)))
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
}

func TestImpersonation(t *testing.T) {
	x := txnXEnv(t)
	imp, k, kid, _ := x.newAgent("concierge", func(p *identity.CreateAgentParams) {
		p.Permissions = []string{identity.PermissionImpersonate}
	})
	concierge := actor{imp, k, kid}
	g := x.grant(concierge, nil)
	x.grant(x.helper, nil)
	alice := x.person(nil)

	// Off by default: bot's token has act.
	x.grant(x.bot, nil)
	if c := x.claims(x.exchange(x.bot, alice).AccessToken); c["act"] == nil {
		t.Errorf("an agent without the permission got a token without act: %v", c)
	}

	resp := x.exchange(concierge, alice, "scope", "tickets:read")
	c := x.claims(resp.AccessToken)
	if _, ok := c["act"]; ok || c["sub"] != "alice" || c["grant_id"] != g.ID || c["client_id"] != imp.ID {
		t.Errorf("impersonation token = %v", c)
	}
	in := x.introspect(resp.AccessToken)
	if !in.Active || len(in.Act) != 0 || in.GrantID != g.ID {
		t.Errorf("introspection = %+v", in)
	}
	issued := x.events("credential.issued")
	last := issued[len(issued)-1]
	det, _ := last["details"].(map[string]any)
	d, _ := last["delegation"].(map[string]any)
	if det["impersonation"] != true || d["grant_id"] != g.ID {
		t.Errorf("credential.issued = %v", last)
	}
	if actors, _ := d["actors"].([]any); len(actors) != 1 || actors[0] != imp.SPIFFEID {
		t.Errorf("the trail hides the impersonator: %v", d)
	}
	// An impersonation token is exchanged no further, not even by a
	// sub-delegate.
	_, oerr := x.srv.Token(x.ctx, x.exchangeReq(x.helper, resp.AccessToken, "subject_token_type", oauth.TokenTypeAccessToken))
	wantErr(t, oerr, oauth.CodeInvalidRequest, 400)
	// Revoking the grant cascades to it.
	if _, n, err := x.deleg.RevokeGrant(x.ctx, adminOrigin(), delegation.RevokeGrantParams{ID: g.ID}); err != nil || n != 1 {
		t.Fatalf("RevokeGrant = %d, %v", n, err)
	}
	if x.introspect(resp.AccessToken).Active {
		t.Error("an impersonation token outlived its grant")
	}
}
