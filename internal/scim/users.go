package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Users provisions owners (kind person) as SCIM Users through the identity
// service: every change is an identity call, audited with the caller's
// origin like the admin API's. Safe for concurrent use.
type Users struct {
	id *identity.Service
}

// NewUsers returns the Users resource over the registry.
func NewUsers(id *identity.Service) *Users { return &Users{id: id} }

// maxAttempts bounds the read-modify-write retries of an unconditional
// PUT or PATCH that loses a race with another change.
const maxAttempts = 3

// Create registers the owner of a POST /Users body (RFC 7644 §3.3): a
// person, active unless the body says active false.
//
// Errors: *Error for a malformed body; identity's errors (a
// *identity.ValidationError, identity.ErrAlreadyExists for a taken email or
// a userName that another owner shows, as its user name or its email).
func (u *Users) Create(ctx context.Context, o audit.Origin, body []byte) (store.Owner, error) {
	a, err := parseUser(body, attrs{active: true})
	if err != nil {
		return store.Owner{}, err
	}
	// The store keeps userName unique under case folding, also against the
	// email an owner without a user name shows as its userName
	// (store.OwnerUserNameKey), in the insert itself.
	return u.id.CreateOwner(ctx, o, identity.CreateOwnerParams{
		Kind: store.OwnerPerson, Email: a.email, DisplayName: a.displayName, UserName: a.userName,
		ExternalID: a.externalID, Deactivated: !a.active,
	})
}

// Get returns the User with the id: an owner of kind person.
//
// Errors: identity.ErrNotFound, also for an id that is no owner id or a
// team's.
func (u *Users) Get(ctx context.Context, id string) (store.Owner, error) {
	if recordid.Valid(recordid.Owner, id) != nil {
		return store.Owner{}, fmt.Errorf("scim: no User %s: %w", quote(id), identity.ErrNotFound)
	}
	own, err := u.id.GetOwner(ctx, id)
	if err != nil {
		return store.Owner{}, err
	}
	if own.Kind != store.OwnerPerson {
		return store.Owner{}, fmt.Errorf("scim: no User %s: %w", quote(id), identity.ErrNotFound)
	}
	return own, nil
}

// List answers GET /Users (RFC 7644 §3.4.2): the Users matching filter in
// id order from the 1-based startIndex, at most count of them, and how
// many match in all. startIndex below 1 is 1, count is cut to 0 ..
// MaxResults (§3.4.2.4).
//
// Errors: *Error (invalidFilter) for a filter outside ParseFilter's subset.
func (u *Users) List(ctx context.Context, filter string, startIndex, count int) ([]store.Owner, int, error) {
	q, err := ParseFilter(filter)
	if err != nil {
		return nil, 0, err
	}
	if q.Empty {
		return nil, 0, nil
	}
	q.Filter.Kind = store.OwnerPerson
	startIndex = max(startIndex, 1)
	count = min(max(count, 0), MaxResults)
	return u.id.SliceOwners(ctx, q.Filter, startIndex-1, count)
}

// Replace answers PUT /Users/{id} (RFC 7644 §3.5.1): the body's userName,
// externalId, displayName (or name) and emails replace the owner's (absent
// ones are cleared); active changes the state only when present. ifMatch,
// when not zero, is the version the client read (If-Match).
//
// Errors: as Create, and identity.ErrNotFound; *Error 412 when ifMatch is
// stale.
func (u *Users) Replace(ctx context.Context, o audit.Origin, id string, ifMatch int64, body []byte) (store.Owner, error) {
	return u.change(ctx, o, id, ifMatch, true, func(cur attrs) (attrs, error) { return parseUser(body, cur) })
}

// Patch answers PATCH /Users/{id} (RFC 7644 §3.5.2): the operations apply
// in order to the User as stored, and the result is stored in one change,
// or nothing is. ifMatch is as for Replace.
//
// Errors: *Error for a malformed request or an operation that cannot
// apply; as Replace otherwise.
func (u *Users) Patch(ctx context.Context, o audit.Origin, id string, ifMatch int64, body []byte) (store.Owner, error) {
	p, err := DecodePatch(body)
	if err != nil {
		return store.Owner{}, err
	}
	return u.change(ctx, o, id, ifMatch, false, p.apply)
}

// Delete answers DELETE /Users/{id}. Owners are never removed, since the
// audit trail names them (ADR 0023): the owner is deactivated, orphaning
// its agents as DeactivateOwner does, and a deactivated owner stays as it
// is. ifMatch is as for Replace.
//
// Errors: identity.ErrNotFound; *Error 412 when ifMatch is stale.
func (u *Users) Delete(ctx context.Context, o audit.Origin, id string, ifMatch int64) error {
	for attempt := 1; ; attempt++ {
		cur, err := u.Get(ctx, id)
		if err != nil {
			return err
		}
		if ifMatch != 0 && cur.Version != ifMatch {
			return preconditionFailed(cur.Version)
		}
		if cur.State != store.OwnerActive {
			return nil
		}
		_, err = u.id.DeactivateOwner(ctx, o, identity.TransitionParams{Ref: cur.ID, IfVersion: cur.Version, Reason: "SCIM DELETE"})
		if err == nil || !retry(err, ifMatch, attempt) {
			return u.conditional(err, ifMatch)
		}
	}
}

// change reads the owner, derives its new attributes with fn and stores
// the difference, conditional on the version read. An unconditional
// request retries when another change wins the race.
func (u *Users) change(ctx context.Context, o audit.Origin, id string, ifMatch int64, put bool, fn func(attrs) (attrs, error)) (store.Owner, error) {
	for attempt := 1; ; attempt++ {
		cur, err := u.Get(ctx, id)
		if err != nil {
			return store.Owner{}, err
		}
		if ifMatch != 0 && cur.Version != ifMatch {
			return store.Owner{}, preconditionFailed(cur.Version)
		}
		next, err := fn(attrsOf(cur))
		if err != nil {
			return store.Owner{}, err
		}
		p, changed := updateOf(cur, next, put)
		if !changed {
			return cur, nil
		}
		out, err := u.id.UpdateOwner(ctx, o, p)
		if err == nil || !retry(err, ifMatch, attempt) {
			return out, u.conditional(err, ifMatch)
		}
	}
}

// updateOf is the update that takes cur to a: the fields that differ.
// A PUT stores the userName even when it equals the one cur shows without
// having one (UserName's fallback), so that the client's name sticks.
func updateOf(cur store.Owner, a attrs, put bool) (identity.UpdateOwnerParams, bool) {
	p := identity.UpdateOwnerParams{Ref: cur.ID, IfVersion: cur.Version}
	changed := false
	set := func(field **string, from, to string) {
		if from != to {
			*field, changed = &to, true
		}
	}
	if a.userName != UserName(cur) || (put && cur.UserName == "") {
		p.UserName, changed = &a.userName, true
	}
	set(&p.ExternalID, cur.ExternalID, a.externalID)
	set(&p.DisplayName, cur.DisplayName, a.displayName)
	set(&p.Email, cur.Email, a.email)
	if active := cur.State == store.OwnerActive; a.active != active {
		st := store.OwnerDeactivated
		if a.active {
			st = store.OwnerActive
		}
		p.State, changed = &st, true
	}
	return p, changed
}

// retry reports whether an unconditional request should read again after
// err: another change won the race.
func retry(err error, ifMatch int64, attempt int) bool {
	return ifMatch == 0 && attempt < maxAttempts &&
		(errors.Is(err, identity.ErrVersionMismatch) || errors.Is(err, identity.ErrIllegalTransition))
}

// conditional turns the version mismatch of a conditional request into
// 412 (RFC 7644 §3.14).
func (u *Users) conditional(err error, ifMatch int64) error {
	if ifMatch != 0 && errors.Is(err, identity.ErrVersionMismatch) {
		return &Error{Status: http.StatusPreconditionFailed, Detail: "the User changed since the version If-Match names"}
	}
	return err
}

func preconditionFailed(have int64) error {
	return &Error{Status: http.StatusPreconditionFailed,
		Detail: fmt.Sprintf("If-Match does not match the User's version %s", ETag(have))}
}
