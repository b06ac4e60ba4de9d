// Package policy is agentid's decision point (ADR 0013): the registry of
// action classes and their risk tiers, the versioned Cedar policy set of
// the deployment (parse and validate against the schema built from the
// registry, apply, history, rollback, diff), and Decide, which answers
// whether an agent may do an action on a resource now: allow, deny or
// conditional, with the policies that determined it.
//
// Cedar decides allow or deny (default deny, forbid overrides permit); a
// permit annotated @decision("conditional") turns an allow into a
// conditional one whose obligations (@obligation, default "approval")
// the caller must satisfy first. Policies are named by their @id
// annotation.
//
// The active policy set is compiled once and kept in memory with the
// policy head's generation; a change made through this Service swaps it at
// once, and a change made by another replica is noticed by reading the
// head (one row) at most once per RefreshInterval. Subject agents are
// cached too: each decision reads the agent's version (one row) and uses
// the copy when it is current; a copy is read again in full after
// RefreshInterval, which bounds how long an owner's deactivation (the
// derived orphaned attribute) may go unseen.
//
// Every decision is an audit event (family authorization, type
// decision.made) committed before Decide returns: no event, no decision.
// The package speaks neither HTTP nor SQL.
package policy

import (
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/store"
)

// Audit event types.
const (
	// EventDecisionMade (family authorization) records a decision: the
	// event's decision, the subject agent as agent axis, the caller as
	// actor, and details "action", "action_class", "risk_tier",
	// "resource" {"type", "id"}, "policy_version", "policy_ids",
	// "errored_policy_ids", "obligations", "context_sha256" and "input"
	// (what DryRun replays: the exact action and resource with its scalar
	// properties, the context's time and trace_id when given). A request
	// that could not be evaluated in a batch is recorded with outcome
	// failure, decision deny and the problem as reason.
	EventDecisionMade = "decision.made"
	// EventPolicyApplied (family admin) records a new version, activated:
	// details "version", "previous_version", "sha256", "policy_ids",
	// "comment".
	EventPolicyApplied = "policy.applied"
	// EventPolicyRolledBack (family admin) records the activation of an
	// earlier version, with the details of EventPolicyApplied.
	EventPolicyRolledBack = "policy.rolled_back"
	// EventActionClassCreated and EventActionClassUpdated (family admin)
	// record a change of the registry: details "name", "risk_tier",
	// "description", "actions", "version".
	EventActionClassCreated = "action_class.created"
	EventActionClassUpdated = "action_class.updated"
)

// Decisions.
const (
	Allow       = audit.DecisionAllow
	Deny        = audit.DecisionDeny
	Conditional = audit.DecisionConditional
)

// Risk tiers of action classes.
const (
	TierLow    = "low"
	TierMedium = "medium"
	TierHigh   = "high"
)

// Tiers returns the risk tiers, lowest first.
func Tiers() []string { return []string{TierLow, TierMedium, TierHigh} }

// Defaults and bounds.
const (
	// DefaultRefreshInterval bounds how long a decision may use a policy
	// set that another replica has replaced, or a cached agent whose
	// orphaned attribute an owner change has made stale.
	DefaultRefreshInterval = time.Second
	// MaxPolicyBytes bounds a policy document.
	MaxPolicyBytes = 1 << 20
	// MaxPolicies bounds the policies of one document.
	MaxPolicies = 10000
	// MaxCommentLen bounds a version's comment.
	MaxCommentLen = 1024
	// MaxActionsPerClass bounds the actions of one class.
	MaxActionsPerClass = 256
	// MaxNameLen bounds an action class or action name.
	MaxNameLen = 64
	// MaxDescriptionLen bounds an action class's description.
	MaxDescriptionLen = 256
	// MaxDepth bounds the nesting of the JSON values of a request's
	// context and properties.
	MaxDepth = 8
	// MaxRequestBytes bounds the encoded context and properties of one
	// request.
	MaxRequestBytes = 64 << 10
	// MaxIDLen bounds subject, resource and other identifiers of a request.
	MaxIDLen = 512
)

// Sentinel errors; test with errors.Is. Transports map them:
//
//	ErrInvalid       → 400 (also matches store.ErrInvalid; a *ValidationError or *PolicyError)
//	ErrNotFound      → 404 (also matches store.ErrNotFound)
//	ErrConflict      → 409 (also matches store.ErrConflict)
var (
	// ErrInvalid means the request or the policy document is malformed.
	ErrInvalid = fault.NewSentinel("policy: invalid request", store.ErrInvalid)
	// ErrNotFound means no policy version or action class has the name.
	ErrNotFound = fault.NewSentinel("policy: not found", store.ErrNotFound)
	// ErrConflict means the policy head moved while the change was being
	// checked (another replica changed policies or action classes); the
	// caller may retry.
	ErrConflict = fault.NewSentinel("policy: policies changed concurrently; retry", store.ErrConflict)
)

// ValidationError says which input field is wrong and why. Those this
// package returns wrap ErrInvalid; Reason is safe to show to the client.
type ValidationError = fault.ValidationError

func invalid(field, format string, args ...any) *ValidationError {
	return fault.Invalid(ErrInvalid, "policy", field, format, args...)
}

// Params configures a Service.
type Params struct {
	// Store holds policy versions, action classes, agents and the audit
	// trail. Required.
	Store store.Store
	// Recorder appends audit events. Required.
	Recorder *audit.Recorder
	// Clock is the time source. Required.
	Clock func() time.Time
	// RefreshInterval is how often Decide checks the policy head for a
	// change made elsewhere, and the age at which a cached agent is read
	// again in full; zero means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Approvals configures the approvals of conditional decisions.
	Approvals ApprovalParams
	// Rand is the source of approval ids; nil means crypto/rand.
	Rand io.Reader
}

// Service is the decision point. It is safe for concurrent use.
type Service struct {
	store    store.Store
	rec      *audit.Recorder
	clock    func() time.Time
	interval time.Duration
	log      *slog.Logger

	cur       atomic.Pointer[compiled]
	lastCheck atomic.Int64 // clock UnixNano of the last head check
	reload    sync.Mutex   // one reload at a time

	agents agentCache

	approvals struct {
		pendingTTL, ttl time.Duration
		approvers       []string
		webhook         *Webhook
		rand            io.Reader
	}
}

// New returns a Service. The policy set is loaded on first use.
func New(p Params) (*Service, error) {
	switch {
	case p.Store == nil, p.Recorder == nil:
		return nil, errors.New("policy: Store and Recorder are required")
	case p.Clock == nil:
		return nil, errors.New("policy: Clock is required")
	case p.RefreshInterval < 0:
		return nil, errors.New("policy: RefreshInterval must not be negative")
	case p.Approvals.PendingTTL < 0, p.Approvals.TTL < 0:
		return nil, errors.New("policy: approval TTLs must not be negative")
	}
	s := &Service{store: p.Store, rec: p.Recorder, clock: p.Clock, interval: p.RefreshInterval, log: p.Logger}
	if s.interval == 0 {
		s.interval = DefaultRefreshInterval
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	a := &s.approvals
	a.pendingTTL, a.ttl, a.webhook, a.rand = p.Approvals.PendingTTL, p.Approvals.TTL, p.Approvals.Webhook, p.Rand
	a.approvers = slices.Clone(p.Approvals.Approvers)
	if a.pendingTTL == 0 {
		a.pendingTTL = DefaultApprovalPendingTTL
	}
	if a.ttl == 0 {
		a.ttl = DefaultApprovalTTL
	}
	if a.rand == nil {
		a.rand = rand.Reader
	}
	return s, nil
}

// now is the clock's time in UTC at the store's precision.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }
