package admin

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// NodeJoinTokenStatus is one item of GET /v1/node-tokens: a node join
// token as the server keeps it (never the token itself). State is
// JoinTokenUnused, JoinTokenUsed, JoinTokenRevoked or JoinTokenExpired;
// UsedAt and NodeID are set when a node attested with it. Who revoked a
// token, and when, is in its join_token.revoked audit event.
type NodeJoinTokenStatus struct {
	ID        string     `json:"id"`
	State     string     `json:"state"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	NodeID    string     `json:"node_id,omitempty"`
}

// ListJoinTokensParams filters ListJoinTokens. State is "" (every token)
// or one of the JoinToken… states.
type ListJoinTokensParams struct {
	State     string
	PageSize  int
	PageToken string
}

// ListJoinTokens returns one page of the node join tokens the server
// keeps, in creation order, with their states. Tokens are collected a day
// (the server's retention) after their expiry and are then no longer
// listed. A state other than the four is a validation problem (400).
// Agents' join tokens are listed with ListAgentJoinTokens.
func (c *Client) ListJoinTokens(ctx context.Context, p ListJoinTokensParams) (List[NodeJoinTokenStatus], error) {
	q := url.Values{}
	set(q, "state", p.State)
	page(q, p.PageSize, p.PageToken)
	var l List[NodeJoinTokenStatus]
	return l, c.do(ctx, http.MethodGet, "/v1/node-tokens", q, nil, &l)
}
