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

// RevokedAgentJoinToken is the answer to POST
// /v1/join-tokens/{id}/revoke: the agent join token that can no longer be
// redeemed (never the token itself).
type RevokedAgentJoinToken struct {
	ID        string    `json:"id"`
	AgentID   string    `json:"agent_id"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at"`
	RevokedBy string    `json:"revoked_by"`
}

// RevokeAgentJoinToken revokes the unused agent join token id (ajt_…):
// no instance can redeem it afterwards. The problem is not-found (404) for
// an id never issued and illegal-transition (409) for a token already
// used, revoked or expired.
func (c *Client) RevokeAgentJoinToken(ctx context.Context, id string) (RevokedAgentJoinToken, error) {
	var t RevokedAgentJoinToken
	return t, c.do(ctx, http.MethodPost, "/v1/join-tokens/"+url.PathEscape(id)+"/revoke", nil, struct{}{}, &t)
}

// States of an agent join token in AgentJoinTokenStatus.State.
const (
	JoinTokenUnused  = "unused"
	JoinTokenUsed    = "used"
	JoinTokenRevoked = "revoked"
	JoinTokenExpired = "expired"
)

// AgentJoinTokenStatus is one item of GET /v1/agents/{ref}/join-tokens:
// what the audit trail says of a join token (never the token itself).
// UsedAt and InstanceID are set when it was used, RevokedAt and RevokedBy
// when it was revoked.
type AgentJoinTokenStatus struct {
	ID         string     `json:"id"`
	AgentID    string     `json:"agent_id"`
	State      string     `json:"state"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	ExpiresAt  time.Time  `json:"expires_at"`
	UsedAt     *time.Time `json:"used_at,omitempty"`
	InstanceID string     `json:"instance_id,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	RevokedBy  string     `json:"revoked_by,omitempty"`
}

// ListAgentJoinTokens lists the join tokens of the agent ref (name or id)
// created within the last hour (the longest lifetime, so every token that
// may still be unused is there), newest first, with their states. The
// list is not paged.
func (c *Client) ListAgentJoinTokens(ctx context.Context, ref string) (List[AgentJoinTokenStatus], error) {
	var l List[AgentJoinTokenStatus]
	return l, c.do(ctx, http.MethodGet, "/v1/agents/"+url.PathEscape(ref)+"/join-tokens", nil, nil, &l)
}
