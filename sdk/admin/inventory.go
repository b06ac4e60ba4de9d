package admin

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Finding codes of the inventory (docs/inventory.md, ADR 0024). They are a
// stable contract: a code is never renamed or given another meaning; new
// ones may be added, so treat an unknown code as a finding too.
const (
	FindingOrphaned            = "orphaned"              // every owner is deactivated
	FindingOwnerDeactivated    = "owner_deactivated"     // some owner is deactivated, another is active
	FindingClientSecret        = "client_secret"         // an unexpired client secret (a shared secret)
	FindingSecretWithoutExpiry = "secret_without_expiry" // an unexpired client secret that never expires
	FindingCredentialExpiring  = "credential_expiring"   //nolint:gosec // a finding code, not a credential: a client key or secret expires within the window
	FindingAgentExpiring       = "agent_expiring"        // the agent expires within the window
	FindingAgentExpired        = "agent_expired"         // the agent expired but is not deprovisioned
	FindingSuspended           = "suspended"             // the agent is suspended
	FindingNoCredentials       = "no_credentials"        // active, but nothing lets it get a credential
	FindingUnknownActionClass  = "unknown_action_class"  // an action class the registry does not define
)

// InventoryItem is what GET /v1/inventory says about one agent: who is
// accountable for it, what it may do and how risky that is, which
// credentials it can use, and its findings.
type InventoryItem struct {
	ID            string                 `json:"id"`
	Name          string                 `json:"name"`
	SPIFFEID      string                 `json:"spiffe_id"`
	State         string                 `json:"state"`
	Purpose       string                 `json:"purpose"`
	CreatedAt     time.Time              `json:"created_at"`
	ExpiresAt     *time.Time             `json:"expires_at,omitempty"`
	Expired       bool                   `json:"expired"`
	Owners        []InventoryOwner       `json:"owners"`
	Orphaned      bool                   `json:"orphaned"`
	ActionClasses []InventoryActionClass `json:"action_classes"`
	// RiskTier is the highest risk tier (low, medium, high) among the
	// action classes; absent when the agent holds none the registry
	// defines.
	RiskTier      string               `json:"risk_tier,omitempty"`
	Credentials   InventoryCredentials `json:"credentials"`
	LiveInstances InventoryCount       `json:"live_instances"`
	ActiveGrants  InventoryCount       `json:"active_grants"`
	Findings      []Finding            `json:"findings"`
}

// InventoryOwner is an owner of an inventoried agent. State is active or
// deactivated ("unknown" for an owner the server no longer has).
type InventoryOwner struct {
	ID          string `json:"id"`
	Kind        string `json:"kind,omitempty"`
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	State       string `json:"state"`
}

// InventoryActionClass is an action class an agent holds with its risk
// tier; RiskTier is absent for a class the registry does not define.
type InventoryActionClass struct {
	Name     string `json:"name"`
	RiskTier string `json:"risk_tier,omitempty"`
}

// InventoryCredentials are the ways an agent can get a credential.
type InventoryCredentials struct {
	ClientKeys    CredentialSummary `json:"client_keys"`
	ClientSecrets CredentialSummary `json:"client_secrets"`
	// AttestationRules counts the agent's attestation rules and names
	// their attestors (sorted, deduplicated).
	AttestationRules AttestationSummary `json:"attestation_rules"`
	// Selectors counts the workload selectors by which a node serves the
	// agent's SVIDs.
	Selectors   int  `json:"selectors"`
	RequireDPoP bool `json:"require_dpop"`
}

// CredentialSummary summarises an agent's client keys or client secrets.
// Count, WithoutExpiry, OldestCreatedAt and SoonestExpiry are over the
// unexpired ones, which the agent can use; Expired counts the others.
type CredentialSummary struct {
	Count           int        `json:"count"`
	Expired         int        `json:"expired"`
	WithoutExpiry   int        `json:"without_expiry"`
	OldestCreatedAt *time.Time `json:"oldest_created_at,omitempty"`
	SoonestExpiry   *time.Time `json:"soonest_expiry,omitempty"`
}

// AttestationSummary summarises an agent's attestation rules.
type AttestationSummary struct {
	Count     int      `json:"count"`
	Attestors []string `json:"attestors"`
}

// InventoryCount is a bounded count: Capped says there are more than
// Count (the server counts up to 100).
type InventoryCount struct {
	Count  int  `json:"count"`
	Capped bool `json:"capped"`
}

// Finding is one finding about an agent: a stable code (the Finding…
// constants) and a short message for a person.
type Finding struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// InventoryParams filters Inventory. Findings keeps the agents with at
// least one of the codes; Owner is an owner id or email; ExpiringWithin is
// the window of credential_expiring and agent_expiring (0: the server's
// default, 14 days).
type InventoryParams struct {
	State          string
	Owner          string
	Findings       []string
	ExpiringWithin time.Duration
	PageSize       int
	PageToken      string
}

// Inventory returns one page of the non-human identity inventory, one
// item per agent in creation order. A page filtered by finding may hold
// fewer items than asked, even none, and still have a next page token.
func (c *Client) Inventory(ctx context.Context, p InventoryParams) (List[InventoryItem], error) {
	q := url.Values{}
	set(q, "state", p.State)
	set(q, "owner", p.Owner)
	for _, f := range p.Findings {
		q.Add("finding", f)
	}
	if p.ExpiringWithin != 0 {
		q.Set("expiring_within", p.ExpiringWithin.String())
	}
	page(q, p.PageSize, p.PageToken)
	var l List[InventoryItem]
	return l, c.do(ctx, http.MethodGet, "/v1/inventory", q, nil, &l)
}
