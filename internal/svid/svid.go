// Package svid issues SPIFFE SVIDs to registered agents: it checks that the
// agent may get credentials (active, not expired), mints an X.509-SVID or a
// JWT-SVID with credential.SVIDIssuer under the agent's credential policy,
// and records the issued credential (store.RecordCredential) and its
// credential.issued audit event in one store transaction before the SVID
// is returned: if the record cannot be written, no SVID leaves the server.
// It also lists an agent's issued SVIDs and collects expired records.
//
// The package speaks neither HTTP nor SQL: transports call the Service and
// map its errors (ValidationError, ErrNotFound, ErrNotActive, and
// credential.ErrNoCA / credential.ErrNoKey when nothing can sign).
package svid

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// EventCredentialIssued (family audit.Issuance) records one SVID issued:
// details "kind" (x509_svid or jwt_svid), "serial" (X.509) or "jti" (JWT),
// "spiffe_id", "ttl_s", "expires_at", "audience" (JWT), and "ca_key_id"
// (X.509) or "key_id" (JWT). Never the SVID itself.
const EventCredentialIssued = "credential.issued" //nolint:gosec // an event type, not a credential

// Defaults.
const (
	// DefaultRetention is how long a record of an expired SVID is kept
	// for operators' lists before Collect removes it. The audit trail
	// keeps the issuance for its own retention.
	DefaultRetention = 24 * time.Hour
	// CollectLease names the store lease under which one replica collects.
	CollectLease = "svid/collect"
)

// Sentinel errors. Every error the Service returns wraps at most one of
// them, or credential.ErrNoCA / credential.ErrNoKey when nothing can sign,
// or is an internal failure.
var (
	// ErrInvalid means the request is malformed; the error is a
	// *ValidationError naming the field.
	ErrInvalid = fault.NewSentinel("svid: invalid request", store.ErrInvalid)
	// ErrNotFound means the agent does not exist.
	ErrNotFound = fault.NewSentinel("svid: agent not found", store.ErrNotFound)
	// ErrNotActive means the agent may not get credentials: it is
	// suspended, deprovisioned or expired.
	ErrNotActive = fault.NewSentinel("svid: agent may not get credentials", store.ErrConflict)
)

// ValidationError says which input field is wrong and why. Those this
// package returns wrap ErrInvalid. Field uses the wire name ("csr",
// "audience", "ttl", "agent"); Reason is safe to show to the client.
type ValidationError = fault.ValidationError

func invalid(field, format string, args ...any) *ValidationError {
	return fault.Invalid(ErrInvalid, "svid", field, format, args...)
}

// NotActiveError is the ErrNotActive of one agent.
type NotActiveError struct {
	Agent  string // the agent's name
	Reason string // "suspended", "deprovisioned" or "expired"
}

func (e *NotActiveError) Error() string {
	return fmt.Sprintf("svid: agent %q is %s: it gets no credentials", e.Agent, e.Reason)
}

// Unwrap returns ErrNotActive.
func (e *NotActiveError) Unwrap() error { return ErrNotActive }

// Params configures a Service.
type Params struct {
	// Store holds agents, issued credentials and the audit trail.
	// Required.
	Store store.Store
	// Recorder appends audit events inside Store transactions. Required.
	Recorder *audit.Recorder
	// Issuer mints the SVIDs. Required.
	Issuer *credential.SVIDIssuer
	// Retention keeps records of expired SVIDs this long; zero means
	// DefaultRetention.
	Retention time.Duration
	// Clock is the time source. Required.
	Clock func() time.Time
	// Logger receives the collector's failures; nil discards them.
	Logger *slog.Logger
}

// Service issues and lists SVIDs. It is safe for concurrent use.
type Service struct {
	store     store.Store
	rec       *audit.Recorder
	iss       *credential.SVIDIssuer
	retention time.Duration
	clock     func() time.Time
	log       *slog.Logger
	agents    agentCache
}

// New returns a Service.
func New(p Params) (*Service, error) {
	switch {
	case p.Store == nil, p.Recorder == nil, p.Issuer == nil:
		return nil, errors.New("svid: Store, Recorder and Issuer are required")
	case p.Clock == nil:
		return nil, errors.New("svid: Clock is required")
	case p.Retention < 0:
		return nil, errors.New("svid: Retention must not be negative")
	}
	s := &Service{store: p.Store, rec: p.Recorder, iss: p.Issuer, retention: p.Retention, clock: p.Clock, log: p.Logger}
	if s.retention == 0 {
		s.retention = DefaultRetention
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// now is the clock in the store's precision.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// X509Params asks for an X.509-SVID.
type X509Params struct {
	// Ref is the agent's id (agt_…) or name.
	Ref string
	// CSR is a PKCS #10 request (PEM or DER) whose key the SVID certifies;
	// see credential.ParseCSR. Exactly one of CSR and PublicKey.
	CSR []byte
	// PublicKey is the key to certify, for callers that hold it already
	// (a node that generated it).
	PublicKey crypto.PublicKey
	// TTL is the asked lifetime; zero: credential.DefaultX509SVIDTTL. The
	// agent's MaxTTL and expiry cap it.
	TTL time.Duration
	// Instance is the attested instance (ins_…) the SVID is for, "" when
	// none.
	Instance string
	// Require, when set, is one more condition on the agent, checked
	// before the others (state, expiry) before minting and again in the
	// recording transaction; its error is returned as is. (The node API
	// requires selectors, and answers an agent outside the calling node's
	// scope as unknown.)
	Require func(store.Agent) error
}

// JWTParams asks for a JWT-SVID.
type JWTParams struct {
	// Ref is the agent's id (agt_…) or name.
	Ref string
	// Audience is the "aud" claim; required (JWT-SVID §3.2). Any value is
	// allowed: in SPIFFE an audience is usually the SPIFFE ID of the peer.
	Audience []string
	// TTL is the asked lifetime; zero: credential.DefaultJWTSVIDTTL. The
	// agent's MaxTTL and expiry cap it.
	TTL time.Duration
	// Instance is the attested instance (ins_…), "" when none.
	Instance string
	// Require is as in X509Params.
	Require func(store.Agent) error
}

// IssueX509 mints an X.509-SVID for an active, unexpired agent and records
// it (RecordCredential and credential.issued, in one transaction) before
// returning it, with the agent as read in that transaction.
//
// Errors: *ValidationError for a malformed ref, CSR (unparsable, not
// signed by its key, unsupported key), key or TTL; ErrNotFound;
// ErrNotActive (*NotActiveError); credential.ErrNoCA when no CA can sign.
// On any error nothing is recorded and no SVID is returned.
func (s *Service) IssueX509(ctx context.Context, o audit.Origin, p X509Params) (credential.X509SVID, store.Agent, error) {
	pub := p.PublicKey
	switch {
	case len(p.CSR) > 0 && pub != nil:
		return credential.X509SVID{}, store.Agent{}, invalid("csr", "give a CSR or a public key, not both")
	case len(p.CSR) > 0:
		var err error
		if pub, err = credential.ParseCSR(p.CSR); err != nil {
			return credential.X509SVID{}, store.Agent{}, invalid("csr", "%s", reason(err))
		}
	case pub == nil:
		return credential.X509SVID{}, store.Agent{}, invalid("csr", "a certificate signing request is required")
	default:
		if err := credential.CheckWorkloadKey(pub); err != nil {
			return credential.X509SVID{}, store.Agent{}, invalid("public_key", "%s", reason(err))
		}
	}
	if err := checkRequest(p.TTL, p.Instance); err != nil {
		return credential.X509SVID{}, store.Agent{}, err
	}
	now := s.now()
	a, limit, err := s.usableAgent(ctx, p.Ref, now, p.Require)
	if err != nil {
		return credential.X509SVID{}, store.Agent{}, err
	}
	sv, err := s.iss.X509SVID(credential.X509SVIDParams{
		SPIFFEID: a.SPIFFEID, PublicKey: pub, IssuedAt: now, TTL: p.TTL, MaxTTL: limit,
	})
	if err != nil {
		return credential.X509SVID{}, store.Agent{}, mintErr(err)
	}
	rec := store.IssuedCredential{
		Kind: store.CredentialX509SVID, ID: sv.Serial, AgentID: a.ID, InstanceID: p.Instance,
		SPIFFEID: sv.SPIFFEID, KeyID: sv.CAKeyID, IssuedAt: now, ExpiresAt: sv.ExpiresAt,
	}
	ev := s.issuedEvent(o, rec, now)
	ev.Details["serial"] = sv.Serial
	ev.Details["ca_key_id"] = sv.CAKeyID
	if a, err = s.record(ctx, a, p.Require, rec, ev, now); err != nil {
		return credential.X509SVID{}, store.Agent{}, err
	}
	return sv, a, nil
}

// IssueJWT mints a JWT-SVID for an active, unexpired agent and records it
// like IssueX509.
//
// Errors: *ValidationError for a malformed ref, a missing or bad audience
// or TTL; ErrNotFound; ErrNotActive (*NotActiveError); credential.ErrNoKey
// when no JWT-SVID key can sign. On any error nothing is recorded and no
// SVID is returned.
func (s *Service) IssueJWT(ctx context.Context, o audit.Origin, p JWTParams) (credential.JWTSVID, store.Agent, error) {
	res, err := s.IssueJWTs(ctx, o, []JWTParams{p})
	if err != nil {
		return credential.JWTSVID{}, store.Agent{}, err
	}
	return res[0].SVID, res[0].Agent, res[0].Err
}

// checkRequest validates what both kinds of request share.
func checkRequest(ttl time.Duration, instance string) error {
	if ttl < 0 || (ttl > 0 && ttl < time.Second) {
		return invalid("ttl", "must be at least 1s, or zero for the default")
	}
	if instance != "" && recordid.Valid(recordid.Instance, instance) != nil {
		return invalid("instance", "must be an instance id (%s_…)", recordid.Instance)
	}
	return nil
}

// mintErr maps the issuer's errors. The service validated the request, so
// an invalid-parameter error can only be about the agent's registered
// SPIFFE ID; "nothing can sign" passes through.
func mintErr(err error) error {
	if errors.Is(err, credential.ErrInvalidSVIDParams) {
		return invalid("spiffe_id", "%s", reason(err))
	}
	return fmt.Errorf("svid: %w", err)
}

// reason is the client-safe text of a credential error.
func reason(err error) string {
	msg := err.Error()
	for _, prefix := range []string{credential.ErrInvalidCSR.Error() + ": ", credential.ErrInvalidSVIDParams.Error() + ": "} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok && rest != "" {
			return rest
		}
	}
	return msg
}

// issuedEvent is the audit event of an issued SVID, with the details both
// kinds share. Both kinds count their lifetime from the issue time
// truncated to the second (X.509 times and JWT NumericDates have no
// fraction), so "ttl_s" is the lifetime the SVID states.
func (s *Service) issuedEvent(o audit.Origin, c store.IssuedCredential, now time.Time) audit.Event {
	ev := o.Event(audit.Issuance, EventCredentialIssued)
	ev.Time = now
	if c.InstanceID != "" {
		ev.Instance = &audit.Instance{ID: c.InstanceID}
	}
	ev.Details = map[string]any{
		"kind":       c.Kind,
		"spiffe_id":  c.SPIFFEID,
		"ttl_s":      int64(c.ExpiresAt.Sub(c.IssuedAt.Truncate(time.Second)) / time.Second),
		"expires_at": c.ExpiresAt.UTC().Format(time.RFC3339),
	}
	return ev
}

// record checks the agent again inside the transaction (recheck), records
// c and appends ev with the agent axis, all or nothing.
func (s *Service) record(ctx context.Context, read store.Agent, require func(store.Agent) error, c store.IssuedCredential, ev audit.Event, now time.Time) (store.Agent, error) {
	var a store.Agent
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		if a, err = recheck(ctx, tx, read, require, now); err != nil {
			return err
		}
		return s.recordIn(ctx, tx, a, c, ev)
	})
	if err != nil {
		return store.Agent{}, err
	}
	return a, nil
}

// recheck checks, inside a transaction, that the agent read before
// minting may still get credentials (it may have been suspended since):
// when its version is still the one read, the copy read is current, else
// it is read again. When the agent exists but may not, the error comes
// with the agent read.
func recheck(ctx context.Context, tx store.Tx, read store.Agent, require func(store.Agent) error, now time.Time) (store.Agent, error) {
	a := read
	v, err := tx.GetAgentVersion(ctx, read.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Agent{}, fmt.Errorf("svid: agent %q: %w", read.Name, ErrNotFound)
	case err != nil:
		return store.Agent{}, fmt.Errorf("svid: %w", err)
	case v != read.Version:
		if a, err = getAgent(ctx, tx, read.ID); err != nil {
			return store.Agent{}, err
		}
	}
	if _, err := usable(a, now, require); err != nil {
		return a, err // the agent as read, for callers that check more
	}
	return a, nil
}

// recordIn records c and appends ev, with a as its agent axis, in tx.
func (s *Service) recordIn(ctx context.Context, tx store.Tx, a store.Agent, c store.IssuedCredential, ev audit.Event) error {
	if err := tx.RecordCredential(ctx, c); err != nil {
		return fmt.Errorf("svid: record %s: %w", c.Kind, err)
	}
	ev.Agent = &audit.Agent{ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID}
	if _, err := s.rec.Append(ctx, tx, ev); err != nil {
		return fmt.Errorf("svid: record %s: %w", EventCredentialIssued, err)
	}
	return nil
}

// usableAgent reads the agent ref names (see current), checks that it may
// get credentials at now, and returns it with the longest lifetime an
// SVID of it may have from now.
func (s *Service) usableAgent(ctx context.Context, ref string, now time.Time, require func(store.Agent) error) (store.Agent, time.Duration, error) {
	a, err := s.current(ctx, ref)
	if err != nil {
		return store.Agent{}, 0, err
	}
	limit, err := usable(a, now, require)
	if err != nil {
		return store.Agent{}, 0, err
	}
	return a, limit, nil
}

// usable checks that a may get credentials at now (require, then active
// and unexpired) and returns the longest lifetime an SVID of it may have:
// its MaxTTL, and never past its own expiry (an agent expiring within a
// second counts as expired).
func usable(a store.Agent, now time.Time, require func(store.Agent) error) (time.Duration, error) {
	// require first: its refusal may hide the agent (the node API answers
	// an agent outside the node's scope as unknown), which a state error
	// would reveal.
	if require != nil {
		if err := require(a); err != nil {
			return 0, err
		}
	}
	if a.State != store.AgentActive {
		return 0, &NotActiveError{Agent: a.Name, Reason: string(a.State)}
	}
	limit := a.MaxTTL
	if !a.ExpiresAt.IsZero() {
		left := a.ExpiresAt.Sub(now)
		if left < time.Second {
			return 0, &NotActiveError{Agent: a.Name, Reason: "expired"}
		}
		if limit <= 0 || left < limit {
			limit = left
		}
	}
	return limit, nil
}

// current returns the agent ref names. An agent named by its id comes
// from the cache when the stored version is the cached copy's (one
// primary-key read instead of the agent with its owners); others are read
// and cached.
func (s *Service) current(ctx context.Context, ref string) (store.Agent, error) {
	if recordid.Valid(recordid.Agent, ref) == nil {
		if a, ok := s.agents.get(ref); ok {
			if v, err := s.store.GetAgentVersion(ctx, ref); err == nil && v == a.Version {
				return a, nil
			}
		}
	}
	a, err := getAgent(ctx, s.store, ref)
	if err != nil {
		return store.Agent{}, err
	}
	s.agents.put(a)
	return a, nil
}

// getAgent reads an agent by id or name (identity.ResolveAgent), in this
// package's errors.
func getAgent(ctx context.Context, r store.AgentReader, ref string) (store.Agent, error) {
	a, err := identity.ResolveAgent(ctx, r, ref)
	switch {
	case errors.Is(err, identity.ErrInvalid):
		return store.Agent{}, invalid("agent", "must be an agent id (agt_…) or an agent name")
	case errors.Is(err, identity.ErrNotFound):
		return store.Agent{}, NotFound(ref)
	case err != nil:
		return store.Agent{}, fmt.Errorf("svid: %w", err)
	}
	return a, nil
}

// NotFound is the error for an agent ref that names no agent (it matches
// ErrNotFound). A Require hook that hides an agent returns it, so that
// the answer is the one for an unknown agent.
func NotFound(ref string) error { return fmt.Errorf("svid: agent %q: %w", ref, ErrNotFound) }

// List returns one page of the SVIDs issued to an agent, oldest first,
// that have not been collected (see Collect), and the next page token.
//
// Errors: *ValidationError for a malformed ref or page token; ErrNotFound.
func (s *Service) List(ctx context.Context, ref string, p store.Page) ([]store.IssuedCredential, string, error) {
	a, err := getAgent(ctx, s.store, ref)
	if err != nil {
		return nil, "", err
	}
	cs, next, err := s.store.ListCredentials(ctx, store.CredentialFilter{AgentID: a.ID}, p)
	switch {
	case errors.Is(err, store.ErrBadPageToken):
		return nil, "", invalid("page_token", "is not a token this server issued")
	case err != nil:
		return nil, "", fmt.Errorf("svid: list credentials: %w", err)
	}
	return cs, next, nil
}

// Collect deletes the records of SVIDs that expired more than the
// retention ago, under the lease CollectLease so that one replica of
// several does it, and reports how many went.
func (s *Service) Collect(ctx context.Context, holder string) (int64, error) {
	now := s.now()
	var n int64
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.AcquireLease(ctx, CollectLease, holder, now, now.Add(time.Minute))
		if err != nil || !ok {
			return err
		}
		n, err = tx.CollectCredentials(ctx, now.Add(-s.retention))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("svid: collect: %w", err)
	}
	return n, nil
}
