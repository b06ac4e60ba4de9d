// Package attest is agentid's attestation framework (ADR 0015): the
// evidence an attestor extracts from a verified token, the Attestor seam
// every method implements (internal/attest/kubernetes,
// internal/attest/oidc), the Set of configured attestors that routes a
// token to its attestor by issuer, and the attestation rules (an
// attestor and matchers such as k8s:ns:payments or repository=org/*)
// by which an agent says which evidence proves an instance of it.
//
// It does no storage and no HTTP: the OAuth server verifies evidence
// through a Set, matches it against the agent's rules, and records the
// instance and the audit events.
package attest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Attestation methods (the attestor kinds of the config).
const (
	MethodKubernetes = "kubernetes"
	MethodOIDC       = "oidc"
)

// Kinds lists every attestor kind the config names; only MethodKubernetes
// and MethodOIDC are implemented (the others are reserved, ADR 0015 §1).
func Kinds() []string {
	return []string{MethodKubernetes, MethodOIDC, "x509", "join_token", "spiffe"}
}

// Sentinel kinds of an *Error.
var (
	// ErrUntrusted means no configured attestor trusts the evidence's
	// issuer.
	ErrUntrusted = errors.New("attest: untrusted issuer")
	// ErrInvalid means the evidence is malformed, badly signed, expired,
	// for another audience, or lacks a claim the method requires.
	ErrInvalid = errors.New("attest: invalid evidence")
	// ErrUnavailable means the trust material (the issuer's keys) could not
	// be fetched and none is cached.
	ErrUnavailable = errors.New("attest: trust material unavailable")
)

// Error says why evidence was refused. Reason is safe to show the client
// and to record: it never holds the token. Attestor is the attestor that
// refused it, "" when none was found.
type Error struct {
	Kind     error
	Reason   string
	Attestor string
	Method   string
	Issuer   string
	// Err is an internal cause (a fetch failure), logged, never shown.
	Err error
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Reason }

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// Evidence is what an attestor established from verified evidence.
type Evidence struct {
	Attestor string // the configured attestor's name
	Method   string // MethodKubernetes, MethodOIDC
	Issuer   string
	Subject  string
	// Key identifies the run within the attestor (the pod uid; the OIDC
	// instance claims): the instance's refresh key.
	Key string
	// Facts are what matchers test: k8s:ns, k8s:sa, k8s:pod-name,
	// k8s:pod-uid, k8s:node for Kubernetes, claim names for OIDC.
	Facts map[string]string
	// Summary is the evidence summary for the instance record and the
	// audit trail; never the raw token.
	Summary map[string]string
	// Expiry is the evidence's exp.
	Expiry time.Time
}

// Attestor verifies one kind of evidence from one configured source. Its
// methods are safe for concurrent use.
type Attestor interface {
	// Name is the configured name.
	Name() string
	// Method is the attestor's kind.
	Method() string
	// Issuer is the exact iss of the evidence it verifies.
	Issuer() string
	// Attest verifies raw and returns its evidence, or an *Error.
	Attest(ctx context.Context, raw string) (Evidence, error)
}

// CheckName reports whether name is a valid attestor name: a DNS label.
func CheckName(name string) error {
	ok := len(name) >= 1 && len(name) <= 63 && name[0] != '-' && name[len(name)-1] != '-'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return fmt.Errorf("attest: attestor name %q must be a DNS label (lowercase letters, digits, '-')", name)
	}
	return nil
}

// Set is the configured attestors, by name and by issuer. A nil *Set has
// none. It is safe for concurrent use.
type Set struct {
	byName   map[string]Attestor
	byIssuer map[string]Attestor
}

// NewSet returns the set of as; names and issuers must be unique.
func NewSet(as ...Attestor) (*Set, error) {
	s := &Set{byName: map[string]Attestor{}, byIssuer: map[string]Attestor{}}
	for _, a := range as {
		if err := CheckName(a.Name()); err != nil {
			return nil, err
		}
		if s.byName[a.Name()] != nil {
			return nil, fmt.Errorf("attest: attestor %q is configured twice", a.Name())
		}
		if prev := s.byIssuer[a.Issuer()]; prev != nil {
			return nil, fmt.Errorf("attest: attestors %q and %q trust one issuer %q", prev.Name(), a.Name(), a.Issuer())
		}
		s.byName[a.Name()], s.byIssuer[a.Issuer()] = a, a
	}
	return s, nil
}

// Len is the number of attestors.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byName)
}

// Names are the attestors' names, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Get returns the attestor named name.
func (s *Set) Get(name string) (Attestor, bool) {
	if s == nil {
		return nil, false
	}
	a, ok := s.byName[name]
	return a, ok
}

// ForToken returns the attestor whose issuer is raw's (unverified) iss.
func (s *Set) ForToken(raw string) (Attestor, bool) {
	if s == nil {
		return nil, false
	}
	a, ok := s.byIssuer[UnverifiedIssuer(raw)]
	return a, ok
}

// Attest routes raw to the attestor of its issuer and verifies it. The
// error is an *Error; ErrUntrusted when no attestor trusts the issuer.
func (s *Set) Attest(ctx context.Context, raw string) (Evidence, error) {
	a, ok := s.ForToken(raw)
	if !ok {
		return Evidence{}, &Error{Kind: ErrUntrusted, Reason: "no attestor trusts the token's issuer"}
	}
	return a.Attest(ctx, raw)
}

// Refuse is an ErrInvalid *Error of the attestor a.
func Refuse(a Attestor, format string, args ...any) *Error {
	return &Error{Kind: ErrInvalid, Reason: fmt.Sprintf(format, args...), Attestor: a.Name(), Method: a.Method(), Issuer: a.Issuer()}
}

// MaxTokenBytes bounds an evidence token.
const MaxTokenBytes = 16 << 10

// UnverifiedIssuer returns the iss claim of a JWS without verifying it,
// "" when raw is not a JWS with a string iss: it routes a token to the
// attestor it belongs to, which then verifies it.
func UnverifiedIssuer(raw string) string {
	if len(raw) > MaxTokenBytes {
		return ""
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256,
		jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA, jose.HS256, jose.HS384, jose.HS512})
	if err != nil {
		return ""
	}
	var c struct {
		Issuer any `json:"iss"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return ""
	}
	s, _ := c.Issuer.(string)
	return s
}
