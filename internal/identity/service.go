// Package identity is the agent registry: agents and their owners, their
// lifecycle, the SPIFFE ID rules that name them, the client credentials
// agents authenticate with (public keys, client secrets) and the
// administrator's revocation of their tokens. It validates every
// input, enforces the lifecycle (agents active ⇄ suspended → deprovisioned,
// owners active ⇄ deactivated) and records every change as an audit event
// in the same store transaction as the change, so the two commit together
// or not at all.
//
// The package speaks neither HTTP nor SQL: transports call the Service and
// map its errors (see ErrInvalid and the other sentinels); storage goes
// through store.Store.
package identity

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Params configures a Service.
type Params struct {
	// Store holds agents, owners and the audit trail. Required.
	Store store.Store
	// Recorder appends audit events inside the Store's transactions.
	// Required.
	Recorder *audit.Recorder
	// TrustDomain names the deployment in SPIFFE IDs (SPIFFE ID §2.1).
	// Required.
	TrustDomain string
	// DefaultTTL is the credential max TTL of an agent created without one;
	// zero means DefaultMaxTTL.
	DefaultTTL time.Duration
	// MaxTTLCap is the largest credential max TTL an agent may have; zero
	// means DefaultMaxTTLCap.
	MaxTTLCap time.Duration
	// Clock is the time source; default time.Now.
	Clock func() time.Time
	// Rand is the source of record ids; default crypto/rand.Reader.
	Rand io.Reader
	// OnChange, when set, is called after every committed change of an
	// agent record (create, update, lifecycle, client credentials, token
	// revocation), outside the transaction. It must not block: the node
	// API's hub uses it to rebuild its snapshot at once.
	OnChange func()
	// OwnerGrants, when set, revokes the delegation grants of a person
	// owner inside the transaction that deactivates it (ADR 0014,
	// addendum F). The server sets it to the delegation service.
	OwnerGrants OwnerGrantRevoker
}

// Service is the registry. It is safe for concurrent use; consistency under
// concurrency comes from the store's transactions (every mutation is one
// store.Update).
type Service struct {
	store      store.Store
	rec        *audit.Recorder
	td         string
	defaultTTL time.Duration
	ttlCap     time.Duration
	clock      func() time.Time
	rand       io.Reader
	onChange   func()
	grants     OwnerGrantRevoker
}

// New returns a Service. It fails when Store or Recorder is nil, when
// TrustDomain is not a valid SPIFFE trust domain name, or when the TTL
// settings are inconsistent (MinMaxTTL ≤ DefaultTTL ≤ MaxTTLCap).
func New(p Params) (*Service, error) {
	if p.Store == nil {
		return nil, errors.New("identity: Params.Store is required")
	}
	if p.Recorder == nil {
		return nil, errors.New("identity: Params.Recorder is required")
	}
	if err := ValidateTrustDomain(p.TrustDomain); err != nil {
		return nil, fmt.Errorf("identity: trust domain %s: %w", quote(p.TrustDomain), err)
	}
	s := &Service{
		store:      p.Store,
		rec:        p.Recorder,
		td:         p.TrustDomain,
		defaultTTL: p.DefaultTTL,
		ttlCap:     p.MaxTTLCap,
		clock:      p.Clock,
		rand:       p.Rand,
		onChange:   p.OnChange,
		grants:     p.OwnerGrants,
	}
	if s.defaultTTL == 0 {
		s.defaultTTL = DefaultMaxTTL
	}
	if s.ttlCap == 0 {
		s.ttlCap = DefaultMaxTTLCap
	}
	if s.ttlCap < MinMaxTTL {
		return nil, fmt.Errorf("identity: MaxTTLCap %s is below the minimum %s", s.ttlCap, MinMaxTTL)
	}
	if s.defaultTTL < MinMaxTTL || s.defaultTTL > s.ttlCap {
		return nil, fmt.Errorf("identity: DefaultTTL %s must be between %s and MaxTTLCap %s", s.defaultTTL, MinMaxTTL, s.ttlCap)
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return s, nil
}

// TrustDomain returns the trust domain the Service names agents in.
func (s *Service) TrustDomain() string { return s.td }

// updateAgents runs fn as one store transaction that changes agents and,
// once it has committed, calls the OnChange hook.
func (s *Service) updateAgents(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	err := s.store.Update(ctx, fn)
	if err == nil && s.onChange != nil {
		s.onChange()
	}
	return err
}

// now is the clock in the store's precision, so returned records equal
// stored ones.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// TransitionParams asks for a lifecycle transition of one agent or owner.
type TransitionParams struct {
	// Ref is the record's id or its name (agents) or email (owners).
	Ref string
	// IfVersion, when not zero, must equal the record's current version,
	// or the call fails with ErrVersionMismatch.
	IfVersion int64
	// Reason is an optional free-text justification recorded on the audit
	// event; at most MaxReasonLen bytes without control characters.
	Reason string
}

func (p TransitionParams) normalizeReason() (string, error) {
	r := strings.TrimSpace(p.Reason)
	if len(r) > MaxReasonLen {
		return "", invalid("reason", "must be at most %d bytes", MaxReasonLen)
	}
	if err := checkText(r); err != nil {
		return "", withField("reason", err)
	}
	return r, nil
}

func checkIfVersion(v int64) error {
	if v < 0 {
		return invalid("if_version", "must not be negative")
	}
	return nil
}

// actorID is what CreatedBy records for the origin's actor.
func actorID(o audit.Origin) string {
	if o.Actor.ID != "" {
		return o.Actor.ID
	}
	return o.Actor.Type
}

// pageErr maps a store page-token error to a validation error.
func pageErr(err error) error {
	if errors.Is(err, store.ErrBadPageToken) || errors.Is(err, store.ErrInvalid) {
		return invalid("page_token", "is not a token this server issued")
	}
	return err
}

// newID returns a new record id.
func (s *Service) newID(prefix string, now time.Time) (string, error) {
	id, err := recordid.New(prefix, now, s.rand)
	if err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	return id, nil
}
