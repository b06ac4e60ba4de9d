package agent_test

import (
	"testing"

	"github.com/agentid/agentid/sdk/agent"
)

// TestExchangeNeedsSubject: the exchange's own checks come before any
// request (the exchange itself is tested against a real server in
// internal/server's TestDelegationThroughSDK).
func TestExchangeNeedsSubject(t *testing.T) {
	src, err := agent.NewTokenSource(agent.TokenSourceParams{
		TokenURL: "http://127.0.0.1:1/oauth2/token", ClientID: clientID, Key: newKey(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Exchange(t.Context(), agent.ExchangeParams{}); err == nil {
		t.Error("an exchange without a subject token was sent")
	}
	// A delegated source without a subject token fails at its first token,
	// never with a client_credentials token in its place.
	if _, err := src.Delegated(agent.ExchangeParams{}).TokenContext(t.Context()); err == nil {
		t.Error("a delegated source without a subject token returned a token")
	}
}
