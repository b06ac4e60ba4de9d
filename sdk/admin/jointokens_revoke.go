package admin

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// RevokedNodeJoinToken is the answer to POST /v1/node-tokens/{id}/revoke:
// the node join token that can no longer attest a node (never the token
// itself).
type RevokedNodeJoinToken struct {
	ID        string    `json:"id"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at"`
	RevokedBy string    `json:"revoked_by"`
}

// RevokeJoinToken revokes the unused node join token id (njt_…): no node
// can attest with it afterwards. The problem is not-found (404) for an
// unknown id and illegal-transition (409) for a token already used,
// revoked or expired. Agents' join tokens (ajt_…) are revoked with
// RevokeAgentJoinToken.
func (c *Client) RevokeJoinToken(ctx context.Context, id string) (RevokedNodeJoinToken, error) {
	var t RevokedNodeJoinToken
	return t, c.do(ctx, http.MethodPost, "/v1/node-tokens/"+url.PathEscape(id)+"/revoke", nil, struct{}{}, &t)
}
