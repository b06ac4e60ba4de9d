// Package delegation is agentid's delegation domain (ADR 0014): the trusted
// issuers whose tokens name people (Issuers: JWKS by discovery or a static
// file, strict algorithm allow-list), the grants by which a person or an
// agent lets an agent act for them (Service: create, list, show, revoke,
// each recorded in the audit trail), the RFC 8693 actor chain (Act), and
// the pure narrowing rules of a token exchange (Narrow). The token
// endpoint in internal/oauth applies them.
package delegation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Defaults and limits of grants.
const (
	// DefaultMaxDepth is a grant's max chain depth when the request sets
	// none.
	DefaultMaxDepth = 3
	// DefaultMaxChainDepth caps every grant's max depth unless configured.
	DefaultMaxChainDepth = 5
	// MaxGrantLifetime bounds how far ahead a grant may expire.
	MaxGrantLifetime = 90 * 24 * time.Hour
	// MaxListItems bounds the scopes, action classes and audiences of a
	// grant.
	MaxListItems = 64
	// MaxReasonLen bounds a revocation reason.
	MaxReasonLen = 512
)

// Params configures a Service.
type Params struct {
	Store    store.Store
	Recorder *audit.Recorder
	// Issuers verifies people's tokens; nil means no trusted issuer (only
	// agent subjects).
	Issuers *Issuers
	// Issuer is agentid's own issuer URL: the subject issuer of grants by
	// which an agent lets another act for it. Required.
	Issuer string
	// MaxChainDepth caps every grant's max depth; zero means
	// DefaultMaxChainDepth. At most MaxDepthCap.
	MaxChainDepth int
	Clock         func() time.Time
	Rand          io.Reader
}

// Service manages grants. It is safe for concurrent use.
type Service struct {
	store    store.Store
	rec      *audit.Recorder
	issuers  *Issuers
	issuer   string
	maxDepth int
	clock    func() time.Time
	rand     io.Reader
}

// New returns a Service.
func New(p Params) (*Service, error) {
	switch {
	case p.Store == nil, p.Recorder == nil, p.Clock == nil, p.Rand == nil:
		return nil, errors.New("delegation: Store, Recorder, Clock and Rand are required")
	case p.Issuer == "":
		return nil, errors.New("delegation: Issuer is required")
	case p.MaxChainDepth < 0 || p.MaxChainDepth > MaxDepthCap:
		return nil, fmt.Errorf("delegation: MaxChainDepth must be between 1 and %d", MaxDepthCap)
	}
	s := &Service{store: p.Store, rec: p.Recorder, issuers: p.Issuers, issuer: p.Issuer,
		maxDepth: p.MaxChainDepth, clock: p.Clock, rand: p.Rand}
	if s.maxDepth == 0 {
		s.maxDepth = DefaultMaxChainDepth
	}
	return s, nil
}

// MaxChainDepth is the configured cap on chain depth.
func (s *Service) MaxChainDepth() int { return s.maxDepth }

// Issuers is the verifier of people's tokens (nil when none is trusted).
func (s *Service) Issuers() *Issuers { return s.issuers }

func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// CreateGrantParams describes a new grant.
type CreateGrantParams struct {
	// SubjectIssuer, Subject and SubjectEmail name who delegates. An admin
	// sets them: a trusted issuer and its subject, or agentid's issuer
	// (the default for a spiffe:// subject) and an agent's SPIFFE ID. For
	// a person they come from Person and may be left empty.
	SubjectIssuer string
	Subject       string
	SubjectEmail  string
	// Person is the authenticated person creating a grant for themself
	// (AuthenticatePerson); nil for an admin.
	Person *Subject
	// Agent is the agent that may act: an id or a name.
	Agent              string
	Scopes             []string
	ActionClasses      []string
	Audiences          []string
	ExpiresAt          time.Time
	MaxDepth           int // 0: DefaultMaxDepth (capped)
	AllowSubdelegation bool
}

// CreateGrant stores a grant and records grant.created, in one
// transaction. o.Actor is the admin, or, with p.Person, the person.
func (s *Service) CreateGrant(ctx context.Context, o audit.Origin, p CreateGrantParams) (store.Grant, error) {
	now := s.now()
	g, err := s.grantFrom(o, p, now)
	if err != nil {
		return store.Grant{}, err
	}
	var out store.Grant
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		a, err := getAgent(ctx, tx, p.Agent)
		if err != nil {
			return err
		}
		if err := checkAgainstAgent(&g, a); err != nil {
			return err
		}
		if g.SubjectIssuer == s.issuer {
			if err := checkAgentSubject(ctx, tx, g.Subject, a); err != nil {
				return err
			}
		}
		if out, err = tx.CreateGrant(ctx, g); err != nil {
			return err
		}
		_, err = s.rec.Append(ctx, tx, grantEvent(o, "grant.created", out, a, now, nil))
		return err
	})
	if err != nil {
		return store.Grant{}, fmt.Errorf("delegation: create grant: %w", err)
	}
	return out, nil
}

// grantFrom validates p (everything that needs no store) into a record.
func (s *Service) grantFrom(o audit.Origin, p CreateGrantParams, now time.Time) (store.Grant, error) {
	g := store.Grant{
		SubjectIssuer: p.SubjectIssuer, Subject: p.Subject, SubjectEmail: p.SubjectEmail,
		ExpiresAt: p.ExpiresAt.UTC().Truncate(time.Microsecond), MaxDepth: p.MaxDepth,
		AllowSubdelegation: p.AllowSubdelegation, CreatedAt: now,
		CreatedByType: o.Actor.Type, CreatedBy: o.Actor.ID,
	}
	if p.Person != nil {
		for _, f := range []struct{ name, got, want string }{
			{"subject_issuer", p.SubjectIssuer, p.Person.Issuer},
			{"subject", p.Subject, p.Person.Subject},
		} {
			if f.got != "" && f.got != f.want {
				return store.Grant{}, invalid(f.name, "a person creates grants only for themself")
			}
		}
		g.SubjectIssuer, g.Subject, g.SubjectEmail = p.Person.Issuer, p.Person.Subject, p.Person.Email
		g.CreatedByType, g.CreatedBy = audit.ActorPerson, p.Person.Subject
	}
	if g.SubjectIssuer == "" && strings.HasPrefix(g.Subject, "spiffe://") {
		g.SubjectIssuer = s.issuer // an agent's SPIFFE ID: agentid names it
	}
	switch {
	case g.CreatedBy == "" || (g.CreatedByType != audit.ActorAdmin && g.CreatedByType != audit.ActorPerson):
		return store.Grant{}, errors.New("delegation: a grant is created by an admin or a person")
	case g.SubjectIssuer == "":
		return store.Grant{}, invalid("subject_issuer", "is required")
	case g.SubjectIssuer != s.issuer && !s.issuers.Trusted(g.SubjectIssuer):
		return store.Grant{}, invalid("subject_issuer", "%q is neither a trusted issuer nor agentid's issuer", g.SubjectIssuer)
	case !printableID(g.Subject):
		return store.Grant{}, invalid("subject", "must be 1 to %d printable characters", MaxSubjectLen)
	case g.SubjectEmail != "" && (len(g.SubjectEmail) > 320 || !printableID(g.SubjectEmail) || !strings.Contains(g.SubjectEmail, "@")):
		return store.Grant{}, invalid("subject_email", "must be an email address")
	case p.Agent == "":
		return store.Grant{}, invalid("agent", "is required")
	case p.ExpiresAt.IsZero():
		return store.Grant{}, invalid("expires_at", "is required")
	case !p.ExpiresAt.After(now):
		return store.Grant{}, invalid("expires_at", "must be in the future")
	case p.ExpiresAt.After(now.Add(MaxGrantLifetime)):
		return store.Grant{}, invalid("expires_at", "must be at most %d days ahead", int(MaxGrantLifetime/(24*time.Hour)))
	case p.MaxDepth < 0 || p.MaxDepth > s.maxDepth:
		return store.Grant{}, invalid("max_depth", "must be between 1 and %d (delegation.max_chain_depth)", s.maxDepth)
	}
	if g.MaxDepth == 0 {
		g.MaxDepth = min(DefaultMaxDepth, s.maxDepth)
	}
	var err error
	if g.Scopes, err = tokenList("scopes", p.Scopes, true); err != nil {
		return store.Grant{}, err
	}
	if g.ActionClasses, err = tokenList("action_classes", p.ActionClasses, false); err != nil {
		return store.Grant{}, err
	}
	if g.Audiences, err = tokenList("audiences", p.Audiences, true); err != nil {
		return store.Grant{}, err
	}
	id, err := recordid.New(recordid.Grant, now, s.rand)
	if err != nil {
		return store.Grant{}, fmt.Errorf("delegation: %w", err)
	}
	g.ID = id
	return g, nil
}

// tokenList checks a list of scopes, action classes or audiences: printable
// tokens without spaces, no duplicates, at most MaxListItems, at least one
// when required.
func tokenList(field string, l []string, required bool) ([]string, error) {
	if required && len(l) == 0 {
		return nil, invalid(field, "at least one is required")
	}
	if len(l) > MaxListItems {
		return nil, invalid(field, "at most %d", MaxListItems)
	}
	var out []string
	for i, v := range l {
		if !printableID(v) || strings.ContainsAny(v, " \"\\") {
			return nil, invalid(fmt.Sprintf("%s[%d]", field, i), "must be 1 to %d printable characters without spaces, quotes or backslashes", MaxSubjectLen)
		}
		if slices.Contains(out, v) {
			return nil, invalid(fmt.Sprintf("%s[%d]", field, i), "%q is repeated", v)
		}
		out = append(out, v)
	}
	return out, nil
}

// checkAgainstAgent keeps a grant within what its agent may do: an active
// agent, and scopes, action classes and audiences that are its own.
func checkAgainstAgent(g *store.Grant, a store.Agent) error {
	g.AgentID = a.ID
	if a.State != store.AgentActive {
		return invalid("agent", "%s is %s", a.Name, a.State)
	}
	for _, f := range []struct {
		name       string
		got, agent []string
	}{
		{"scopes", g.Scopes, a.Scopes},
		{"action_classes", g.ActionClasses, a.ActionClasses},
		{"audiences", g.Audiences, a.Audiences},
	} {
		for i, v := range f.got {
			if !slices.Contains(f.agent, v) {
				return invalid(fmt.Sprintf("%s[%d]", f.name, i), "%q is not one of the agent's %s", v, f.name)
			}
		}
	}
	return nil
}

// checkAgentSubject requires the subject of a grant under agentid's own
// issuer to be the SPIFFE ID of another existing agent.
func checkAgentSubject(ctx context.Context, r store.AgentReader, spiffeID string, actor store.Agent) error {
	_, name, ok := strings.Cut(spiffeID, "/agent/")
	if !ok || identity.ValidateName(name) != nil {
		return invalid("subject", "under agentid's issuer the subject is an agent's SPIFFE ID")
	}
	a, err := r.GetAgentByName(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && a.SPIFFEID != spiffeID):
		return invalid("subject", "no agent has the SPIFFE ID %q", spiffeID)
	case err != nil:
		return err
	case a.ID == actor.ID:
		return invalid("subject", "an agent does not need a grant to act for itself")
	}
	return nil
}

// getAgent resolves an agent reference (id or name).
func getAgent(ctx context.Context, r store.AgentReader, ref string) (store.Agent, error) {
	var (
		a   store.Agent
		err error
	)
	switch {
	case recordid.Valid(recordid.Agent, ref) == nil:
		a, err = r.GetAgent(ctx, ref)
	case identity.ValidateName(ref) == nil:
		a, err = r.GetAgentByName(ctx, ref)
	default:
		return store.Agent{}, invalid("agent", "must be an agent id (agt_…) or an agent name")
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Agent{}, fmt.Errorf("delegation: agent %q: %w", ref, ErrNotFound)
	case err != nil:
		return store.Agent{}, err
	}
	return a, nil
}

// GetGrant returns a grant by id; ErrNotFound when there is none.
func (s *Service) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	if recordid.Valid(recordid.Grant, id) != nil {
		return store.Grant{}, invalid("id", "must be a grant id (%s_…)", recordid.Grant)
	}
	g, err := s.store.GetGrant(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Grant{}, fmt.Errorf("delegation: grant %q: %w", id, ErrNotFound)
	case err != nil:
		return store.Grant{}, fmt.Errorf("delegation: get grant: %w", err)
	}
	return g, nil
}

// ListGrantsParams filters ListGrants.
type ListGrantsParams struct {
	Agent         string // id or name; "": any
	SubjectIssuer string
	Subject       string
	// Active keeps grants that are neither revoked nor expired.
	Active bool
	Page   store.Page
}

// ListGrants returns one page of grants in creation order and the next
// page token. An unknown agent is ErrNotFound.
func (s *Service) ListGrants(ctx context.Context, p ListGrantsParams) ([]store.Grant, string, error) {
	f := store.GrantFilter{SubjectIssuer: p.SubjectIssuer, Subject: p.Subject}
	if p.Agent != "" {
		a, err := getAgent(ctx, s.store, p.Agent)
		if err != nil {
			return nil, "", err
		}
		f.AgentID = a.ID
	}
	if p.Active {
		f.ActiveAt = s.now()
	}
	gs, next, err := s.store.ListGrants(ctx, f, p.Page)
	if err != nil {
		return nil, "", fmt.Errorf("delegation: list grants: %w", err)
	}
	return gs, next, nil
}

// RevokeGrantParams names a grant to revoke.
type RevokeGrantParams struct {
	ID     string
	Reason string
	// Person, when set, is the authenticated person revoking; the grant
	// must be theirs (else ErrForbidden).
	Person *Subject
}

// RevokeGrant revokes a grant once (a second time is ErrIllegalTransition)
// and records grant.revoked with the number of live tokens issued under it,
// which introspection now finds inactive (the cascade, ADR 0014 §5).
func (s *Service) RevokeGrant(ctx context.Context, o audit.Origin, p RevokeGrantParams) (store.Grant, int64, error) {
	if recordid.Valid(recordid.Grant, p.ID) != nil {
		return store.Grant{}, 0, invalid("id", "must be a grant id (%s_…)", recordid.Grant)
	}
	if len(p.Reason) > MaxReasonLen {
		return store.Grant{}, 0, invalid("reason", "at most %d bytes", MaxReasonLen)
	}
	now := s.now()
	var (
		out      store.Grant
		affected int64
	)
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		out, affected, err = s.revoke(ctx, tx, o, p.ID, now, func(g store.Grant) error {
			if p.Person != nil && (g.SubjectIssuer != p.Person.Issuer || g.Subject != p.Person.Subject) {
				return fmt.Errorf("delegation: grant %q is not the caller's: %w", p.ID, ErrForbidden)
			}
			return nil
		}, map[string]any{"reason": p.Reason})
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrForbidden) || errors.Is(err, ErrIllegalTransition) {
			return store.Grant{}, 0, err
		}
		return store.Grant{}, 0, fmt.Errorf("delegation: revoke grant: %w", err)
	}
	return out, affected, nil
}

// revoke revokes the grant id inside tx at now, after check (nil: none)
// accepts it, and records grant.revoked with tokens_affected and extra. A
// revoked grant is ErrIllegalTransition, a missing one ErrNotFound.
func (s *Service) revoke(ctx context.Context, tx store.Tx, o audit.Origin, id string, now time.Time,
	check func(store.Grant) error, extra map[string]any) (store.Grant, int64, error) {
	g, err := tx.UpdateGrant(ctx, id, func(g store.Grant) (store.Grant, error) {
		if check != nil {
			if err := check(g); err != nil {
				return g, err
			}
		}
		if !g.RevokedAt.IsZero() {
			return g, fmt.Errorf("delegation: grant %q is already revoked: %w", id, ErrIllegalTransition)
		}
		g.RevokedAt, g.RevokedBy = now, o.Actor.ID
		g.RevokeReason, _ = extra["reason"].(string)
		return g, nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Grant{}, 0, fmt.Errorf("delegation: grant %q: %w", id, ErrNotFound)
	case err != nil:
		return store.Grant{}, 0, err
	}
	affected, err := tx.CountExchangedTokens(ctx, store.ExchangedTokenFilter{GrantID: g.ID, LiveAt: now})
	if err != nil {
		return store.Grant{}, 0, err
	}
	a, err := tx.GetAgent(ctx, g.AgentID)
	if err != nil {
		return store.Grant{}, 0, err
	}
	details := map[string]any{"tokens_affected": affected}
	for k, v := range extra {
		details[k] = v
	}
	if _, err := s.rec.Append(ctx, tx, grantEvent(o, "grant.revoked", g, a, now, details)); err != nil {
		return store.Grant{}, 0, err
	}
	return g, affected, nil
}

// grantEvent is the issuance-family event of a grant change.
func grantEvent(o audit.Origin, typ string, g store.Grant, a store.Agent, now time.Time, extra map[string]any) audit.Event {
	ev := o.Event(audit.Issuance, typ)
	ev.Time = now
	ev.Agent = &audit.Agent{ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID}
	ev.Delegation = &audit.Delegation{Subject: g.Subject, GrantID: g.ID}
	if ev.Task == nil {
		ev.Task = &audit.Task{}
	}
	ev.Task.Scope = strings.Join(g.Scopes, " ")
	ev.Task.ActionClasses = g.ActionClasses
	ev.Details = map[string]any{
		"grant_id":            g.ID,
		"subject_issuer":      g.SubjectIssuer,
		"audience":            g.Audiences,
		"expires_at":          g.ExpiresAt.Format(time.RFC3339),
		"max_depth":           g.MaxDepth,
		"allow_subdelegation": g.AllowSubdelegation,
	}
	for k, v := range extra {
		if s, ok := v.(string); ok && s == "" {
			continue
		}
		ev.Details[k] = v
	}
	return ev
}

// AuthenticatePerson verifies a person's bearer token from a trusted
// issuer and records person.authenticated (authentication family), failed
// attempts included. The returned origin has the person as actor. A bad
// token is ErrUnauthenticated (wrapping the *TokenError).
func (s *Service) AuthenticatePerson(ctx context.Context, o audit.Origin, token string) (Subject, audit.Origin, error) {
	now := s.now()
	ev := o.Event(audit.Authentication, "person.authenticated")
	ev.Time = now
	sub, verr := s.issuers.Verify(ctx, token)
	if verr != nil {
		var te *TokenError
		ev.Outcome, ev.Reason = audit.Failure, "token refused"
		if errors.As(verr, &te) {
			ev.Reason = te.Reason
		}
		if iss := UnverifiedIssuer(token); iss != "" && len(iss) <= 256 {
			ev.Details = map[string]any{"issuer": printableOr(iss)}
		}
	} else {
		ev.Actor = &audit.Actor{Type: audit.ActorPerson, ID: sub.Subject}
		ev.Delegation = &audit.Delegation{Subject: sub.Subject}
		ev.Details = map[string]any{"issuer": sub.Issuer, "method": "bearer"}
		if sub.EmailClaimed {
			ev.Details["email_verified"] = sub.EmailVerified
		}
	}
	if _, err := s.rec.Record(ctx, ev); err != nil {
		return Subject{}, o, fmt.Errorf("delegation: audit trail not written: %w", err)
	}
	if verr != nil {
		return Subject{}, o, fmt.Errorf("%w: %w", ErrUnauthenticated, verr)
	}
	o.Actor = audit.Actor{Type: audit.ActorPerson, ID: sub.Subject}
	return sub, o, nil
}

// printableOr returns s when it is printable, else a placeholder.
func printableOr(s string) string {
	if printableID(s) {
		return s
	}
	return "(unprintable)"
}
