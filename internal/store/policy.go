package store

import (
	"context"
	"time"
)

// PolicyVersion is one uploaded version of the deployment's policy set
// (ADR 0013). Versions are immutable once created; there is one policy
// set, so the version number is its id.
type PolicyVersion struct {
	Version   int64    // 1, 2, 3, …
	Text      string   // the Cedar document as uploaded
	SHA256    []byte   // SHA-256 of Text
	PolicyIDs []string // the @id of every policy in Text, sorted
	Author    string   // actor id of who uploaded it
	Comment   string
	CreatedAt time.Time
}

// PolicyHead says which policy version is active. Generation counts the
// changes that alter decisions (a version activated, an action class
// created or changed), so that a process holding a compiled policy set
// can tell cheaply whether it is current.
type PolicyHead struct {
	ActiveVersion int64 // 0: no version is active
	// LatestVersion is the highest version created (read only: derived
	// from the versions on read, ignored on write).
	LatestVersion int64
	Generation    int64 // 0 before the first change
	UpdatedAt     time.Time
	UpdatedBy     string // actor id; "" before the first change
}

// ActionClass is a class of actions with a risk tier (ADR 0013). The
// class name is itself an action of the class; Actions are the others.
type ActionClass struct {
	Name        string
	RiskTier    string // low | medium | high
	Description string
	Actions     []string // sorted; nil when none
	UpdatedAt   time.Time
	UpdatedBy   string // actor id; "" for the defaults of the migration
	Version     int64  // 1 on create, +1 on every update
}

// PolicyReader reads policy versions, the head and action classes.
type PolicyReader interface {
	// GetPolicyHead returns the head; before any change it is the zero
	// head (no active version, generation 0), never ErrNotFound.
	GetPolicyHead(ctx context.Context) (PolicyHead, error)
	// GetPolicyVersion returns ErrNotFound when no version has the
	// number.
	GetPolicyVersion(ctx context.Context, version int64) (PolicyVersion, error)
	// ListPolicyVersions returns versions newest first and the next page
	// token.
	ListPolicyVersions(ctx context.Context, p Page) ([]PolicyVersion, string, error)
	// ListActionClasses returns every action class in name order. There
	// are a handful: no paging.
	ListActionClasses(ctx context.Context) ([]ActionClass, error)
}

// PolicyWriter changes policy versions, the head and action classes.
// Writes that alter decisions take the head's generation they were
// computed against and fail with ErrConflict when it has moved, so that
// two replicas never activate policies checked against different
// registries.
type PolicyWriter interface {
	// CreatePolicyVersion stores a new version. v.Version must be the
	// head's LatestVersion + 1 (ErrAlreadyExists when taken); Text,
	// SHA256, Author and CreatedAt are required (ErrInvalid). It does not
	// activate the version.
	CreatePolicyVersion(ctx context.Context, v PolicyVersion) (PolicyVersion, error)
	// SetPolicyHead activates h.ActiveVersion (an existing version, or 0)
	// if the head's generation is still expect, and stores the head with
	// Generation expect+1, UpdatedAt and UpdatedBy from h. It returns
	// ErrConflict when the generation moved, ErrInvalid when the version
	// does not exist or UpdatedAt is zero.
	SetPolicyHead(ctx context.Context, expect int64, h PolicyHead) (PolicyHead, error)
	// PutActionClass creates the class (Version 1) or replaces the one of
	// that name (Version+1) if the head's generation is still expect, and
	// increments the generation. It returns ErrConflict when the
	// generation moved, ErrInvalid when the name, risk tier or UpdatedAt
	// is missing.
	PutActionClass(ctx context.Context, expect int64, c ActionClass) (ActionClass, error)
}
