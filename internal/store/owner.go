package store

import (
	"context"
	"time"
	"unicode"
)

// OwnerKind says whether an owner is one person or a team.
type OwnerKind string

// Owner kinds.
const (
	OwnerPerson OwnerKind = "person"
	OwnerTeam   OwnerKind = "team"
)

// OwnerState is the lifecycle state of an owner.
type OwnerState string

// Owner states.
const (
	OwnerActive      OwnerState = "active"
	OwnerDeactivated OwnerState = "deactivated"
)

// Owner is a human or team accountable for agents.
type Owner struct {
	ID      string // own_…
	Kind    OwnerKind
	Email   string // unique when set
	Subject string // IdP subject, unique when set
	// SubjectIssuer is the trusted issuer whose tokens name the owner by
	// Subject (ADR 0027); "" when not tied to one. Only with a Subject.
	SubjectIssuer string
	DisplayName   string
	// UserName is the SCIM userName (RFC 7643 §4.1.1): unique when set,
	// compared case-insensitively (FoldUserName), stored as given.
	UserName string
	// ExternalID is the provisioning client's id of the owner (RFC 7643
	// §3.1 externalId): not unique, compared exactly.
	ExternalID string
	State      OwnerState
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Version    int64
}

// OwnerFilter narrows ListOwners and CountOwners. Zero fields do not
// filter; set fields must all match.
type OwnerFilter struct {
	State OwnerState
	Kind  OwnerKind
	// ID matches the owner id exactly.
	ID string
	// Email matches the stored (lowercased) email exactly.
	Email string
	// UserName matches the owner's effective user name case-insensitively
	// (OwnerUserNameKey): its user name or, for an owner without one, its
	// email, the userName SCIM shows for such an owner.
	UserName string
	// ExternalID matches exactly.
	ExternalID string
}

// FoldUserName is the key under which user names are unique and compared:
// every rune replaced by the smallest rune of its Unicode simple case
// folding orbit, so FoldUserName(a) == FoldUserName(b) exactly when
// strings.EqualFold(a, b) (for valid UTF-8).
func FoldUserName(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		low := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			low = min(low, f)
		}
		out = append(out, low)
	}
	return string(out)
}

// OwnerUserNameKey is the key of the user name o shows (ADR 0023): its
// UserName folded (FoldUserName) when it has one, else its Email folded,
// else "" (no key). Keys are unique among owners, so no two owners show
// the same userName under case folding, whether it is a user name or an
// email shown in place of one.
func OwnerUserNameKey(o Owner) string {
	switch {
	case o.UserName != "":
		return FoldUserName(o.UserName)
	case o.Email != "":
		return FoldUserName(o.Email)
	}
	return ""
}

// OwnerReader reads owners.
type OwnerReader interface {
	// GetOwner returns ErrNotFound when no owner has the id.
	GetOwner(ctx context.Context, id string) (Owner, error)
	// GetOwnerByEmail returns ErrNotFound when no owner has the email.
	GetOwnerByEmail(ctx context.Context, email string) (Owner, error)
	// GetOwnerByUserName returns the owner whose key (OwnerUserNameKey)
	// is FoldUserName(userName): the one whose user name, or email when it
	// has no user name, equals userName case-insensitively; ErrNotFound
	// when there is none.
	GetOwnerByUserName(ctx context.Context, userName string) (Owner, error)
	// ListOwners returns owners in id order and the next page token.
	ListOwners(ctx context.Context, f OwnerFilter, p Page) ([]Owner, string, error)
	// CountOwners returns how many owners match f.
	CountOwners(ctx context.Context, f OwnerFilter) (int, error)
}

// OwnerWriter changes owners.
type OwnerWriter interface {
	// CreateOwner stores a new owner with Version 1; ErrAlreadyExists when
	// the id, email, subject or user name key (OwnerUserNameKey) is taken.
	CreateOwner(ctx context.Context, o Owner) (Owner, error)
	// UpdateOwner has the contract of AgentWriter.UpdateAgent. ID and
	// CreatedAt cannot change. The user name key follows the new user name
	// and email; ErrAlreadyExists when it, the email or the subject is
	// another owner's.
	UpdateOwner(ctx context.Context, id string, fn func(Owner) (Owner, error)) (Owner, error)
}
