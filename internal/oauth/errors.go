package oauth

import (
	"fmt"
	"net/http"
)

// Error codes of RFC 6749 §5.2 and the extensions agentid speaks.
const (
	CodeInvalidRequest         = "invalid_request"
	CodeInvalidClient          = "invalid_client"
	CodeInvalidGrant           = "invalid_grant"
	CodeUnauthorizedClient     = "unauthorized_client"
	CodeUnsupportedGrantType   = "unsupported_grant_type"
	CodeInvalidScope           = "invalid_scope"
	CodeInvalidTarget          = "invalid_target"          // RFC 8707 §2
	CodeInvalidDPoPProof       = "invalid_dpop_proof"      // RFC 9449 §5
	CodeUseDPoPNonce           = "use_dpop_nonce"          // RFC 9449 §8
	CodeUnsupportedTokenType   = "unsupported_token_type"  // RFC 7009 §2.2.1
	CodeServerError            = "server_error"            // RFC 6749 §4.1.2.1
	CodeTemporarilyUnavailable = "temporarily_unavailable" // RFC 6749 §4.1.2.1
	CodeInvalidToken           = "invalid_token"           // RFC 6750 §3.1
)

// Error is an OAuth error response (RFC 6749 §5.2). Description is safe to
// show the client; Reason is the precise cause for the audit trail and logs
// (never a secret). Err, when set, is an internal failure that is logged.
type Error struct {
	Code        string
	Description string
	Status      int
	// Challenge, when set, is sent as WWW-Authenticate (a 401 must carry
	// one, RFC 7235 §3.1).
	Challenge string
	// Reason is what the audit event records.
	Reason string
	// Nonce, when set, is sent as DPoP-Nonce (RFC 9449 §8).
	Nonce string
	// Err is the internal cause of a server error.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("oauth: %s: %s: %v", e.Code, e.Description, e.Err)
	}
	return fmt.Sprintf("oauth: %s: %s", e.Code, e.Description)
}

func (e *Error) Unwrap() error { return e.Err }

// errf returns a 400 error with the code; the description doubles as the
// audit reason.
func errf(code, format string, args ...any) *Error {
	d := fmt.Sprintf(format, args...)
	return &Error{Code: code, Description: d, Status: http.StatusBadRequest, Reason: d}
}

// clientFailed is invalid_client with a generic description (the client
// learns nothing about which check failed) and the precise reason for the
// audit trail. basic says that the client tried HTTP Basic, which makes the
// answer a 401 with a challenge (RFC 6749 §5.2).
func clientFailed(basic bool, format string, args ...any) *Error {
	e := &Error{
		Code:        CodeInvalidClient,
		Description: "client authentication failed",
		Status:      http.StatusBadRequest,
		Reason:      fmt.Sprintf(format, args...),
	}
	if basic {
		e.Status = http.StatusUnauthorized
		e.Challenge = `Basic realm="agentid", charset="UTF-8"`
	}
	return e
}

// serverError is a 500 for an internal failure; nothing about it reaches
// the client.
func serverError(err error) *Error {
	return &Error{Code: CodeServerError, Description: "the server could not complete the request",
		Status: http.StatusInternalServerError, Reason: "server error", Err: err}
}
