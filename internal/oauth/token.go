package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/dpop"
)

// GrantClientCredentials is the grant type of RFC 6749 §4.4.
const GrantClientCredentials = "client_credentials"

// Token types of a token response.
const (
	TokenTypeBearer = "Bearer"
	TokenTypeDPoP   = "DPoP"
)

// TokenResponse is a successful token response (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	// IssuedTokenType is set for a token exchange (RFC 8693 §2.2.1).
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
	// Nonce, when set, is sent as DPoP-Nonce: the current server nonce,
	// so that a DPoP client need not learn it from a use_dpop_nonce error
	// when the one it holds expires (RFC 9449 §8.2).
	Nonce string `json:"-"`
}

// tokenParams are the grant's validated parameters.
type tokenParams struct {
	scopes       []string
	resources    []string
	ttl          time.Duration
	reasoningRef string
}

// Token handles a token request: client credentials (RFC 6749 §4.4.2),
// token exchange (RFC 8693 §2.1), JWT bearer or join token. With server
// nonces on, a successful answer to a request that carried a DPoP proof
// carries the current nonce.
func (s *Server) Token(ctx context.Context, r *Request) (TokenResponse, *Error) {
	resp, e := s.token(ctx, r, true)
	if e == errStale {
		// The cached agent record client_credentials used has changed:
		// the request is decided again on the stored one. Nothing of the
		// first attempt was recorded or spent.
		resp, e = s.token(ctx, r, false)
		if e == errStale {
			e = serverError(errors.New("oauth: agent record changed during a request with a fresh read"))
		}
	}
	if e == nil && s.nonces != nil && len(r.DPoP) > 0 {
		resp.Nonce = s.nonces.Nonce(s.now())
	}
	return resp, e
}

// errStale is token's answer when client_credentials decided with a cached
// agent record (deferCheck) that is no longer the stored one; it never
// leaves Token.
var errStale = &Error{Code: CodeServerError, Status: http.StatusInternalServerError, Description: "stale client record"} //nolint:gochecknoglobals // a sentinel compared by identity

// errStaleClient aborts the transaction of commitIssued when a client's
// agent is not at the version authentication used.
var errStaleClient = errors.New("oauth: the client's agent record changed") //nolint:gochecknoglobals // sentinel

// token answers r. With deferCheck, client_credentials authenticates with
// the cached agent record without reading its version, and the
// transaction that records the outcome checks it (one read on the
// committer's connection instead of one on the read pool); a failure or a
// version that moved returns errStale, nothing recorded.
func (s *Server) token(ctx context.Context, r *Request, deferCheck bool) (TokenResponse, *Error) {
	if e := checkRepeated(r.Form, "resource", "audience"); e != nil {
		return TokenResponse{}, e
	}
	gt := param(r.Form, "grant_type")
	switch gt {
	case "":
		return TokenResponse{}, errf(CodeInvalidRequest, "grant_type is required")
	case GrantClientCredentials, GrantTokenExchange, GrantJWTBearer, GrantJoinToken:
	default:
		return TokenResponse{}, errf(CodeUnsupportedGrantType, "grant_type %s is not supported", safeName(gt))
	}
	now := s.now()
	o := r.Origin
	if ref := param(r.Form, "reasoning_ref"); ref != "" {
		if !validReasoningRef(ref) {
			return TokenResponse{}, errf(CodeInvalidRequest, "reasoning_ref must be at most %d printable ASCII characters", MaxReasoningRefLen)
		}
		o.ReasoningRef = ref
	}
	if gt == GrantTokenExchange {
		return s.exchange(ctx, r, o, now)
	}
	if gt == GrantJWTBearer {
		return s.jwtBearer(ctx, r, o, now)
	}
	if gt == GrantJoinToken {
		return s.joinTokenGrant(ctx, r, o, now)
	}

	c, at, e := s.authenticateWith(ctx, r, now, deferCheck)
	switch {
	case e != nil && at.cached:
		return TokenResponse{}, errStale // perhaps the cache's failure, not the client's
	case e != nil:
		return TokenResponse{}, s.fail(ctx, o, at, e, now)
	}
	authOK := s.authEvent(o, at, nil, now)

	tp, e := s.tokenParams(r.Form, c.agent)
	if e == nil {
		tp.reasoningRef = o.ReasoningRef
		tp.ttl = c.capTTL(tp.ttl, now)
	}
	var proof dpop.Proof
	if e == nil {
		proof, e = s.checkDPoP(r, c.agent, now)
	}
	switch {
	case e != nil && c.version != 0:
		return TokenResponse{}, errStale // decided on a cached record: decide again on the stored one
	case e != nil:
		// The client authenticated, but gets no token: both facts are
		// recorded, and the assertion's jti stays unused.
		return TokenResponse{}, s.fail(ctx, o, at, e, now, authOK, s.deniedEvent(o, c, e, now))
	}

	tok, err := s.tokens.IssueAccessToken(credential.AccessTokenParams{
		Agent: c.agent, Audience: tp.resources, Scopes: tp.scopes, Instance: c.instanceOf(),
		IssuedAt: now, TTL: tp.ttl, TraceID: o.TraceID, ReasoningRef: tp.reasoningRef, JKT: proof.Thumbprint,
		X5T: c.certThumbprint(),
	})
	if err != nil {
		return TokenResponse{}, s.fail(ctx, o, at, serverError(err), now)
	}
	tokenType := TokenTypeBearer
	if proof.Thumbprint != "" {
		tokenType = TokenTypeDPoP
	}
	issued := s.issuedEvent(o, c, tok, tokenType, now)
	if e := s.commitIssued(ctx, o, at, now, []*authClient{c}, proof, nil, authOK, issued); e != nil {
		return TokenResponse{}, e
	}
	return TokenResponse{
		AccessToken: tok.Raw,
		TokenType:   tokenType,
		ExpiresIn:   tok.Claims.Expiry - tok.Claims.IssuedAt,
		Scope:       tok.Claims.Scope,
	}, nil
}

// commitIssued commits a token's issuance in one transaction: it spends
// the clients' assertion jtis and the DPoP proof's, runs also (nil:
// nothing more) and appends the events; the token leaves only if all of
// it commits. A replayed jti or proof is refused (recorded by fail); any
// other failure is a server error, logged.
func (s *Server) commitIssued(ctx context.Context, o audit.Origin, at authAttempt, now time.Time, clients []*authClient,
	proof dpop.Proof, also func(context.Context, store.Tx) error, evs ...audit.Event,
) *Error {
	var replay *Error
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, c := range clients {
			if c.version == 0 {
				continue
			}
			v, err := tx.GetAgentVersion(ctx, c.agent.ID)
			switch {
			case errors.Is(err, store.ErrNotFound), err == nil && v != c.version:
				return errStaleClient
			case err != nil:
				return err
			}
		}
		for _, c := range clients {
			if replay = c.useAssertion(ctx, tx, now); replay != nil {
				return replay
			}
		}
		if replay = useProof(ctx, tx, proof, now); replay != nil {
			return replay
		}
		if also != nil {
			if err := also(ctx, tx); err != nil {
				return err
			}
		}
		for _, ev := range evs {
			if _, err := s.rec.Append(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errStaleClient):
		return errStale
	case replay != nil && errors.Is(err, replay):
		return s.fail(ctx, o, at, replay, now)
	case err != nil:
		agent := ""
		if len(clients) > 0 && clients[0] != nil {
			agent = clients[0].agent.ID
		}
		s.log.ErrorContext(ctx, "oauth: token not issued: its records were not written", "agent", agent, "err", err)
		return serverError(err)
	}
	return nil
}

// fail records a failed request's events (by default the failed
// authentication) and returns e, or a server error when the trail cannot
// be written: a response is never sent for an attempt that is not recorded.
func (s *Server) fail(ctx context.Context, o audit.Origin, at authAttempt, e *Error, now time.Time, evs ...audit.Event) *Error {
	if e.Code == CodeServerError {
		return e
	}
	if len(evs) == 0 {
		evs = []audit.Event{s.authEvent(o, at, e, now)}
	}
	if err := s.record(ctx, evs...); err != nil {
		s.log.ErrorContext(ctx, "oauth: audit trail not written", "err", err)
		return serverError(err)
	}
	return e
}

// tokenParams validates scope (RFC 6749 §3.3), resource (RFC 8707 §2) and
// expires_in against the agent's grants.
func (s *Server) tokenParams(f url.Values, a store.Agent) (tokenParams, *Error) {
	var tp tokenParams
	asked, ok := splitScope(param(f, "scope"))
	switch {
	case !ok:
		return tp, errf(CodeInvalidScope, "scope is malformed")
	case len(asked) > MaxScopes:
		return tp, errf(CodeInvalidScope, "more than %d scopes", MaxScopes)
	case len(asked) == 0:
		tp.scopes = slices.Clone(a.Scopes)
	default:
		for _, sc := range asked {
			if slices.Contains(a.Scopes, sc) {
				tp.scopes = append(tp.scopes, sc)
			}
		}
		if len(tp.scopes) == 0 {
			return tp, errf(CodeInvalidScope, "none of the requested scopes is granted to the agent")
		}
	}

	var resources []string
	for _, r := range f["resource"] {
		if r != "" {
			resources = append(resources, r)
		}
	}
	switch {
	case len(resources) > MaxResources:
		return tp, errf(CodeInvalidTarget, "more than %d resources", MaxResources)
	case len(resources) == 0 && len(a.Audiences) == 0:
		return tp, errf(CodeInvalidTarget, "the agent has no audiences")
	case len(resources) == 0:
		tp.resources = slices.Clone(a.Audiences)
	}
	for _, r := range resources {
		if !validResource(r) {
			return tp, errf(CodeInvalidTarget, "resource must be an absolute URI without a fragment")
		}
		if !slices.Contains(a.Audiences, r) {
			return tp, errf(CodeInvalidTarget, "the agent may not ask for resource %s", safeName(r))
		}
		if !slices.Contains(tp.resources, r) {
			tp.resources = append(tp.resources, r)
		}
	}

	tp.ttl = min(s.ttl, a.MaxTTL)
	if v := param(f, "expires_in"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || strings.HasPrefix(v, "+") {
			return tp, errf(CodeInvalidRequest, "expires_in must be a positive number of seconds")
		}
		if n < int64(a.MaxTTL/time.Second) {
			tp.ttl = time.Duration(n) * time.Second
		} else {
			tp.ttl = a.MaxTTL
		}
	}
	tp.ttl = tp.ttl.Truncate(time.Second)
	if tp.ttl < time.Second {
		tp.ttl = time.Second
	}
	return tp, nil
}

// validResource applies RFC 8707 §2: an absolute URI without a fragment.
func validResource(r string) bool {
	if len(r) > 512 {
		return false
	}
	u, err := url.Parse(r)
	return err == nil && u.IsAbs() && u.Fragment == "" && !strings.Contains(r, "#")
}

func validReasoningRef(s string) bool {
	if len(s) > MaxReasoningRefLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkDPoP validates the DPoP header of a token request (RFC 9449 §4.3,
// §5). It returns a zero Proof when there is none and the agent does not
// require one.
func (s *Server) checkDPoP(r *Request, a store.Agent, now time.Time) (dpop.Proof, *Error) {
	switch {
	case len(r.DPoP) == 0 && a.RequireDPoP:
		return dpop.Proof{}, errf(CodeInvalidDPoPProof, "the agent must present a DPoP proof")
	case len(r.DPoP) == 0:
		return dpop.Proof{}, nil
	case len(r.DPoP) > 1:
		return dpop.Proof{}, errf(CodeInvalidDPoPProof, "more than one DPoP header")
	}
	p, err := dpop.Verify(r.DPoP[0], dpop.VerifyParams{
		Method: http.MethodPost, URL: s.tokenURL, Now: now, MaxAge: DPoPProofMaxAge, Leeway: Leeway,
	})
	if err != nil {
		return dpop.Proof{}, errf(CodeInvalidDPoPProof, "%s", dpopReason(err))
	}
	if s.nonces != nil && !s.nonces.Valid(p.Nonce, now) {
		e := errf(CodeUseDPoPNonce, "a DPoP nonce is required")
		e.Nonce = s.nonces.Nonce(now)
		return dpop.Proof{}, e
	}
	return p, nil
}

// dpopReason is the client-safe text of a proof error.
func dpopReason(err error) string {
	return strings.TrimPrefix(err.Error(), "dpop: ")
}

// useProof records a DPoP proof's jti as used inside tx (RFC 9449 §11.1).
func useProof(ctx context.Context, tx store.Tx, p dpop.Proof, now time.Time) *Error {
	if p.JTI == "" {
		return nil
	}
	err := tx.UseOnce(ctx, "dpop:"+p.Thumbprint, p.JTI, now, p.IssuedAt.Add(DPoPProofMaxAge+Leeway))
	switch {
	case errors.Is(err, store.ErrAlreadyExists):
		return errf(CodeInvalidDPoPProof, "DPoP proof jti was already used")
	case err != nil:
		return serverError(err)
	}
	return nil
}

// issuedEvent is the audit event of an issued token.
func (s *Server) issuedEvent(o audit.Origin, c *authClient, tok credential.AccessToken, tokenType string, now time.Time) audit.Event {
	ev := o.Event(audit.Issuance, "credential.issued")
	ev.Time = now
	ev.Actor = &audit.Actor{Type: audit.ActorAgent, ID: c.agent.ID}
	ev.Agent = agentAxis(c.agent)
	if ev.Task == nil {
		ev.Task = &audit.Task{}
	}
	ev.Task.Scope = tok.Claims.Scope
	ev.Details = map[string]any{
		"kind":       "access_token",
		"jti":        tok.Claims.JTI,
		"key_id":     tok.KeyID,
		"ttl_s":      tok.Claims.Expiry - tok.Claims.IssuedAt,
		"expires_at": tok.ExpiresAt().Format(time.RFC3339),
		"audience":   []string(tok.Claims.Audience),
		"token_type": tokenType,
		"grant_type": GrantClientCredentials,
	}
	if tok.Claims.Cnf != nil && tok.Claims.Cnf.JKT != "" {
		ev.Details["cnf_jkt"] = tok.Claims.Cnf.JKT
	}
	if tok.Claims.Cnf != nil && tok.Claims.Cnf.X5TS256 != "" {
		ev.Details["cnf_x5t#S256"] = tok.Claims.Cnf.X5TS256
	}
	if c.attest != nil {
		ev.Instance = &audit.Instance{ID: c.attest.instance.ID, Method: c.attest.ev.Method}
	}
	return ev
}

// deniedEvent is the audit event of a token request refused after the
// client authenticated.
func (s *Server) deniedEvent(o audit.Origin, c *authClient, e *Error, now time.Time) audit.Event {
	ev := o.Event(audit.Issuance, "credential.issued")
	ev.Time = now
	ev.Actor = &audit.Actor{Type: audit.ActorAgent, ID: c.agent.ID}
	ev.Agent = agentAxis(c.agent)
	ev.Outcome = audit.Failure
	ev.Reason = e.Reason
	ev.Details = map[string]any{"kind": "access_token", "grant_type": GrantClientCredentials, "error": e.Code}
	return ev
}
