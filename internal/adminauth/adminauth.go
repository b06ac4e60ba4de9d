// Package adminauth manages the bearer tokens of the admin API: the
// bootstrap token created on first start, creation, listing and revocation
// of further tokens, authentication of a presented token and the role check
// (admin may do everything, auditor may only read).
//
// A token's secret is 256 random bits shown once at creation; only its
// SHA-256 is stored and tokens are looked up by that hash. A usable token
// is kept in memory for CacheTTL (default one second): a revocation made
// through the Service takes effect at once, one made by another replica
// within that bound. Secrets never appear in errors, logs or audit events.
// Every change is recorded as an audit event in the same store
// transaction, and every failed authentication is recorded as an event of
// its own.
package adminauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/agentid/agentid/internal/secret"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Secret format: SecretPrefix followed by 43 base64url characters (no
// padding) encoding 32 random bytes. The prefix lets secret scanners
// recognise leaked tokens.
const (
	SecretPrefix = "aida_"
	// SecretLen is the length of a whole secret.
	SecretLen = len(SecretPrefix) + 43 // secret.Len(SecretPrefix)
)

// Token rules.
const (
	// BootstrapName is the name of the token Bootstrap creates.
	BootstrapName = "bootstrap"
	// MaxNameLen bounds token names.
	MaxNameLen = 63
	// MinTTL is the shortest lifetime a token may be created with.
	MinTTL = time.Minute
	// MaxTTL is the longest lifetime a token may be created with; zero TTL
	// means the token does not expire.
	MaxTTL = 5 * 366 * 24 * time.Hour
)

// Audit event types.
const (
	// EventTokenCreated (family admin) records a new token: details id,
	// name, role, expires_at ("" for never).
	EventTokenCreated = "admin_token.created"
	// EventTokenRevoked (family admin) records a revocation: details as
	// EventTokenCreated.
	EventTokenRevoked = "admin_token.revoked" //nolint:gosec // an event type, not a credential
	// EventAuthenticated (family authentication) records a failed admin
	// authentication, with one of the Reason… values as its reason.
	EventAuthenticated = "admin.authenticated"
)

// Reasons recorded on failed EventAuthenticated events.
const (
	ReasonMalformed = "malformed token"
	ReasonUnknown   = "unknown token"
	ReasonRevoked   = "revoked token"
	ReasonExpired   = "expired token"
)

// Params configures a Service.
type Params struct {
	// Store holds the tokens and the audit trail. Required.
	Store store.Store
	// Recorder appends audit events. Required.
	Recorder *audit.Recorder
	// Clock is the time source; default time.Now.
	Clock func() time.Time
	// Rand is the source of secrets and ids; default crypto/rand.Reader. It
	// must be a cryptographic source.
	Rand io.Reader
	// CacheTTL is how long Authenticate trusts a usable token it read
	// without reading it again, which bounds how long a token revoked by
	// another replica keeps working on this one; zero means
	// DefaultCacheTTL, negative disables the cache. Revocations made
	// through this Service and expiry take effect at once either way.
	CacheTTL time.Duration
}

// Service manages admin tokens. It is safe for concurrent use.
type Service struct {
	store store.Store
	rec   *audit.Recorder
	clock func() time.Time
	rand  io.Reader
	ttl   time.Duration // <= 0: no cache
	cache tokenCache
}

// New returns a Service. It fails when Store or Recorder is nil.
func New(p Params) (*Service, error) {
	if p.Store == nil {
		return nil, errors.New("adminauth: Params.Store is required")
	}
	if p.Recorder == nil {
		return nil, errors.New("adminauth: Params.Recorder is required")
	}
	s := &Service{store: p.Store, rec: p.Recorder, clock: p.Clock, rand: p.Rand, ttl: p.CacheTTL}
	if s.ttl == 0 {
		s.ttl = DefaultCacheTTL
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return s, nil
}

func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// CreateParams describes a new token.
type CreateParams struct {
	// Name is unique: 1 to MaxNameLen bytes of a-z, 0-9 and '-', starting
	// and ending with a letter or digit.
	Name string
	// Role is store.RoleAdmin or store.RoleAuditor.
	Role store.Role
	// TTL is the token's lifetime: zero for no expiry, otherwise from
	// MinTTL to MaxTTL.
	TTL time.Duration
}

// Bootstrap creates the first admin token when the store holds no admin
// token at all (revoked and expired ones count): name BootstrapName, role
// admin, CreatedBy "system", recorded as EventTokenCreated with actor
// {system, system}. It returns the secret and created=true; when a token
// already exists it returns "", false, nil. Names are unique in the store,
// so when several replicas race exactly one creates the token and the
// others return created=false.
func (s *Service) Bootstrap(ctx context.Context) (secret string, created bool, err error) {
	toks, _, err := s.store.ListAdminTokens(ctx, store.Page{PageSize: 1})
	if err != nil {
		return "", false, fmt.Errorf("adminauth: bootstrap: %w", err)
	}
	if len(toks) > 0 {
		return "", false, nil
	}
	o := audit.Origin{Actor: audit.Actor{Type: audit.ActorSystem, ID: audit.ActorSystem}}
	exists := false
	_, secret, err = s.create(ctx, o, CreateParams{Name: BootstrapName, Role: store.RoleAdmin}, func(tx store.Tx) error {
		// Re-check inside the transaction: another replica may have won.
		toks, _, err := tx.ListAdminTokens(ctx, store.Page{PageSize: 1})
		if err != nil {
			return err
		}
		exists = len(toks) > 0
		if exists {
			return errExists
		}
		return nil
	})
	switch {
	case exists, errors.Is(err, ErrAlreadyExists):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("adminauth: bootstrap: %w", err)
	}
	return secret, true, nil
}

// errExists aborts the bootstrap transaction when a token appeared.
var errExists = errors.New("adminauth: a token exists")

// Create makes a new token and records EventTokenCreated naming o's actor.
// It returns the token (without its hash) and its secret, which is never
// available again.
//
// Errors: *ValidationError for a bad name, role or TTL; ErrAlreadyExists
// when the name is taken. On any error nothing is stored.
func (s *Service) Create(ctx context.Context, o audit.Origin, p CreateParams) (store.AdminToken, string, error) {
	if err := ValidateName(p.Name); err != nil {
		return store.AdminToken{}, "", err
	}
	if p.Role != store.RoleAdmin && p.Role != store.RoleAuditor {
		return store.AdminToken{}, "", invalid("role", "must be admin or auditor")
	}
	if p.TTL != 0 && (p.TTL < MinTTL || p.TTL > MaxTTL) {
		return store.AdminToken{}, "", invalid("ttl", "must be zero (no expiry) or between %s and %s", MinTTL, MaxTTL)
	}
	return s.create(ctx, o, p, nil)
}

func (s *Service) create(ctx context.Context, o audit.Origin, p CreateParams, precheck func(store.Tx) error) (store.AdminToken, string, error) {
	now := s.now()
	id, err := recordid.New(recordid.AdminToken, now, s.rand)
	if err != nil {
		return store.AdminToken{}, "", fmt.Errorf("adminauth: %w", err)
	}
	plain, err := secret.New(SecretPrefix, s.rand)
	if err != nil {
		return store.AdminToken{}, "", err
	}
	tok := store.AdminToken{
		ID:        id,
		Name:      p.Name,
		Role:      p.Role,
		Hash:      secret.Hash(plain),
		CreatedBy: o.Actor.ID,
		CreatedAt: now,
	}
	if p.TTL != 0 {
		tok.ExpiresAt = now.Add(p.TTL)
	}
	var out store.AdminToken
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if precheck != nil {
			if err := precheck(tx); err != nil {
				return err
			}
		}
		created, err := tx.CreateAdminToken(ctx, tok)
		switch {
		case errors.Is(err, store.ErrAlreadyExists):
			return fmt.Errorf("adminauth: token name %q: %w", p.Name, ErrAlreadyExists)
		case err != nil:
			return fmt.Errorf("adminauth: create token: %w", err)
		}
		if err := s.appendTokenEvent(ctx, tx, o, EventTokenCreated, created, now); err != nil {
			return err
		}
		out = created
		return nil
	})
	if err != nil {
		return store.AdminToken{}, "", err
	}
	out.Hash = nil
	return out, plain, nil
}

// List returns one page of tokens in creation order, without their hashes,
// and the next page token.
//
// Errors: *ValidationError for a bad page token.
func (s *Service) List(ctx context.Context, p store.Page) ([]store.AdminToken, string, error) {
	toks, next, err := s.store.ListAdminTokens(ctx, p)
	switch {
	case errors.Is(err, store.ErrInvalid):
		return nil, "", invalid("page_token", "is not a token this server issued")
	case err != nil:
		return nil, "", fmt.Errorf("adminauth: list tokens: %w", err)
	}
	for i := range toks {
		toks[i].Hash = nil
	}
	return toks, next, nil
}

// Revoke revokes the token with the id and records EventTokenRevoked
// naming o's actor. It returns the token without its hash.
//
// Errors: *ValidationError for a malformed id; ErrNotFound;
// ErrIllegalTransition when the token is already revoked, or when it is
// the last admin-role token that is neither revoked nor expired (revoking
// it would lock every administrator out). On any error nothing is stored.
func (s *Service) Revoke(ctx context.Context, o audit.Origin, id string) (store.AdminToken, error) {
	if recordid.Valid(recordid.AdminToken, id) != nil {
		return store.AdminToken{}, invalid("id", "must be an admin token id (%s_…)", recordid.AdminToken)
	}
	now := s.now()
	var out store.AdminToken
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		cur, err := tx.GetAdminToken(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("adminauth: token %s: %w", id, ErrNotFound)
		case err != nil:
			return fmt.Errorf("adminauth: revoke token: %w", err)
		}
		if !cur.RevokedAt.IsZero() {
			return fmt.Errorf("adminauth: token %s is already revoked: %w", id, ErrIllegalTransition)
		}
		// Record first: appending to the audit trail is serialised across
		// processes (store.AuditWriter), so concurrent revocations on
		// several replicas queue here, and the last-admin check below sees
		// every revocation committed before it. A failed check rolls the
		// event back with the rest of fn.
		if err := s.appendTokenEvent(ctx, tx, o, EventTokenRevoked, cur, now); err != nil {
			return err
		}
		if usable(cur, now) && cur.Role == store.RoleAdmin {
			last, err := lastAdmin(ctx, tx, cur.ID, now)
			if err != nil {
				return err
			}
			if last {
				return fmt.Errorf("adminauth: token %s is the last usable admin token; create another first: %w", id, ErrIllegalTransition)
			}
		}
		revoked, err := tx.UpdateAdminToken(ctx, id, func(t store.AdminToken) (store.AdminToken, error) {
			if !t.RevokedAt.IsZero() {
				return t, fmt.Errorf("adminauth: token %s is already revoked: %w", id, ErrIllegalTransition)
			}
			t.RevokedAt = now
			return t, nil
		})
		switch {
		case errors.Is(err, ErrIllegalTransition):
			return err
		case err != nil:
			return fmt.Errorf("adminauth: revoke token: %w", err)
		}
		out = revoked
		return nil
	})
	if err != nil {
		return store.AdminToken{}, err
	}
	s.cache.revoked(id)
	out.Hash = nil
	return out, nil
}

// usable reports whether t authenticates at now.
func usable(t store.AdminToken, now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// lastAdmin reports whether no usable admin-role token other than except
// exists.
func lastAdmin(ctx context.Context, tx store.Tx, except string, now time.Time) (bool, error) {
	page := store.Page{PageSize: store.MaxPageSize}
	for {
		toks, next, err := tx.ListAdminTokens(ctx, page)
		if err != nil {
			return false, fmt.Errorf("adminauth: list tokens: %w", err)
		}
		for _, t := range toks {
			if t.ID != except && t.Role == store.RoleAdmin && usable(t, now) {
				return false, nil
			}
		}
		if next == "" {
			return true, nil
		}
		page.PageToken = next
	}
}

func (s *Service) appendTokenEvent(ctx context.Context, tx store.Tx, o audit.Origin, typ string, t store.AdminToken, now time.Time) error {
	ev := o.Event(audit.Admin, typ)
	ev.Time = now
	var exp any // JSON null: no expiry
	if !t.ExpiresAt.IsZero() {
		exp = t.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	ev.Details = map[string]any{
		"id":         t.ID,
		"name":       t.Name,
		"role":       string(t.Role),
		"expires_at": exp,
	}
	if _, err := s.rec.Append(ctx, tx, ev); err != nil {
		return fmt.Errorf("adminauth: record %s: %w", typ, err)
	}
	return nil
}

// Authenticate returns the token whose secret is bearer (the credential of
// an "Authorization: Bearer" header, without the scheme). A malformed,
// unknown, revoked or expired token yields ErrUnauthenticated, always the
// same error, and the failure is recorded as an EventAuthenticated event
// (family authentication, outcome failure) with the reason, o's source and
// trace, and the token id as actor when the token is known; the secret
// itself is never recorded. If that event cannot be written the returned
// error also wraps the audit error (fail closed: the request fails either
// way).
//
// A usable token is kept in memory for CacheTTL by the SHA-256 of its
// secret: within it a revocation made through this Service and expiry
// take effect at once, a revocation made by another replica after at
// most CacheTTL.
//
// Successful authentications are not recorded per request: the audit
// event of each admin action names the token as its actor. The returned
// token has no hash. Store errors other than not-found are returned
// wrapped, without an event.
func (s *Service) Authenticate(ctx context.Context, o audit.Origin, bearer string) (store.AdminToken, error) {
	if !secret.WellFormed(SecretPrefix, bearer) {
		return store.AdminToken{}, s.fail(ctx, o, ReasonMalformed, nil)
	}
	hash := secret.Hash(bearer)
	if s.ttl > 0 {
		// A cached token is usable unless it has expired since; the
		// store read below then records the failure.
		now := s.now()
		if tok, ok := s.cache.get(hash, now, s.ttl); ok && (tok.ExpiresAt.IsZero() || now.Before(tok.ExpiresAt)) {
			return tok, nil
		}
	}
	gen := s.cache.generation()
	tok, err := s.store.GetAdminTokenByHash(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.AdminToken{}, s.fail(ctx, o, ReasonUnknown, nil)
	case err != nil:
		return store.AdminToken{}, fmt.Errorf("adminauth: authenticate: %w", err)
	}
	now := s.now()
	switch {
	case !tok.RevokedAt.IsZero():
		return store.AdminToken{}, s.fail(ctx, o, ReasonRevoked, &tok)
	case !tok.ExpiresAt.IsZero() && !now.Before(tok.ExpiresAt):
		return store.AdminToken{}, s.fail(ctx, o, ReasonExpired, &tok)
	}
	tok.Hash = nil
	if s.ttl > 0 {
		s.cache.put(hash, tok, now, gen)
	}
	return tok, nil
}

// fail records a failed authentication and returns ErrUnauthenticated.
func (s *Service) fail(ctx context.Context, o audit.Origin, reason string, tok *store.AdminToken) error {
	ev := o.Event(audit.Authentication, EventAuthenticated)
	ev.Time = s.now()
	ev.Outcome = audit.Failure
	ev.Reason = reason
	ev.Details = map[string]any{"method": "bearer"}
	if tok != nil {
		ev.Actor = &audit.Actor{Type: audit.ActorAdmin, ID: tok.ID}
		ev.Details["token_name"] = tok.Name
	}
	if _, err := s.rec.Record(ctx, ev); err != nil {
		return fmt.Errorf("%w (recording the failure failed: %w)", ErrUnauthenticated, err)
	}
	return ErrUnauthenticated
}

// Authorize reports whether tok may make a request: a write (needAdmin)
// needs role admin; reads are open to admin and auditor. It returns
// ErrForbidden otherwise, including for an unknown role.
func Authorize(tok store.AdminToken, needAdmin bool) error {
	switch {
	case tok.Role == store.RoleAdmin:
		return nil
	case tok.Role == store.RoleAuditor && !needAdmin:
		return nil
	default:
		return fmt.Errorf("adminauth: role %q may not do this: %w", tok.Role, ErrForbidden)
	}
}

// EventAuthorized is the type of the event recording an admin token used
// beyond its role (family authorization, outcome failure, decision deny).
const EventAuthorized = "admin.authorized"

// Check is Authorize for a request: when tok's role may not make it, the
// denial is recorded as an EventAuthorized event (family authorization,
// decision deny, the token as actor, the request's source and trace, the
// needed role in details) and ErrForbidden is returned — also wrapping the
// audit error if the event could not be written. Permitted requests are
// not recorded here; the events of what they change name the actor.
func (s *Service) Check(ctx context.Context, o audit.Origin, tok store.AdminToken, needAdmin bool) error {
	err := Authorize(tok, needAdmin)
	if err == nil {
		return nil
	}
	need := store.RoleAuditor
	if needAdmin {
		need = store.RoleAdmin
	}
	ev := o.Event(audit.Authorization, EventAuthorized)
	ev.Time = s.now()
	ev.Outcome = audit.Failure
	ev.Decision = "deny"
	ev.Actor = &audit.Actor{Type: audit.ActorAdmin, ID: tok.ID}
	ev.Reason = "role " + string(tok.Role) + " may not do this"
	ev.Details = map[string]any{"role": string(tok.Role), "required_role": string(need), "token_name": tok.Name}
	if _, rerr := s.rec.Record(ctx, ev); rerr != nil {
		return fmt.Errorf("%w (recording the denial failed: %w)", err, rerr)
	}
	return err
}

// ValidateName checks a token name: 1 to MaxNameLen bytes of a-z, 0-9 and
// '-', starting and ending with a letter or digit. It returns a
// *ValidationError for field "name". Safe on any input.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return invalid("name", "must be 1 to %d characters", MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')
		if !alnum && (c != '-' || i == 0 || i == len(name)-1) {
			return invalid("name", "may contain only a-z, 0-9 and '-', starting and ending with a letter or digit")
		}
	}
	return nil
}
