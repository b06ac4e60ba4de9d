package oauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"testing"

	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
)

// TestClientChangesTakeEffectAtOnce warms the server's client cache, then
// changes the agent's credentials and state through the registry (as an
// admin would, possibly on another replica: a second server on the same
// store sees the same): every change is honoured by the next request.
func TestClientChangesTakeEffectAtOnce(t *testing.T) {
	e := sqliteEnv(t)
	other := e.withParams(nil) // a second replica on the same store
	for _, srv := range []*oauth.Server{e.srv, other} {
		if _, oerr := srv.Token(e.ctx, e.basicRequest()); oerr != nil {
			t.Fatal(oerr)
		}
		if _, oerr := srv.Token(e.ctx, jwtRequest(e.assertion(nil))); oerr != nil {
			t.Fatal(oerr)
		}
	}
	// A removed secret stops working.
	secrets, err := e.ids.ListClientSecrets(e.ctx, e.agent.ID)
	if err != nil || len(secrets) != 1 {
		t.Fatalf("secrets: %v %v", secrets, err)
	}
	if err := e.ids.RemoveClientSecret(e.ctx, adminOrigin(), e.agent.ID, secrets[0].ID); err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*oauth.Server{e.srv, other} {
		_, oerr := srv.Token(e.ctx, e.basicRequest())
		wantErr(t, oerr, oauth.CodeInvalidClient, http.StatusUnauthorized)
	}
	// A new key works at once; a removed one stops at once.
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	k, err := e.ids.AddClientKey(e.ctx, adminOrigin(), identity.AddClientKeyParams{
		Ref: e.agent.ID, PublicKey: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
	})
	if err != nil {
		t.Fatal(err)
	}
	withNewKey := func(a *assertion) { a.key, a.headers["kid"] = priv, k.KeyID }
	for _, srv := range []*oauth.Server{e.srv, other} {
		if _, oerr := srv.Token(e.ctx, jwtRequest(e.assertion(withNewKey))); oerr != nil {
			t.Fatalf("new key: %v", oerr)
		}
	}
	if err := e.ids.RemoveClientKey(e.ctx, adminOrigin(), e.agent.ID, e.kid); err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*oauth.Server{e.srv, other} {
		_, oerr := srv.Token(e.ctx, jwtRequest(e.assertion(nil)))
		wantErr(t, oerr, oauth.CodeInvalidClient, http.StatusBadRequest)
	}
	// A suspension stops everything at once.
	if _, err := e.ids.SuspendAgent(e.ctx, adminOrigin(), identity.TransitionParams{Ref: e.agent.ID}); err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*oauth.Server{e.srv, other} {
		_, oerr := srv.Token(e.ctx, jwtRequest(e.assertion(withNewKey)))
		wantErr(t, oerr, oauth.CodeInvalidClient, http.StatusBadRequest)
	}
}

// TestCachedClientCheckedAtCommit: client_credentials authenticates with
// the cached agent record and checks its version in the transaction that
// records the outcome. A change made after the cache was warmed is
// honoured by the next request, and the attempt decided on the stale copy
// leaves nothing in the trail: each request records exactly its own
// events.
func TestCachedClientCheckedAtCommit(t *testing.T) {
	e := sqliteEnv(t)
	if _, oerr := e.srv.Token(e.ctx, e.basicRequest()); oerr != nil { // warm the cache
		t.Fatal(oerr)
	}
	// Narrow the agent's scopes: a token for the removed scope is refused,
	// and a default token no longer carries it.
	narrowed := []string{"tickets:read"}
	if _, err := e.ids.UpdateAgent(e.ctx, adminOrigin(), identity.UpdateAgentParams{Ref: e.agent.ID, Scopes: &narrowed}); err != nil {
		t.Fatal(err)
	}
	issued, authn := len(e.events("credential.issued")), len(e.events("client.authenticated"))
	resp, oerr := e.srv.Token(e.ctx, e.basicRequest())
	if oerr != nil {
		t.Fatal(oerr)
	}
	if got := e.claims(resp.AccessToken)["scope"]; got != "tickets:read" {
		t.Errorf("scope after narrowing = %v, want tickets:read", got)
	}
	if n := len(e.events("credential.issued")); n != issued+1 {
		t.Errorf("credential.issued events: %d new, want 1", n-issued)
	}
	if n := len(e.events("client.authenticated")); n != authn+1 {
		t.Errorf("client.authenticated events: %d new, want 1", n-authn)
	}
	_, oerr = e.srv.Token(e.ctx, e.basicRequest("scope", "tickets:write"))
	wantErr(t, oerr, oauth.CodeInvalidScope, http.StatusBadRequest)

	// Suspend it: refused, and the refusal recorded once.
	if _, err := e.ids.SuspendAgent(e.ctx, adminOrigin(), identity.TransitionParams{Ref: e.agent.ID}); err != nil {
		t.Fatal(err)
	}
	before := e.events("client.authenticated")
	_, oerr = e.srv.Token(e.ctx, e.basicRequest())
	wantErr(t, oerr, oauth.CodeInvalidClient, http.StatusUnauthorized)
	after := e.events("client.authenticated")
	if len(after) != len(before)+1 || after[len(after)-1]["outcome"] != "failure" {
		t.Errorf("client.authenticated after the suspension: %d new (last %v), want 1 failure", len(after)-len(before), after[len(after)-1])
	}
}
