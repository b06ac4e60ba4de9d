package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/sdk/admin"
	"github.com/agentid/agentid/sdk/agent"
	"github.com/agentid/agentid/sdk/dpop"
	"github.com/agentid/agentid/sdk/resource"
)

// TestDelegationThroughSDK: the bot exchanges alice's token with
// sdk/agent (Delegated, DPoP-bound) against a real server, calls an API
// guarded by sdk/resource, which reads the chain; a transaction token from
// TokenSource.Exchange is no access token at the API.
func TestDelegationThroughSDK(t *testing.T) {
	idp := idptest.New(t)
	ls := startDelegationServer(t, idp)
	ctx := t.Context()
	alice := idp.Mint("rs1", idp.Claims("alice", time.Now()))
	exp := time.Now().Add(time.Hour)
	g, err := ls.admin.CreateGrant(ctx, admin.CreateGrantRequest{
		Agent: "bot", Subject: "alice", SubjectIssuer: idp.URL, Scopes: []string{"tickets:read"},
		Audiences: []string{apiAudience}, ExpiresAt: &exp,
	})
	if err != nil {
		t.Fatal(err)
	}

	v, err := resource.NewVerifier(ctx, resource.VerifierParams{Issuer: ls.url, Audience: apiAudience})
	if err != nil {
		t.Fatal(err)
	}
	var chain resource.Chain
	api := httptest.NewServer(resource.Middleware(v, resource.RequireScopes("tickets:read"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.ClaimsFromContext(r.Context())
		var err error
		if chain, err = c.Chain(); err != nil {
			t.Errorf("Chain: %v", err)
		}
		_, _ = io.WriteString(w, "ok")
	})))
	defer api.Close()

	dk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dpop.NewSigner(dk)
	if err != nil {
		t.Fatal(err)
	}
	src, err := agent.NewTokenSource(agent.TokenSourceParams{
		Issuer: ls.url, ClientID: ls.agent.ClientID, Key: ls.key, KeyID: ls.kid, DPoP: signer,
	})
	if err != nil {
		t.Fatal(err)
	}
	deleg := src.Delegated(agent.ExchangeParams{
		SubjectToken: alice, SubjectTokenType: agent.TokenTypeIDToken, Resources: []string{apiAudience}, Scopes: []string{"tickets:read"},
	})
	tok, err := deleg.TokenContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != agent.TokenTypeDPoP || tok.Extra("issued_token_type") != agent.TokenTypeAccessToken {
		t.Errorf("delegated token: type %q, issued %v", tok.TokenType, tok.Extra("issued_token_type"))
	}
	resp, err := (&http.Client{Transport: agent.NewTransport(deleg, nil)}).Get(api.URL + "/tickets")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API status %d %v", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	want := resource.Chain{Subject: "alice", SubjectIssuer: idp.URL, Actor: ls.agent.SPIFFEID,
		Actors: []string{ls.agent.SPIFFEID}, GrantID: g.ID}
	if diff := cmp.Diff(want, chain); diff != "" || chain.Depth() != 1 {
		t.Errorf("chain (-want +got):\n%s", diff)
	}

	// A transaction token for the trust domain: N_A, and no access token.
	txn, err := src.Exchange(ctx, agent.ExchangeParams{
		SubjectToken: alice, SubjectTokenType: agent.TokenTypeIDToken, RequestedTokenType: agent.TokenTypeTxnToken,
		Audiences: []string{"example.org"}, Scopes: []string{"tickets:read"}, RequestDetails: map[string]any{"ticket": "T-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if txn.TokenType != agent.TokenTypeNA || txn.Extra("issued_token_type") != agent.TokenTypeTxnToken {
		t.Errorf("txn token: %q %v", txn.TokenType, txn.Extra("issued_token_type"))
	}
	if _, err := v.Verify(ctx, txn.AccessToken); !errors.Is(err, resource.ErrInvalidToken) {
		t.Errorf("a transaction token verified as an access token: %v", err)
	}
	// A refused exchange is an *agent.Error with the OAuth code.
	_, err = src.Exchange(ctx, agent.ExchangeParams{SubjectToken: alice, SubjectTokenType: agent.TokenTypeIDToken, Scopes: []string{"tickets:write"}})
	var ae *agent.Error
	if !errors.As(err, &ae) || ae.Code != "invalid_scope" {
		t.Errorf("wider exchange: %v", err)
	}
}
