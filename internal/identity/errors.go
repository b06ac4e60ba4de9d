package identity

import (
	"errors"
	"fmt"

	"github.com/agentid/agentid/internal/store"
)

// sentinel is an error value with its own message that also matches the
// store sentinel it refines, so a transport may map either one.
type sentinel struct {
	msg  string
	base error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.base }

// Sentinel errors. Every error the Service returns wraps at most one of them
// (test with errors.Is); each also matches the store sentinel named below, so
// a transport can map both packages' errors with one table:
//
//	ErrInvalid           → 400 (store.ErrInvalid)
//	ErrNotFound          → 404 (store.ErrNotFound)
//	ErrAlreadyExists     → 409 (store.ErrAlreadyExists)
//	ErrVersionMismatch   → 409 or 412 (store.ErrConflict)
//	ErrIllegalTransition → 409 (store.ErrConflict)
//	ErrLimitExceeded     → 409 (store.ErrConflict)
var (
	// ErrInvalid means the request itself is malformed; the error is a
	// *ValidationError naming the field.
	ErrInvalid error = &sentinel{"identity: invalid request", store.ErrInvalid}
	// ErrNotFound means the referenced agent or owner does not exist.
	ErrNotFound error = &sentinel{"identity: not found", store.ErrNotFound}
	// ErrAlreadyExists means a unique key is taken: an agent name (names of
	// deprovisioned agents stay reserved), an owner email or subject.
	ErrAlreadyExists error = &sentinel{"identity: already exists", store.ErrAlreadyExists}
	// ErrVersionMismatch means the caller's IfVersion is not the record's
	// current version: it changed since the caller read it.
	ErrVersionMismatch error = &sentinel{"identity: version mismatch", store.ErrConflict}
	// ErrIllegalTransition means the lifecycle does not allow the change in
	// the record's current state (for example resuming an active agent, or
	// any change to a deprovisioned one).
	ErrIllegalTransition error = &sentinel{"identity: illegal state transition", store.ErrConflict}
	// ErrLimitExceeded means the change would take a record past a bound
	// on how many it may have (for example a third unexpired client
	// secret); removing one first makes room.
	ErrLimitExceeded error = &sentinel{"identity: limit exceeded", store.ErrConflict}
)

// ValidationError says which input field is wrong and why. It wraps
// ErrInvalid. Field uses the snake_case wire name ("name", "owners[1]",
// "labels[team]"); Reason is safe to show to the client.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "identity: invalid request: " + e.Reason
	}
	return fmt.Sprintf("identity: invalid %s: %s", e.Field, e.Reason)
}

// Unwrap returns ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// withField re-targets a validation error from a helper onto a field of the
// caller's request; other errors pass through unchanged.
func withField(field string, err error) error {
	if ve, ok := errors.AsType[*ValidationError](err); ok {
		return &ValidationError{Field: field, Reason: ve.Reason}
	}
	return err
}
