// Package noderegistry is the control plane's side of `agentid node`: the
// single-use join tokens an administrator creates, node attestation (a node
// presents a join token and a certificate signing request and becomes a
// registered node with an X.509-SVID of its own,
// spiffe://<trust domain>/node/<id>), the renewal of a node's SVID, and the
// registry of nodes (list, get, evict). The node process, its mTLS
// transport and the Workload API are not here.
//
// A join token's secret is 256 random bits shown once at creation; only its
// SHA-256 is stored. Attestation consumes the token atomically
// (store.JoinTokenWriter.ConsumeJoinToken): of any number of concurrent
// attempts with one token, on any number of replicas, exactly one creates a
// node. The token's consumption, the new node, the node's SVID record and
// the audit events node.attested and credential.issued commit in one store
// transaction before the SVID is returned. Every refused attestation is an
// audit event too (outcome failure, with the reason: malformed, unknown,
// expired or replayed token, bad CSR), while the caller gets one answer,
// ErrUnauthenticated, whatever the token's problem. Secrets never appear in
// errors, logs or audit events.
//
// Instead of a join token, a node may present evidence — a Kubernetes
// projected service-account token or a client certificate chain — that an
// attestor of Params.Attestors verifies and Params.NodeRules accept
// (evidence.go, ADR 0015 addendum D). Such a node keeps on its record the
// attestor that verified it and the facts it proved, which agents' node
// scopes match (Serves, ADR 0019).
//
// An evicted node cannot renew its SVID. The SVIDs it holds are not revoked:
// they expire (at most the node SVID TTL, 1 h by default, after their
// issue).
//
// The package speaks neither HTTP nor SQL: transports call the Service and
// map its errors (ErrUnauthenticated, *ValidationError, ErrNotFound,
// ErrEvicted, and credential.ErrNoCA when no CA can sign).
package noderegistry

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
)

// Audit event types. Node SVIDs are recorded as svid.EventCredentialIssued
// (family issuance) with the node as actor and its id in details
// "node_id".
const (
	// EventJoinTokenCreated (family admin) records a new join token:
	// details "id", "expires_at". Never the secret.
	EventJoinTokenCreated = "join_token.created" //nolint:gosec // an event type, not a credential
	// EventNodeAttested (family authentication) records an attestation:
	// on success the node as actor and details "method", "node_id",
	// "spiffe_id", "join_token_id", "join_token_created_by"; on failure
	// one of the Reason… values as its reason and details "method" and,
	// when the token is known, "join_token_id" (and "used_by_node" for a
	// replay).
	EventNodeAttested = "node.attested"
	// EventNodeAuthenticated (family authentication, outcome failure)
	// records a node refused a renewal because it is evicted or unknown:
	// reason ReasonEvictedNode or ReasonUnknownNode, details "node_id".
	// Successful renewals are recorded by their credential.issued event.
	EventNodeAuthenticated = "node.authenticated"
	// EventNodeEvicted (family admin) records an eviction: details
	// "node_id", "spiffe_id", "svid_serial", "svid_expires_at" (the
	// moment the node's last SVID stops verifying), and the
	// administrator's reason as the event's reason.
	EventNodeEvicted = "node.evicted"
)

// Reasons recorded on failed EventNodeAttested and EventNodeAuthenticated
// events. They are never shown to the caller.
const (
	ReasonMalformed   = "malformed token"
	ReasonUnknown     = "unknown token"
	ReasonExpired     = "expired token"
	ReasonReplayed    = "replayed token"
	ReasonBadCSR      = "bad CSR"
	ReasonUnknownNode = "unknown node"
	ReasonEvictedNode = "evicted node"
)

// MethodJoinToken is the attestation method of a node that attested with a
// join token (store.Node.AttestationMethod).
const MethodJoinToken = "join_token"

// PathPrefix is the path of every node's SPIFFE ID before the node id:
// spiffe://<trust domain>/node/<id>.
const PathPrefix = "/node/"

// Defaults and bounds.
const (
	// DefaultJoinTokenTTL is a join token's lifetime when none is asked.
	DefaultJoinTokenTTL = 10 * time.Minute
	// MinJoinTokenTTL and MaxJoinTokenTTL bound the lifetime asked.
	MinJoinTokenTTL = time.Minute
	MaxJoinTokenTTL = 24 * time.Hour
	// DefaultRetention is how long a join token is kept past its expiry
	// before CollectJoinTokens removes it.
	DefaultRetention = 24 * time.Hour
	// CollectLease names the store lease under which one replica
	// collects.
	CollectLease = "node/collect"
)

// Sentinel errors; test with errors.Is. Transports map them:
//
//	ErrUnauthenticated → 401
//	ErrInvalid         → 400 (also matches store.ErrInvalid)
//	ErrNotFound        → 404 (also matches store.ErrNotFound)
//	ErrEvicted         → 409 (also matches store.ErrConflict)
//	credential.ErrNoCA → 503
var (
	// ErrUnauthenticated is the one error for every join token that does
	// not attest (malformed, unknown, expired, revoked, used), so a caller
	// learns nothing about which; the reason is in the audit event.
	ErrUnauthenticated = errors.New("noderegistry: join token refused")
	// ErrInvalid means the request is malformed; the error is a
	// *ValidationError naming the field.
	ErrInvalid = fault.NewSentinel("noderegistry: invalid request", store.ErrInvalid)
	// ErrNotFound means no node has the id.
	ErrNotFound = fault.NewSentinel("noderegistry: node not found", store.ErrNotFound)
	// ErrEvicted means the node is evicted: it gets no SVID and cannot be
	// evicted again.
	ErrEvicted = fault.NewSentinel("noderegistry: node is evicted", store.ErrConflict)
)

// ValidationError says which input field is wrong and why. Those this
// package returns wrap ErrInvalid; Reason is safe to show to the client.
type ValidationError = fault.ValidationError

func invalid(field, format string, args ...any) *ValidationError {
	return fault.Invalid(ErrInvalid, "noderegistry", field, format, args...)
}

// Params configures a Service.
type Params struct {
	// Store holds join tokens, nodes and the audit trail. Required.
	Store store.Store
	// Recorder appends audit events. Required.
	Recorder *audit.Recorder
	// Issuer mints the nodes' X.509-SVIDs. Required.
	Issuer *credential.SVIDIssuer
	// TrustDomain names the nodes' SPIFFE IDs. Required.
	TrustDomain string
	// SVIDTTL is the lifetime of a node's X.509-SVID; zero means
	// credential.DefaultX509SVIDTTL. A node renews at half of it. It must
	// not exceed the longest credential lifetime the CA's schedule allows
	// for (the server's credentials.max_ttl).
	SVIDTTL time.Duration
	// Retention keeps expired join tokens this long; zero means
	// DefaultRetention.
	Retention time.Duration
	// Clock is the time source. Required.
	Clock func() time.Time
	// Rand is the source of secrets and ids; default crypto/rand.Reader.
	// It must be a cryptographic source.
	Rand io.Reader
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Attestors verify the evidence of nodes that attest without a join
	// token; nil: only join tokens attest nodes.
	Attestors *attest.Set
	// NodeRules say which evidence attests a node: a kubernetes or x509
	// attestor of Attestors and matchers (CheckNodeRules). None: no
	// evidence attests a node.
	NodeRules []store.AttestationRule
}

// Service manages join tokens and nodes. It is safe for concurrent use.
type Service struct {
	store     store.Store
	rec       *audit.Recorder
	iss       *credential.SVIDIssuer
	td        string
	ttl       time.Duration
	retention time.Duration
	clock     func() time.Time
	rand      io.Reader
	log       *slog.Logger
	attestors *attest.Set
	rules     []store.AttestationRule
}

// New returns a Service.
func New(p Params) (*Service, error) {
	switch {
	case p.Store == nil, p.Recorder == nil, p.Issuer == nil:
		return nil, errors.New("noderegistry: Store, Recorder and Issuer are required")
	case p.Clock == nil:
		return nil, errors.New("noderegistry: Clock is required")
	case p.SVIDTTL < 0 || (p.SVIDTTL > 0 && p.SVIDTTL < time.Second):
		return nil, fmt.Errorf("noderegistry: SVIDTTL %s must be at least 1s", p.SVIDTTL)
	case p.Retention < 0:
		return nil, errors.New("noderegistry: Retention must not be negative")
	}
	if err := identity.ValidateTrustDomain(p.TrustDomain); err != nil {
		return nil, fmt.Errorf("noderegistry: trust domain: %w", err)
	}
	rules, err := CheckNodeRules(p.NodeRules, p.Attestors)
	if err != nil {
		return nil, err
	}
	s := &Service{store: p.Store, rec: p.Recorder, iss: p.Issuer, td: p.TrustDomain, ttl: p.SVIDTTL,
		retention: p.Retention, clock: p.Clock, rand: p.Rand, log: p.Logger, attestors: p.Attestors, rules: rules}
	if s.ttl == 0 {
		s.ttl = credential.DefaultX509SVIDTTL
	}
	if s.retention == 0 {
		s.retention = DefaultRetention
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// now is the clock in the store's precision.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// SPIFFEID is the SPIFFE ID of the node with the id.
func (s *Service) SPIFFEID(nodeID string) string {
	return identity.SPIFFEIDScheme + s.td + PathPrefix + nodeID
}
