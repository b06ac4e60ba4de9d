package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/urlcheck"
)

// Audit event types of the owner lifecycle, in family audit.Admin.
const (
	EventOwnerCreated     = "owner.created"
	EventOwnerUpdated     = "owner.updated"
	EventOwnerDeactivated = "owner.deactivated"
	EventOwnerReactivated = "owner.reactivated"
)

// Owner fields as change lists (owner.updated's "changed") and validation
// errors name them.
const (
	FieldOwnerEmail       = "email"
	FieldOwnerDisplayName = "display_name"
	FieldOwnerUserName    = "user_name"
	FieldOwnerExternalID  = "external_id"
	// FieldOwnerSubjectIssuer is the trusted issuer the subject is of.
	FieldOwnerSubjectIssuer = "subject_issuer"
)

// CreateOwnerParams describes a new owner. At least one of Email, Subject
// and UserName is required; each is unique among owners when set (UserName
// case-insensitively, store.FoldUserName).
type CreateOwnerParams struct {
	// Kind is store.OwnerPerson or store.OwnerTeam.
	Kind store.OwnerKind
	// Email is a plain address (see NormalizeEmail); stored lowercased.
	Email string
	// Subject is the owner's subject at the enterprise IdP: at most
	// MaxSubjectLen bytes without control characters, trimmed.
	Subject string
	// SubjectIssuer ties Subject to one trusted issuer (ADR 0027): an
	// issuer identifier (https, or http on a loopback host; no query or
	// fragment), only with a Subject. Empty: the subject matches a
	// person's token only while one issuer is trusted.
	SubjectIssuer string
	// DisplayName is optional: at most MaxDisplayNameLen bytes without
	// control characters, trimmed.
	DisplayName string
	// UserName is the owner's SCIM userName (RFC 7643 §4.1.1): at most
	// MaxUserNameLen bytes without control characters, trimmed.
	UserName string
	// ExternalID is the provisioning client's id of the owner (RFC 7643
	// §3.1): at most MaxExternalIDLen bytes without control characters,
	// trimmed; not unique.
	ExternalID string
	// Deactivated creates the owner deactivated (a SCIM client may create
	// a user that is not active); it has no agents yet, so none is
	// orphaned.
	Deactivated bool
}

// CreateOwner registers a new owner, active unless p.Deactivated, with
// version 1 and records owner.created in the same transaction.
//
// Errors: *ValidationError; ErrAlreadyExists when the email or subject is
// taken, or the user name (the email when there is none) is the userName
// another owner shows: its user name, or its email when it has none
// (store.OwnerUserNameKey). On any error nothing is stored.
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
	if p.Deactivated {
		own.State = store.OwnerDeactivated
	}
	own.CreatedAt, own.UpdatedAt = now, now
	var out store.Owner
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		created, err := tx.CreateOwner(ctx, own)
		switch {
		case errors.Is(err, store.ErrAlreadyExists):
			return fmt.Errorf("identity: an owner with this email or subject exists, or the user name is another owner's user name or email (case-insensitively): %w", ErrAlreadyExists)
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
			"user_name":    created.UserName,
			"external_id":  created.ExternalID,
			"state":        string(created.State),
			"version":      created.Version,
		}
		if created.SubjectIssuer != "" {
			ev.Details["subject_issuer"] = created.SubjectIssuer
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
	if own.Email, err = normalizeOwnerEmail(p.Email); err != nil {
		return store.Owner{}, err
	}
	own.Subject = strings.TrimSpace(p.Subject)
	if len(own.Subject) > MaxSubjectLen {
		return store.Owner{}, invalid("subject", "must be at most %d bytes", MaxSubjectLen)
	}
	if err := checkText(own.Subject); err != nil {
		return store.Owner{}, withField("subject", err)
	}
	if own.SubjectIssuer, err = normalizeSubjectIssuer(p.SubjectIssuer); err != nil {
		return store.Owner{}, err
	}
	if own.DisplayName, err = ownerText(FieldOwnerDisplayName, p.DisplayName, MaxDisplayNameLen); err != nil {
		return store.Owner{}, err
	}
	if own.UserName, err = ownerText(FieldOwnerUserName, p.UserName, MaxUserNameLen); err != nil {
		return store.Owner{}, err
	}
	if own.ExternalID, err = ownerText(FieldOwnerExternalID, p.ExternalID, MaxExternalIDLen); err != nil {
		return store.Owner{}, err
	}
	if err := checkOwnerKeys(own); err != nil {
		return store.Owner{}, err
	}
	return own, nil
}

// normalizeOwnerEmail trims email and normalises it; blank is "".
func normalizeOwnerEmail(email string) (string, error) {
	if email = strings.TrimSpace(email); email == "" {
		return "", nil
	}
	return NormalizeEmail(email)
}

// ownerText trims a free-text owner field and bounds it.
func ownerText(field, v string, maxLen int) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) > maxLen {
		return "", invalid(field, "must be at most %d bytes", maxLen)
	}
	if err := checkText(v); err != nil {
		return "", withField(field, err)
	}
	return v, nil
}

// normalizeSubjectIssuer trims a subject issuer and checks it is an
// issuer identifier; blank is "".
func normalizeSubjectIssuer(iss string) (string, error) {
	if iss = strings.TrimSpace(iss); iss == "" {
		return "", nil
	}
	if len(iss) > MaxSubjectIssuerLen {
		return "", invalid(FieldOwnerSubjectIssuer, "must be at most %d bytes", MaxSubjectIssuerLen)
	}
	if err := urlcheck.HTTPS(iss, true); err != nil {
		return "", invalid(FieldOwnerSubjectIssuer, "%s", err.Error())
	}
	return iss, nil
}

// checkOwnerKeys requires a way to find the owner: an email, an IdP
// subject or a user name; and a subject issuer only with a subject.
func checkOwnerKeys(own store.Owner) error {
	if own.Email == "" && own.Subject == "" && own.UserName == "" {
		return invalid(FieldOwnerEmail, "an email, an IdP subject or a user name is required")
	}
	if own.SubjectIssuer != "" && own.Subject == "" {
		return invalid(FieldOwnerSubjectIssuer, "is set only with a subject")
	}
	return nil
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

// MaxUserNameLen bounds an owner's SCIM userName and MaxExternalIDLen the
// externalId of an owner or an agent, in bytes after trimming.
const (
	MaxUserNameLen   = 255
	MaxExternalIDLen = 255
)

// ListOwners returns one page of owners in creation order and the next page
// token. f.State and f.Kind must be empty or known values.
//
// Errors: *ValidationError for a bad filter or page token.
func (s *Service) ListOwners(ctx context.Context, f store.OwnerFilter, p store.Page) ([]store.Owner, string, error) {
	if err := checkOwnerFilter(f); err != nil {
		return nil, "", err
	}
	owners, next, err := s.store.ListOwners(ctx, f, p)
	if err != nil {
		return nil, "", fmt.Errorf("identity: list owners: %w", pageErr(err))
	}
	return owners, next, nil
}

func checkOwnerFilter(f store.OwnerFilter) error {
	switch f.State {
	case "", store.OwnerActive, store.OwnerDeactivated:
	default:
		return invalid("state", "must be active or deactivated")
	}
	switch f.Kind {
	case "", store.OwnerPerson, store.OwnerTeam:
	default:
		return invalid("kind", "must be person or team")
	}
	return nil
}

// SliceOwners returns at most n owners matching f in id order, skipping
// the first skip of them, and how many owners match f in all: the
// index-based paging of SCIM (RFC 7644 §3.4.2.4) over the store's keyset
// pages. It reads skip+n owners; the total and the slice are two reads, not
// one snapshot.
//
// Errors: *ValidationError for a bad filter or a negative skip or n.
func (s *Service) SliceOwners(ctx context.Context, f store.OwnerFilter, skip, n int) ([]store.Owner, int, error) {
	if err := checkOwnerFilter(f); err != nil {
		return nil, 0, err
	}
	if skip < 0 || n < 0 {
		return nil, 0, invalid("", "skip and n must not be negative")
	}
	total, err := s.store.CountOwners(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("identity: count owners: %w", err)
	}
	out, err := slice(skip, n, total, func(p store.Page) ([]store.Owner, string, error) { return s.store.ListOwners(ctx, f, p) })
	if err != nil {
		return nil, 0, fmt.Errorf("identity: list owners: %w", err)
	}
	return out, total, nil
}

// UpdateOwnerParams changes an owner. A nil field is left alone; a non-nil
// one replaces the owner's value, validated as in CreateOwnerParams (the
// empty string clears it, as long as an email, a subject or a user name
// remains). Subject and Kind do not change: delegation grants name the
// subject.
type UpdateOwnerParams struct {
	// Ref is the owner's id (own_…) or email.
	Ref string
	// IfVersion, when not zero, must equal the owner's current version.
	IfVersion   int64
	Email       *string
	DisplayName *string
	UserName    *string
	ExternalID  *string
	// SubjectIssuer ties the owner's subject to a trusted issuer, or
	// unties it ("") (ADR 0027).
	SubjectIssuer *string
	// State, when set, moves the owner to that state in the same
	// transaction, with the events (and orphans, and revoked grants) of
	// DeactivateOwner or ReactivateOwner; the owner's current state is no
	// change.
	State *store.OwnerState
	// Reason is recorded on the state change's event, as in
	// TransitionParams.
	Reason string
}

// UpdateOwner changes the fields set in p in one transaction and records
// owner.updated with the changed fields and their new values, then, when
// p.State changes the state, owner.deactivated (and agent.orphaned) or
// owner.reactivated. An update that changes nothing records nothing and
// returns the owner as it is. Deactivated owners may be updated.
//
// Errors: *ValidationError for bad input or when no field is set;
// ErrNotFound; ErrVersionMismatch when p.IfVersion is stale;
// ErrAlreadyExists when the email or subject is taken or the user name
// the owner would show is another's (as for CreateOwner). On any error
// nothing is stored.
func (s *Service) UpdateOwner(ctx context.Context, o audit.Origin, p UpdateOwnerParams) (store.Owner, error) {
	if err := checkIfVersion(p.IfVersion); err != nil {
		return store.Owner{}, err
	}
	reason, err := TransitionParams{Reason: p.Reason}.normalizeReason()
	if err != nil {
		return store.Owner{}, err
	}
	c := ownerChange{set: map[string]bool{}, reason: reason}
	if p.Email != nil {
		c.set[FieldOwnerEmail] = true
		if c.email, err = normalizeOwnerEmail(*p.Email); err != nil {
			return store.Owner{}, withField(FieldOwnerEmail, err)
		}
	}
	for _, f := range []struct {
		name   string
		in     *string
		out    *string
		maxLen int
	}{
		{FieldOwnerDisplayName, p.DisplayName, &c.displayName, MaxDisplayNameLen},
		{FieldOwnerUserName, p.UserName, &c.userName, MaxUserNameLen},
		{FieldOwnerExternalID, p.ExternalID, &c.externalID, MaxExternalIDLen},
	} {
		if f.in == nil {
			continue
		}
		c.set[f.name] = true
		if *f.out, err = ownerText(f.name, *f.in, f.maxLen); err != nil {
			return store.Owner{}, err
		}
	}
	if p.SubjectIssuer != nil {
		c.set[FieldOwnerSubjectIssuer] = true
		if c.subjectIssuer, err = normalizeSubjectIssuer(*p.SubjectIssuer); err != nil {
			return store.Owner{}, err
		}
	}
	if p.State != nil {
		switch *p.State {
		case store.OwnerActive, store.OwnerDeactivated:
			c.state = *p.State
		default:
			return store.Owner{}, invalid("state", "must be active or deactivated")
		}
	}
	if len(c.set) == 0 && c.state == "" {
		return store.Owner{}, invalid("", "nothing to update: set at least one field")
	}
	return s.changeOwner(ctx, o, p.Ref, p.IfVersion, c)
}

// DeactivateOwner moves an active owner to deactivated and records
// owner.deactivated. In the same transaction it records agent.orphaned for
// every agent that is not deprovisioned and whose every owner is now
// deactivated (such agents show Orphaned on read) and, for a person, revokes
// the delegation grants the person gave (see OwnerGrantRevoker).
// ReactivateOwner undoes the first, never the second.
//
// Errors: *ValidationError; ErrNotFound; ErrVersionMismatch;
// ErrIllegalTransition when the owner is already deactivated. On any error
// nothing is stored.
func (s *Service) DeactivateOwner(ctx context.Context, o audit.Origin, p TransitionParams) (store.Owner, error) {
	return s.transitionOwner(ctx, o, p, store.OwnerDeactivated)
}

// ReactivateOwner moves a deactivated owner back to active (an identity
// provider re-enabled the person) and records owner.reactivated with the
// number of agents that were orphaned and have an active owner again
// (restored_agents). Grants revoked by the deactivation stay revoked. Errors as DeactivateOwner, with ErrIllegalTransition
// when the owner is already active.
func (s *Service) ReactivateOwner(ctx context.Context, o audit.Origin, p TransitionParams) (store.Owner, error) {
	return s.transitionOwner(ctx, o, p, store.OwnerActive)
}

func (s *Service) transitionOwner(ctx context.Context, o audit.Origin, p TransitionParams, to store.OwnerState) (store.Owner, error) {
	if err := checkIfVersion(p.IfVersion); err != nil {
		return store.Owner{}, err
	}
	reason, err := p.normalizeReason()
	if err != nil {
		return store.Owner{}, err
	}
	return s.changeOwner(ctx, o, p.Ref, p.IfVersion, ownerChange{state: to, strict: true, reason: reason})
}

// ownerChange is a validated change of an owner: fields (those in set)
// and a state ("" keeps it). strict makes an unchanged state an illegal
// transition rather than no change.
type ownerChange struct {
	set                                                     map[string]bool
	email, displayName, userName, externalID, subjectIssuer string
	state                                                   store.OwnerState
	strict                                                  bool
	reason                                                  string
}

// apply sets c's fields on own and returns the names of those whose value
// changed, in a fixed order.
func (c ownerChange) apply(own store.Owner) (store.Owner, []string) {
	var changed []string
	for _, f := range []struct {
		name string
		to   string
		at   *string
	}{
		{FieldOwnerEmail, c.email, &own.Email},
		{FieldOwnerDisplayName, c.displayName, &own.DisplayName},
		{FieldOwnerUserName, c.userName, &own.UserName},
		{FieldOwnerExternalID, c.externalID, &own.ExternalID},
		{FieldOwnerSubjectIssuer, c.subjectIssuer, &own.SubjectIssuer},
	} {
		if c.set[f.name] && *f.at != f.to {
			*f.at = f.to
			changed = append(changed, f.name)
		}
	}
	return own, changed
}

// ownerFieldValues returns the audit detail values of the named fields.
func ownerFieldValues(own store.Owner, fields []string) map[string]any {
	d := make(map[string]any, len(fields)+4)
	for _, f := range fields {
		d[f] = map[string]string{
			FieldOwnerEmail: own.Email, FieldOwnerDisplayName: own.DisplayName,
			FieldOwnerUserName: own.UserName, FieldOwnerExternalID: own.ExternalID,
			FieldOwnerSubjectIssuer: own.SubjectIssuer,
		}[f]
	}
	return d
}

// changeOwner applies c to the owner ref in one transaction and records
// its events: owner.updated for changed fields, then the state change's.
func (s *Service) changeOwner(ctx context.Context, o audit.Origin, ref string, ifVersion int64, c ownerChange) (store.Owner, error) {
	now := s.now()
	var out store.Owner
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		cur, err := getOwner(ctx, tx, ref)
		if err != nil {
			return err
		}
		var (
			changed   []string
			prevState store.OwnerState
		)
		updated, err := tx.UpdateOwner(ctx, cur.ID, func(own store.Owner) (store.Owner, error) {
			out = own // returned as is when nothing changes
			if ifVersion != 0 && own.Version != ifVersion {
				return own, versionErr("owner", own.ID, own.Version, ifVersion)
			}
			if c.strict && own.State == c.state {
				return own, fmt.Errorf("identity: owner %s is already %s: %w", own.ID, own.State, ErrIllegalTransition)
			}
			prevState = own.State
			own, changed = c.apply(own)
			if err := checkOwnerKeys(own); err != nil {
				return own, err
			}
			if c.state != "" {
				own.State = c.state
			}
			if len(changed) == 0 && own.State == prevState {
				return own, errNoChange
			}
			own.UpdatedAt = now
			return own, nil
		})
		switch {
		case errors.Is(err, store.ErrAlreadyExists):
			return fmt.Errorf("identity: an owner with this email or subject exists, or the user name (the email when there is none) is another owner's user name or email (case-insensitively): %w", ErrAlreadyExists)
		case err != nil:
			return mapUpdateErr("owner", err)
		}
		if len(changed) > 0 {
			details := ownerFieldValues(updated, changed)
			details["id"], details["kind"], details["version"], details["changed"] = updated.ID, string(updated.Kind), updated.Version, changed
			if err := s.appendOwnerEvent(ctx, tx, o, EventOwnerUpdated, now, details, ""); err != nil {
				return err
			}
		}
		if updated.State != prevState {
			if err := s.recordOwnerState(ctx, tx, o, updated, now, c.reason); err != nil {
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
		return store.Owner{}, err
	}
	return out, nil
}

// OwnerGrantRevoker revokes the delegation grants of a person owner who is
// being deactivated. identity cannot import the delegation package (which
// imports identity), so the server hands the delegation service in as
// Params.OwnerGrants.
type OwnerGrantRevoker interface {
	// RevokeOwnerGrants revokes, inside tx, every active grant whose
	// delegating person is p.Owner, records grant.revoked for each with
	// o's actor, and returns their ids in id order. An error aborts the
	// deactivation.
	RevokeOwnerGrants(ctx context.Context, tx store.Tx, o audit.Origin, p RevokeOwnerGrantsParams) ([]string, error)
}

// RevokeOwnerGrantsParams names the owner whose grants a deactivation
// revokes.
type RevokeOwnerGrantsParams struct {
	// Owner is the person owner, as stored by the deactivation: grants
	// whose subject is its Subject (under any issuer) or whose subject
	// email is its Email (strings.EqualFold) are its own. An empty
	// Subject or Email matches nothing.
	Owner store.Owner
	// Now is the deactivation's time: grants expired at it are left
	// alone, revoked ones get it as their revocation time.
	Now time.Time
}

// MaxListedGrants bounds the grant ids owner.deactivated lists
// (revoked_grant_ids); past it the event has only the count, and each
// grant.revoked event names its grant.
const MaxListedGrants = 100

// recordOwnerState records the state change of own (already stored):
// owner.deactivated and an agent.orphaned per newly orphaned agent, or
// owner.reactivated with the count of agents it restores. Deactivating a
// person first revokes their delegation grants (Params.OwnerGrants), whose
// grant.revoked events precede owner.deactivated, which counts them
// (revoked_grants, and revoked_grant_ids up to MaxListedGrants).
// Reactivation restores no grant: revocation is final.
func (s *Service) recordOwnerState(ctx context.Context, tx store.Tx, o audit.Origin, own store.Owner, now time.Time, reason string) error {
	agents, err := soleOwnerAgents(ctx, tx, own.ID)
	if err != nil {
		return err
	}
	details := map[string]any{"id": own.ID, "kind": string(own.Kind), "version": own.Version}
	if own.State == store.OwnerActive {
		details["restored_agents"] = len(agents)
		return s.appendOwnerEvent(ctx, tx, o, EventOwnerReactivated, now, details, reason)
	}
	details["orphaned_agents"] = len(agents)
	if own.Kind == store.OwnerPerson && s.grants != nil {
		ids, err := s.grants.RevokeOwnerGrants(ctx, tx, o, RevokeOwnerGrantsParams{Owner: own, Now: now})
		if err != nil {
			return fmt.Errorf("identity: revoke the grants of owner %s: %w", own.ID, err)
		}
		details["revoked_grants"] = len(ids)
		if len(ids) <= MaxListedGrants {
			details["revoked_grant_ids"] = nonNil(ids)
		}
	}
	if err := s.appendOwnerEvent(ctx, tx, o, EventOwnerDeactivated, now, details, reason); err != nil {
		return err
	}
	for _, a := range agents {
		ev := o.Event(audit.Issuance, EventAgentOrphaned)
		ev.Time = now
		ev.Agent = &audit.Agent{ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID}
		ev.Details = map[string]any{
			"version":           a.Version,
			"owners":            nonNil(a.Owners),
			"deactivated_owner": own.ID,
		}
		if _, err := s.rec.Append(ctx, tx, ev); err != nil {
			return fmt.Errorf("identity: record %s: %w", EventAgentOrphaned, err)
		}
	}
	return nil
}

func (s *Service) appendOwnerEvent(ctx context.Context, tx store.Tx, o audit.Origin, typ string, now time.Time, details map[string]any, reason string) error {
	ev := o.Event(audit.Admin, typ)
	ev.Time = now
	ev.Reason = reason
	ev.Details = details
	if _, err := s.rec.Append(ctx, tx, ev); err != nil {
		return fmt.Errorf("identity: record %s: %w", typ, err)
	}
	return nil
}

// soleOwnerAgents returns the agents of ownerID that are not
// deprovisioned and have no active owner other than ownerID: those that
// its deactivation orphans, or its reactivation restores.
func soleOwnerAgents(ctx context.Context, tx store.Tx, ownerID string) ([]store.Agent, error) {
	states := map[string]store.OwnerState{}
	var sole []store.Agent
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
			alone := true
			for _, id := range a.Owners {
				if id == ownerID {
					continue
				}
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
					alone = false
					break
				}
			}
			if alone {
				sole = append(sole, a)
			}
		}
		if next == "" {
			return sole, nil
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
