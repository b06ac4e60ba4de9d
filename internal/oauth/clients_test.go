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
