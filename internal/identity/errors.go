package identity

import (
	"errors"

	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/store"
)

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
	ErrInvalid = fault.NewSentinel("identity: invalid request", store.ErrInvalid)
	// ErrNotFound means the referenced agent or owner does not exist.
	ErrNotFound = fault.NewSentinel("identity: not found", store.ErrNotFound)
	// ErrAlreadyExists means a unique key is taken: an agent name (names of
	// deprovisioned agents stay reserved), an owner email or subject.
	ErrAlreadyExists = fault.NewSentinel("identity: already exists", store.ErrAlreadyExists)
	// ErrVersionMismatch means the caller's IfVersion is not the record's
	// current version: it changed since the caller read it.
	ErrVersionMismatch = fault.NewSentinel("identity: version mismatch", store.ErrConflict)
	// ErrIllegalTransition means the lifecycle does not allow the change in
	// the record's current state (for example resuming an active agent, or
	// any change to a deprovisioned one).
	ErrIllegalTransition = fault.NewSentinel("identity: illegal state transition", store.ErrConflict)
	// ErrLimitExceeded means the change would take a record past a bound
	// on how many it may have (for example a third unexpired client
	// secret); removing one first makes room.
	ErrLimitExceeded = fault.NewSentinel("identity: limit exceeded", store.ErrConflict)
)

// ValidationError says which input field is wrong and why. Those this
// package returns wrap ErrInvalid. Field uses the snake_case wire name ("name",
// "owners[1]", "labels[team]"); Reason is safe to show to the client.
type ValidationError = fault.ValidationError

func invalid(field, format string, args ...any) *ValidationError {
	return fault.Invalid(ErrInvalid, "identity", field, format, args...)
}

// withField re-targets a validation error from a helper onto a field of the
// caller's request; other errors pass through unchanged.
func withField(field string, err error) error {
	if ve, ok := errors.AsType[*ValidationError](err); ok {
		return invalid(field, "%s", ve.Reason)
	}
	return err
}
