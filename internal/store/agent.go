package store

import (
	"context"
	"time"
)

// AgentState is the lifecycle state of an agent.
type AgentState string

// Agent states. Deprovisioned is final.
const (
	AgentActive        AgentState = "active"
	AgentSuspended     AgentState = "suspended"
	AgentDeprovisioned AgentState = "deprovisioned"
)

// Agent is a registered agent identity. Times are UTC with microsecond
// precision once stored.
type Agent struct {
	ID            string // agt_…
	Name          string // DNS label, unique in the trust domain forever
	SPIFFEID      string
	Owners        []string // owner ids (own_…), at least one, sorted
	Purpose       string
	ActionClasses []string
	Audiences     []string // resources (RFC 8707) the agent may ask tokens for
	Scopes        []string // OAuth scopes the agent may be granted
	Permissions   []string // what the agent may do at agentid itself, e.g. "introspect"
	RequireDPoP   bool     // tokens only with a DPoP proof (RFC 9449)
	// FederatesWith names the foreign trust domains whose bundles the
	// agent's workloads receive as federated bundles, sorted.
	FederatesWith []string
	// Selectors are the workload selectors (unix:uid:1000, …) by which a
	// node maps a calling workload to the agent, sorted; the agent
	// matches a workload when every one holds. None: no workload runs
	// as the agent.
	Selectors []string
	// AttestationRules say which evidence proves an instance of the agent
	// (ADR 0015); one matching rule suffices. None: the agent cannot be
	// attested.
	AttestationRules []AttestationRule
	// NodeScope limits which nodes may obtain the agent's SVIDs (ADR
	// 0019); the zero value lets any node.
	NodeScope NodeScope
	MaxTTL    time.Duration
	Labels    map[string]string
	ExpiresAt time.Time // zero: never
	// TokensRevokedAt revokes every token issued to the agent before it;
	// zero: none.
	TokensRevokedAt time.Time
	// ExternalID is the provisioning client's id of the agent (the SCIM
	// externalId, ADR 0025), as sent; "" for none. Not unique.
	ExternalID string
	State      AgentState
	CreatedBy  string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Version    int64 // 1 on create, +1 on every update

	// Orphaned is derived on read: every owner of the agent is deactivated.
	// Writes ignore it.
	Orphaned bool
}

// AgentFilter narrows ListAgents and CountAgents. Zero fields do not
// filter; set fields must all hold.
type AgentFilter struct {
	State    AgentState
	OwnerID  string
	Orphaned bool // only agents whose every owner is deactivated
	// Live keeps only agents that are not deprovisioned.
	Live bool
	// ID, Name and ExternalID match exactly (case-exact).
	ID         string
	Name       string
	ExternalID string
}

// AgentReader reads agents.
type AgentReader interface {
	// GetAgent returns ErrNotFound when no agent has the id.
	GetAgent(ctx context.Context, id string) (Agent, error)
	// GetAgentVersion returns the agent's Version, a cheap way to tell
	// whether a copy of the agent (and of its client credentials, whose
	// changes bump it) is current; ErrNotFound when no agent has the id.
	GetAgentVersion(ctx context.Context, id string) (int64, error)
	// GetAgentByName returns ErrNotFound when no agent has the name.
	GetAgentByName(ctx context.Context, name string) (Agent, error)
	// ListAgents returns agents in id order (creation order to the millisecond) and the
	// token of the next page, empty on the last page.
	ListAgents(ctx context.Context, f AgentFilter, p Page) ([]Agent, string, error)
	// CountAgents returns how many agents match f.
	CountAgents(ctx context.Context, f AgentFilter) (int, error)
}

// AgentWriter changes agents.
type AgentWriter interface {
	// CreateAgent stores a new agent with Version 1. It returns
	// ErrAlreadyExists when the id or name is taken (names of deprovisioned
	// agents included) and ErrInvalid when an owner does not exist.
	CreateAgent(ctx context.Context, a Agent) (Agent, error)
	// UpdateAgent reads the agent, passes it to fn and stores what fn
	// returns, with Version incremented and UpdatedAt set by the caller's
	// returned value. Concurrent updates of one agent are serialised, so no
	// update is lost. ID, Name, CreatedAt and CreatedBy cannot change. fn's
	// error is returned unchanged and nothing is written. ErrNotFound when
	// the agent does not exist.
	UpdateAgent(ctx context.Context, id string, fn func(Agent) (Agent, error)) (Agent, error)
}
