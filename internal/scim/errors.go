package scim

import (
	"fmt"
	"net/http"
)

// scimType values of RFC 7644 §3.12, Table 9.
const (
	TypeInvalidFilter = "invalidFilter"
	TypeTooMany       = "tooMany"
	TypeUniqueness    = "uniqueness"
	TypeMutability    = "mutability"
	TypeInvalidSyntax = "invalidSyntax"
	TypeInvalidPath   = "invalidPath"
	TypeNoTarget      = "noTarget"
	TypeInvalidValue  = "invalidValue"
	TypeInvalidVers   = "invalidVers"
	TypeSensitive     = "sensitive"
)

// Error is a request the provider refuses, with the HTTP status and, where
// RFC 7644 §3.12 names one, the scimType. Detail is safe to show to the
// client: it never echoes a secret (a password attribute is ignored, never
// quoted).
type Error struct {
	Status   int
	ScimType string
	Detail   string
}

func (e *Error) Error() string { return "scim: " + e.Detail }

// badRequest is a 400 with a scimType.
func badRequest(scimType, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

// ErrorResponse is the body of an error answer (RFC 7644 §3.12): status
// is a string.
type ErrorResponse struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// Response returns the wire form of e.
func (e *Error) Response() ErrorResponse {
	return ErrorResponse{Schemas: []string{MessageError}, Status: fmt.Sprint(e.Status), ScimType: e.ScimType, Detail: e.Detail}
}
