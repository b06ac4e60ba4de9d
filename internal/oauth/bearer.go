package oauth

import (
	"context"
	"crypto/sha256"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/identity"
)

// PermissionEvaluate lets an agent ask the decision point (the AuthZEN
// endpoints) with its own access token.
const PermissionEvaluate = identity.PermissionEvaluate

// EventTokenAuthenticated (family authentication, outcome failure)
// records an access token refused at an agentid endpoint that takes one as
// a bearer credential; details "client_id" and "jti" when the token
// parsed. Accepted tokens are recorded by the events of the requests they
// authorise (their actor is the agent).
const EventTokenAuthenticated = "token.authenticated"

// AuthenticateBearer authenticates an agentid access token presented as an
// RFC 6750 §2.1 bearer credential to an agentid endpoint other than the
// OAuth ones (the AuthZEN decision endpoints). The token must be active
// by introspection's rules (RFC 7662: it verifies, has not expired, is
// not revoked, its agent may still use credentials), name the issuer in
// its audience (RFC 8707: a token for another resource is not for
// agentid), and not be DPoP-bound (a bound token needs a proof, RFC 9449
// §7.1, which these endpoints do not take yet); its agent must hold perm.
// The signature check is cached for BearerCacheTTL by the token's SHA-256;
// the revocation checks (jti, the agent, its instance and grant chain)
// read the store on every call, so a revocation takes effect at once.
// It returns o with the agent as actor. A refusal is audited and is an
// *Error with the RFC 6750 §3.1 code and status (401 invalid_token, 403
// insufficient_scope) and its challenge.
func (s *Server) AuthenticateBearer(ctx context.Context, o audit.Origin, raw, perm string) (audit.Origin, *Error) {
	now := s.now()
	var (
		ok  bool
		err error
	)
	c, verified := s.verifyBearer(raw, now)
	if verified {
		c, ok, err = s.activeParsed(ctx, c, now)
	}
	if err != nil {
		return o, serverError(err)
	}
	var e *Error
	switch {
	case !ok:
		e = bearerError(CodeInvalidToken, http.StatusUnauthorized, "the access token is not active", "inactive token")
	case !slices.Contains(c.Audience, s.issuer):
		e = bearerError(CodeInvalidToken, http.StatusUnauthorized, "the access token's audience does not include "+s.issuer, "wrong audience")
	case c.Cnf != nil:
		e = bearerError(CodeInvalidToken, http.StatusUnauthorized, "DPoP-bound access tokens are not accepted here", "sender-constrained token")
	}
	var agentPerms []string
	if e == nil {
		cl, oerr, found := s.lookupClient(ctx, c.ClientID)
		switch {
		case oerr != nil:
			return o, oerr
		case !found:
			e = bearerError(CodeInvalidToken, http.StatusUnauthorized, "the access token is not active", "unknown agent")
		default:
			agentPerms = cl.agent.Permissions
		}
	}
	if e == nil && !slices.Contains(agentPerms, perm) {
		e = bearerError("insufficient_scope", http.StatusForbidden, "the agent does not hold the "+perm+" permission", "missing permission "+perm)
	}
	if e != nil {
		ev := o.Event(audit.Authentication, EventTokenAuthenticated)
		ev.Time, ev.Outcome, ev.Reason = now, audit.Failure, e.Reason
		ev.Details = map[string]any{"method": "bearer"}
		if c.ClientID != "" {
			ev.Details["client_id"], ev.Details["jti"] = printable(c.ClientID), printable(c.JTI)
		}
		if err := s.record(ctx, ev); err != nil {
			s.log.ErrorContext(ctx, "oauth: audit trail not written", "err", err)
			return o, serverError(err)
		}
		return o, e
	}
	o.Actor = audit.Actor{Type: audit.ActorAgent, ID: c.ClientID}
	return o, nil
}

// bearerError is an RFC 6750 §3.1 error with its challenge.
func bearerError(code string, status int, desc, reason string) *Error {
	return &Error{Code: code, Status: status, Description: desc, Reason: reason,
		Challenge: `Bearer realm="agentid", error="` + code + `"`}
}

// BearerCacheTTL is how long AuthenticateBearer reuses a token's verified
// signature and claims without verifying them again: the bound on how
// long a token signed by a key removed from the key set (on this replica
// or another) keeps verifying. Expiry and revocation are checked on every
// call.
const BearerCacheTTL = time.Second

// bearerCacheSize bounds the tokens a Server keeps; when it is reached
// the cache starts afresh.
const bearerCacheSize = 4096

// bearerCache keeps the claims of access tokens whose signature verified,
// by the token's SHA-256 (never the token). Safe for concurrent use.
type bearerCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]verifiedBearer
}

type verifiedBearer struct {
	claims credential.Claims // read only: shared by the callers
	at     time.Time
}

// verifyBearer parses raw and verifies its signature, or finds it
// verified less than BearerCacheTTL before now; ok is false when raw is
// not an access token of this issuer.
func (s *Server) verifyBearer(raw string, now time.Time) (credential.Claims, bool) {
	key := sha256.Sum256([]byte(raw))
	c := &s.bearers
	c.mu.Lock()
	e, hit := c.m[key]
	c.mu.Unlock()
	if hit && !now.Before(e.at) && now.Sub(e.at) < BearerCacheTTL {
		return e.claims, true
	}
	claims, err := s.tokens.ParseAccessToken(raw)
	if err != nil {
		return credential.Claims{}, false // not a token of ours: inactive
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= bearerCacheSize {
		c.m = make(map[[sha256.Size]byte]verifiedBearer)
	}
	c.m[key] = verifiedBearer{claims: claims, at: now}
	return claims, true
}
