package oauth_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
)

func (e *env) token(kv ...string) string {
	e.t.Helper()
	resp, oerr := e.srv.Token(e.ctx, e.basicRequest(kv...))
	if oerr != nil {
		e.t.Fatal(oerr)
	}
	return resp.AccessToken
}

func adminReq(kv ...string) *oauth.Request {
	return &oauth.Request{Form: form(kv...), Admin: &audit.Actor{Type: audit.ActorAdmin, ID: "adm_tester"}}
}

func (e *env) active(tok string) bool {
	e.t.Helper()
	resp, oerr := e.srv.Introspect(e.ctx, adminReq("token", tok))
	if oerr != nil {
		e.t.Fatal(oerr)
	}
	return resp.Active
}

func TestIntrospect(t *testing.T) {
	e := sqliteEnv(t)
	tok := e.token("scope", "tickets:read", "resource", resourceA, "reasoning_ref", "plan:7")
	resp, oerr := e.srv.Introspect(e.ctx, adminReq("token", tok, "token_type_hint", "access_token"))
	if oerr != nil {
		t.Fatal(oerr)
	}
	c := e.claims(tok)
	if !resp.Active || resp.JTI != c["jti"] || resp.ClientID != e.agent.ID || resp.Scope != "tickets:read" ||
		resp.Sub != e.agent.SPIFFEID || resp.Iss != testIssuer || resp.TokenType != "Bearer" ||
		resp.Agent == nil || resp.Agent.Name != "bot" || resp.ReasoningRef != "plan:7" || len(resp.Aud) != 1 {
		t.Errorf("introspection = %+v", resp)
	}

	for name, raw := range map[string]string{"garbage": "abc", "empty-ish": "a.b.c"} {
		if e.active(raw) {
			t.Errorf("%s is active", name)
		}
	}
	e.clk.Advance(301 * time.Second)
	if e.active(tok) {
		t.Error("expired token is active")
	}
}

func TestIntrospectCallers(t *testing.T) {
	e := sqliteEnv(t)
	tok := e.token()
	// The agent itself lacks the introspect permission.
	r := e.basicRequest("token", tok)
	delete(r.Form, "grant_type")
	_, oerr := e.srv.Introspect(e.ctx, r)
	wantErr(t, oerr, oauth.CodeUnauthorizedClient, http.StatusForbidden)
	// An agent with it may.
	rs, _, _, secret := e.newAgent("resource-server", func(p *identity.CreateAgentParams) { p.Permissions = []string{"introspect"} })
	resp, oerr := e.srv.Introspect(e.ctx, &oauth.Request{Form: form("token", tok, "client_id", rs.ID, "client_secret", secret)})
	if oerr != nil || !resp.Active {
		t.Fatalf("introspect by permitted agent: %+v, %v", resp, oerr)
	}
	// Nobody else.
	_, oerr = e.srv.Introspect(e.ctx, &oauth.Request{Form: form("token", tok)})
	wantErr(t, oerr, oauth.CodeInvalidClient, http.StatusBadRequest)
	_, oerr = e.srv.Introspect(e.ctx, adminReq())
	wantErr(t, oerr, oauth.CodeInvalidRequest, http.StatusBadRequest)
}

func TestIntrospectInactiveAfterAgentChanges(t *testing.T) {
	e := sqliteEnv(t)
	tok := e.token()
	if !e.active(tok) {
		t.Fatal("fresh token inactive")
	}
	if _, err := e.ids.SuspendAgent(e.ctx, adminOrigin(), identity.TransitionParams{Ref: e.agent.ID}); err != nil {
		t.Fatal(err)
	}
	if e.active(tok) {
		t.Error("token of a suspended agent is active")
	}
	if _, err := e.ids.ResumeAgent(e.ctx, adminOrigin(), identity.TransitionParams{Ref: e.agent.ID}); err != nil {
		t.Fatal(err)
	}
	if !e.active(tok) {
		t.Error("token inactive after resume")
	}
	e.clk.Advance(time.Second)
	if _, err := e.ids.RevokeTokens(e.ctx, adminOrigin(), identity.RevokeTokensParams{AgentRef: e.agent.Name}); err != nil {
		t.Fatal(err)
	}
	if e.active(tok) {
		t.Error("token active after revoke-all")
	}
	e.clk.Advance(time.Second)
	if later := e.token(); !e.active(later) {
		t.Error("token issued after revoke-all is inactive")
	}
}

func TestRevoke(t *testing.T) {
	e := sqliteEnv(t)
	tok := e.token()
	other, _, _, otherSecret := e.newAgent("other", nil)
	otherReq := func(kv ...string) *oauth.Request {
		return &oauth.Request{Form: form(append([]string{"client_id", other.ID, "client_secret", otherSecret}, kv...)...)}
	}
	// Another client may not revoke it.
	oerr := e.srv.Revoke(e.ctx, otherReq("token", tok))
	wantErr(t, oerr, oauth.CodeUnauthorizedClient, http.StatusForbidden)
	if !e.active(tok) {
		t.Fatal("token revoked by another client")
	}
	// Unknown tokens are fine (RFC 7009 §2.2).
	if oerr := e.srv.Revoke(e.ctx, otherReq("token", "garbage")); oerr != nil {
		t.Errorf("revoke garbage: %v", oerr)
	}
	// Its own client may, twice.
	for range 2 {
		r := e.basicRequest("token", tok, "token_type_hint", "access_token")
		delete(r.Form, "grant_type")
		if oerr := e.srv.Revoke(e.ctx, r); oerr != nil {
			t.Fatal(oerr)
		}
	}
	if e.active(tok) {
		t.Error("revoked token is active")
	}
	if evs := e.events("credential.revoked"); len(evs) != 2 {
		t.Errorf("%d credential.revoked events, want 2", len(evs))
	}
	// An admin may revoke any token.
	tok2 := e.token()
	if oerr := e.srv.Revoke(e.ctx, adminReq("token", tok2)); oerr != nil || e.active(tok2) {
		t.Errorf("admin revoke: %v, active %v", oerr, e.active(tok2))
	}
	// Revocations are collected once the tokens have expired.
	e.clk.Advance(10 * time.Minute)
	n, err := e.srv.Collect(e.ctx, "test")
	if err != nil || n < 2 {
		t.Errorf("Collect = %d, %v; want ≥ 2 rows", n, err)
	}
}
