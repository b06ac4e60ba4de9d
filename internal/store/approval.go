package store

import (
	"context"
	"time"
)

// ApprovalState is the life-cycle state of an approval request.
type ApprovalState string

// Approval states: pending → approved | denied | expired; approved →
// expired. Denied and expired are final.
const (
	ApprovalPending  ApprovalState = "pending"
	ApprovalApproved ApprovalState = "approved"
	ApprovalDenied   ApprovalState = "denied"
	ApprovalExpired  ApprovalState = "expired"
)

// Approval is a human's answer to a conditional decision (ADR 0013
// addendum). Its scope is the subject — an agent and the person it acts
// for, or a user subject (ADR 0020) —, the action, the resource and the
// obligations (ScopeKey digests them), and its Limits: the numeric context
// values of the request, which a later request must not exceed to be
// covered. Exactly one of AgentID and User is set. Approvals are never
// deleted.
type Approval struct {
	ID            string // apr_…
	State         ApprovalState
	ScopeKey      string // hex SHA-256 of the scope; required
	AgentID       string // agt_…; "" for a user's approval
	AgentName     string
	User          string // a user subject's id (ADR 0016); "" for an agent's approval
	Person        string // the delegation subject; "" when the agent acts for itself
	Action        string
	ActionClass   string
	RiskTier      string
	ResourceType  string
	ResourceID    string
	Obligations   []string          // sorted
	Limits        map[string]string // context key → decimal number as sent; nil when none
	PolicyVersion int64
	PolicyIDs     []string // the conditional permits that asked for it
	Reason        string   // the policies' @reason
	RequestedBy   string   // actor id of the caller whose decision created it
	TraceID       string
	CreatedAt     time.Time
	// ExpiresAt ends a pending request, and once approved the approval's
	// validity. Required.
	ExpiresAt    time.Time
	DecidedAt    time.Time // zero until approved or denied
	DeciderType  string    // an audit actor type: admin or person
	Decider      string    // admin token id or the person's subject
	DecideReason string
	Version      int64 // 1 on create, +1 on every update
}

// ApprovalFilter narrows ListApprovals. Zero fields do not filter.
type ApprovalFilter struct {
	State    ApprovalState
	AgentID  string
	User     string
	ScopeKey string
	// DueAt keeps pending and approved approvals whose ExpiresAt is not
	// after it (those to expire).
	DueAt time.Time
}

// ApprovalReader reads approvals.
type ApprovalReader interface {
	// GetApproval returns ErrNotFound when no approval has the id.
	GetApproval(ctx context.Context, id string) (Approval, error)
	// ListApprovals returns matching approvals in id (creation) order and
	// the next page token.
	ListApprovals(ctx context.Context, f ApprovalFilter, p Page) ([]Approval, string, error)
}

// ApprovalWriter creates and changes approvals.
type ApprovalWriter interface {
	// CreateApproval stores a new approval with Version 1;
	// ErrAlreadyExists when the id is taken, ErrInvalid when a required
	// field (ID, State, ScopeKey, Action, ResourceType, ResourceID,
	// CreatedAt, ExpiresAt) is missing, when not exactly one of AgentID
	// and User is set, or when AgentID names no agent.
	CreateApproval(ctx context.Context, a Approval) (Approval, error)
	// UpdateApproval has the contract of AgentWriter.UpdateAgent: only
	// State, ExpiresAt, DecidedAt, DeciderType, Decider and DecideReason
	// can change (Version is set by the store).
	UpdateApproval(ctx context.Context, id string, fn func(Approval) (Approval, error)) (Approval, error)
}
