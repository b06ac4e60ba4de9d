package delegation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentid/agentid/internal/urlcheck"
)

// Limits of subject-token verification.
const (
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway = 60 * time.Second
	// MaxTokenBytes bounds a subject token.
	MaxTokenBytes = 16 << 10
	// MaxSubjectLen bounds the subject claim.
	MaxSubjectLen = 256
	// DefaultJWKSMaxAge is how long fetched keys are fresh without a
	// Cache-Control max-age.
	DefaultJWKSMaxAge = 5 * time.Minute
	// MaxJWKSAge caps a JWKS's max-age.
	MaxJWKSAge = 24 * time.Hour
	// MinRefetchInterval bounds how often an issuer's JWKS is fetched when
	// tokens name an unknown kid or fetches fail.
	MinRefetchInterval = 30 * time.Second
	// FetchTimeout bounds one discovery or JWKS fetch.
	FetchTimeout = 10 * time.Second
	// maxDocument bounds a discovery document or JWKS.
	maxDocument = 1 << 20
	// maxKeys bounds the keys taken from a JWKS.
	maxKeys = 100
)

// Algorithms are the JWS algorithms a subject token may use: asymmetric
// only, never none or HMAC.
func Algorithms() []string { return []string{"ES256", "RS256", "PS256", "EdDSA"} }

// PermittedAlgorithms are the algorithms an IssuerConfig may name:
// Algorithms and ES384 (ECDSA P-384, one of the two with which AWS STS
// signs web identity tokens; ADR 0015 addendum F). ES384 is never a
// default: only a caller that names it (the aws attestor) accepts it.
func PermittedAlgorithms() []string { return append(Algorithms(), "ES384") }

// IssuerConfig is one trusted issuer of subject tokens (ADR 0014 §1).
type IssuerConfig struct {
	// Issuer is the exact iss: https, or http on a loopback host.
	Issuer string
	// Audience is the aud a subject token must carry. Required.
	Audience string
	// JWKSURL is where the keys are; empty: OpenID Connect discovery.
	JWKSURL string
	// JWKSFile is a static JWKS file used instead of fetching.
	JWKSFile string
	// TLSCAFile holds PEM roots for the issuer's TLS certificates; empty:
	// the system's roots.
	TLSCAFile string
	// SubjectClaim names the person (default "sub"); EmailClaim the email
	// copied to grants (default "email").
	SubjectClaim string
	EmailClaim   string
	// TrustEmail takes the email claim as the person's address even when
	// the token does not say email_verified: true (ADR 0027). Set it only
	// for an IdP whose users cannot choose their address.
	TrustEmail bool
	// Algorithms restricts the allowed JWS algorithms to a subset of
	// PermittedAlgorithms(); empty: Algorithms().
	Algorithms []string
}

// Subject is what a verified subject token says.
type Subject struct {
	Issuer  string
	Subject string
	// Email is the person's address: the email claim when the token says
	// email_verified: true or the issuer is configured with TrustEmail,
	// else "" (ADR 0027).
	Email string
	// EmailClaimed says the token had an email claim, used or not;
	// EmailVerified that the token said email_verified: true.
	EmailClaimed, EmailVerified bool
	// SoleIssuer says Issuer is the only trusted issuer, so that a
	// subject not tied to an issuer names this issuer's person.
	SoleIssuer bool
	// Scopes are the token's scope (or scp) claim; Scoped says it had one.
	Scopes []string
	Scoped bool
	// MayAct is the token's may_act claim, nil when absent.
	MayAct *MayAct
	// Expiry is the token's exp.
	Expiry time.Time
}

// Issuers verifies subject tokens of the trusted issuers. It is safe for
// concurrent use.
type Issuers struct {
	byIss map[string]*issuer
	clock func() time.Time
}

// issuer is one trusted issuer and its cached keys.
type issuer struct {
	cfg    IssuerConfig
	algs   []jose.SignatureAlgorithm
	http   *http.Client
	static bool

	fetchMu sync.Mutex // one fetch at a time

	mu        sync.Mutex
	jwksURL   string
	keys      []jose.JSONWebKey
	fetched   bool
	freshTill time.Time
	lastFetch time.Time
	lastErr   error
}

// NewIssuers validates the configurations, reads static JWKS and CA files,
// and returns the verifier. clock is required. No network I/O happens
// until a token is verified.
func NewIssuers(cfgs []IssuerConfig, clock func() time.Time) (*Issuers, error) {
	if clock == nil {
		return nil, errors.New("delegation: clock is required")
	}
	is := &Issuers{byIss: map[string]*issuer{}, clock: clock}
	for i, c := range cfgs {
		iss, err := newIssuer(c)
		if err != nil {
			return nil, fmt.Errorf("delegation: issuers[%d]: %w", i, err)
		}
		if is.byIss[c.Issuer] != nil {
			return nil, fmt.Errorf("delegation: issuers[%d]: %q is configured twice", i, c.Issuer)
		}
		is.byIss[c.Issuer] = iss
	}
	return is, nil
}

func newIssuer(c IssuerConfig) (*issuer, error) {
	if err := urlcheck.HTTPS(c.Issuer, true); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if c.Audience == "" {
		return nil, errors.New("audience is required")
	}
	if c.JWKSURL != "" && c.JWKSFile != "" {
		return nil, errors.New("jwks_url and jwks_file exclude each other")
	}
	if c.JWKSURL != "" {
		if err := urlcheck.HTTPS(c.JWKSURL, false); err != nil {
			return nil, fmt.Errorf("jwks_url: %w", err)
		}
	}
	if c.SubjectClaim == "" {
		c.SubjectClaim = "sub"
	}
	if c.EmailClaim == "" {
		c.EmailClaim = "email"
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = Algorithms()
	}
	iss := &issuer{cfg: c, jwksURL: c.JWKSURL}
	for _, a := range c.Algorithms {
		if !slices.Contains(PermittedAlgorithms(), a) {
			return nil, fmt.Errorf("algorithm %q is not one of %v", a, PermittedAlgorithms())
		}
		iss.algs = append(iss.algs, jose.SignatureAlgorithm(a))
	}
	if c.JWKSFile != "" {
		b, err := os.ReadFile(c.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
		keys, err := parseJWKS(b)
		if err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
		iss.keys, iss.fetched, iss.static = keys, true, true
		return iss, nil
	}
	var roots *x509.CertPool
	if c.TLSCAFile != "" {
		b, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return nil, errors.New("tls_ca_file: no PEM certificate in it")
		}
	}
	iss.http = &http.Client{
		Timeout: FetchTimeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   FetchTimeout,
			ResponseHeaderTimeout: FetchTimeout,
			MaxIdleConnsPerHost:   1,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("more than 3 redirects")
			}
			return urlcheck.HTTPS(req.URL.String(), false)
		},
	}
	return iss, nil
}

// Trusted reports whether iss is a configured trusted issuer.
func (is *Issuers) Trusted(iss string) bool { return is != nil && is.byIss[iss] != nil }

// Len is the number of trusted issuers.
func (is *Issuers) Len() int {
	if is == nil {
		return 0
	}
	return len(is.byIss)
}

// UnverifiedIssuer returns the iss claim of a JWS without verifying it,
// "" when raw is not a JWS with a string iss. It lets a caller route a
// token to the verifier it belongs to.
func UnverifiedIssuer(raw string) string {
	if len(raw) > MaxTokenBytes {
		return ""
	}
	tok, err := jwt.ParseSigned(raw, allAlgorithms())
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

// allAlgorithms is every algorithm go-jose parses, so that UnverifiedIssuer
// can route a token whatever it claims; verification then applies the
// issuer's allow-list.
func allAlgorithms() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512,
		jose.PS256, jose.PS384, jose.PS512, jose.EdDSA, jose.HS256, jose.HS384, jose.HS512}
}

// Verify checks a subject token of a trusted issuer (ADR 0014 §1) and
// returns its subject. The error is a *TokenError of kind
// ErrUntrustedIssuer, ErrInvalidToken or ErrKeysUnavailable.
func (is *Issuers) Verify(ctx context.Context, raw string) (Subject, error) {
	iss, std, extra, err := is.verifyJWT(ctx, raw)
	if err != nil {
		return Subject{}, err
	}
	s, err := iss.subject(std, extra)
	s.SoleIssuer = err == nil && len(is.byIss) == 1
	return s, err
}

// subject applies the subject-token rules to a token that passed
// verifyJWT.
func (iss *issuer) subject(std jwt.Claims, extra map[string]json.RawMessage) (Subject, error) {
	c := iss.cfg
	s := Subject{Issuer: c.Issuer, Expiry: std.Expiry.Time().UTC()}
	var sub string
	if err := json.Unmarshal(extra[c.SubjectClaim], &sub); err != nil || !printableID(sub) {
		return Subject{}, tokenErr(ErrInvalidToken, fmt.Sprintf("claim %s must be a printable string of 1 to %d bytes", c.SubjectClaim, MaxSubjectLen))
	}
	s.Subject = sub
	if raw, ok := extra[c.EmailClaim]; ok {
		s.EmailClaimed, s.EmailVerified = true, emailVerified(extra["email_verified"])
		var email string
		if (s.EmailVerified || c.TrustEmail) && json.Unmarshal(raw, &email) == nil && len(email) <= 320 && printableID(email) {
			s.Email = email
		}
	}
	scopes, scoped, err := scopeClaims(extra)
	if err != nil {
		return Subject{}, err
	}
	s.Scopes, s.Scoped = scopes, scoped
	if raw, ok := extra["may_act"]; ok {
		var m MayAct
		if err := json.Unmarshal(raw, &m); err != nil || m.Sub == "" {
			return Subject{}, tokenErr(ErrInvalidToken, "may_act must be an object with a sub")
		}
		s.MayAct = &m
	}
	return s, nil
}

// emailVerified reads an email_verified claim (OpenID Connect Core §5.1):
// the boolean true, or the string "true" that some IdPs send.
func emailVerified(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	return v == true || v == "true"
}

// scopeClaims reads scope (a space-separated string, RFC 8693 §4.2) or
// scp (a string or an array, as some IdPs issue).
func scopeClaims(extra map[string]json.RawMessage) ([]string, bool, error) {
	bad := tokenErr(ErrInvalidToken, "scope must be a string (scp a string or an array of strings)")
	if raw, ok := extra["scope"]; ok {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, false, bad
		}
		return strings.Fields(s), true, nil
	}
	if raw, ok := extra["scp"]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return strings.Fields(s), true, nil
		}
		var l []string
		if json.Unmarshal(raw, &l) != nil {
			return nil, false, bad
		}
		return l, true, nil
	}
	return nil, false, nil
}

// printableID reports whether s is 1 to MaxSubjectLen bytes of printable
// characters (no control characters).
func printableID(s string) bool {
	if s == "" || len(s) > MaxSubjectLen {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// keysFor returns the issuer's keys that may verify a token with kid (all
// keys when kid is empty), fetching the JWKS when the cache is stale or
// lacks kid, at most once per MinRefetchInterval.
func (iss *issuer) keysFor(ctx context.Context, kid string, now time.Time) ([]jose.JSONWebKey, error) {
	if keys, ok := iss.cached(kid, now, false); ok {
		return keys, nil
	}
	if !iss.static {
		iss.fetchMu.Lock()
		// Another caller may have fetched while this one waited.
		if keys, ok := iss.cached(kid, now, false); ok {
			iss.fetchMu.Unlock()
			return keys, nil
		}
		iss.mu.Lock()
		due := iss.lastFetch.IsZero() || now.Sub(iss.lastFetch) >= MinRefetchInterval
		if due {
			iss.lastFetch = now
		}
		iss.mu.Unlock()
		if due {
			iss.refresh(ctx, now)
		}
		iss.fetchMu.Unlock()
	}
	if keys, ok := iss.cached(kid, now, true); ok {
		return keys, nil
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	if iss.lastErr != nil && !iss.fetched {
		return nil, &TokenError{Kind: ErrKeysUnavailable, Reason: "the issuer's keys could not be fetched", Err: iss.lastErr}
	}
	return nil, tokenErr(ErrInvalidToken, "no key of the issuer matches the token's kid")
}

// cached returns the cached keys for kid; stale says whether keys past
// their freshness count.
func (iss *issuer) cached(kid string, now time.Time, stale bool) ([]jose.JSONWebKey, bool) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	if !iss.fetched || (!stale && !iss.static && !now.Before(iss.freshTill)) {
		return nil, false
	}
	var out []jose.JSONWebKey
	for _, k := range iss.keys {
		if kid == "" || k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out, len(out) > 0
}

// refresh fetches the JWKS (discovering its URL first when needed) and
// stores the outcome; a failure keeps the keys already cached.
func (iss *issuer) refresh(ctx context.Context, now time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FetchTimeout)
	defer cancel()
	keys, maxAge, err := iss.download(ctx)
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.lastErr = err
	if err == nil {
		iss.keys, iss.fetched, iss.freshTill = keys, true, now.Add(maxAge)
	}
}

func (iss *issuer) download(ctx context.Context) ([]jose.JSONWebKey, time.Duration, error) {
	iss.mu.Lock()
	jwksURL := iss.jwksURL
	iss.mu.Unlock()
	if jwksURL == "" {
		u, err := iss.discover(ctx)
		if err != nil {
			return nil, 0, err
		}
		iss.mu.Lock()
		iss.jwksURL = u
		iss.mu.Unlock()
		jwksURL = u
	}
	b, h, err := iss.get(ctx, jwksURL, "application/jwk-set+json, application/json")
	if err != nil {
		return nil, 0, err
	}
	keys, err := parseJWKS(b)
	if err != nil {
		return nil, 0, err
	}
	return keys, cacheLifetime(h), nil
}

// discover reads the issuer's OpenID Connect discovery document (OpenID
// Connect Discovery 1.0 §4) and returns its jwks_uri; the document's
// issuer must be the configured one (§4.3).
func (iss *issuer) discover(ctx context.Context) (string, error) {
	b, _, err := iss.get(ctx, iss.cfg.Issuer+"/.well-known/openid-configuration", "application/json")
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("discovery document: %w", err)
	}
	if doc.Issuer != iss.cfg.Issuer {
		return "", fmt.Errorf("discovery document names issuer %q", doc.Issuer)
	}
	if err := urlcheck.HTTPS(doc.JWKSURI, false); err != nil {
		return "", fmt.Errorf("discovery jwks_uri: %w", err)
	}
	return doc.JWKSURI, nil
}

func (iss *issuer) get(ctx context.Context, u, accept string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, http.NoBody)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := iss.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, nil, fmt.Errorf("%s answered %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", u, err)
	}
	if len(b) > maxDocument {
		return nil, nil, fmt.Errorf("%s: document larger than %d bytes", u, maxDocument)
	}
	return b, resp.Header, nil
}

// parseJWKS parses a JWK Set (RFC 7517 §5) and keeps its public signature
// keys; keys of unknown types or with bad parameters are skipped so that
// one new kind of key does not break the others.
func parseJWKS(b []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Keys == nil {
		return nil, errors.New("not a JWK Set")
	}
	var out []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil || !k.IsPublic() || !k.Valid() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		out = append(out, k)
		if len(out) == maxKeys {
			break
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the JWK Set has no usable public signature key")
	}
	return out, nil
}

// cacheLifetime is the max-age of a response's Cache-Control, bounded;
// DefaultJWKSMaxAge without one.
func cacheLifetime(h http.Header) time.Duration {
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		if d == "no-store" || d == "no-cache" {
			return 0
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
			if err != nil || n < 0 {
				return DefaultJWKSMaxAge
			}
			return min(time.Duration(min(n, int64(MaxJWKSAge/time.Second)))*time.Second, MaxJWKSAge)
		}
	}
	return DefaultJWKSMaxAge
}
