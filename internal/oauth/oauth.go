// Package oauth is agentid's OAuth 2.0 authorization server logic: client
// authentication (private_key_jwt per RFC 7523 §2.2, client_secret_basic and
// client_secret_post per RFC 6749 §2.3.1, attestation evidence and PKI
// mutual TLS with certificate-bound tokens per RFC 8705, ADR 0015), the
// client_credentials grant
// (RFC 6749 §4.4) with resource indicators (RFC 8707) and DPoP (RFC 9449),
// token exchange for delegation (RFC 8693, ADR 0014) with cascade
// revocation, JWT-SVID actor tokens and transaction tokens
// (draft-ietf-oauth-transaction-tokens-10), introspection (RFC 7662) and
// revocation (RFC 7009).
//
// It speaks no HTTP: the transport parses a request into a Request and
// writes what comes back, a response value or an *Error carrying the RFC
// 6749 §5.2 code and status. Every authentication attempt and every issued
// token is an audit event committed in the same store transaction as the
// state the request changes (one-time jtis, revocations) and before the
// response exists: if the trail cannot be written, no token is returned.
package oauth

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/jointoken"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/store"
)

// Defaults and limits.
const (
	// DefaultTokenTTL is an access token's lifetime when the request asks
	// for none (and the agent's policy allows it).
	DefaultTokenTTL = 5 * time.Minute
	// MaxAssertionLifetime bounds how far ahead a client assertion's exp may
	// be (issue 3: at most 5 minutes).
	MaxAssertionLifetime = 5 * time.Minute
	// Leeway is the clock skew tolerated on assertion and proof times.
	Leeway = 60 * time.Second
	// MaxAssertionBytes bounds a client assertion.
	MaxAssertionBytes = 8 << 10
	// MaxJTILen bounds a jti.
	MaxJTILen = 256
	// MaxReasoningRefLen bounds reasoning_ref.
	MaxReasoningRefLen = 256
	// MaxScopes bounds the scope tokens of one request.
	MaxScopes = 64
	// MaxResources bounds the resource parameters of one request.
	MaxResources = 16
	// DPoPProofMaxAge is how old a DPoP proof's iat may be.
	DPoPProofMaxAge = 5 * time.Minute
)

// Paths of the endpoints under the issuer URL.
const (
	TokenPath      = "/oauth2/token" //nolint:gosec // G101: a URL path, not a credential
	IntrospectPath = "/oauth2/introspect"
	RevokePath     = "/oauth2/revoke"
	JWKSPath       = "/oauth2/jwks"
)

// Permissions an agent may hold (store.Agent.Permissions).
const (
	// PermissionIntrospect lets an agent call the introspection endpoint.
	PermissionIntrospect = "introspect"
	// PermissionImpersonate makes the agent's exchanges of a subject token
	// that is not itself delegated issue tokens without act (ADR 0014
	// addendum B).
	PermissionImpersonate = "impersonate"
)

// Params configures a Server.
type Params struct {
	// Store holds agents, client credentials, one-time ids, revocations
	// and the audit trail. Required.
	Store store.Store
	// Recorder appends audit events inside Store transactions. Required.
	Recorder *audit.Recorder
	// Tokens mints and parses access tokens; its name is the issuer URL.
	// Required.
	Tokens *credential.Issuer
	// TokenTTL is the lifetime of a token when the request asks for none;
	// zero means DefaultTokenTTL. An agent's MaxTTL always caps it.
	TokenTTL time.Duration
	// RequireDPoPNonce makes the token endpoint demand a server nonce in
	// DPoP proofs (RFC 9449 §8), given by Nonces.
	Nonces NonceSource
	// Delegation holds the grants and trusted issuers of token exchange
	// (RFC 8693); nil leaves the grant type unsupported.
	Delegation *delegation.Service
	// JWTAuthorities gives the trust domain's JWT-SVID keys by kid (the
	// trust bundle's JWT authorities), which verify JWT-SVIDs presented as
	// actor tokens; nil refuses them.
	JWTAuthorities func() (map[string]crypto.PublicKey, error)
	// TrustDomain is the audience of transaction tokens
	// (draft-ietf-oauth-transaction-tokens); empty leaves them unsupported.
	TrustDomain string
	// Attestors verify the evidence of the JWT bearer grant (RFC 7523
	// §2.1, ADR 0015); nil or empty leaves the grant type unsupported.
	Attestors *attest.Set
	// JoinTokenKey, at least 32 bytes, authenticates agents' join tokens
	// (ADR 0015 addendum C); every replica must use the same. Nil leaves
	// join tokens unsupported.
	JoinTokenKey []byte
	// Clock is the time source; required.
	Clock func() time.Time
	// Rand is a cryptographic source; required.
	Rand io.Reader
	// Logger receives internal failures; nil discards them.
	Logger *slog.Logger
}

// NonceSource issues and checks DPoP server nonces (RFC 9449 §8). A nil
// NonceSource means the server does not use nonces.
type NonceSource interface {
	// Nonce is the nonce a client should use now.
	Nonce(now time.Time) string
	// Valid reports whether a nonce from a proof is acceptable at now.
	Valid(nonce string, now time.Time) bool
}

// Server handles the OAuth endpoints. It is safe for concurrent use.
type Server struct {
	store          store.Store
	rec            *audit.Recorder
	tokens         *credential.Issuer
	issuer         string
	tokenURL       string
	ttl            time.Duration
	nonces         NonceSource
	deleg          *delegation.Service
	trustDomain    string
	jwtAuthorities func() (map[string]crypto.PublicKey, error)
	attestors      *attest.Set
	joinTokens     *jointoken.Codec
	clock          func() time.Time
	rand           io.Reader
	log            *slog.Logger
	clients        clientCache
	bearers        bearerCache
}

// New returns a Server.
func New(p Params) (*Server, error) {
	switch {
	case p.Store == nil, p.Recorder == nil, p.Tokens == nil:
		return nil, errors.New("oauth: Store, Recorder and Tokens are required")
	case p.Clock == nil, p.Rand == nil:
		return nil, errors.New("oauth: Clock and Rand are required")
	}
	s := &Server{
		store:          p.Store,
		rec:            p.Recorder,
		tokens:         p.Tokens,
		issuer:         p.Tokens.Name(),
		tokenURL:       p.Tokens.Name() + TokenPath,
		ttl:            p.TokenTTL,
		nonces:         p.Nonces,
		deleg:          p.Delegation,
		trustDomain:    p.TrustDomain,
		jwtAuthorities: p.JWTAuthorities,
		attestors:      p.Attestors,
		clock:          p.Clock,
		rand:           p.Rand,
		log:            p.Logger,
		clients:        clientCache{m: map[string]*client{}},
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTokenTTL
	}
	if p.JoinTokenKey != nil {
		c, err := jointoken.New(p.JoinTokenKey)
		if err != nil {
			return nil, fmt.Errorf("oauth: %w", err)
		}
		s.joinTokens = c
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Request is one request to an OAuth endpoint as the transport read it.
type Request struct {
	// Form is the application/x-www-form-urlencoded body.
	Form url.Values
	// Basic is set when the request carried HTTP Basic credentials.
	Basic *BasicCredentials
	// DPoP holds the values of the DPoP header (RFC 9449 §4.1).
	DPoP []string
	// Admin is the admin token's actor when the caller authenticated with
	// an admin bearer token (introspection and revocation accept one).
	Admin *audit.Actor
	// Origin is the request context stamped on audit events.
	Origin audit.Origin
	// PeerCertificates is the TLS client certificate chain as presented
	// (leaf first), not verified by the transport: the x509 attestors
	// verify it (RFC 8705 §2.1).
	PeerCertificates []*x509.Certificate
}

// BasicCredentials are the raw (still form-encoded, RFC 6749 §2.3.1) user
// and password of an HTTP Basic Authorization header.
type BasicCredentials struct {
	User, Password string
}

// param returns the single value of a parameter, "" when absent or empty
// (RFC 6749 §3.1: a parameter without a value is omitted). Repeated
// parameters are rejected earlier by checkRepeated.
func param(f url.Values, name string) string {
	if v := f[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// checkRepeated rejects a request that repeats a parameter (RFC 6749
// §3.1/§3.2), except those in multi (RFC 8707 resource).
func checkRepeated(f url.Values, multi ...string) *Error {
	for name, vs := range f {
		if len(vs) > 1 && !slices.Contains(multi, name) {
			return errf(CodeInvalidRequest, "parameter %s is repeated", safeName(name))
		}
	}
	return nil
}

// safeName quotes a client-supplied parameter name for an error message,
// bounded and printable.
func safeName(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// now is the clock's time in UTC, truncated to microseconds as stored.
func (s *Server) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// record appends events in their own transaction (for outcomes that change
// nothing else, such as a failed authentication).
func (s *Server) record(ctx context.Context, evs ...audit.Event) error {
	return s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, ev := range evs {
			if _, err := s.rec.Append(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// agentAxis is the audit event's agent axis for a.
func agentAxis(a store.Agent) *audit.Agent {
	return &audit.Agent{ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID}
}

// usable reports why an agent may not get or use credentials, "" when it
// may.
func usable(a store.Agent, now time.Time) string {
	switch {
	case a.State != store.AgentActive:
		return "agent is " + string(a.State)
	case !a.ExpiresAt.IsZero() && !now.Before(a.ExpiresAt):
		return "agent expired"
	}
	return ""
}

// splitScope splits a scope parameter (RFC 6749 §3.3) into its tokens,
// without duplicates, in order.
func splitScope(s string) ([]string, bool) {
	var out []string
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		for _, c := range []byte(tok) {
			if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				return nil, false
			}
		}
		if !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out, true
}
