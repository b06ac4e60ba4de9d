package identity

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

// UpdateAgentParams changes an agent. A nil field is left alone; a non-nil
// one replaces the agent's value (validated as in CreateAgentParams).
type UpdateAgentParams struct {
	// Ref is the agent's id or name.
	Ref string
	// IfVersion, when not zero, must equal the agent's current version.
	IfVersion     int64
	Owners        *[]string
	Purpose       *string
	ActionClasses *[]string
	Audiences     *[]string
	Scopes        *[]string
	Permissions   *[]string
	RequireDPoP   *bool
	FederatesWith *[]string
	Selectors     *[]string
	// AttestationRules replaces the agent's attestation rules (ADR 0015).
	AttestationRules *[]store.AttestationRule
	// NodeScope replaces the agent's node scope (ADR 0019); a pointer to
	// the zero scope clears it (every node may serve the agent).
	NodeScope *store.NodeScope
	MaxTTL    *time.Duration
	Labels    *map[string]string
	// ExpiresAt set to the zero time clears the expiry.
	ExpiresAt *time.Time
	// ExternalID replaces the provisioning client's id; "" clears it.
	ExternalID *string
	// State, when set, suspends (store.AgentSuspended) or resumes
	// (store.AgentActive) the agent in the same transaction as the other
	// changes, so that a SCIM PUT or PATCH that changes attributes and
	// active is one version: agent.updated, then agent.suspended or
	// agent.resumed, as SuspendAgent and ResumeAgent record them. The
	// state the agent is in already changes nothing; deprovisioned is not
	// accepted (DeprovisionAgent).
	State *store.AgentState
}

// errNoChange aborts an update transaction that would change nothing.
var errNoChange = errors.New("identity: no change")

// UpdateAgent changes the fields set in p and records agent.updated with the
// new version, the names of the changed fields and their new values; a
// p.State that differs from the agent's then records agent.suspended or
// agent.resumed in the same transaction, for the same version. Owners
// newly added must be active, and a changed owner list must keep at least
// one active owner (so an update never orphans an agent). An update whose
// values equal the current ones changes nothing, records nothing and
// returns the agent as it is.
//
// Errors: *ValidationError for bad input or when no field is set;
// ErrNotFound; ErrVersionMismatch when p.IfVersion is stale;
// ErrIllegalTransition when the agent is deprovisioned. On any error
// nothing is stored.
func (s *Service) UpdateAgent(ctx context.Context, o audit.Origin, p UpdateAgentParams) (store.Agent, error) {
	now := s.now()
	u, err := s.validateUpdate(p, now)
	if err != nil {
		return store.Agent{}, err
	}
	var out store.Agent
	err = s.updateAgents(ctx, func(ctx context.Context, tx store.Tx) error {
		cur, err := getAgent(ctx, tx, p.Ref)
		if err != nil {
			return err
		}
		var owners ownerSet
		if p.Owners != nil {
			if owners, err = resolveOwners(ctx, tx, *p.Owners); err != nil {
				return err
			}
		}
		var (
			changed []string
			prev    store.AgentState
		)
		updated, err := tx.UpdateAgent(ctx, cur.ID, func(a store.Agent) (store.Agent, error) {
			out = a // returned as is when nothing changes
			if p.IfVersion != 0 && a.Version != p.IfVersion {
				return a, versionErr("agent", a.Name, a.Version, p.IfVersion)
			}
			if a.State == store.AgentDeprovisioned {
				return a, fmt.Errorf("identity: agent %q is deprovisioned and cannot change: %w", a.Name, ErrIllegalTransition)
			}
			if p.Owners != nil {
				if err := checkNewOwners(a.Owners, *p.Owners, owners); err != nil {
					return a, err
				}
				u.Owners = owners.ids
			}
			a, changed = u.apply(a)
			prev = a.State
			if p.State != nil {
				a.State = *p.State
			}
			if len(changed) == 0 && a.State == prev {
				return a, errNoChange
			}
			a.UpdatedAt = now
			return a, nil
		})
		if err != nil {
			return mapUpdateErr("agent", err)
		}
		if len(changed) > 0 {
			details := agentFieldValues(updated, changed)
			details["version"] = updated.Version
			details["changed"] = changed
			if err := s.appendAgentEvent(ctx, tx, o, EventAgentUpdated, updated, details, ""); err != nil {
				return err
			}
		}
		if updated.State != prev {
			if err := s.appendTransition(ctx, tx, o, updated, prev, now, ""); err != nil {
				return err
			}
		}
		out = updated
		return nil
	})
	if errors.Is(err, errNoChange) {
		return out, nil
	}
	if err != nil {
		return store.Agent{}, err
	}
	return out, nil
}

// agentUpdate holds the validated, normalised new values of an update.
type agentUpdate struct {
	set           map[string]bool
	Owners        []string
	Purpose       string
	ActionClasses []string
	Audiences     []string
	Scopes        []string
	Permissions   []string
	RequireDPoP   bool
	FederatesWith []string
	Selectors     []string
	Rules         []store.AttestationRule
	NodeScope     store.NodeScope
	MaxTTL        time.Duration
	Labels        map[string]string
	ExpiresAt     time.Time
	ExternalID    string
}

func (s *Service) validateUpdate(p UpdateAgentParams, now time.Time) (agentUpdate, error) {
	u := agentUpdate{set: map[string]bool{}}
	if err := checkIfVersion(p.IfVersion); err != nil {
		return u, err
	}
	if p.Ref == "" {
		return u, invalid("ref", "must not be empty")
	}
	var err error
	if p.Owners != nil {
		if err := checkOwnerRefs(*p.Owners); err != nil {
			return u, err
		}
		u.set[FieldOwners] = true
	}
	if p.Purpose != nil {
		if u.Purpose, err = NormalizePurpose(*p.Purpose); err != nil {
			return u, err
		}
		u.set[FieldPurpose] = true
	}
	if p.ActionClasses != nil {
		if u.ActionClasses, err = NormalizeActionClasses(*p.ActionClasses); err != nil {
			return u, err
		}
		u.set[FieldActionClasses] = true
	}
	if p.Audiences != nil {
		if u.Audiences, err = NormalizeAudiences(*p.Audiences); err != nil {
			return u, err
		}
		u.set[FieldAudiences] = true
	}
	if p.Scopes != nil {
		if u.Scopes, err = NormalizeScopes(*p.Scopes); err != nil {
			return u, err
		}
		u.set[FieldScopes] = true
	}
	if p.Permissions != nil {
		if u.Permissions, err = NormalizePermissions(*p.Permissions); err != nil {
			return u, err
		}
		u.set[FieldPermissions] = true
	}
	if p.RequireDPoP != nil {
		u.RequireDPoP = *p.RequireDPoP
		u.set[FieldRequireDPoP] = true
	}
	if p.FederatesWith != nil {
		if u.FederatesWith, err = NormalizeFederatesWith(*p.FederatesWith, s.td); err != nil {
			return u, err
		}
		u.set[FieldFederatesWith] = true
	}
	if p.Selectors != nil {
		if u.Selectors, err = NormalizeSelectors(*p.Selectors); err != nil {
			return u, err
		}
		u.set[FieldSelectors] = true
	}
	if p.AttestationRules != nil {
		if u.Rules, err = normalizeRules(*p.AttestationRules); err != nil {
			return u, err
		}
		u.set[FieldAttestation] = true
	}
	if p.NodeScope != nil {
		if u.NodeScope, err = NormalizeNodeScope(*p.NodeScope); err != nil {
			return u, err
		}
		u.set[FieldNodeScope] = true
	}
	if p.MaxTTL != nil {
		if err := s.checkTTL(*p.MaxTTL); err != nil {
			return u, err
		}
		u.MaxTTL = *p.MaxTTL
		u.set[FieldMaxTTL] = true
	}
	if p.Labels != nil {
		if err := ValidateLabels(*p.Labels); err != nil {
			return u, err
		}
		u.Labels = cloneLabels(*p.Labels)
		u.set[FieldLabels] = true
	}
	if p.ExpiresAt != nil {
		if u.ExpiresAt, err = checkExpiry(*p.ExpiresAt, now); err != nil {
			return u, err
		}
		u.set[FieldExpiresAt] = true
	}
	if p.ExternalID != nil {
		if u.ExternalID, err = ownerText(FieldExternalID, *p.ExternalID, MaxExternalIDLen); err != nil {
			return u, err
		}
		u.set[FieldExternalID] = true
	}
	if p.State != nil && *p.State != store.AgentActive && *p.State != store.AgentSuspended {
		return u, invalid("state", "must be active or suspended")
	}
	if len(u.set) == 0 && p.State == nil {
		return u, invalid("", "nothing to update: set at least one field")
	}
	return u, nil
}

// apply sets u's values on a and returns the names of the fields whose
// value changed, in allAgentFields order.
func (u agentUpdate) apply(a store.Agent) (store.Agent, []string) {
	var changed []string
	mark := func(field string, differs bool) bool {
		if u.set[field] && differs {
			changed = append(changed, field)
			return true
		}
		return false
	}
	if mark(FieldOwners, !slices.Equal(u.Owners, a.Owners)) {
		a.Owners = u.Owners
	}
	if mark(FieldPurpose, u.Purpose != a.Purpose) {
		a.Purpose = u.Purpose
	}
	if mark(FieldActionClasses, !slices.Equal(u.ActionClasses, a.ActionClasses)) {
		a.ActionClasses = u.ActionClasses
	}
	if mark(FieldAudiences, !slices.Equal(u.Audiences, a.Audiences)) {
		a.Audiences = u.Audiences
	}
	if mark(FieldScopes, !slices.Equal(u.Scopes, a.Scopes)) {
		a.Scopes = u.Scopes
	}
	if mark(FieldPermissions, !slices.Equal(u.Permissions, a.Permissions)) {
		a.Permissions = u.Permissions
	}
	if mark(FieldRequireDPoP, u.RequireDPoP != a.RequireDPoP) {
		a.RequireDPoP = u.RequireDPoP
	}
	if mark(FieldFederatesWith, !slices.Equal(u.FederatesWith, a.FederatesWith)) {
		a.FederatesWith = u.FederatesWith
	}
	if mark(FieldSelectors, !slices.Equal(u.Selectors, a.Selectors)) {
		a.Selectors = u.Selectors
	}
	if mark(FieldAttestation, !rulesEqual(u.Rules, a.AttestationRules)) {
		a.AttestationRules = u.Rules
	}
	if mark(FieldNodeScope, !nodeScopeEqual(u.NodeScope, a.NodeScope)) {
		a.NodeScope = u.NodeScope
	}
	if mark(FieldMaxTTL, u.MaxTTL != a.MaxTTL) {
		a.MaxTTL = u.MaxTTL
	}
	if mark(FieldLabels, !maps.Equal(u.Labels, a.Labels)) {
		a.Labels = u.Labels
	}
	if mark(FieldExpiresAt, !u.ExpiresAt.Equal(a.ExpiresAt)) {
		a.ExpiresAt = u.ExpiresAt
	}
	if mark(FieldExternalID, u.ExternalID != a.ExternalID) {
		a.ExternalID = u.ExternalID
	}
	return a, changed
}
