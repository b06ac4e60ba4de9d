package admin

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Grant is a delegation grant (ADR 0014) as the admin API returns it: who
// delegates (SubjectIssuer, Subject), which agent may act for them
// (AgentID), within which scopes, action classes and audiences, until
// when, how deep a chain may grow and whether the agent may sub-delegate.
// Active is false once it is revoked or expired.
type Grant struct {
	ID                 string     `json:"id"`
	SubjectIssuer      string     `json:"subject_issuer"`
	Subject            string     `json:"subject"`
	SubjectEmail       string     `json:"subject_email,omitempty"`
	AgentID            string     `json:"agent_id"`
	Scopes             []string   `json:"scopes"`
	ActionClasses      []string   `json:"action_classes"`
	Audiences          []string   `json:"audiences"`
	ExpiresAt          time.Time  `json:"expires_at"`
	MaxDepth           int        `json:"max_depth"`
	AllowSubdelegation bool       `json:"allow_subdelegation"`
	Active             bool       `json:"active"`
	CreatedByType      string     `json:"created_by_type"`
	CreatedBy          string     `json:"created_by"`
	CreatedAt          time.Time  `json:"created_at"`
	RevokedAt          *time.Time `json:"revoked_at,omitempty"`
	RevokedBy          string     `json:"revoked_by,omitempty"`
	RevokeReason       string     `json:"revoke_reason,omitempty"`
	Version            int64      `json:"version"`
}

// CreateGrantRequest is the body of POST /v1/grants (an admin, for a
// person or an agent) and POST /v1/me/grants (the person themself: the
// subject fields are then taken from their token and may be left out).
// Agent is the agent's id or name; ExpiresAt is required (at most 90
// days ahead); MaxDepth 0 means 3.
type CreateGrantRequest struct {
	SubjectIssuer      string     `json:"subject_issuer,omitempty"`
	Subject            string     `json:"subject,omitempty"`
	SubjectEmail       string     `json:"subject_email,omitempty"`
	Agent              string     `json:"agent"`
	Scopes             []string   `json:"scopes"`
	ActionClasses      []string   `json:"action_classes,omitempty"`
	Audiences          []string   `json:"audiences"`
	ExpiresAt          *time.Time `json:"expires_at"`
	MaxDepth           int        `json:"max_depth,omitempty"`
	AllowSubdelegation bool       `json:"allow_subdelegation,omitempty"`
}

// RevokeGrantRequest is the optional body of a grant revocation.
type RevokeGrantRequest struct {
	Reason string `json:"reason,omitempty"`
}

// GrantRevocation is the answer to a grant revocation: the revoked grant
// and how many live tokens issued under it became inactive.
type GrantRevocation struct {
	Grant          Grant `json:"grant"`
	TokensAffected int64 `json:"tokens_affected"`
}

// ListGrantsParams filters ListGrants. Agent is an agent id or name.
type ListGrantsParams struct {
	Agent         string
	SubjectIssuer string
	Subject       string
	Active        bool
	PageSize      int
	PageToken     string
}

// Paths of the grant endpoints.
const (
	GrantsPath   = "/v1/grants"
	MyGrantsPath = "/v1/me/grants"
)

// CreateGrant creates a grant (an admin token).
func (c *Client) CreateGrant(ctx context.Context, r CreateGrantRequest) (Grant, error) {
	var g Grant
	return g, c.do(ctx, http.MethodPost, GrantsPath, nil, r, &g)
}

// ListGrants returns one page of grants, oldest first.
func (c *Client) ListGrants(ctx context.Context, p ListGrantsParams) (List[Grant], error) {
	q := url.Values{}
	set(q, "agent", p.Agent)
	set(q, "subject_issuer", p.SubjectIssuer)
	set(q, "subject", p.Subject)
	if p.Active {
		q.Set("active", "true")
	}
	page(q, p.PageSize, p.PageToken)
	var l List[Grant]
	return l, c.do(ctx, http.MethodGet, GrantsPath, q, nil, &l)
}

// GetGrant returns a grant by id.
func (c *Client) GetGrant(ctx context.Context, id string) (Grant, error) {
	var g Grant
	return g, c.do(ctx, http.MethodGet, GrantsPath+"/"+url.PathEscape(id), nil, nil, &g)
}

// RevokeGrant revokes a grant; every token issued under it becomes
// inactive.
func (c *Client) RevokeGrant(ctx context.Context, id string, r RevokeGrantRequest) (GrantRevocation, error) {
	var out GrantRevocation
	return out, c.do(ctx, http.MethodPost, GrantsPath+"/"+url.PathEscape(id)+"/revoke", nil, r, &out)
}

// CreateMyGrant creates a grant for the person whose token of a trusted
// issuer the Client was built with (New(serverURL, personToken)).
func (c *Client) CreateMyGrant(ctx context.Context, r CreateGrantRequest) (Grant, error) {
	var g Grant
	return g, c.do(ctx, http.MethodPost, MyGrantsPath, nil, r, &g)
}

// ListMyGrants returns one page of the person's own grants.
func (c *Client) ListMyGrants(ctx context.Context, active bool, pageSize int, pageToken string) (List[Grant], error) {
	q := url.Values{}
	if active {
		q.Set("active", "true")
	}
	page(q, pageSize, pageToken)
	var l List[Grant]
	return l, c.do(ctx, http.MethodGet, MyGrantsPath, q, nil, &l)
}

// RevokeMyGrant revokes one of the person's own grants.
func (c *Client) RevokeMyGrant(ctx context.Context, id string, r RevokeGrantRequest) (GrantRevocation, error) {
	var out GrantRevocation
	return out, c.do(ctx, http.MethodPost, MyGrantsPath+"/"+url.PathEscape(id)+"/revoke", nil, r, &out)
}
