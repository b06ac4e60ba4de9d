// Package admin is the Go client of agentid's admin API (/v1/…): agents
// and their client credentials, owners, admin tokens, token revocation,
// the audit trail, and nodes (join tokens, attestation, eviction). It
// defines the API's wire types,
// which the server uses too, so client and server cannot drift apart.
//
// The package imports nothing from agentid's internal packages and no
// database driver. A Client is safe for concurrent use.
package admin

import (
	"encoding/json"
	"fmt"
	"time"
)

// Agent is a registered agent identity as the admin API returns it.
// ClientID is its OAuth client_id, which is its id. TokensRevokedAt, when
// set, revokes every token issued to it at or before that second.
// FederatesWith names the foreign SPIFFE trust domains whose bundles its
// workloads get as federated bundles. Selectors are the workload
// selectors (unix:uid:1000, unix:path:/usr/local/bin/x,
// unix:sha256:<hex>) by which a node knows a workload runs as the agent:
// all of them must hold; none means no workload does. NodeScope names
// the nodes that may obtain its SVIDs (ADR 0019); empty lists: every node.
type Agent struct {
	ID            string   `json:"id"`
	ClientID      string   `json:"client_id"`
	Name          string   `json:"name"`
	SPIFFEID      string   `json:"spiffe_id"`
	Owners        []string `json:"owners"`
	Purpose       string   `json:"purpose"`
	ActionClasses []string `json:"action_classes"`
	Audiences     []string `json:"audiences"`
	Scopes        []string `json:"scopes"`
	Permissions   []string `json:"permissions"`
	RequireDPoP   bool     `json:"require_dpop"`
	FederatesWith []string `json:"federates_with"`
	Selectors     []string `json:"selectors"`
	// AttestationRules say which evidence proves an instance (ADR 0015).
	AttestationRules []AttestationRule `json:"attestation_rules"`
	// NodeScope is always present, with empty lists when unscoped.
	NodeScope       NodeScope         `json:"node_scope"`
	MaxTTLSeconds   int64             `json:"max_ttl_seconds"`
	Labels          map[string]string `json:"labels"`
	ExpiresAt       *time.Time        `json:"expires_at,omitempty"`
	Expired         bool              `json:"expired"`
	TokensRevokedAt *time.Time        `json:"tokens_revoked_at,omitempty"`
	// ExternalID is the provisioning client's id of the agent (the SCIM
	// externalId); "" for none.
	ExternalID string    `json:"external_id"`
	State      string    `json:"state"`
	Orphaned   bool      `json:"orphaned"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Version    int64     `json:"version"`
}

// CreateAgentRequest is the body of POST /v1/agents. Owners are owner ids or
// emails. A zero MaxTTLSeconds means the server's default.
type CreateAgentRequest struct {
	Name          string   `json:"name"`
	Purpose       string   `json:"purpose"`
	Owners        []string `json:"owners"`
	ActionClasses []string `json:"action_classes,omitempty"`
	Audiences     []string `json:"audiences,omitempty"`
	Scopes        []string `json:"scopes,omitempty"`
	Permissions   []string `json:"permissions,omitempty"`
	RequireDPoP   bool     `json:"require_dpop,omitempty"`
	FederatesWith []string `json:"federates_with,omitempty"`
	Selectors     []string `json:"selectors,omitempty"`
	// AttestationRules say which evidence proves an instance (ADR 0015).
	AttestationRules []AttestationRule `json:"attestation_rules,omitempty"`
	// NodeScope names the nodes that may serve the agent (ADR 0019);
	// nil: every node.
	NodeScope     *NodeScope        `json:"node_scope,omitempty"`
	MaxTTLSeconds int64             `json:"max_ttl_seconds,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	ExpiresAt     *time.Time        `json:"expires_at,omitempty"`
}

// UpdateAgentRequest is the body of PATCH /v1/agents/{ref}. Absent (nil)
// fields are left unchanged. A non-zero Version makes the update conditional:
// the server answers 409 when the agent's version differs. The If-Match
// header carries the same precondition.
type UpdateAgentRequest struct {
	Version       int64     `json:"version,omitempty"`
	Purpose       *string   `json:"purpose,omitempty"`
	Owners        *[]string `json:"owners,omitempty"`
	ActionClasses *[]string `json:"action_classes,omitempty"`
	Audiences     *[]string `json:"audiences,omitempty"`
	Scopes        *[]string `json:"scopes,omitempty"`
	Permissions   *[]string `json:"permissions,omitempty"`
	RequireDPoP   *bool     `json:"require_dpop,omitempty"`
	FederatesWith *[]string `json:"federates_with,omitempty"`
	Selectors     *[]string `json:"selectors,omitempty"`
	// AttestationRules replaces the agent's attestation rules.
	AttestationRules *[]AttestationRule `json:"attestation_rules,omitempty"`
	// NodeScope replaces the agent's node scope; an empty one (no node
	// ids, no rules) clears it, so every node may serve the agent.
	NodeScope     *NodeScope         `json:"node_scope,omitempty"`
	MaxTTLSeconds *int64             `json:"max_ttl_seconds,omitempty"`
	Labels        *map[string]string `json:"labels,omitempty"`
	ExpiresAt     *time.Time         `json:"expires_at,omitempty"`
	// ExternalID replaces the provisioning client's id of the agent (the
	// SCIM externalId); "" clears it.
	ExternalID *string `json:"external_id,omitempty"`
}

// NodeScope names the nodes that may obtain an agent's SVIDs (ADR 0019):
// a node qualifies when NodeIDs holds its id (nod_…) or when one of Rules
// matches the evidence it attested with (the rule's attestor and all its
// matchers, as in AttestationRule). Both empty: every node may.
type NodeScope struct {
	NodeIDs []string          `json:"node_ids"`
	Rules   []AttestationRule `json:"rules"`
}

// TransitionRequest is the body of the lifecycle actions (suspend, resume,
// deprovision, deactivate). Both fields are optional.
type TransitionRequest struct {
	Version int64  `json:"version,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Owner is a human or team accountable for agents. UserName and
// ExternalID are its SCIM userName and externalId (docs/scim.md), when it
// has them.
type Owner struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Email   string `json:"email,omitempty"`
	Subject string `json:"subject,omitempty"`
	// SubjectIssuer is the identity provider whose tokens name the owner
	// by Subject; empty when tied to none (docs/delegation.md).
	SubjectIssuer string    `json:"subject_issuer,omitempty"`
	DisplayName   string    `json:"display_name,omitempty"`
	UserName      string    `json:"user_name,omitempty"`
	ExternalID    string    `json:"external_id,omitempty"`
	State         string    `json:"state"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	Version       int64     `json:"version"`
}

// CreateOwnerRequest is the body of POST /v1/owners. Kind defaults to
// "person"; at least one of Email, Subject and UserName is required.
type CreateOwnerRequest struct {
	Kind    string `json:"kind,omitempty"`
	Email   string `json:"email,omitempty"`
	Subject string `json:"subject,omitempty"`
	// SubjectIssuer ties Subject to one trusted identity provider: its
	// issuer URL, as in the server's delegation.issuers.
	SubjectIssuer string `json:"subject_issuer,omitempty"`
	DisplayName   string `json:"display_name,omitempty"`
	UserName      string `json:"user_name,omitempty"`
	ExternalID    string `json:"external_id,omitempty"`
}

// AdminToken describes an admin API token. The secret is never returned
// after creation.
type AdminToken struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Version   int64      `json:"version"`
}

// CreateAdminTokenRequest is the body of POST /v1/admin-tokens. Role is
// "admin" or "auditor"; a zero TTLSeconds means no expiry.
type CreateAdminTokenRequest struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	TTLSeconds int64  `json:"ttl_seconds,omitempty"`
}

// CreatedAdminToken is the answer to POST /v1/admin-tokens: the record and,
// this once, the secret.
type CreatedAdminToken struct {
	AdminToken
	Token string `json:"token"`
}

// List is one page of a list endpoint.
type List[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// AuditEvent is one sealed audit event, as GET /v1/audit/events lists it
// and as each line of GET /v1/audit/export carries it. Details holds
// type-specific facts; never a secret.
type AuditEvent struct {
	Seq        int64            `json:"seq"`
	ID         string           `json:"id"`
	Time       time.Time        `json:"time"`
	Family     string           `json:"family"`
	Type       string           `json:"type"`
	Outcome    string           `json:"outcome"`
	Decision   string           `json:"decision,omitempty"`
	Actor      *AuditActor      `json:"actor,omitempty"`
	Agent      *AuditAgent      `json:"agent,omitempty"`
	Instance   *AuditInstance   `json:"instance,omitempty"`
	Delegation *AuditDelegation `json:"delegation,omitempty"`
	Task       *AuditTask       `json:"task,omitempty"`
	Source     *AuditSource     `json:"source,omitempty"`
	Details    json.RawMessage  `json:"details,omitempty"`
	Reason     string           `json:"reason,omitempty"`
	PrevHash   string           `json:"prev_hash"`
	Hash       string           `json:"hash"`
}

// AuditActor is who did the thing.
type AuditActor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// AuditAgent is the agent axis of an event.
type AuditAgent struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	SPIFFEID string `json:"spiffe_id,omitempty"`
}

// AuditInstance is the instance axis of an event.
type AuditInstance struct {
	ID     string `json:"id"`
	Method string `json:"method,omitempty"`
}

// AuditDelegation is the delegation axis of an event.
type AuditDelegation struct {
	Subject string   `json:"subject,omitempty"`
	Actors  []string `json:"actors,omitempty"`
	GrantID string   `json:"grant_id,omitempty"`
}

// AuditTask is the task axis of an event.
type AuditTask struct {
	Scope         string   `json:"scope,omitempty"`
	ActionClasses []string `json:"action_classes,omitempty"`
	TraceID       string   `json:"trace_id,omitempty"`
	Txn           string   `json:"txn,omitempty"`
	ReasoningRef  string   `json:"reasoning_ref,omitempty"`
}

// AuditSource is where the recorded request came from.
type AuditSource struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Node      string `json:"node,omitempty"`
}

// AuditQuery filters GET /v1/audit/events and /v1/audit/export. Agent is an
// agent id or name. Zero fields do not filter.
type AuditQuery struct {
	Agent     string
	Family    string
	TraceID   string
	Since     time.Time
	Until     time.Time
	AfterSeq  int64
	PageSize  int
	PageToken string
	// Format is the export's line format, "jsonl" (the default) or "ocsf";
	// ExportAudit only.
	Format string
}

// Version is the answer to GET /v1/version.
type Version struct {
	Version     string `json:"version"`
	TrustDomain string `json:"trust_domain"`
}

// Problem is an RFC 9457 problem detail, the body of every admin API error.
// Type is a stable URI per kind of problem (docs/errors.md lists them).
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Field names the request field at fault, for validation problems.
	Field string `json:"field,omitempty"`
	// TraceID is the W3C trace id of the failed request, for support.
	TraceID string `json:"trace_id,omitempty"`
}

// Error implements error.
func (p *Problem) Error() string {
	s := fmt.Sprintf("%d %s", p.Status, p.Title)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// Problem types. Each is a stable URI; docs/errors.md describes each.
const (
	ProblemBadRequest           = "urn:agentid:problem:bad-request"
	ProblemValidation           = "urn:agentid:problem:validation"
	ProblemUnauthenticated      = "urn:agentid:problem:unauthenticated"
	ProblemForbidden            = "urn:agentid:problem:forbidden"
	ProblemNotFound             = "urn:agentid:problem:not-found"
	ProblemAlreadyExists        = "urn:agentid:problem:already-exists"
	ProblemVersionMismatch      = "urn:agentid:problem:version-mismatch"
	ProblemIllegalTransition    = "urn:agentid:problem:illegal-transition"
	ProblemLimitExceeded        = "urn:agentid:problem:limit-exceeded"
	ProblemBodyTooLarge         = "urn:agentid:problem:body-too-large"
	ProblemUnsupportedMediaType = "urn:agentid:problem:unsupported-media-type"
	ProblemMethodNotAllowed     = "urn:agentid:problem:method-not-allowed"
	ProblemUnavailable          = "urn:agentid:problem:unavailable"
	ProblemBundleFetchFailed    = "urn:agentid:problem:bundle-fetch-failed"
	ProblemInternal             = "urn:agentid:problem:internal"
	ProblemRateLimited          = "urn:agentid:problem:rate-limited"
)

// AuditCheckpoint is a signed checkpoint of the audit chain head, as GET
// /v1/audit/checkpoints lists it. Hash and Signature are lowercase hex.
type AuditCheckpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"key_id"`
	Signature string    `json:"signature"`
}

// PruneAuditRequest is the body of POST /v1/audit/prune: prune the events
// recorded before Before (ADR 0018).
type PruneAuditRequest struct {
	Before time.Time `json:"before"`
}

// AuditPrune is the answer of POST /v1/audit/prune. ThroughSeq is the
// checkpoint the trail now starts after (0: nothing was old enough),
// Events how many events were deleted, EventID the audit.pruned event.
type AuditPrune struct {
	ThroughSeq int64  `json:"through_seq"`
	Events     int64  `json:"events"`
	EventID    string `json:"event_id,omitempty"`
}

// AuditKey is a public checkpoint-signing key, as GET /v1/audit/keys lists
// it. PublicKey is lowercase hex of the raw Ed25519 public key.
type AuditKey struct {
	ID        string    `json:"id"`
	Algorithm string    `json:"algorithm"`
	PublicKey string    `json:"public_key"`
	CreatedAt time.Time `json:"created_at"`
}
