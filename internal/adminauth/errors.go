package adminauth

import (
	"errors"

	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/store"
)

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
	ErrInvalid = fault.NewSentinel("adminauth: invalid request", store.ErrInvalid)
	// ErrNotFound means no admin token has the id.
	ErrNotFound = fault.NewSentinel("adminauth: not found", store.ErrNotFound)
	// ErrAlreadyExists means the token name is taken.
	ErrAlreadyExists = fault.NewSentinel("adminauth: already exists", store.ErrAlreadyExists)
	// ErrIllegalTransition means the token cannot change that way: it is
	// already revoked, or it is the last usable admin token.
	ErrIllegalTransition = fault.NewSentinel("adminauth: illegal state transition", store.ErrConflict)
)

// ValidationError says which input field is wrong and why. Those this
// package returns wrap ErrInvalid; Reason is safe to show to the client.
type ValidationError = fault.ValidationError

func invalid(field, format string, args ...any) *ValidationError {
	return fault.Invalid(ErrInvalid, "adminauth", field, format, args...)
}
