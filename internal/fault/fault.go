// Package fault provides the error vocabulary the domain packages share:
// package sentinels that refine a store sentinel, and the ValidationError
// naming the request field that is wrong. Each domain package keeps its
// own exported sentinels and message prefix; transports map every
// package's validation errors with one errors.As on *ValidationError.
package fault

import "fmt"

// Sentinel is an error value with its own message that also matches the
// store sentinel it refines (through Unwrap), so a transport may map
// either one. Build one with NewSentinel; compare with errors.Is.
type Sentinel struct {
	msg  string
	base error
}

// NewSentinel returns a sentinel with message msg that also matches base
// under errors.Is. base may be nil.
func NewSentinel(msg string, base error) error {
	return &Sentinel{msg: msg, base: base}
}

func (e *Sentinel) Error() string { return e.msg }

// Unwrap returns the sentinel this one refines.
func (e *Sentinel) Unwrap() error { return e.base }

// ValidationError says which input field is wrong and why. It wraps Kind,
// the invalid-request sentinel of the package Pkg that returned it. Field
// uses the wire name ("name", "owners[1]"), or is empty when the request
// as a whole is wrong; Reason is safe to show to the client.
type ValidationError struct {
	Kind   error
	Pkg    string
	Field  string
	Reason string
}

// Error is "<pkg>: invalid <field>: <reason>", or "<pkg>: invalid
// request: <reason>" without a field.
func (e *ValidationError) Error() string { return e.Pkg + ": " + e.Detail() }

// Detail is the message without the package prefix, as a client sees it.
func (e *ValidationError) Detail() string {
	if e.Field == "" {
		return "invalid request: " + e.Reason
	}
	return "invalid " + e.Field + ": " + e.Reason
}

// Unwrap returns Kind.
func (e *ValidationError) Unwrap() error { return e.Kind }

// Invalid returns a ValidationError of package pkg wrapping kind, for
// field, with the reason formatted by fmt.Sprintf(format, args...).
func Invalid(kind error, pkg, field, format string, args ...any) *ValidationError {
	return &ValidationError{Kind: kind, Pkg: pkg, Field: field, Reason: fmt.Sprintf(format, args...)}
}
