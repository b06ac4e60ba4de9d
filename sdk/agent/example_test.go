package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log"
	"net/http"

	"github.com/agentid/agentid/sdk/agent"
	"github.com/agentid/agentid/sdk/dpop"
)

// An agent calls an API with tokens from agentid, bound to a DPoP key, and
// tells the API which task the call belongs to.
func ExampleNewTransport() {
	src, err := agent.NewTokenSource(agent.TokenSourceParams{
		Issuer:    "https://agentid.example.com",
		ClientID:  "agt_01J9Z3…",
		KeyFile:   "/etc/agent/key.pem", // registered with `agentid agent key add`
		KeyID:     "key-1",
		Scopes:    []string{"tickets:read"},
		Resources: []string{"https://api.example.com"},
	})
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: agent.NewTransport(src, nil)}

	ctx := agent.WithTraceparent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/tickets", nil)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
}

// With a DPoP signer the tokens are bound to its key: a stolen token is
// useless without it.
func ExampleTokenSourceParams_dPoP() {
	dpopKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := dpop.NewSigner(dpopKey)
	if err != nil {
		log.Fatal(err)
	}
	src, err := agent.NewTokenSource(agent.TokenSourceParams{
		TokenURL: "https://agentid.example.com/oauth2/token",
		ClientID: "agt_01J9Z3…",
		KeyFile:  "/etc/agent/key.pem",
		DPoP:     signer,
	})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := src.Token()
	if err != nil {
		log.Fatal(err)
	}
	log.Println(tok.TokenType) // DPoP
}
