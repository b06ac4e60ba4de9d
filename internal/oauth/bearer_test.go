package oauth_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
)

// TestAuthenticateBearerRevocation: the verified signature of a bearer
// token is reused, but a revocation of the token (RFC 7009) or a
// suspension of its agent refuses the very next request.
func TestAuthenticateBearerRevocation(t *testing.T) {
	e := sqliteEnv(t)
	pep, _, _, secret := e.newAgent("pep", func(p *identity.CreateAgentParams) {
		p.Audiences = append(p.Audiences, testIssuer)
		p.Permissions = []string{oauth.PermissionEvaluate}
	})
	basic := &oauth.BasicCredentials{User: url.QueryEscape(pep.ID), Password: url.QueryEscape(secret)}
	token := func() string {
		t.Helper()
		resp, oerr := e.srv.Token(e.ctx, &oauth.Request{Form: form("grant_type", "client_credentials", "resource", testIssuer), Basic: basic})
		if oerr != nil {
			t.Fatal(oerr)
		}
		return resp.AccessToken
	}
	authenticate := func(tok string) *oauth.Error {
		t.Helper()
		o, oerr := e.srv.AuthenticateBearer(e.ctx, audit.Origin{}, tok, oauth.PermissionEvaluate)
		if oerr == nil && (o.Actor.Type != audit.ActorAgent || o.Actor.ID != pep.ID) {
			t.Errorf("actor = %+v, want agent %s", o.Actor, pep.ID)
		}
		return oerr
	}

	tok := token()
	for range 3 { // the first verifies the signature, the others reuse it
		if oerr := authenticate(tok); oerr != nil {
			t.Fatalf("AuthenticateBearer = %v", oerr)
		}
	}
	if oerr := e.srv.Revoke(e.ctx, &oauth.Request{Form: form("token", tok), Basic: basic}); oerr != nil {
		t.Fatal(oerr)
	}
	wantErr(t, authenticate(tok), oauth.CodeInvalidToken, http.StatusUnauthorized)

	tok = token()
	if oerr := authenticate(tok); oerr != nil {
		t.Fatalf("AuthenticateBearer = %v", oerr)
	}
	if _, err := e.ids.SuspendAgent(e.ctx, adminOrigin(), identity.TransitionParams{Ref: pep.ID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, authenticate(tok), oauth.CodeInvalidToken, http.StatusUnauthorized)

	// A token altered after a good one was cached is verified anew.
	wantErr(t, authenticate(tok[:len(tok)-2]+"AA"), oauth.CodeInvalidToken, http.StatusUnauthorized)
}
