// Package attest is agentid's attestation framework (ADR 0015): the
// evidence an attestor extracts from a verified token, the Attestor seam
// every method implements (internal/attest/kubernetes,
// internal/attest/oidc), the Set of configured attestors that routes a
// token to its attestor by issuer, and the attestation rules (an
// attestor and matchers such as k8s:ns:payments or repository=org/*)
// by which an agent says which evidence proves an instance of it
// (internal/attest/aws verifies AWS STS web identity tokens).
//
// It does no storage and no HTTP: the OAuth server verifies evidence
// through a Set, matches it against the agent's rules, and records the
// instance and the audit events.
package attest

import (
	"context"
	"crypto/x509"
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
	MethodX509       = "x509"
	MethodSPIFFE     = "spiffe"
	// MethodAWS is the AWS STS web identity token of IAM outbound identity
	// federation (ADR 0015 addendum F).
	MethodAWS = "aws"
	// MethodJoinToken is the method of instances created by an agent's
	// join token (ADR 0015 addendum C); it is not an attestor kind.
	MethodJoinToken = "join_token"
)

// Kinds lists every attestor kind the config names, all implemented; join
// tokens are not configured as attestors (ADR 0015 addendum C).
func Kinds() []string {
	return []string{MethodKubernetes, MethodOIDC, MethodAWS, MethodX509, MethodSPIFFE}
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
	Method   string // MethodKubernetes, MethodOIDC, MethodAWS, …
	Issuer   string
	Subject  string
	// Key identifies the run within the attestor (the pod uid; the OIDC
	// instance claims): the instance's refresh key.
	Key string
	// Facts are what matchers test: k8s:ns, k8s:sa, k8s:pod-name,
	// k8s:pod-uid, k8s:node for Kubernetes, claim names for OIDC,
	// x509:cn and x509:issuer-cn for X.509, claim names and
	// aws:<claim>[.<key>] for AWS.
	Facts map[string]string
	// Values are multi-valued facts (x509:o, x509:ou, x509:san-dns,
	// x509:san-uri, aws:ou_path): a matcher holds when it holds on one of
	// the values.
	Values map[string][]string
	// Summary is the evidence summary for the instance record and the
	// audit trail; never the raw token.
	Summary map[string]string
	// Expiry is the evidence's exp (a certificate chain's earliest
	// NotAfter).
	Expiry time.Time
	// CertThumbprint is, for X.509 evidence, the base64url SHA-256 of the
	// leaf certificate's DER: the cnf x5t#S256 of the tokens bound to it
	// (RFC 8705 §3.1).
	CertThumbprint string
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

// ChainAttestor verifies a TLS client certificate chain (leaf first, as
// presented) against one configured PKI. Its methods are safe for
// concurrent use.
type ChainAttestor interface {
	// Name is the configured name.
	Name() string
	// AttestChain verifies chain and returns its evidence, or an *Error:
	// ErrUntrusted when the chain does not lead to one of the attestor's
	// trust anchors, ErrInvalid when it does but is refused (usage, name
	// constraints, expiry, revocation).
	AttestChain(ctx context.Context, chain []*x509.Certificate) (Evidence, error)
	// Anchors are the trust anchors (to name acceptable CAs in a TLS
	// CertificateRequest).
	Anchors() []*x509.Certificate
}

// SVIDAttestor is a ChainAttestor of a federated SPIFFE trust domain that
// also verifies JWT-SVIDs of it.
type SVIDAttestor interface {
	ChainAttestor
	// TrustDomain is the trust domain's name.
	TrustDomain() string
	// AttestJWT verifies a JWT-SVID and returns its evidence, or an
	// *Error.
	AttestJWT(ctx context.Context, raw string) (Evidence, error)
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
	chains   []ChainAttestor
	byTD     map[string]SVIDAttestor
}

// NewSet returns the set of as; names and issuers must be unique.
func NewSet(as ...Attestor) (*Set, error) { return NewSetWithChains(as, nil) }

// NewSetWithChains returns the set of the token attestors as and the
// certificate chain attestors cs; names are unique across both, issuers
// across as.
func NewSetWithChains(as []Attestor, cs []ChainAttestor) (*Set, error) {
	s := &Set{byName: map[string]Attestor{}, byIssuer: map[string]Attestor{}, byTD: map[string]SVIDAttestor{}}
	for _, c := range cs {
		if err := CheckName(c.Name()); err != nil {
			return nil, err
		}
		if sa, ok := c.(SVIDAttestor); ok {
			if prev := s.byTD[sa.TrustDomain()]; prev != nil {
				return nil, fmt.Errorf("attest: attestors %q and %q trust one trust domain %q", prev.Name(), c.Name(), sa.TrustDomain())
			}
			s.byTD[sa.TrustDomain()] = sa
		}
		for _, p := range s.chains {
			if p.Name() == c.Name() {
				return nil, fmt.Errorf("attest: attestor %q is configured twice", c.Name())
			}
		}
		s.chains = append(s.chains, c)
	}
	for _, a := range as {
		if s.hasChain(a.Name()) {
			return nil, fmt.Errorf("attest: attestor %q is configured twice", a.Name())
		}
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

func (s *Set) hasChain(name string) bool {
	for _, c := range s.chains {
		if c.Name() == name {
			return true
		}
	}
	return false
}

// Len is the number of attestors.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byName) + len(s.chains)
}

// HasChains reports whether the set holds a certificate chain attestor.
func (s *Set) HasChains() bool { return s != nil && len(s.chains) > 0 }

// ChainAnchors are the trust anchors of every chain attestor, nil when
// one has none to name (a federated trust domain's authorities change
// with its bundle): then a TLS server names no acceptable CA.
func (s *Set) ChainAnchors() []*x509.Certificate {
	if s == nil {
		return nil
	}
	var out []*x509.Certificate
	for _, c := range s.chains {
		as := c.Anchors()
		if len(as) == 0 {
			return nil
		}
		out = append(out, as...)
	}
	return out
}

// HasPKI reports whether the set holds a chain attestor of a PKI (not of
// a federated SPIFFE trust domain).
func (s *Set) HasPKI() bool { return s != nil && len(s.chains) > len(s.byTD) }

// HasSVIDs reports whether the set holds an attestor of a federated SPIFFE
// trust domain.
func (s *Set) HasSVIDs() bool { return s != nil && len(s.byTD) > 0 }

// AttestJWTSVID verifies a JWT-SVID of trust domain td (its unverified
// sub's) with the attestor of td; ErrUntrusted when there is none.
func (s *Set) AttestJWTSVID(ctx context.Context, td, raw string) (Evidence, error) {
	if s == nil || s.byTD[td] == nil {
		return Evidence{}, &Error{Kind: ErrUntrusted, Reason: "no attestor trusts the JWT-SVID's trust domain"}
	}
	return s.byTD[td].AttestJWT(ctx, raw)
}

// MaxChainLen bounds a presented certificate chain.
const MaxChainLen = 8

// AttestChain verifies a TLS client certificate chain with the chain
// attestors, in configuration order: the first that accepts it gives the
// evidence. When none does, the error is the first ErrInvalid refusal (an
// attestor trusted the chain but refused it), else ErrUntrusted.
func (s *Set) AttestChain(ctx context.Context, chain []*x509.Certificate) (Evidence, error) {
	switch {
	case len(chain) == 0:
		return Evidence{}, &Error{Kind: ErrInvalid, Reason: "no client certificate"}
	case len(chain) > MaxChainLen:
		return Evidence{}, &Error{Kind: ErrInvalid, Reason: fmt.Sprintf("the client certificate chain is longer than %d", MaxChainLen)}
	case !s.HasChains():
		return Evidence{}, &Error{Kind: ErrUntrusted, Reason: "no attestor trusts client certificates"}
	}
	var first, untrusted error
	for _, c := range s.chains {
		ev, err := c.AttestChain(ctx, chain)
		switch {
		case err == nil:
			return ev, nil
		case first == nil && !errors.Is(err, ErrUntrusted):
			first = err
		case untrusted == nil:
			untrusted = err
		}
	}
	switch {
	case first != nil:
		return Evidence{}, first
	case len(s.chains) == 1:
		return Evidence{}, untrusted
	}
	return Evidence{}, &Error{Kind: ErrUntrusted, Reason: "no attestor trusts the client certificate's issuer"}
}

// ChainMethod returns the kind of the chain attestor named name:
// MethodSPIFFE for a federated trust domain's, else MethodX509.
func (s *Set) ChainMethod(name string) (string, bool) {
	if s == nil {
		return "", false
	}
	for _, c := range s.chains {
		if c.Name() != name {
			continue
		}
		if _, ok := c.(SVIDAttestor); ok {
			return MethodSPIFFE, true
		}
		return MethodX509, true
	}
	return "", false
}

// Names are the attestors' names, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, s.Len())
	for n := range s.byName {
		out = append(out, n)
	}
	for _, c := range s.chains {
		out = append(out, c.Name())
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
