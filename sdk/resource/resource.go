// Package resource verifies agentid access tokens in a resource server (an
// API, an MCP server), offline, with the issuer's JWKS.
//
// A Verifier checks a JWT access token per RFC 9068: typ at+jwt, an allowed
// asymmetric algorithm, a signature by a key of the issuer's JWKS, iss, aud
// and the validity times. VerifyRequest also takes the token from the
// Authorization header and, for a DPoP-bound token, checks the request's
// DPoP proof (RFC 9449 §7) and that the proof was not used before.
// Middleware wraps an http.Handler: it answers failures with the RFC 6750
// §3 / RFC 9449 §7.1 WWW-Authenticate challenges and hands the verified
// Claims to the handler in the request context. Claims.Chain reads the
// delegation behind a token (RFC 8693 act, ADR 0014): who acts, for whom,
// through which grant.
//
// The JWKS is cached as its Cache-Control header says and fetched again
// when a token names an unknown key (key rotation), at most once per
// MinRefetchInterval. The package imports nothing from agentid's internal
// packages; a Verifier is safe for concurrent use.
package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/agentid/agentid/sdk/dpop"
	"github.com/agentid/agentid/sdk/internal/jwks"
	jose "github.com/go-jose/go-jose/v4"
)

// Errors. A verification failure is an *Error whose Kind is one of these;
// errors.Is matches the Kind, and ErrInvalidToken for every kind of invalid
// token (ErrExpired, ErrNotYetValid, ErrUnknownKey, ErrDPoPRequired,
// ErrRevoked).
var (
	// ErrInvalidToken: the token is malformed, forged, for another issuer
	// or audience, or otherwise unusable (RFC 6750 §3.1 invalid_token).
	ErrInvalidToken = errors.New("resource: invalid token")
	// ErrExpired: the token's exp has passed.
	ErrExpired = errors.New("resource: token expired")
	// ErrNotYetValid: the token's nbf is in the future.
	ErrNotYetValid = errors.New("resource: token not yet valid")
	// ErrUnknownKey: no key of the issuer's JWKS has the token's kid.
	ErrUnknownKey = errors.New("resource: unknown signing key")
	// ErrDPoPRequired: a DPoP-bound token came with the Bearer scheme.
	ErrDPoPRequired = errors.New("resource: token is DPoP-bound")
	// ErrInvalidDPoPProof: the DPoP proof is missing, invalid, for another
	// key or replayed (RFC 9449 §7.1 invalid_dpop_proof).
	ErrInvalidDPoPProof = errors.New("resource: invalid DPoP proof")
	// ErrNoToken: the request carries no Bearer or DPoP credentials.
	ErrNoToken = errors.New("resource: no access token")
	// ErrInvalidRequest: the Authorization header is malformed (RFC 6750
	// §3.1 invalid_request).
	ErrInvalidRequest = errors.New("resource: invalid request")
	// ErrInsufficientScope: the token lacks a required scope.
	ErrInsufficientScope = errors.New("resource: insufficient scope")
	// ErrKeySetUnavailable: the JWKS could not be fetched; the token could
	// not be checked. Not the client's fault.
	ErrKeySetUnavailable = errors.New("resource: key set unavailable")
	// ErrRevoked: the token verifies but VerifierParams.RevocationCheck
	// refused it (RFC 6750 §3.1 invalid_token).
	ErrRevoked = errors.New("resource: token revoked")
)

// Error is a verification failure.
type Error struct {
	// Kind is one of the package's sentinel errors.
	Kind error
	// Reason says what failed; it holds no secret and may be shown to the
	// client (error_description).
	Reason string
	// Err is the underlying error, if any, for logs.
	Err error
}

func (e *Error) Error() string {
	msg := e.Kind.Error() + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the Kind, ErrInvalidToken for the kinds of invalid token,
// and Err.
func (e *Error) Unwrap() []error {
	out := []error{e.Kind}
	for _, k := range []error{ErrExpired, ErrNotYetValid, ErrUnknownKey, ErrDPoPRequired, ErrRevoked} {
		if errors.Is(e.Kind, k) {
			out = append(out, ErrInvalidToken)
			break
		}
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

func fail(kind error, reason string) *Error { return &Error{Kind: kind, Reason: reason} }

// Defaults of VerifierParams.
const (
	DefaultLeeway             = 60 * time.Second
	DefaultMinRefetchInterval = 30 * time.Second
	// maxTokenBytes bounds a token.
	maxTokenBytes = 16 << 10
)

// DefaultAlgorithms returns the token algorithms accepted by default: ES256
// and EdDSA.
func DefaultAlgorithms() []string { return []string{string(jose.ES256), string(jose.EdDSA)} }

// VerifierParams configure a Verifier. Issuer and Audience are required.
type VerifierParams struct {
	// Issuer is the token issuer's identifier (agentid's issuer URL).
	Issuer string
	// Audience is this resource's identifier: tokens must name it in aud.
	Audience string
	// JWKSURL is the issuer's JWKS. When empty, NewVerifier discovers it
	// from the issuer's RFC 8414 metadata.
	JWKSURL string
	// Algorithms are the token algorithms accepted (default ES256, EdDSA).
	// none and HMAC algorithms are never accepted.
	Algorithms []string
	// Leeway is the clock skew allowed on exp, nbf and iat, and on a DPoP
	// proof's iat (default 60 s).
	Leeway time.Duration
	// HTTPClient fetches metadata and the JWKS (default: a client with a
	// 30 s timeout).
	HTTPClient *http.Client
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// MinRefetchInterval is the least time between two JWKS fetches
	// (default 30 s), whatever the cache headers and unknown kids say.
	MinRefetchInterval time.Duration

	// ExternalURL is the scheme and host (and path prefix, if a proxy strips
	// one) at which clients reach this server, e.g.
	// "https://api.example.com". DPoP proofs name the URL the client used;
	// behind a proxy the request's own Host and TLS state do not say it.
	// The request's path is appended. Default: from the request.
	ExternalURL string
	// DPoPAlgorithms are the DPoP proof algorithms accepted (default ES256,
	// EdDSA).
	DPoPAlgorithms []string
	// DPoPMaxAge is how old a DPoP proof may be (default 5 minutes).
	DPoPMaxAge time.Duration
	// ReplayCache remembers used DPoP proofs (default: an in-memory cache of
	// dpop.DefaultReplayCacheSize proofs). Share one between Verifiers of
	// the same server.
	ReplayCache *dpop.ReplayCache
	// RevocationCheck, when set, is called with the claims of every token
	// that verifies (Verify, VerifyRequest, Middleware). An error refuses
	// the token: Verify returns an *Error of kind ErrRevoked wrapping it,
	// and Middleware answers 401 invalid_token. It must be safe for
	// concurrent use and fast: it runs on every request.
	// (*signals.Receiver).Check is one.
	RevocationCheck func(ctx context.Context, c *Claims) error
}

// Verifier verifies access tokens. Construct it with NewVerifier.
type Verifier struct {
	issuer      string
	audience    string
	algs        []jose.SignatureAlgorithm
	leeway      time.Duration
	clock       func() time.Time
	keys        *jwks.Cache
	externalURL string
	dpopAlgs    []string
	dpopMaxAge  time.Duration
	replay      *dpop.ReplayCache
	revoked     func(context.Context, *Claims) error
}

// NewVerifier returns a Verifier. When p.JWKSURL is empty it fetches the
// issuer's metadata with ctx to find jwks_uri; the JWKS itself is fetched on
// first use.
func NewVerifier(ctx context.Context, p VerifierParams) (*Verifier, error) {
	if p.Issuer == "" || p.Audience == "" {
		return nil, errors.New("resource: Issuer and Audience are required")
	}
	v := &Verifier{
		issuer:      p.Issuer,
		audience:    p.Audience,
		leeway:      p.Leeway,
		clock:       p.Clock,
		externalURL: strings.TrimRight(p.ExternalURL, "/"),
		dpopAlgs:    p.DPoPAlgorithms,
		dpopMaxAge:  p.DPoPMaxAge,
		replay:      p.ReplayCache,
		revoked:     p.RevocationCheck,
	}
	for _, a := range orDefault(p.Algorithms, DefaultAlgorithms()) {
		if alg := jose.SignatureAlgorithm(a); jwks.Asymmetric(alg) {
			v.algs = append(v.algs, alg)
		}
	}
	if len(v.algs) == 0 {
		return nil, errors.New("resource: no asymmetric algorithm allowed")
	}
	if v.externalURL != "" && !httpURL(v.externalURL) {
		return nil, fmt.Errorf("resource: ExternalURL %q is not an http(s) URL", p.ExternalURL)
	}
	v.dpopAlgs = orDefault(v.dpopAlgs, DefaultAlgorithms())
	if v.leeway <= 0 {
		v.leeway = DefaultLeeway
	}
	if v.dpopMaxAge <= 0 {
		v.dpopMaxAge = dpop.DefaultMaxAge
	}
	if v.clock == nil {
		v.clock = time.Now
	}
	if v.replay == nil {
		v.replay = dpop.NewReplayCache(0)
	}
	hc := p.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: fetchTimeout}
	}
	jwksURL := p.JWKSURL
	if jwksURL == "" {
		u, err := discoverJWKS(ctx, hc, p.Issuer)
		if err != nil {
			return nil, err
		}
		jwksURL = u
	}
	if !httpURL(jwksURL) {
		return nil, fmt.Errorf("resource: JWKS URL %q is not an http(s) URL", jwksURL)
	}
	interval := p.MinRefetchInterval
	if interval <= 0 {
		interval = DefaultMinRefetchInterval
	}
	v.keys = newKeySet(jwksURL, hc, v.clock, interval)
	return v, nil
}

func orDefault(s, def []string) []string {
	if len(s) == 0 {
		return def
	}
	return s
}

// httpURL reports whether s is an absolute http(s) URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Agent is the agent a token was issued to.
type Agent struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Claims are the verified claims of an access token (docs/tokens.md).
type Claims struct {
	Issuer        string
	Subject       string // the agent's SPIFFE ID, or the delegating subject
	Audience      []string
	ClientID      string
	Scope         []string
	JTI           string
	IssuedAt      time.Time
	NotBefore     time.Time // zero when absent
	Expiry        time.Time
	Agent         Agent
	AgentInstance string
	Act           json.RawMessage // RFC 8693 actor chain, when delegated
	TraceID       string
	ReasoningRef  string
	// CnfJKT is the thumbprint of the key the token is bound to (RFC 9449
	// §6), empty for a bearer token.
	CnfJKT string
	// Raw holds every claim as decoded JSON.
	Raw map[string]any
}

// HasScope reports whether the token grants scope.
func (c *Claims) HasScope(scope string) bool {
	for _, s := range c.Scope {
		if s == scope {
			return true
		}
	}
	return false
}

// rawClaims is a token payload as received.
type rawClaims struct {
	Issuer        string          `json:"iss"`
	Subject       string          `json:"sub"`
	Audience      json.RawMessage `json:"aud"`
	ClientID      string          `json:"client_id"`
	Scope         string          `json:"scope"`
	JTI           string          `json:"jti"`
	IssuedAt      json.RawMessage `json:"iat"`
	NotBefore     json.RawMessage `json:"nbf"`
	Expiry        json.RawMessage `json:"exp"`
	Agent         Agent           `json:"agent"`
	AgentInstance string          `json:"agent_instance"`
	Act           json.RawMessage `json:"act"`
	TraceID       string          `json:"trace_id"`
	ReasoningRef  string          `json:"reasoning_ref"`
	Cnf           struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// Verify verifies an access token (RFC 9068 §4): JWS header typ at+jwt (or
// application/at+jwt), an allowed algorithm, a kid of the issuer's JWKS and
// its signature, iss equal to the issuer, aud containing the audience, exp
// and iat present, and exp, nbf, iat valid within the leeway. It does not
// check a DPoP binding: VerifyRequest does. A token that verifies is then
// handed to VerifierParams.RevocationCheck, if set. The error is an *Error.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > maxTokenBytes {
		return nil, fail(ErrInvalidToken, "token too large")
	}
	payload, err := jwks.Verify(ctx, token, jwks.VerifyParams{Typ: "at+jwt", Algorithms: v.algs, Keys: v.keysFor})
	var refused *jwks.RefusedError
	switch {
	case errors.As(err, &refused):
		return nil, &Error{Kind: ErrInvalidToken, Reason: refused.Reason, Err: refused.Err}
	case err != nil:
		return nil, err // an *Error of keysFor
	}
	c, err := v.checkClaims(payload)
	if err != nil {
		return nil, err
	}
	if v.revoked != nil {
		if err := v.revoked(ctx, c); err != nil {
			return nil, &Error{Kind: ErrRevoked, Reason: "token has been revoked", Err: err}
		}
	}
	return c, nil
}

// checkClaims decodes a verified payload and checks its claims.
func (v *Verifier) checkClaims(payload []byte) (*Claims, error) {
	var rc rawClaims
	if err := json.Unmarshal(payload, &rc); err != nil {
		return nil, fail(ErrInvalidToken, "claims are not a JSON object of the right types")
	}
	aud, ok := jwks.Audience(rc.Audience)
	if !ok {
		return nil, fail(ErrInvalidToken, "claims are not a JSON object of the right types")
	}
	var raw map[string]any
	if err := json.Unmarshal(payload, &raw); err != nil || raw == nil {
		return nil, fail(ErrInvalidToken, "claims are not a JSON object")
	}
	c := &Claims{
		Issuer: rc.Issuer, Subject: rc.Subject, Audience: aud, ClientID: rc.ClientID,
		Scope: strings.Fields(rc.Scope), JTI: rc.JTI, Agent: rc.Agent, AgentInstance: rc.AgentInstance,
		TraceID: rc.TraceID, ReasoningRef: rc.ReasoningRef, CnfJKT: rc.Cnf.JKT, Raw: raw,
	}
	if len(rc.Act) > 0 && string(rc.Act) != "null" {
		c.Act = rc.Act
	}
	var err error
	if c.Expiry, err = jwks.NumericDate(rc.Expiry, true); err != nil {
		return nil, fail(ErrInvalidToken, "exp missing or not a number")
	}
	if c.IssuedAt, err = jwks.NumericDate(rc.IssuedAt, true); err != nil {
		return nil, fail(ErrInvalidToken, "iat missing or not a number")
	}
	if c.NotBefore, err = jwks.NumericDate(rc.NotBefore, false); err != nil {
		return nil, fail(ErrInvalidToken, "nbf not a number")
	}
	now := v.clock()
	switch {
	case rc.Issuer != v.issuer:
		return nil, fail(ErrInvalidToken, "wrong issuer")
	case !slices.Contains(c.Audience, v.audience):
		return nil, fail(ErrInvalidToken, "audience does not include this resource")
	case c.Subject == "" || c.ClientID == "" || c.JTI == "":
		return nil, fail(ErrInvalidToken, "sub, client_id or jti missing")
	case !now.Before(c.Expiry.Add(v.leeway)):
		return nil, fail(ErrExpired, "exp has passed")
	case !c.NotBefore.IsZero() && now.Add(v.leeway).Before(c.NotBefore):
		return nil, fail(ErrNotYetValid, "nbf is in the future")
	case c.IssuedAt.After(now.Add(v.leeway)):
		return nil, fail(ErrInvalidToken, "iat is in the future")
	}
	return c, nil
}
