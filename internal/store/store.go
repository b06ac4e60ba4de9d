// Package store is agentid's storage seam: the records it keeps, one narrow
// interface per entity, the sentinel errors every backend returns, and the
// transaction contract that lets a state change and the audit event that
// records it commit together or not at all.
//
// Backends live in sub-packages (sqlite, postgres) and are accepted when they
// pass the conformance suite in storetest. This package imports no other
// internal package.
package store

import (
	"context"
	"errors"
)

// Sentinel errors. Backends wrap them with %w; callers test with errors.Is.
var (
	// ErrNotFound means the record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists means a unique key (id, name, token hash) is taken.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrConflict means a compare-and-swap precondition failed: the record
	// changed since it was read, or an updater refused the transition.
	ErrConflict = errors.New("store: conflict")
	// ErrInvalid means a record violates a constraint the store enforces
	// (for example an agent naming an owner that does not exist).
	ErrInvalid = errors.New("store: invalid record")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store: closed")
)

// Store is the whole storage seam: reads outside a transaction, writes inside
// one. Implementations are safe for concurrent use.
type Store interface {
	Reader

	// Update runs fn in a read-write transaction and commits it. If fn
	// returns an error nothing it wrote is kept and Update returns that error
	// unchanged (so sentinels survive). When Update returns nil, everything fn
	// wrote is durable.
	//
	// Implementations may commit several concurrent Update calls in one
	// database transaction (group commit). Each fn is then isolated by a
	// savepoint, so one fn's failure never affects another's writes; if the
	// shared commit fails, every fn in it gets the error. fn must not retain
	// tx after it returns and must have no side effects outside tx, because
	// the caller cannot tell a failed commit from one that never started.
	Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error

	// Ping reports whether the database answers and its schema is at the
	// version this binary expects.
	Ping(ctx context.Context) error

	// Close releases the store. Pending Update calls fail with ErrClosed.
	Close() error
}

// Reader is every read a caller may make outside a transaction.
type Reader interface {
	AgentReader
	OwnerReader
	AdminTokenReader
	AuditReader
	SigningKeyReader
	ClientReader
	TokenReader
	CredentialReader
	FederationReader
	JoinTokenReader
	NodeReader
	PolicyReader
	GrantReader
	ApprovalReader
	InstanceReader
	SSFReader
}

// Tx is a read-write transaction. Reads inside it see its own writes.
type Tx interface {
	Reader
	AgentWriter
	OwnerWriter
	AdminTokenWriter
	AuditWriter
	SigningKeyWriter
	LeaseWriter
	ClientWriter
	TokenWriter
	CredentialWriter
	FederationWriter
	JoinTokenWriter
	NodeWriter
	PolicyWriter
	GrantWriter
	ApprovalWriter
	InstanceWriter
	SSFWriter
}

// Page asks for one page of a list. A zero PageSize means DefaultPageSize;
// sizes above MaxPageSize are clamped. PageToken is the NextPageToken of the
// previous page, or empty for the first.
type Page struct {
	PageSize  int
	PageToken string
}

// Page size bounds shared by every list.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// Size returns the effective page size.
func (p Page) Size() int {
	switch {
	case p.PageSize <= 0:
		return DefaultPageSize
	case p.PageSize > MaxPageSize:
		return MaxPageSize
	default:
		return p.PageSize
	}
}

// ErrBadPageToken is returned (wrapped with ErrInvalid) for a page token the
// store did not issue.
var ErrBadPageToken = errors.New("store: bad page token")
