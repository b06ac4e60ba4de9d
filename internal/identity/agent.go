package identity

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Audit event types of the agent lifecycle, all in family audit.Issuance.
const (
	EventAgentCreated       = "agent.created"
	EventAgentUpdated       = "agent.updated"
	EventAgentSuspended     = "agent.suspended"
	EventAgentResumed       = "agent.resumed"
	EventAgentDeprovisioned = "agent.deprovisioned"
	EventAgentOrphaned      = "agent.orphaned"
)

// Names of an agent's changeable fields, as used in ValidationError.Field
// and in the "changed" detail of agent.updated events.
const (
	FieldOwners        = "owners"
	FieldPurpose       = "purpose"
	FieldActionClasses = "action_classes"
	FieldAudiences     = "audiences"
	FieldScopes        = "scopes"
	FieldPermissions   = "permissions"
	FieldRequireDPoP   = "require_dpop"
	FieldFederatesWith = "federates_with"
	FieldSelectors     = "selectors"
	FieldAttestation   = "attestation_rules"
	FieldNodeScope     = "node_scope"
	FieldMaxTTL        = "max_ttl_seconds"
	FieldLabels        = "labels"
	FieldExpiresAt     = "expires_at"
	FieldExternalID    = "external_id"
)

// CreateAgentParams describes a new agent.
type CreateAgentParams struct {
	// Name is the agent's name; see ValidateName. Unique forever.
	Name string
	// Owners are 1 to MaxOwners owner ids (own_…) or emails; each must
	// exist and be active.
	Owners []string
	// Purpose is the business justification; see NormalizePurpose.
	Purpose string
	// ActionClasses are the action classes granted; see
	// NormalizeActionClasses.
	ActionClasses []string
	// Audiences are the audiences credentials may name; see
	// NormalizeAudiences.
	Audiences []string
	// Scopes are the OAuth scopes the agent may be granted; see
	// NormalizeScopes.
	Scopes []string
	// Permissions are what the agent may do at agentid itself; see
	// NormalizePermissions.
	Permissions []string
	// RequireDPoP makes the token endpoint issue the agent only
	// DPoP-bound tokens (RFC 9449).
	RequireDPoP bool
	// FederatesWith are the foreign trust domains whose bundles the
	// agent's workloads get; see NormalizeFederatesWith.
	FederatesWith []string
	// Selectors are the workload selectors by which a node knows a
	// workload runs as the agent; see NormalizeSelectors. None: no
	// workload gets the agent's SVIDs from a node.
	Selectors []string
	// AttestationRules say which evidence proves an instance of the
	// agent (ADR 0015); see attest.CheckRules. None: the agent cannot be
	// attested.
	AttestationRules []store.AttestationRule
	// NodeScope names the nodes that may obtain the agent's SVIDs (ADR
	// 0019); see NormalizeNodeScope. The zero value lets every node.
	NodeScope store.NodeScope
	// MaxTTL is the credential max TTL: zero means the Service's default;
	// otherwise a whole number of seconds from MinMaxTTL to the cap.
	MaxTTL time.Duration
	// Labels are free key/value pairs; see ValidateLabels.
	Labels map[string]string
	// ExpiresAt, when not zero, is when the identity expires; it must be in
	// the future.
	ExpiresAt time.Time
	// ExternalID is the provisioning client's id of the agent (the SCIM
	// externalId, ADR 0025): at most MaxExternalIDLen bytes without
	// control characters, surrounding space trimmed; "" for none.
	ExternalID string
	// Suspended creates the agent in state suspended rather than active
	// (a SCIM POST with active false); agent.created says so.
	Suspended bool
}

// CreateAgent registers a new agent in state active (suspended when
// p.Suspended) with version 1 and records agent.created in the same
// transaction.
//
// Errors: *ValidationError (ErrInvalid) for bad input, including owners that
// do not exist or are deactivated; ErrAlreadyExists when the name is taken
// (also by a deprovisioned agent); store and audit errors wrapped. On any
// error nothing is stored.
func (s *Service) CreateAgent(ctx context.Context, o audit.Origin, p CreateAgentParams) (store.Agent, error) {
	now := s.now()
	a, err := s.validateCreate(p, now)
	if err != nil {
		return store.Agent{}, err
	}
	if a.ID, err = s.newID(recordid.Agent, now); err != nil {
		return store.Agent{}, err
	}
	a.CreatedBy = actorID(o)
	var out store.Agent
	err = s.updateAgents(ctx, func(ctx context.Context, tx store.Tx) error {
		owners, err := resolveOwners(ctx, tx, p.Owners)
		if err != nil {
			return err
		}
		for i, ref := range p.Owners {
			if owners.byRef[ref].State != store.OwnerActive {
				return invalid(fmt.Sprintf("owners[%d]", i), "owner %s is deactivated", owners.byRef[ref].ID)
			}
		}
		a.Owners = owners.ids
		created, err := tx.CreateAgent(ctx, a)
		switch {
		case errors.Is(err, store.ErrAlreadyExists):
			return fmt.Errorf("identity: agent name %q: %w", a.Name, ErrAlreadyExists)
		case err != nil:
			return fmt.Errorf("identity: create agent: %w", err)
		}
		details := agentFieldValues(created, allAgentFields())
		details["version"] = created.Version
		details["state"] = string(created.State)
		if err := s.appendAgentEvent(ctx, tx, o, EventAgentCreated, created, details, ""); err != nil {
			return err
		}
		out = created
		return nil
	})
	if err != nil {
		return store.Agent{}, err
	}
	return out, nil
}

func (s *Service) validateCreate(p CreateAgentParams, now time.Time) (store.Agent, error) {
	if err := ValidateName(p.Name); err != nil {
		return store.Agent{}, err
	}
	if err := checkOwnerRefs(p.Owners); err != nil {
		return store.Agent{}, err
	}
	purpose, err := NormalizePurpose(p.Purpose)
	if err != nil {
		return store.Agent{}, err
	}
	classes, err := NormalizeActionClasses(p.ActionClasses)
	if err != nil {
		return store.Agent{}, err
	}
	auds, err := NormalizeAudiences(p.Audiences)
	if err != nil {
		return store.Agent{}, err
	}
	scopes, err := NormalizeScopes(p.Scopes)
	if err != nil {
		return store.Agent{}, err
	}
	perms, err := NormalizePermissions(p.Permissions)
	if err != nil {
		return store.Agent{}, err
	}
	federates, err := NormalizeFederatesWith(p.FederatesWith, s.td)
	if err != nil {
		return store.Agent{}, err
	}
	selectors, err := NormalizeSelectors(p.Selectors)
	if err != nil {
		return store.Agent{}, err
	}
	rules, err := normalizeRules(p.AttestationRules)
	if err != nil {
		return store.Agent{}, err
	}
	scope, err := NormalizeNodeScope(p.NodeScope)
	if err != nil {
		return store.Agent{}, err
	}
	ttl := p.MaxTTL
	if ttl == 0 {
		ttl = s.defaultTTL
	}
	if err := s.checkTTL(ttl); err != nil {
		return store.Agent{}, err
	}
	if err := ValidateLabels(p.Labels); err != nil {
		return store.Agent{}, err
	}
	exp, err := checkExpiry(p.ExpiresAt, now)
	if err != nil {
		return store.Agent{}, err
	}
	externalID, err := ownerText(FieldExternalID, p.ExternalID, MaxExternalIDLen)
	if err != nil {
		return store.Agent{}, err
	}
	state := store.AgentActive
	if p.Suspended {
		state = store.AgentSuspended
	}
	spiffeID := SPIFFEID(s.td, p.Name)
	if _, _, err := ParseSPIFFEID(spiffeID); err != nil {
		return store.Agent{}, err
	}
	return store.Agent{
		Name:             p.Name,
		SPIFFEID:         spiffeID,
		Purpose:          purpose,
		ActionClasses:    classes,
		Audiences:        auds,
		Scopes:           scopes,
		Permissions:      perms,
		RequireDPoP:      p.RequireDPoP,
		FederatesWith:    federates,
		Selectors:        selectors,
		AttestationRules: rules,
		NodeScope:        scope,
		MaxTTL:           ttl,
		Labels:           cloneLabels(p.Labels),
		ExpiresAt:        exp,
		ExternalID:       externalID,
		State:            state,
		CreatedAt:        now,
		UpdatedAt:        now,
	}, nil
}

func (s *Service) checkTTL(ttl time.Duration) error {
	switch {
	case ttl < MinMaxTTL:
		return invalid(FieldMaxTTL, "must be at least %d seconds", int64(MinMaxTTL/time.Second))
	case ttl > s.ttlCap:
		return invalid(FieldMaxTTL, "must be at most %d seconds (the configured cap)", int64(s.ttlCap/time.Second))
	case ttl%time.Second != 0:
		return invalid(FieldMaxTTL, "must be a whole number of seconds")
	}
	return nil
}

func checkExpiry(t, now time.Time) (time.Time, error) {
	if t.IsZero() {
		return time.Time{}, nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	if !t.After(now) {
		return time.Time{}, invalid(FieldExpiresAt, "must be in the future")
	}
	return t, nil
}

func cloneLabels(l map[string]string) map[string]string {
	if len(l) == 0 {
		return nil
	}
	return maps.Clone(l)
}

// GetAgent returns the agent with the id (agt_…) or name ref.
//
// Errors: *ValidationError when ref is neither an agent id nor a valid
// name; ErrNotFound when no agent has it.
func (s *Service) GetAgent(ctx context.Context, ref string) (store.Agent, error) {
	return getAgent(ctx, s.store, ref)
}

// ResolveAgent reads an agent by id (agt_…) or name. Errors:
// *ValidationError for a ref that is neither; ErrNotFound.
func ResolveAgent(ctx context.Context, r store.AgentReader, ref string) (store.Agent, error) {
	return getAgent(ctx, r, ref)
}

func getAgent(ctx context.Context, r store.AgentReader, ref string) (store.Agent, error) {
	var (
		a   store.Agent
		err error
	)
	switch {
	case recordid.Valid(recordid.Agent, ref) == nil:
		a, err = r.GetAgent(ctx, ref)
	case ValidateName(ref) == nil:
		a, err = r.GetAgentByName(ctx, ref)
	default:
		return store.Agent{}, invalid("ref", "must be an agent id (agt_…) or an agent name")
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Agent{}, fmt.Errorf("identity: agent %q: %w", ref, ErrNotFound)
	case err != nil:
		return store.Agent{}, fmt.Errorf("identity: get agent: %w", err)
	}
	return a, nil
}

// ListAgents returns one page of agents in creation order and the token of
// the next page ("" on the last). f.State must be empty or a known state;
// f.OwnerID may be an owner id or email (an unknown email matches nothing).
//
// Errors: *ValidationError for a bad filter or page token.
func (s *Service) ListAgents(ctx context.Context, f store.AgentFilter, p store.Page) ([]store.Agent, string, error) {
	switch f.State {
	case "", store.AgentActive, store.AgentSuspended, store.AgentDeprovisioned:
	default:
		return nil, "", invalid("state", "must be one of active, suspended, deprovisioned")
	}
	if f.OwnerID != "" && recordid.Valid(recordid.Owner, f.OwnerID) != nil {
		email, err := NormalizeEmail(f.OwnerID)
		if err != nil {
			return nil, "", invalid("owner", "must be an owner id (own_…) or email")
		}
		own, err := s.store.GetOwnerByEmail(ctx, email)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return []store.Agent{}, "", nil
		case err != nil:
			return nil, "", fmt.Errorf("identity: list agents: %w", err)
		}
		f.OwnerID = own.ID
	}
	agents, next, err := s.store.ListAgents(ctx, f, p)
	if err != nil {
		return nil, "", fmt.Errorf("identity: list agents: %w", pageErr(err))
	}
	return agents, next, nil
}

// SliceAgents returns at most n agents matching f in id order, skipping
// the first skip of them, and how many agents match f in all: the
// index-based paging of SCIM (RFC 7644 §3.4.2.4) over the store's keyset
// pages, as SliceOwners. f.OwnerID, when set, must be an owner id.
//
// Errors: *ValidationError for a bad state or a negative skip or n.
func (s *Service) SliceAgents(ctx context.Context, f store.AgentFilter, skip, n int) ([]store.Agent, int, error) {
	switch f.State {
	case "", store.AgentActive, store.AgentSuspended, store.AgentDeprovisioned:
	default:
		return nil, 0, invalid("state", "must be one of active, suspended, deprovisioned")
	}
	if skip < 0 || n < 0 {
		return nil, 0, invalid("", "skip and n must not be negative")
	}
	total, err := s.store.CountAgents(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("identity: count agents: %w", err)
	}
	out, err := slice(skip, n, total, func(p store.Page) ([]store.Agent, string, error) { return s.store.ListAgents(ctx, f, p) })
	if err != nil {
		return nil, 0, fmt.Errorf("identity: list agents: %w", err)
	}
	return out, total, nil
}

// slice reads the records skip to skip+n of a keyset-paged list of total
// records with list, page by page: SCIM's startIndex and count over the
// store's page tokens.
func slice[T any](skip, n, total int, list func(store.Page) ([]T, string, error)) ([]T, error) {
	var out []T
	p := store.Page{}
	for n > 0 && skip < total {
		p.PageSize = min(skip+n, store.MaxPageSize)
		page, next, err := list(p)
		if err != nil {
			return nil, err
		}
		if skip >= len(page) {
			skip -= len(page)
		} else {
			page = page[skip:]
			skip = 0
			page = page[:min(n, len(page))]
			out = append(out, page...)
			n -= len(page)
		}
		if next == "" {
			break
		}
		p.PageToken = next
	}
	return out, nil
}

// allAgentFields returns the names of every changeable field, in the
// order agent.updated lists them.
func allAgentFields() []string {
	return []string{FieldOwners, FieldPurpose, FieldActionClasses, FieldAudiences, FieldScopes, FieldPermissions,
		FieldRequireDPoP, FieldFederatesWith, FieldSelectors, FieldAttestation, FieldNodeScope, FieldMaxTTL, FieldLabels, FieldExpiresAt,
		FieldExternalID}
}

// agentFieldValues returns the audit detail values of the named fields.
// None is a secret. Empty lists and maps are present but empty; a missing
// expiry is "".
func agentFieldValues(a store.Agent, fields []string) map[string]any {
	d := make(map[string]any, len(fields)+2)
	for _, f := range fields {
		switch f {
		case FieldOwners:
			d[f] = nonNil(a.Owners)
		case FieldPurpose:
			d[f] = a.Purpose
		case FieldActionClasses:
			d[f] = nonNil(a.ActionClasses)
		case FieldAudiences:
			d[f] = nonNil(a.Audiences)
		case FieldScopes:
			d[f] = nonNil(a.Scopes)
		case FieldPermissions:
			d[f] = nonNil(a.Permissions)
		case FieldRequireDPoP:
			d[f] = a.RequireDPoP
		case FieldFederatesWith:
			d[f] = nonNil(a.FederatesWith)
		case FieldSelectors:
			d[f] = nonNil(a.Selectors)
		case FieldAttestation:
			d[f] = rulesDetail(a.AttestationRules)
		case FieldNodeScope:
			d[f] = nodeScopeDetail(a.NodeScope)
		case FieldMaxTTL:
			d[f] = int64(a.MaxTTL / time.Second)
		case FieldLabels:
			l := map[string]string{}
			maps.Copy(l, a.Labels)
			d[f] = l
		case FieldExpiresAt:
			d[f] = nil // JSON null: no expiry (never set, or cleared)
			if !a.ExpiresAt.IsZero() {
				d[f] = a.ExpiresAt.UTC().Format(time.RFC3339Nano)
			}
		case FieldExternalID:
			d[f] = a.ExternalID
		}
	}
	return d
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Service) appendAgentEvent(ctx context.Context, tx store.Tx, o audit.Origin, typ string, a store.Agent, details map[string]any, reason string) error {
	ev := o.Event(audit.Issuance, typ)
	ev.Time = a.UpdatedAt
	ev.Agent = &audit.Agent{ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID}
	ev.Details = details
	ev.Reason = reason
	if _, err := s.rec.Append(ctx, tx, ev); err != nil {
		return fmt.Errorf("identity: record %s: %w", typ, err)
	}
	return nil
}

func versionErr(kind, name string, have, want int64) error {
	return fmt.Errorf("identity: %s %q is at version %d, not %d: %w", kind, name, have, want, ErrVersionMismatch)
}

// mapUpdateErr passes the package's own errors (returned by an updater)
// through and wraps the rest.
func mapUpdateErr(kind string, err error) error {
	switch {
	case errors.Is(err, errNoChange), errors.Is(err, ErrInvalid), errors.Is(err, ErrNotFound),
		errors.Is(err, ErrVersionMismatch), errors.Is(err, ErrIllegalTransition), errors.Is(err, ErrAlreadyExists),
		errors.Is(err, ErrLimitExceeded):
		return err
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("identity: %s: %w", kind, ErrNotFound)
	default:
		return fmt.Errorf("identity: update %s: %w", kind, err)
	}
}
