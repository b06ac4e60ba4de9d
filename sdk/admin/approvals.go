package admin

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Approval paths.
const (
	ApprovalsPath   = "/v1/approvals"
	MyApprovalsPath = "/v1/me/approvals"
)

// Approval states.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
	ApprovalExpired  = "expired"
)

// Approval is a human's answer to a conditional decision: pending until
// an owner of the agent, a designated approver or an admin approves or
// denies it, or it expires. Approved, it turns the same request (same
// subject, person, action, resource, obligations; numeric context values
// not above its Limits) into an allow until ExpiresAt. The webhook sends
// the same shape.
//
// The subject is an agent (Agent set, User "") or a user subject of the
// AuthZEN API (User set, Agent the zero value and absent from the JSON),
// whose approval a designated approver or an admin gives, never the user.
type Approval struct {
	ID            string            `json:"id"`
	State         string            `json:"state"`
	Agent         ApprovalAgent     `json:"agent,omitzero"`
	User          string            `json:"user,omitempty"`
	Person        string            `json:"person,omitempty"`
	Action        string            `json:"action"`
	ActionClass   string            `json:"action_class,omitempty"`
	RiskTier      string            `json:"risk_tier,omitempty"`
	Resource      ApprovalResource  `json:"resource"`
	Obligations   []string          `json:"obligations"`
	Limits        map[string]string `json:"limits,omitempty"`
	PolicyVersion int64             `json:"policy_version"`
	PolicyIDs     []string          `json:"policy_ids"`
	Reason        string            `json:"reason,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	ExpiresAt     time.Time         `json:"expires_at"`
	DecidedAt     *time.Time        `json:"decided_at,omitempty"`
	Decider       string            `json:"decider,omitempty"`
	DeciderType   string            `json:"decider_type,omitempty"`
	DecideReason  string            `json:"decide_reason,omitempty"`
}

// ApprovalAgent names an approval's agent.
type ApprovalAgent struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ApprovalResource is an approval's resource.
type ApprovalResource struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// DecideApprovalRequest is the body of POST /v1/approvals/{id}/approve
// and …/deny. Reason is required to deny; TTL (a Go duration, "15m")
// shortens how long an approval covers requests.
type DecideApprovalRequest struct {
	Reason string `json:"reason,omitempty"`
	TTL    string `json:"ttl,omitempty"`
}

// ListApprovalsParams filters ListApprovals.
type ListApprovalsParams struct {
	State     string // pending | approved | denied | expired; "" for all
	Agent     string // agent id; "" for all
	User      string // a user subject's id; "" for all
	PageSize  int
	PageToken string
}

// ListApprovals returns one page of approvals in creation order.
func (c *Client) ListApprovals(ctx context.Context, p ListApprovalsParams) (List[Approval], error) {
	q := url.Values{}
	set(q, "state", p.State)
	set(q, "agent", p.Agent)
	set(q, "user", p.User)
	page(q, p.PageSize, p.PageToken)
	var l List[Approval]
	return l, c.do(ctx, http.MethodGet, ApprovalsPath, q, nil, &l)
}

// GetApproval returns an approval by id.
func (c *Client) GetApproval(ctx context.Context, id string) (Approval, error) {
	var a Approval
	return a, c.do(ctx, http.MethodGet, ApprovalsPath+"/"+url.PathEscape(id), nil, nil, &a)
}

// Approve approves a pending approval as the admin.
func (c *Client) Approve(ctx context.Context, id string, r DecideApprovalRequest) (Approval, error) {
	var a Approval
	return a, c.do(ctx, http.MethodPost, ApprovalsPath+"/"+url.PathEscape(id)+"/approve", nil, r, &a)
}

// DenyApproval denies a pending approval as the admin.
func (c *Client) DenyApproval(ctx context.Context, id string, r DecideApprovalRequest) (Approval, error) {
	var a Approval
	return a, c.do(ctx, http.MethodPost, ApprovalsPath+"/"+url.PathEscape(id)+"/deny", nil, r, &a)
}

// ApproveAsPerson approves a pending approval as the person whose token
// of a trusted issuer the Client was built with (an owner of the agent
// or a designated approver; not the user of a user subject's approval).
func (c *Client) ApproveAsPerson(ctx context.Context, id string, r DecideApprovalRequest) (Approval, error) {
	var a Approval
	return a, c.do(ctx, http.MethodPost, MyApprovalsPath+"/"+url.PathEscape(id)+"/approve", nil, r, &a)
}

// DenyAsPerson denies a pending approval as the person.
func (c *Client) DenyAsPerson(ctx context.Context, id string, r DecideApprovalRequest) (Approval, error) {
	var a Approval
	return a, c.do(ctx, http.MethodPost, MyApprovalsPath+"/"+url.PathEscape(id)+"/deny", nil, r, &a)
}
