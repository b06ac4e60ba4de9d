package delegation

import (
	"errors"

	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/store"
)

// Sentinel errors. Every error the Service returns wraps at most one of
// them (test with errors.Is); each also matches the store sentinel named
// below, so a transport maps both packages' errors with one table:
//
//	ErrInvalid           → 400 (store.ErrInvalid)
//	ErrNotFound          → 404 (store.ErrNotFound)
//	ErrIllegalTransition → 409 (store.ErrConflict)
//	ErrUnauthenticated   → 401 (a person's token did not verify)
//	ErrForbidden         → 403 (a person acting on another's grant)
var (
	// ErrInvalid means the request is malformed; the error is a
	// *fault.ValidationError naming the field.
	ErrInvalid = fault.NewSentinel("delegation: invalid request", store.ErrInvalid)
	// ErrNotFound means the grant or agent does not exist.
	ErrNotFound = fault.NewSentinel("delegation: not found", store.ErrNotFound)
	// ErrIllegalTransition means the grant is already revoked.
	ErrIllegalTransition = fault.NewSentinel("delegation: illegal state transition", store.ErrConflict)
	// ErrUnauthenticated means a person's token is not a valid token of a
	// trusted issuer.
	ErrUnauthenticated = errors.New("delegation: unauthenticated")
	// ErrForbidden means a person asked for a grant that is not theirs.
	ErrForbidden = errors.New("delegation: forbidden")
)

// Errors of subject-token verification (Issuers.Verify). TokenError wraps
// one of them.
var (
	// ErrUntrustedIssuer means the token's iss is not a configured
	// trusted issuer.
	ErrUntrustedIssuer = errors.New("delegation: untrusted issuer")
	// ErrInvalidToken means the token is malformed, badly signed, expired,
	// or for another audience.
	ErrInvalidToken = errors.New("delegation: invalid token")
	// ErrKeysUnavailable means the issuer's keys could not be fetched and
	// none are cached for the token's kid.
	ErrKeysUnavailable = errors.New("delegation: issuer keys unavailable")
)

// TokenError says why a subject token was refused. Reason is safe to show
// to the client and to record (it never holds the token).
type TokenError struct {
	Kind   error
	Reason string
	// Err is an internal cause (a fetch failure), logged, never shown.
	Err error
}

func (e *TokenError) Error() string { return e.Kind.Error() + ": " + e.Reason }

// Unwrap returns the kind and the cause.
func (e *TokenError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

func tokenErr(kind error, reason string) *TokenError { return &TokenError{Kind: kind, Reason: reason} }

func invalid(field, format string, args ...any) *fault.ValidationError {
	return fault.Invalid(ErrInvalid, "delegation", field, format, args...)
}
