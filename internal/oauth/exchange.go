package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/dpop"
)

// GrantTokenExchange is the grant type of RFC 8693 §2.1.
const GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange" //nolint:gosec // G101: a URN, not a credential

// Token type identifiers of RFC 8693 §3.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token" //nolint:gosec // G101: a URN, not a credential
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"          //nolint:gosec // G101: a URN, not a credential
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"     //nolint:gosec // G101: a URN, not a credential
)

// MaxAudiences bounds the audience parameters of one exchange.
const MaxAudiences = 16

// exchangeParams are an exchange's validated form parameters.
type exchangeParams struct {
	subjectToken, subjectType string
	actorToken, actorType     string
	scopes                    []string
	audiences                 []string // resource and audience, in order, deduplicated
	requested                 string   // requested_token_type, default access_token
}

// subjectInfo is what the subject token says, whoever issued it.
type subjectInfo struct {
	issuer, subject string
	scopes          []string
	scoped          bool
	audience        []string // agentid tokens only
	expiry          time.Time
	act             *delegation.Act // the chain so far, nil for a root
	grantID         string          // set: a delegated token (sub-delegation)
	mayAct          *delegation.MayAct
	jkt             string // cnf.jkt of an agentid token
	// parent* describe an agentid token (empty for a person's token).
	parentJTI, parentAgent string
	parentIAT              time.Time
}

// parseExchange validates the parameters of RFC 8693 §2.1.
func parseExchange(f url.Values) (exchangeParams, *Error) {
	p := exchangeParams{
		subjectToken: param(f, "subject_token"), subjectType: param(f, "subject_token_type"),
		actorToken: param(f, "actor_token"), actorType: param(f, "actor_token_type"),
	}
	switch {
	case p.subjectToken == "":
		return p, errf(CodeInvalidRequest, "subject_token is required")
	case p.subjectType == "":
		return p, errf(CodeInvalidRequest, "subject_token_type is required")
	case p.subjectType != TokenTypeAccessToken && p.subjectType != TokenTypeJWT && p.subjectType != TokenTypeIDToken &&
		p.subjectType != TokenTypeTxnToken:
		return p, errf(CodeInvalidRequest, "subject_token_type %s is not supported", safeName(p.subjectType))
	case len(p.subjectToken) > credential.MaxTokenBytes || len(p.actorToken) > credential.MaxTokenBytes:
		return p, errf(CodeInvalidRequest, "a token is longer than %d bytes", credential.MaxTokenBytes)
	case p.actorToken != "" && p.actorType == "":
		return p, errf(CodeInvalidRequest, "actor_token_type is required with actor_token")
	case p.actorToken == "" && p.actorType != "":
		return p, errf(CodeInvalidRequest, "actor_token_type without actor_token")
	case p.actorToken != "" && p.actorType != TokenTypeAccessToken && p.actorType != TokenTypeJWT:
		return p, errf(CodeInvalidRequest, "actor_token_type %s is not supported", safeName(p.actorType))
	}
	p.requested = TokenTypeAccessToken
	switch rt := param(f, "requested_token_type"); rt {
	case "", TokenTypeAccessToken:
	case TokenTypeTxnToken:
		p.requested = rt
	default:
		return p, errf(CodeInvalidRequest, "requested_token_type %s is not supported", safeName(rt))
	}
	if p.subjectType == TokenTypeTxnToken && p.requested != TokenTypeTxnToken {
		// A transaction token is context, not authority: it buys nothing
		// but a narrower transaction token (ADR 0014 addendum A).
		return p, errf(CodeInvalidRequest, "a transaction token can only be exchanged for a transaction token")
	}
	scopes, ok := splitScope(param(f, "scope"))
	switch {
	case !ok:
		return p, errf(CodeInvalidScope, "scope is malformed")
	case len(scopes) > MaxScopes:
		return p, errf(CodeInvalidScope, "more than %d scopes", MaxScopes)
	}
	p.scopes = scopes
	if len(f["resource"]) > MaxResources || len(f["audience"]) > MaxAudiences {
		return p, errf(CodeInvalidTarget, "more than %d resources or %d audiences", MaxResources, MaxAudiences)
	}
	for _, r := range f["resource"] {
		if r == "" {
			continue
		}
		if !validResource(r) {
			return p, errf(CodeInvalidTarget, "resource must be an absolute URI without a fragment")
		}
		if !slices.Contains(p.audiences, r) {
			p.audiences = append(p.audiences, r)
		}
	}
	for _, a := range f["audience"] {
		if a == "" {
			continue
		}
		if len(a) > 512 || printable(a) != a {
			return p, errf(CodeInvalidTarget, "audience must be at most 512 printable characters")
		}
		if !slices.Contains(p.audiences, a) {
			p.audiences = append(p.audiences, a)
		}
	}
	return p, nil
}

// hasClientAuth reports whether the request carries client credentials.
func hasClientAuth(r *Request) bool {
	f := r.Form
	return r.Basic != nil || param(f, "client_assertion") != "" || param(f, "client_assertion_type") != "" ||
		param(f, "client_secret") != ""
}

// exchange handles a token exchange request (RFC 8693 §2, ADR 0014 §4).
func (s *Server) exchange(ctx context.Context, r *Request, o audit.Origin, now time.Time) (TokenResponse, *Error) {
	if s.deleg == nil {
		return TokenResponse{}, errf(CodeUnsupportedGrantType, "grant_type %s is not enabled", safeName(GrantTokenExchange))
	}
	xp, perr := parseExchange(r.Form)

	// The actor: the authenticated client, the actor token, or both
	// naming one agent.
	var (
		clients  []*authClient // whose assertion jtis are spent on success
		actor    *authClient
		at       authAttempt
		e        *Error
		boundJKT string // cnf.jkt of the actor token, if any
	)
	if hasClientAuth(r) {
		actor, at, e = s.authenticate(ctx, r, now)
		if e != nil {
			return TokenResponse{}, s.fail(ctx, o, at, e, now)
		}
		clients = append(clients, actor)
	}
	if perr == nil && xp.actorToken != "" {
		ac, aat, ae := s.actorToken(ctx, xp, r, now)
		switch {
		case ae != nil && actor == nil:
			return TokenResponse{}, s.fail(ctx, o, aat, ae, now)
		case ae != nil:
			e = ae
		case actor != nil && ac.agent.ID != actor.agent.ID:
			e = errf(CodeInvalidRequest, "actor_token names another agent than the authenticated client")
		case actor == nil:
			actor, at = ac, aat
		}
		if ac != nil {
			clients = append(clients, ac)
			boundJKT = ac.boundJKT
		}
	}
	if actor == nil {
		if perr != nil {
			return TokenResponse{}, perr
		}
		return TokenResponse{}, s.fail(ctx, o, at, clientFailed(false, "no client authentication and no actor_token"), now)
	}
	authOK := s.authEvent(o, at, nil, now)
	if e == nil {
		e = perr
	}
	var proof dpop.Proof
	if e == nil {
		proof, e = s.checkDPoP(r, actor.agent, now)
	}
	if e == nil && boundJKT != "" && proof.Thumbprint != boundJKT {
		e = errf(CodeInvalidRequest, "the actor token is DPoP-bound: a DPoP proof by its key is required")
	}
	if e == nil && xp.requested == TokenTypeTxnToken {
		return s.txnExchange(ctx, r, o, at, authOK, clients, actor.agent, xp, proof, now)
	}
	var (
		sub *subjectInfo
		g   store.Grant
		n   delegation.Narrowed
	)
	if e == nil {
		sub, e = s.subjectToken(ctx, xp, now)
	}
	if e == nil && sub.jkt != "" && proof.Thumbprint != sub.jkt {
		e = errf(CodeInvalidRequest, "the subject token is DPoP-bound: a DPoP proof by its key is required")
	}
	if e == nil {
		g, n, e = s.selectGrant(ctx, xp, sub, actor.agent, now)
	}
	if e != nil {
		return TokenResponse{}, s.fail(ctx, o, at, e, now, authOK, s.exchangeDenied(o, actor.agent, e, now))
	}
	return s.issueExchanged(ctx, o, at, authOK, clients, actor.agent, xp, sub, g, n, proof, now)
}

// actorToken authenticates the actor by its actor_token (RFC 8693 §2.1):
// one of agentid's plain access tokens of an active agent, or a client
// assertion (RFC 7523 §3, its jti spent with the outcome).
func (s *Server) actorToken(ctx context.Context, xp exchangeParams, r *Request, now time.Time) (*authClient, authAttempt, *Error) {
	if xp.actorType == TokenTypeJWT && isJWTSVID(xp.actorToken) {
		return s.actorSVID(ctx, xp.actorToken, now)
	}
	if xp.actorType == TokenTypeJWT {
		c, at, e := s.authAssertion(ctx, url.Values{
			"client_assertion_type": {AssertionType}, "client_assertion": {xp.actorToken},
			"client_id": {param(r.Form, "client_id")},
		}, now, false)
		at.method = "actor_token:" + MethodPrivateKeyJWT
		if e != nil {
			// An actor token is not client authentication: a bad one is
			// an invalid request (RFC 8693 §2.2.2), the reason recorded.
			return nil, at, errf(CodeInvalidRequest, "actor_token is not a valid client assertion: %s", e.Reason)
		}
		c.method = at.method
		return c, at, nil
	}
	at := authAttempt{method: "actor_token:access_token"}
	claims, ok, err := s.activeClaims(ctx, xp.actorToken, now)
	switch {
	case err != nil:
		return nil, at, serverError(err)
	case !ok:
		return nil, at, errf(CodeInvalidRequest, "actor_token is not an active access token of this issuer")
	case claims.GrantID != "":
		return nil, at, errf(CodeInvalidRequest, "actor_token must be the agent's own token, not a delegated one")
	}
	cl, oerr, found := s.lookupClient(ctx, claims.ClientID)
	switch {
	case oerr != nil:
		return nil, at, oerr
	case !found:
		return nil, at, errf(CodeInvalidRequest, "actor_token's agent does not exist")
	}
	a := cl.agent
	at.agent = &a
	c := &authClient{agent: a, method: at.method}
	if claims.Cnf != nil {
		c.boundJKT = claims.Cnf.JKT
		// A certificate-bound actor token (RFC 8705 §3) is only used over
		// TLS with its certificate.
		if x5t := claims.Cnf.X5TS256; x5t != "" && (len(r.PeerCertificates) == 0 || CertThumbprint(r.PeerCertificates[0]) != x5t) {
			return nil, at, errf(CodeInvalidRequest, "the actor token is bound to a client certificate the request does not present")
		}
	}
	return c, at, nil
}

// subjectToken verifies the subject token: one of agentid's own access
// tokens (active, cascade included) or a token of a trusted issuer.
func (s *Server) subjectToken(ctx context.Context, xp exchangeParams, now time.Time) (*subjectInfo, *Error) {
	if delegation.UnverifiedIssuer(xp.subjectToken) == s.issuer {
		c, ok, err := s.activeClaims(ctx, xp.subjectToken, now)
		switch {
		case err != nil:
			return nil, serverError(err)
		case !ok:
			return nil, errf(CodeInvalidRequest, "subject_token is not an active token of this issuer")
		}
		act, err := delegation.ParseAct(c.Act)
		if err != nil {
			return nil, errf(CodeInvalidRequest, "subject_token has a malformed act claim")
		}
		sub := &subjectInfo{
			issuer: s.issuer, subject: c.Subject, scopes: strings.Fields(c.Scope), scoped: true,
			audience: nonNilList(c.Audience), expiry: time.Unix(c.Expiry, 0).UTC(), act: act, grantID: c.GrantID,
			parentJTI: c.JTI, parentAgent: c.ClientID, parentIAT: time.Unix(c.IssuedAt, 0).UTC(),
		}
		if c.SubjectID != nil {
			sub.issuer = c.SubjectID.Issuer
		}
		if c.Cnf != nil {
			sub.jkt = c.Cnf.JKT
		}
		return sub, nil
	}
	ps, err := s.deleg.Issuers().Verify(ctx, xp.subjectToken)
	if err != nil {
		var te *delegation.TokenError
		if errors.Is(err, delegation.ErrKeysUnavailable) {
			s.log.WarnContext(ctx, "oauth: subject token issuer keys unavailable", "err", err)
			return nil, &Error{Code: CodeTemporarilyUnavailable, Status: http.StatusServiceUnavailable,
				Description: "the subject token's issuer keys are unavailable; retry later", Reason: "subject token issuer keys unavailable"}
		}
		reason := "subject_token is not valid"
		if errors.As(err, &te) {
			reason = "subject_token: " + te.Reason
		}
		return nil, errf(CodeInvalidRequest, "%s", reason)
	}
	return &subjectInfo{issuer: ps.Issuer, subject: ps.Subject, scopes: ps.Scopes, scoped: ps.Scoped,
		expiry: ps.Expiry, mayAct: ps.MayAct}, nil
}

func nonNilList(a credential.Audience) []string {
	if a == nil {
		return []string{}
	}
	return []string(a)
}

// selectGrant finds the grant the exchange runs under and narrows the
// token within it (ADR 0014 §4 rules 1, 2, 4–6).
func (s *Server) selectGrant(ctx context.Context, xp exchangeParams, sub *subjectInfo, actor store.Agent, now time.Time) (store.Grant, delegation.Narrowed, *Error) {
	var none store.Grant
	if m := sub.mayAct; m != nil {
		if (m.Sub != actor.SPIFFEID && m.Sub != actor.ID) || (m.Iss != "" && m.Iss != s.issuer) {
			return none, delegation.Narrowed{}, errf(CodeInvalidRequest, "the subject token's may_act does not name this agent")
		}
	}
	if sub.subject == actor.SPIFFEID || sub.act.Contains(actor.SPIFFEID) {
		return none, delegation.Narrowed{}, errf(CodeInvalidRequest, "the agent is already the subject or in the chain")
	}
	bounds := func(g store.Grant) delegation.Bounds {
		return delegation.Bounds{
			SubjectScopes: sub.scopes, SubjectScoped: sub.scoped, SubjectAudience: sub.audience,
			GrantScopes: g.Scopes, GrantAudiences: g.Audiences, AgentScopes: actor.Scopes, AgentAudiences: actor.Audiences,
			RequestScopes: xp.scopes, RequestAudiences: xp.audiences,
			Now: now, TTL: min(s.ttl, actor.MaxTTL), SubjectExpiry: sub.expiry, GrantExpiry: g.ExpiresAt,
		}
	}
	if sub.grantID != "" {
		// Sub-delegation: the subject token's grant, one more actor.
		g, err := s.store.GetGrant(ctx, sub.grantID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return none, delegation.Narrowed{}, errf(CodeInvalidRequest, "the subject token's grant does not exist")
		case err != nil:
			return none, delegation.Narrowed{}, serverError(err)
		case !g.RevokedAt.IsZero() || !now.Before(g.ExpiresAt):
			return none, delegation.Narrowed{}, errf(CodeInvalidRequest, "the subject token's grant is revoked or expired")
		case sub.act == nil:
			return none, delegation.Narrowed{}, errf(CodeInvalidRequest, "an impersonation token cannot be exchanged")
		case !g.AllowSubdelegation:
			return none, delegation.Narrowed{}, errf(CodeInvalidRequest, "the grant does not allow sub-delegation")
		case sub.act.Depth()+1 > min(g.MaxDepth, s.deleg.MaxChainDepth()):
			return none, delegation.Narrowed{}, errf(CodeInvalidRequest, "the delegation chain would exceed its maximum depth of %d", min(g.MaxDepth, s.deleg.MaxChainDepth()))
		}
		n, err := delegation.Narrow(bounds(g))
		if err != nil {
			return none, n, narrowError(err)
		}
		return g, n, nil
	}
	gs, _, err := s.store.ListGrants(ctx, store.GrantFilter{
		SubjectIssuer: sub.issuer, Subject: sub.subject, AgentID: actor.ID, ActiveAt: now,
	}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		return none, delegation.Narrowed{}, serverError(err)
	}
	if len(gs) == 0 {
		return none, delegation.Narrowed{}, errf(CodeInvalidRequest, "no active grant lets this agent act for the subject")
	}
	// The newest grant that allows the request.
	var first error
	for i := len(gs) - 1; i >= 0; i-- {
		n, err := delegation.Narrow(bounds(gs[i]))
		if err == nil {
			return gs[i], n, nil
		}
		if first == nil {
			first = err
		}
	}
	return none, delegation.Narrowed{}, narrowError(first)
}

// narrowError maps delegation.Narrow's errors to OAuth errors.
func narrowError(err error) *Error {
	switch {
	case errors.Is(err, delegation.ErrScope):
		return errf(CodeInvalidScope, "the requested scope is empty or wider than the subject token, the grant and the agent allow")
	case errors.Is(err, delegation.ErrTarget):
		return errf(CodeInvalidTarget, "the requested audience is empty or outside the grant and the agent's audiences")
	default:
		return errf(CodeInvalidRequest, "the subject token or the grant expires too soon")
	}
}

// issueExchanged mints the delegated token and commits, in one
// transaction, the spent one-time ids, the exchanged-token record and the
// audit events.
func (s *Server) issueExchanged(ctx context.Context, o audit.Origin, at authAttempt, authOK audit.Event, clients []*authClient,
	actor store.Agent, xp exchangeParams, sub *subjectInfo, g store.Grant, n delegation.Narrowed, proof dpop.Proof, now time.Time) (TokenResponse, *Error) {
	chain := sub.act.Push(actor.SPIFFEID)
	act, err := chain.Marshal()
	if err != nil {
		return TokenResponse{}, s.fail(ctx, o, at, serverError(err), now)
	}
	// Impersonation (addendum B): an agent allowed it gets no act for a
	// subject token that is not itself delegated; the trail still has the
	// whole chain.
	impersonate := sub.grantID == "" && slices.Contains(actor.Permissions, PermissionImpersonate)
	if impersonate {
		act = nil
	}
	ttl := min(s.ttl, actor.MaxTTL).Truncate(time.Second)
	tok, err := s.tokens.IssueAccessToken(credential.AccessTokenParams{
		Agent: actor, Audience: n.Audiences, Scopes: n.Scopes, IssuedAt: now, TTL: max(ttl, time.Second), Expiry: n.Expiry,
		TraceID: o.TraceID, ReasoningRef: o.ReasoningRef, JKT: proof.Thumbprint,
		Subject:   sub.subject,
		SubjectID: &credential.SubjectID{Format: "iss_sub", Issuer: sub.issuer, Subject: sub.subject},
		Act:       act, GrantID: g.ID, Impersonation: impersonate,
	})
	if err != nil {
		return TokenResponse{}, s.fail(ctx, o, at, serverError(err), now)
	}
	tokenType := TokenTypeBearer
	if proof.Thumbprint != "" {
		tokenType = TokenTypeDPoP
	}
	// The chain of agent ids, the holder first: the actor, then the prior
	// chain's agents (the record of the subject token has them).
	agents := []string{actor.ID}
	if sub.grantID != "" {
		prev, err := s.store.GetExchangedToken(ctx, sub.parentJTI)
		if err != nil {
			return TokenResponse{}, s.fail(ctx, o, at, serverError(err), now)
		}
		agents = append(agents, prev.Chain...)
	}
	rec := store.ExchangedToken{
		JTI: tok.Claims.JTI, GrantID: g.ID, AgentID: actor.ID, Chain: agents, Subject: sub.subject,
		ParentJTI: sub.parentJTI, ParentAgentID: sub.parentAgent, ParentIssuedAt: sub.parentIAT,
		IssuedAt: time.Unix(tok.Claims.IssuedAt, 0).UTC(), ExpiresAt: tok.ExpiresAt(),
	}
	issued := s.issuedEvent(o, &authClient{agent: actor}, tok, tokenType, now)
	issued.Delegation = &audit.Delegation{Subject: sub.subject, Actors: chain.Actors(), GrantID: g.ID}
	issued.Details["grant_type"] = GrantTokenExchange
	issued.Details["subject_issuer"] = sub.issuer
	issued.Details["subject_token_type"] = xp.subjectType
	issued.Details["issued_token_type"] = TokenTypeAccessToken
	issued.Details["depth"] = chain.Depth()
	if sub.parentJTI != "" {
		issued.Details["parent_jti"] = sub.parentJTI
	}
	if impersonate {
		issued.Details["impersonation"] = true
	}
	record := func(ctx context.Context, tx store.Tx) error { return tx.RecordExchangedToken(ctx, rec) }
	if e := s.commitIssued(ctx, o, at, now, clients, proof, record, authOK, issued); e != nil {
		return TokenResponse{}, e
	}
	return TokenResponse{
		AccessToken: tok.Raw, IssuedTokenType: TokenTypeAccessToken, TokenType: tokenType,
		ExpiresIn: tok.Claims.Expiry - tok.Claims.IssuedAt, Scope: tok.Claims.Scope,
	}, nil
}

// exchangeDenied is the audit event of an exchange refused after the actor
// authenticated.
func (s *Server) exchangeDenied(o audit.Origin, a store.Agent, e *Error, now time.Time) audit.Event {
	ev := o.Event(audit.Issuance, "credential.issued")
	ev.Time = now
	ev.Actor = &audit.Actor{Type: audit.ActorAgent, ID: a.ID}
	ev.Agent = agentAxis(a)
	ev.Outcome = audit.Failure
	ev.Reason = e.Reason
	ev.Details = map[string]any{"kind": "access_token", "grant_type": GrantTokenExchange, "error": e.Code}
	return ev
}
