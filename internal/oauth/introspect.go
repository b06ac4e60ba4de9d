package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
)

// IntrospectionResponse is an RFC 7662 §2.2 response: Active, and for an
// active token every claim it carries.
type IntrospectionResponse struct {
	Active        bool                     `json:"active"`
	Scope         string                   `json:"scope,omitempty"`
	ClientID      string                   `json:"client_id,omitempty"`
	TokenType     string                   `json:"token_type,omitempty"`
	Exp           int64                    `json:"exp,omitempty"`
	Iat           int64                    `json:"iat,omitempty"`
	Nbf           int64                    `json:"nbf,omitempty"`
	Sub           string                   `json:"sub,omitempty"`
	Aud           credential.Audience      `json:"aud,omitempty"`
	Iss           string                   `json:"iss,omitempty"`
	JTI           string                   `json:"jti,omitempty"`
	Agent         *credential.AgentClaim   `json:"agent,omitempty"`
	AgentInstance string                   `json:"agent_instance,omitempty"`
	Act           json.RawMessage          `json:"act,omitempty"`
	GrantID       string                   `json:"grant_id,omitempty"`
	SubjectID     *credential.SubjectID    `json:"sub_id,omitempty"`
	TraceID       string                   `json:"trace_id,omitempty"`
	ReasoningRef  string                   `json:"reasoning_ref,omitempty"`
	Cnf           *credential.Confirmation `json:"cnf,omitempty"`
}

// Introspect handles an introspection request (RFC 7662 §2.1). The caller
// is an admin (Request.Admin) or an agent holding the introspect permission
// that authenticates as a client.
func (s *Server) Introspect(ctx context.Context, r *Request) (IntrospectionResponse, *Error) {
	if e := checkRepeated(r.Form); e != nil {
		return IntrospectionResponse{}, e
	}
	now := s.now()
	if e := s.authorizeCaller(ctx, r, now, PermissionIntrospect); e != nil {
		return IntrospectionResponse{}, e
	}
	raw := param(r.Form, "token")
	if raw == "" {
		return IntrospectionResponse{}, errf(CodeInvalidRequest, "token is required")
	}
	c, ok, err := s.activeClaims(ctx, raw, now)
	if err != nil {
		return IntrospectionResponse{}, serverError(err)
	}
	if !ok {
		return IntrospectionResponse{Active: false}, nil
	}
	resp := IntrospectionResponse{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, TokenType: TokenTypeBearer,
		Exp: c.Expiry, Iat: c.IssuedAt, Nbf: c.NotBefore, Sub: c.Subject, Aud: c.Audience,
		Iss: c.Issuer, JTI: c.JTI, Agent: &c.Agent, AgentInstance: c.AgentInstance, Act: c.Act,
		GrantID: c.GrantID, SubjectID: c.SubjectID, TraceID: c.TraceID, ReasoningRef: c.ReasoningRef, Cnf: c.Cnf,
	}
	if c.Cnf != nil && c.Cnf.JKT != "" {
		resp.TokenType = TokenTypeDPoP
	}
	return resp, nil
}

// activeClaims parses a token and reports whether it is active at now: it
// verifies, has not expired, is not revoked (by jti or by its agent's
// revoke-all), its agent may still use credentials, and, for a delegated
// token, nothing up its chain was revoked (chainActive).
func (s *Server) activeClaims(ctx context.Context, raw string, now time.Time) (credential.Claims, bool, error) {
	c, err := s.tokens.ParseAccessToken(raw)
	if err != nil {
		// Not a token of ours: inactive, which is not a failure (RFC 7662 §2.2).
		return credential.Claims{}, false, nil //nolint:nilerr // see above
	}
	return s.activeParsed(ctx, c, now)
}

// activeParsed is activeClaims for claims already parsed and verified.
func (s *Server) activeParsed(ctx context.Context, c credential.Claims, now time.Time) (credential.Claims, bool, error) {
	t := now.Unix()
	if c.Expiry <= t || c.NotBefore > t+int64(Leeway/time.Second) {
		return c, false, nil
	}
	switch _, err := s.store.GetRevokedToken(ctx, c.JTI); {
	case err == nil:
		return c, false, nil
	case !errors.Is(err, store.ErrNotFound):
		return c, false, err
	}
	cl, oerr, ok := s.lookupClient(ctx, c.ClientID)
	switch {
	case oerr != nil:
		return c, false, oerr.Err
	case !ok:
		return c, false, nil
	}
	a := cl.agent
	if usable(a, now) != "" || identity.TokensRevoked(a, time.Unix(c.IssuedAt, 0)) {
		return c, false, nil
	}
	if ok, err := s.instanceActive(ctx, c.AgentInstance); !ok || err != nil {
		return c, false, err
	}
	if c.GrantID != "" || len(c.Act) > 0 {
		if c.GrantID == "" {
			return c, false, nil // agentid never issues an act without a grant
		}
		ok, err := s.chainActive(ctx, c, now)
		return c, ok, err
	}
	return c, true, nil
}

// authorizeCaller authenticates the caller of introspection or revocation:
// an admin, or an agent authenticating as a client that holds perm (no
// permission needed when perm is ""). Agent attempts are audited.
func (s *Server) authorizeCaller(ctx context.Context, r *Request, now time.Time, perm string) *Error {
	_, _, e := s.caller(ctx, r, now, perm)
	return e
}

// caller is authorizeCaller returning the authenticated agent (nil for an
// admin).
func (s *Server) caller(ctx context.Context, r *Request, now time.Time, perm string) (*authClient, audit.Origin, *Error) {
	o := r.Origin
	if r.Admin != nil {
		o.Actor = *r.Admin
		return nil, o, nil
	}
	c, at, e := s.authenticate(ctx, r, now)
	if e == nil && perm != "" && !slices.Contains(c.agent.Permissions, perm) {
		e = errf(CodeUnauthorizedClient, "the agent does not hold the %s permission", perm)
		e.Status = 403
	}
	if e != nil {
		return nil, o, s.fail(ctx, o, at, e, now)
	}
	// The assertion's jti is spent with the success event.
	var replay *Error
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if replay = c.useAssertion(ctx, tx, now); replay != nil {
			return replay
		}
		_, err := s.rec.Append(ctx, tx, s.authEvent(o, at, nil, now))
		return err
	})
	switch {
	case replay != nil && errors.Is(err, replay):
		return nil, o, s.fail(ctx, o, at, replay, now)
	case err != nil:
		return nil, o, serverError(err)
	}
	o.Actor = audit.Actor{Type: audit.ActorAgent, ID: c.agent.ID}
	return c, o, nil
}
