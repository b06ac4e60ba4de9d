package admin

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// AgentJoinToken is the answer to POST /v1/agents/{ref}/join-tokens: a
// one-time join token bound to the agent (docs/attestation.md#join-tokens),
// its secret shown this once. An instance redeems it at the token
// endpoint with grant_type urn:agentid:params:oauth:grant-type:join-token.
type AgentJoinToken struct {
	ID        string    `json:"id"`
	AgentID   string    `json:"agent_id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateAgentJoinToken creates a one-time join token for the agent ref
// (name or id). A zero TTLSeconds means 10 minutes; the lifetime is 60 s
// to 1 h.
func (c *Client) CreateAgentJoinToken(ctx context.Context, ref string, r CreateJoinTokenRequest) (AgentJoinToken, error) {
	var t AgentJoinToken
	return t, c.do(ctx, http.MethodPost, "/v1/agents/"+url.PathEscape(ref)+"/join-tokens", nil, r, &t)
}
