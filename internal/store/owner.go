package store

import (
	"context"
	"time"
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
	ID          string // own_…
	Kind        OwnerKind
	Email       string // unique when set
	Subject     string // IdP subject, unique when set
	DisplayName string
	State       OwnerState
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64
}

// OwnerFilter narrows ListOwners. Zero fields do not filter.
type OwnerFilter struct {
	State OwnerState
}

// OwnerReader reads owners.
type OwnerReader interface {
	// GetOwner returns ErrNotFound when no owner has the id.
	GetOwner(ctx context.Context, id string) (Owner, error)
	// GetOwnerByEmail returns ErrNotFound when no owner has the email.
	GetOwnerByEmail(ctx context.Context, email string) (Owner, error)
	// ListOwners returns owners in id order and the next page token.
	ListOwners(ctx context.Context, f OwnerFilter, p Page) ([]Owner, string, error)
}

// OwnerWriter changes owners.
type OwnerWriter interface {
	// CreateOwner stores a new owner with Version 1; ErrAlreadyExists when
	// the id, email or subject is taken.
	CreateOwner(ctx context.Context, o Owner) (Owner, error)
	// UpdateOwner has the contract of AgentWriter.UpdateAgent. ID and
	// CreatedAt cannot change.
	UpdateOwner(ctx context.Context, id string, fn func(Owner) (Owner, error)) (Owner, error)
}
