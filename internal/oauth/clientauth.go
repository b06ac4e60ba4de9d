package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentid/agentid/internal/attest/federated"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
)

// Client authentication methods (RFC 8414 §2 names).
const (
	MethodPrivateKeyJWT     = "private_key_jwt"
	MethodClientSecretBasic = "client_secret_basic"
	MethodClientSecretPost  = "client_secret_post"
)

// AssertionType is the client_assertion_type of RFC 7523 §2.2.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionAlgorithms are the JWS algorithms a client assertion may use:
// asymmetric only, never "none" or HMAC.
var AssertionAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256} //nolint:gochecknoglobals // read-only allow-list

// authClient is an authenticated client.
type authClient struct {
	agent  store.Agent
	method string
	keyID  string // private_key_jwt: the registered key that verified
	// jti and jtiExp are the assertion's one-time id, recorded with the
	// outcome of the request (so that a failed commit does not burn it).
	jti    string
	jtiExp time.Time
	// boundJKT is the DPoP key thumbprint of an actor token that
	// authenticated the agent (RFC 8693 actor_token with cnf.jkt).
	boundJKT string
	// attest is set for federated client authentication (ADR 0015 §4).
	attest *attestedClient
	// version, when not 0, is the version of the cached agent record
	// authentication used without reading the stored one: the commit of
	// the request's outcome must find the agent at it (commitIssued).
	version int64
}

// authAttempt is what client authentication found out, for the audit event
// whatever the outcome.
type authAttempt struct {
	method   string
	clientID string
	agent    *store.Agent
	keyID    string
	attest   *attestedClient // federated client authentication
	// cached is set when the agent record came from the client cache
	// without its version read: a failure may be the cache's, not the
	// client's, and is checked again against the store before it is
	// answered or recorded.
	cached bool
}

// authenticate runs client authentication (RFC 6749 §2.3, RFC 7523 §3) on
// r. Exactly one method must be used.
func (s *Server) authenticate(ctx context.Context, r *Request, now time.Time) (*authClient, authAttempt, *Error) {
	return s.authenticateWith(ctx, r, now, false)
}

// authenticateWith is authenticate; with deferCheck, private_key_jwt and
// client secrets use a cached agent record without reading its version
// first, and leave the check to the transaction that records the outcome
// (authClient.version, authAttempt.cached).
func (s *Server) authenticateWith(ctx context.Context, r *Request, now time.Time, deferCheck bool) (*authClient, authAttempt, *Error) {
	f := r.Form
	hasAssertion := param(f, "client_assertion") != "" || param(f, "client_assertion_type") != ""
	hasPost := param(f, "client_secret") != ""
	n := 0
	for _, b := range []bool{r.Basic != nil, hasAssertion, hasPost} {
		if b {
			n++
		}
	}
	switch {
	case n == 0 && len(r.PeerCertificates) > 0 && s.attestors.HasChains():
		return s.authCertificate(ctx, r, now)
	case n == 0:
		return nil, authAttempt{clientID: param(f, "client_id")}, clientFailed(false, "no client authentication")
	case n > 1:
		return nil, authAttempt{}, errf(CodeInvalidRequest, "use exactly one client authentication method")
	case hasAssertion && param(f, "client_assertion_type") == federated.AssertionType:
		return s.authJWTSVID(ctx, r, now)
	case hasAssertion && s.isAttestation(f):
		return s.authAttested(ctx, r, now)
	case hasAssertion:
		return s.authAssertion(ctx, f, now, deferCheck)
	case r.Basic != nil:
		id, err1 := url.QueryUnescape(r.Basic.User)
		secret, err2 := url.QueryUnescape(r.Basic.Password)
		at := authAttempt{method: MethodClientSecretBasic, clientID: printable(id)}
		if err1 != nil || err2 != nil {
			return nil, at, clientFailed(true, "basic credentials are not form-encoded")
		}
		if cid := param(f, "client_id"); cid != "" && cid != id {
			return nil, at, clientFailed(true, "client_id does not match the basic credentials")
		}
		return s.authSecret(ctx, at, id, secret, true, now, deferCheck)
	default:
		id := param(f, "client_id")
		at := authAttempt{method: MethodClientSecretPost, clientID: printable(id)}
		return s.authSecret(ctx, at, id, param(f, "client_secret"), false, now, deferCheck)
	}
}

func (s *Server) authSecret(ctx context.Context, at authAttempt, id, secret string, basic bool, now time.Time,
	deferCheck bool) (*authClient, authAttempt, *Error) {
	c, cached, oerr, ok := s.findClient(ctx, id, deferCheck)
	if oerr != nil {
		return nil, at, oerr
	}
	at.cached = cached
	if !ok {
		return nil, at, clientFailed(basic, "unknown client")
	}
	a := c.agent
	at.agent = &a
	secrets, err := c.clientSecrets(ctx, s.store)
	if err != nil {
		return nil, at, serverError(err)
	}
	sec, ok := identity.MatchClientSecret(secrets, secret, now)
	if !ok {
		return nil, at, clientFailed(basic, "client secret does not match")
	}
	at.keyID = sec.ID
	if why := usable(a, now); why != "" {
		return nil, at, clientFailed(basic, "%s", why)
	}
	return &authClient{agent: a, method: at.method, keyID: sec.ID, version: versionIf(cached, a)}, at, nil
}

// authAssertion verifies a private_key_jwt client assertion (RFC 7523 §3).
// Keys come only from the agent's registered keys: jwk, jku, x5u and x5c
// headers are never used.
func (s *Server) authAssertion(ctx context.Context, f url.Values, now time.Time, deferCheck bool) (*authClient, authAttempt, *Error) {
	at := authAttempt{method: MethodPrivateKeyJWT, clientID: printable(param(f, "client_id"))}
	if param(f, "client_assertion_type") != AssertionType {
		return nil, at, clientFailed(false, "client_assertion_type is not %s", AssertionType)
	}
	raw := param(f, "client_assertion")
	if raw == "" {
		return nil, at, clientFailed(false, "client_assertion is missing")
	}
	tok, unverified, e := parseAssertion(raw)
	if e != nil {
		return nil, at, e
	}
	h := tok.Headers[0]
	id := unverified.Issuer
	if cid := param(f, "client_id"); cid != "" && cid != id {
		return nil, at, clientFailed(false, "client_id does not match the assertion issuer")
	}
	at.clientID = printable(id)
	c, cached, oerr, ok := s.findClient(ctx, id, deferCheck)
	if oerr != nil {
		return nil, at, oerr
	}
	at.cached = cached
	if !ok {
		return nil, at, clientFailed(false, "unknown client")
	}
	a := c.agent
	at.agent = &a
	keys, oerr := s.assertionKeys(ctx, c, h.KeyID, h.Algorithm, now)
	if oerr != nil {
		return nil, at, oerr
	}
	verified := false
	for _, k := range keys {
		// Claims with no destination only verifies: the claims were
		// decoded from the same payload bytes by parseAssertion, so they
		// are the verified claims once this succeeds (go-jose's decoder
		// is ≈ 5 % of a token's CPU; decoding twice bought nothing).
		if err := tok.Claims(k.key); err == nil {
			verified, at.keyID = true, k.id
			break
		}
	}
	if !verified {
		return nil, at, clientFailed(false, "client assertion signature does not verify with a registered key")
	}
	claims := unverified
	if e := s.checkAssertionClaims(claims, a.ID, now); e != nil {
		return nil, at, e
	}
	if why := usable(a, now); why != "" {
		return nil, at, clientFailed(false, "%s", why)
	}
	return &authClient{agent: a, method: MethodPrivateKeyJWT, keyID: at.keyID, jti: claims.ID,
		jtiExp: claims.Expiry.Time().Add(Leeway), version: versionIf(cached, a)}, at, nil
}

// parseAssertion parses a client assertion without verifying it: a JWS
// with one signature and an allowed algorithm, and its claims (to find the
// client and its keys).
func parseAssertion(raw string) (*jwt.JSONWebToken, jwt.Claims, *Error) {
	var unverified jwt.Claims
	if len(raw) > MaxAssertionBytes {
		return nil, unverified, clientFailed(false, "client assertion is longer than %d bytes", MaxAssertionBytes)
	}
	tok, err := jwt.ParseSigned(raw, AssertionAlgorithms)
	if err != nil {
		return nil, unverified, clientFailed(false, "client assertion is not a JWS with an allowed algorithm")
	}
	if len(tok.Headers) != 1 {
		return nil, unverified, clientFailed(false, "client assertion must have one signature")
	}
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, unverified, clientFailed(false, "client assertion claims are malformed")
	}
	return tok, unverified, nil
}

type verifyKey struct {
	id  string
	key any
}

// assertionKeys returns the agent's unexpired registered keys that may
// verify a JWS with the header's kid and alg: the one key named by kid, or
// every key when the header has none.
func (s *Server) assertionKeys(ctx context.Context, c *client, kid, alg string, now time.Time) ([]verifyKey, *Error) {
	keys, err := c.publicKeys(ctx, s.store)
	if err != nil {
		return nil, serverError(err)
	}
	var out []verifyKey
	known := kid == ""
	for _, k := range keys {
		if kid != "" && k.id != kid {
			continue
		}
		known = true
		if (!k.expiresAt.IsZero() && !now.Before(k.expiresAt)) || k.alg != alg {
			continue
		}
		out = append(out, verifyKey{id: k.id, key: k.key})
	}
	switch {
	case !known:
		return nil, clientFailed(false, "unknown key id")
	case len(out) == 0:
		return nil, clientFailed(false, "no unexpired registered key for algorithm %s", printable(alg))
	}
	return out, nil
}

// checkAssertionClaims applies RFC 7523 §3 to a verified assertion.
func (s *Server) checkAssertionClaims(c jwt.Claims, clientID string, now time.Time) *Error {
	switch {
	case c.Issuer != clientID || c.Subject != clientID:
		return clientFailed(false, "assertion iss and sub must both be the client_id")
	case !slices.Contains(c.Audience, s.issuer) && !slices.Contains(c.Audience, s.tokenURL):
		return clientFailed(false, "assertion aud must contain the issuer or the token endpoint")
	case c.Expiry == nil:
		return clientFailed(false, "assertion has no exp")
	case c.Expiry.Time().Add(Leeway).Before(now):
		return clientFailed(false, "assertion expired")
	case c.Expiry.Time().After(now.Add(MaxAssertionLifetime + Leeway)):
		return clientFailed(false, "assertion exp is more than %s ahead", MaxAssertionLifetime)
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(Leeway)):
		return clientFailed(false, "assertion is not yet valid")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(Leeway)):
		return clientFailed(false, "assertion iat is in the future")
	case c.ID == "":
		return clientFailed(false, "assertion has no jti")
	case len(c.ID) > MaxJTILen:
		return clientFailed(false, "assertion jti is longer than %d bytes", MaxJTILen)
	}
	return nil
}

// useAssertion records the assertion's jti as used inside tx (RFC 7523
// §3 item 7); ErrAlreadyExists from the store means a replay.
func (c *authClient) useAssertion(ctx context.Context, tx store.Tx, now time.Time) *Error {
	if c.attest != nil {
		return c.attest.refreshInstance(ctx, tx, now)
	}
	if c.jti == "" {
		return nil
	}
	err := tx.UseOnce(ctx, "assertion:"+c.agent.ID, c.jti, now, c.jtiExp)
	switch {
	case errors.Is(err, store.ErrAlreadyExists):
		return clientFailed(false, "assertion jti was already used")
	case err != nil:
		return serverError(err)
	}
	return nil
}

// authEvent is the audit event of one client authentication attempt.
func (s *Server) authEvent(o audit.Origin, at authAttempt, e *Error, now time.Time) audit.Event {
	ev := o.Event(audit.Authentication, "client.authenticated")
	ev.Time = now
	if at.agent != nil {
		ev.Agent = agentAxis(*at.agent)
		ev.Actor = &audit.Actor{Type: audit.ActorAgent, ID: at.agent.ID}
	}
	ev.Details = map[string]any{}
	if at.method != "" {
		ev.Details["method"] = at.method
	}
	if at.clientID != "" && at.agent == nil {
		ev.Details["client_id"] = at.clientID
	}
	if at.keyID != "" {
		ev.Details["key_id"] = at.keyID
	}
	if at.attest != nil {
		at.attest.attestDetails(&ev)
	}
	if e != nil {
		ev.Outcome = audit.Failure
		ev.Reason = e.Reason
	}
	return ev
}

// printable bounds a client-supplied identifier for the audit trail: at
// most 64 bytes of printable ASCII, else its SHA-256 prefix.
func printable(s string) string {
	ok := len(s) <= 64
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= 0x21 && s[i] <= 0x7e
	}
	if ok {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:8])
}
