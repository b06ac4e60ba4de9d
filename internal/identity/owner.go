package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Audit event types of the owner lifecycle, in family audit.Admin.
const (
	EventOwnerCreated     = "owner.created"
	EventOwnerDeactivated = "owner.deactivated"
)

// CreateOwnerParams describes a new owner. At least one of Email and
// Subject is required; each is unique among owners when set.
type CreateOwnerParams struct {
	// Kind is store.OwnerPerson or store.OwnerTeam.
	Kind store.OwnerKind
	// Email is a plain address (see NormalizeEmail); stored lowercased.
	Email string
	// Subject is the owner's subject at the enterprise IdP: at most
	// MaxSubjectLen bytes without control characters, trimmed.
	Subject string
	// DisplayName is optional: at most MaxDisplayNameLen bytes without
	// control characters, trimmed.
	DisplayName string
}

// CreateOwner registers a new active owner with version 1 and records
// owner.created in the same transaction.
//
// Errors: *ValidationError; ErrAlreadyExists when the email or subject is
// taken. On any error nothing is stored.
func (s *Service) CreateOwner(ctx context.Context, o audit.Origin, p CreateOwnerParams) (store.Owner, error) {
	own, err := validateOwner(p)
	if err != nil {
		return store.Owner{}, err
	}
	now := s.now()
	if own.ID, err = s.newID(recordid.Owner, now); err != nil {
		return store.Owner{}, err
	}
	own.State = store.OwnerActive
	own.CreatedAt, own.UpdatedAt = now, now
	var out store.Owner
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		created, err := tx.CreateOwner(ctx, own)
		switch {
		case errors.Is(err, store.ErrAlreadyExists):
			return fmt.Errorf("identity: an owner with this email or subject exists: %w", ErrAlreadyExists)
		case err != nil:
			return fmt.Errorf("identity: create owner: %w", err)
		}
		ev := o.Event(audit.Admin, EventOwnerCreated)
		ev.Time = now
		ev.Details = map[string]any{
			"id":           created.ID,
			"kind":         string(created.Kind),
			"email":        created.Email,
			"subject":      created.Subject,
			"display_name": created.DisplayName,
			"version":      created.Version,
		}
		if _, err := s.rec.Append(ctx, tx, ev); err != nil {
			return fmt.Errorf("identity: record %s: %w", EventOwnerCreated, err)
		}
		out = created
		return nil
	})
	if err != nil {
		return store.Owner{}, err
	}
	return out, nil
}

func validateOwner(p CreateOwnerParams) (store.Owner, error) {
	if p.Kind != store.OwnerPerson && p.Kind != store.OwnerTeam {
		return store.Owner{}, invalid("kind", "must be person or team")
	}
	own := store.Owner{Kind: p.Kind}
	var err error
	if email := strings.TrimSpace(p.Email); email != "" {
		if own.Email, err = NormalizeEmail(email); err != nil {
			return store.Owner{}, err
		}
	}
	own.Subject = strings.TrimSpace(p.Subject)
	if len(own.Subject) > MaxSubjectLen {
		return store.Owner{}, invalid("subject", "must be at most %d bytes", MaxSubjectLen)
	}
	if err := checkText(own.Subject); err != nil {
		return store.Owner{}, withField("subject", err)
	}
	if own.Email == "" && own.Subject == "" {
		return store.Owner{}, invalid("email", "an email or an IdP subject is required")
	}
	own.DisplayName = strings.TrimSpace(p.DisplayName)
	if len(own.DisplayName) > MaxDisplayNameLen {
		return store.Owner{}, invalid("display_name", "must be at most %d bytes", MaxDisplayNameLen)
	}
	if err := checkText(own.DisplayName); err != nil {
		return store.Owner{}, withField("display_name", err)
	}
	return own, nil
}

// GetOwner returns the owner with the id (own_…) or email ref.
//
// Errors: *ValidationError when ref is neither; ErrNotFound.
func (s *Service) GetOwner(ctx context.Context, ref string) (store.Owner, error) {
	return getOwner(ctx, s.store, ref)
}

func getOwner(ctx context.Context, r store.OwnerReader, ref string) (store.Owner, error) {
	var (
		own store.Owner
		err error
	)
	if recordid.Valid(recordid.Owner, ref) == nil {
		own, err = r.GetOwner(ctx, ref)
	} else {
		email, verr := NormalizeEmail(ref)
		if verr != nil {
			return store.Owner{}, invalid("ref", "must be an owner id (own_…) or email")
		}
		own, err = r.GetOwnerByEmail(ctx, email)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Owner{}, fmt.Errorf("identity: owner %s: %w", quote(ref), ErrNotFound)
	case err != nil:
		return store.Owner{}, fmt.Errorf("identity: get owner: %w", err)
	}
	return own, nil
}

// ListOwners returns one page of owners in creation order and the next page
// token. f.State must be empty or a known state.
//
// Errors: *ValidationError for a bad filter or page token.
func (s *Service) ListOwners(ctx context.Context, f store.OwnerFilter, p store.Page) ([]store.Owner, string, error) {
	switch f.State {
	case "", store.OwnerActive, store.OwnerDeactivated:
	default:
		return nil, "", invalid("state", "must be active or deactivated")
	}
	owners, next, err := s.store.ListOwners(ctx, f, p)
	if err != nil {
		return nil, "", fmt.Errorf("identity: list owners: %w", pageErr(err))
	}
	return owners, next, nil
}

// DeactivateOwner moves an active owner to deactivated, a final state, and
// records owner.deactivated. In the same transaction it records
// agent.orphaned for every agent that is not deprovisioned and whose every
// owner is now deactivated (such agents show Orphaned on read).
//
// Errors: *ValidationError; ErrNotFound; ErrVersionMismatch;
// ErrIllegalTransition when the owner is already deactivated. On any error
// nothing is stored.
func (s *Service) DeactivateOwner(ctx context.Context, o audit.Origin, p TransitionParams) (store.Owner, error) {
	if err := checkIfVersion(p.IfVersion); err != nil {
		return store.Owner{}, err
	}
	reason, err := p.normalizeReason()
	if err != nil {
		return store.Owner{}, err
	}
	now := s.now()
	var out store.Owner
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		cur, err := getOwner(ctx, tx, p.Ref)
		if err != nil {
			return err
		}
		updated, err := tx.UpdateOwner(ctx, cur.ID, func(own store.Owner) (store.Owner, error) {
			if p.IfVersion != 0 && own.Version != p.IfVersion {
				return own, versionErr("owner", own.ID, own.Version, p.IfVersion)
			}
			if own.State != store.OwnerActive {
				return own, fmt.Errorf("identity: owner %s is already %s: %w", own.ID, own.State, ErrIllegalTransition)
			}
			own.State = store.OwnerDeactivated
			own.UpdatedAt = now
			return own, nil
		})
		if err != nil {
			return mapUpdateErr("owner", err)
		}
		orphans, err := newOrphans(ctx, tx, updated.ID)
		if err != nil {
			return err
		}
		ev := o.Event(audit.Admin, EventOwnerDeactivated)
		ev.Time = now
		ev.Reason = reason
		ev.Details = map[string]any{
			"id":              updated.ID,
			"version":         updated.Version,
			"orphaned_agents": len(orphans),
		}
		if _, err := s.rec.Append(ctx, tx, ev); err != nil {
			return fmt.Errorf("identity: record %s: %w", EventOwnerDeactivated, err)
		}
		for _, a := range orphans {
			ev := o.Event(audit.Issuance, EventAgentOrphaned)
			ev.Time = now
			ev.Agent = &audit.Agent{ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID}
			ev.Details = map[string]any{
				"version":           a.Version,
				"owners":            nonNil(a.Owners),
				"deactivated_owner": updated.ID,
			}
			if _, err := s.rec.Append(ctx, tx, ev); err != nil {
				return fmt.Errorf("identity: record %s: %w", EventAgentOrphaned, err)
			}
		}
		out = updated
		return nil
	})
	if err != nil {
		return store.Owner{}, err
	}
	return out, nil
}

// newOrphans returns the agents of ownerID, which was active until now,
// that are not deprovisioned and have no active owner left. They had one
// (ownerID) before, so each is newly orphaned.
func newOrphans(ctx context.Context, tx store.Tx, ownerID string) ([]store.Agent, error) {
	states := map[string]store.OwnerState{}
	var orphans []store.Agent
	page := store.Page{PageSize: store.MaxPageSize}
	for {
		agents, next, err := tx.ListAgents(ctx, store.AgentFilter{OwnerID: ownerID}, page)
		if err != nil {
			return nil, fmt.Errorf("identity: list agents of owner %s: %w", ownerID, err)
		}
		for _, a := range agents {
			if a.State == store.AgentDeprovisioned {
				continue
			}
			orphaned := true
			for _, id := range a.Owners {
				st, ok := states[id]
				if !ok {
					own, err := tx.GetOwner(ctx, id)
					if err != nil {
						return nil, fmt.Errorf("identity: owner %s of agent %s: %w", id, a.ID, err)
					}
					st = own.State
					states[id] = st
				}
				if st == store.OwnerActive {
					orphaned = false
					break
				}
			}
			if orphaned {
				orphans = append(orphans, a)
			}
		}
		if next == "" {
			return orphans, nil
		}
		page.PageToken = next
	}
}

// ownerSet is the result of resolving owner references.
type ownerSet struct {
	byRef map[string]store.Owner
	ids   []string // distinct, sorted
}

// checkOwnerRefs bounds an owner list before any lookup.
func checkOwnerRefs(refs []string) error {
	if len(refs) == 0 {
		return invalid(FieldOwners, "at least one owner is required")
	}
	if len(refs) > MaxOwners {
		return invalid(FieldOwners, "at most %d owners are allowed", MaxOwners)
	}
	for i, ref := range refs {
		if recordid.Valid(recordid.Owner, ref) == nil {
			continue
		}
		if _, err := NormalizeEmail(ref); err != nil {
			return invalid(fmt.Sprintf("owners[%d]", i), "must be an owner id (own_…) or email")
		}
	}
	return nil
}

// resolveOwners looks up every reference. An unknown owner is a validation
// error of the request, not a missing resource.
func resolveOwners(ctx context.Context, r store.OwnerReader, refs []string) (ownerSet, error) {
	set := ownerSet{byRef: make(map[string]store.Owner, len(refs))}
	for i, ref := range refs {
		own, err := getOwner(ctx, r, ref)
		switch {
		case errors.Is(err, ErrNotFound):
			return ownerSet{}, invalid(fmt.Sprintf("owners[%d]", i), "no owner %s", quote(ref))
		case err != nil:
			return ownerSet{}, withField(fmt.Sprintf("owners[%d]", i), err)
		}
		set.byRef[ref] = own
		set.ids = append(set.ids, own.ID)
	}
	slices.Sort(set.ids)
	set.ids = slices.Compact(set.ids)
	return set, nil
}

// checkNewOwners enforces the owner rules of an update: owners not already
// on the agent must be active, and at least one owner must be active.
func checkNewOwners(current, refs []string, set ownerSet) error {
	anyActive := false
	for i, ref := range refs {
		own := set.byRef[ref]
		if own.State == store.OwnerActive {
			anyActive = true
			continue
		}
		if !slices.Contains(current, own.ID) {
			return invalid(fmt.Sprintf("owners[%d]", i), "owner %s is deactivated", own.ID)
		}
	}
	if !anyActive {
		return invalid(FieldOwners, "at least one owner must be active")
	}
	return nil
}
