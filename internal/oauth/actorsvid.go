package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
)

// MethodJWTSVID is the authentication method of an actor that presented a
// JWT-SVID as its actor token.
const MethodJWTSVID = "actor_token:jwt_svid"

// isJWTSVID reports whether an actor token of type jwt claims a SPIFFE ID
// as its subject (a JWT-SVID, SPIFFE JWT-SVID §3) rather than a client id
// (a client assertion). Nothing is trusted yet: actorSVID verifies it.
func isJWTSVID(raw string) bool {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(parts[1]) > MaxAssertionBytes {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var c struct {
		Sub string `json:"sub"`
	}
	return json.Unmarshal(b, &c) == nil && strings.HasPrefix(c.Sub, "spiffe://")
}

// actorSVID authenticates the actor by a JWT-SVID (ADR 0014 addendum C):
// validated with go-spiffe's jwtsvid.ParseAndValidate against the trust
// domain's JWT authorities (the bundle), with agentid's issuer URL in its
// aud; its SPIFFE ID must be a registered agent's (spiffe://<td>/agent/
// <name>) that may use credentials and has not revoked its tokens since the
// SVID was issued.
func (s *Server) actorSVID(ctx context.Context, raw string, now time.Time) (*authClient, authAttempt, *Error) {
	at := authAttempt{method: MethodJWTSVID}
	refuse := func(reason string) (*authClient, authAttempt, *Error) {
		return nil, at, errf(CodeInvalidRequest, "actor_token is not a valid JWT-SVID: %s", reason)
	}
	if s.jwtAuthorities == nil || s.trustDomain == "" {
		return refuse("JWT-SVIDs are not accepted here")
	}
	td, err := spiffeid.TrustDomainFromString(s.trustDomain)
	if err != nil {
		return nil, at, serverError(err)
	}
	keys, err := s.jwtAuthorities()
	if err != nil {
		return nil, at, serverError(err)
	}
	svid, err := jwtsvid.ParseAndValidate(raw, jwtbundle.FromJWTAuthorities(td, keys), []string{s.issuer})
	if err != nil {
		reason := strings.TrimPrefix(err.Error(), "jwtsvid: ")
		if len(reason) > 120 {
			reason = reason[:120]
		}
		return refuse(reason)
	}
	// go-spiffe checks exp; agentid also refuses an iat in the future.
	var iat time.Time
	if v, ok := svid.Claims["iat"].(float64); ok {
		iat = time.Unix(int64(v), 0)
		if iat.After(now.Add(Leeway)) {
			return refuse("iat is in the future")
		}
	}
	name, ok := strings.CutPrefix(svid.ID.Path(), "/agent/")
	if !ok || svid.ID.TrustDomain() != td || name == "" || strings.Contains(name, "/") {
		return refuse("its SPIFFE ID is not an agent of this trust domain")
	}
	a, err := s.store.GetAgentByName(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return refuse("no such agent")
	case err != nil:
		return nil, at, serverError(err)
	case a.SPIFFEID != svid.ID.String():
		return refuse("no such agent")
	}
	at.agent = &a
	if why := usable(a, now); why != "" {
		return refuse(why)
	}
	if !iat.IsZero() && identity.TokensRevoked(a, iat) {
		return refuse("the agent has revoked its credentials since it was issued")
	}
	return &authClient{agent: a, method: MethodJWTSVID}, at, nil
}
