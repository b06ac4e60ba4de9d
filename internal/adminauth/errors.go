package adminauth

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

// Sentinel errors; test with errors.Is. Transports map them:
//
//	ErrUnauthenticated   → 401
//	ErrForbidden         → 403
//	ErrInvalid           → 400 (also matches store.ErrInvalid)
//	ErrNotFound          → 404 (also matches store.ErrNotFound)
//	ErrAlreadyExists     → 409 (also matches store.ErrAlreadyExists)
//	ErrIllegalTransition → 409 (also matches store.ErrConflict)
var (
	// ErrUnauthenticated is the one error for every bearer token that does
	// not authenticate (malformed, unknown, revoked, expired), so a client
	// learns nothing about which; the reason is in the audit event.
	ErrUnauthenticated = errors.New("adminauth: unauthenticated")
	// ErrForbidden means the token's role does not allow the request.
	ErrForbidden = errors.New("adminauth: forbidden")
	// ErrInvalid means the request is malformed; the error is a
	// *ValidationError naming the field.
	ErrInvalid error = &sentinel{"adminauth: invalid request", store.ErrInvalid}
	// ErrNotFound means no admin token has the id.
	ErrNotFound error = &sentinel{"adminauth: not found", store.ErrNotFound}
	// ErrAlreadyExists means the token name is taken.
	ErrAlreadyExists error = &sentinel{"adminauth: already exists", store.ErrAlreadyExists}
	// ErrIllegalTransition means the token cannot change that way: it is
	// already revoked, or it is the last usable admin token.
	ErrIllegalTransition error = &sentinel{"adminauth: illegal state transition", store.ErrConflict}
)

// ValidationError says which input field is wrong and why. It wraps
// ErrInvalid; Reason is safe to show to the client.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("adminauth: invalid %s: %s", e.Field, e.Reason)
}

// Unwrap returns ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
