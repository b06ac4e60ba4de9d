package oauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/jointoken"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// GrantJoinToken is the extension grant (RFC 6749 §4.5) that redeems an
// agent's join token (ADR 0015 addendum C) for an instance and an access
// token: join_token, and client_id naming the agent when given.
const GrantJoinToken = "urn:agentid:params:oauth:grant-type:join-token" //nolint:gosec // G101: a grant type URN, not a credential

// Join token lifetimes.
const (
	DefaultJoinTokenTTL = 10 * time.Minute
	MinJoinTokenTTL     = time.Minute
	MaxJoinTokenTTL     = time.Hour
)

// Audit events of agents' join tokens: the creation (family admin) and
// every redemption attempt (family authentication; the instance.attested
// event with details.method join_token).
const EventJoinTokenCreated = "agent.join_token.created" //nolint:gosec // G101: an event type, not a credential

// AttestorJoinToken is the attestor name of instances created by a join
// token.
const AttestorJoinToken = "join-token"

// joinTokenNS is the UseOnce namespace of redeemed join tokens.
const joinTokenNS = "agent-join-token"

// JoinToken is a created join token; Secret is shown once.
type JoinToken struct {
	ID        string
	AgentID   string
	ExpiresAt time.Time
	Secret    string
}

// CreateJoinToken makes a one-time join token bound to the agent ref (id
// or name) that expires ttl from now (zero: DefaultJoinTokenTTL, else
// MinJoinTokenTTL to MaxJoinTokenTTL), and records EventJoinTokenCreated
// before returning it. Nothing else is stored: the token is
// self-contained. Errors: a *fault.ValidationError for the ttl,
// identity.ErrNotFound for an unknown agent, identity.ErrIllegalTransition
// for an agent that may not use credentials, errors.ErrUnsupported when
// join tokens are not configured.
func (s *Server) CreateJoinToken(ctx context.Context, o audit.Origin, ref string, ttl time.Duration) (JoinToken, error) {
	if s.joinTokens == nil {
		return JoinToken{}, fmt.Errorf("oauth: join tokens: %w", errors.ErrUnsupported)
	}
	switch {
	case ttl == 0:
		ttl = DefaultJoinTokenTTL
	case ttl < MinJoinTokenTTL || ttl > MaxJoinTokenTTL:
		return JoinToken{}, fault.Invalid(identity.ErrInvalid, "oauth", "ttl", "must be between %s and %s (default %s)", MinJoinTokenTTL, MaxJoinTokenTTL, DefaultJoinTokenTTL)
	}
	now := s.now()
	a, e := s.attestedAgent(ctx, ref)
	switch {
	case e != nil && e.Code == CodeServerError:
		return JoinToken{}, fmt.Errorf("oauth: join token: %w", e.Err)
	case e != nil:
		return JoinToken{}, fmt.Errorf("%w: agent %s", identity.ErrNotFound, printable(ref))
	}
	if why := usable(a, now); why != "" {
		return JoinToken{}, fmt.Errorf("%w: %s", identity.ErrIllegalTransition, why)
	}
	id, err := recordid.New(jointoken.IDPrefix[:3], now, s.rand)
	if err != nil {
		return JoinToken{}, fmt.Errorf("oauth: %w", err)
	}
	exp := now.Add(ttl).Truncate(time.Second)
	ev := o.Event(audit.Admin, EventJoinTokenCreated)
	ev.Time = now
	ev.Agent = agentAxis(a)
	ev.Details = map[string]any{"id": id, "expires_at": exp.Format(time.RFC3339)}
	if err := s.record(ctx, ev); err != nil {
		return JoinToken{}, fmt.Errorf("oauth: record %s: %w", EventJoinTokenCreated, err)
	}
	return JoinToken{ID: id, AgentID: a.ID, ExpiresAt: exp,
		Secret: s.joinTokens.Mint(jointoken.Claims{ID: id, AgentID: a.ID, ExpiresAt: exp})}, nil
}

// SupportsJoinTokens reports whether join tokens are configured.
func (s *Server) SupportsJoinTokens() bool { return s.joinTokens != nil }

// joinTokenGrant redeems a join token (ADR 0015 addendum C): it must
// verify, not have expired, name an agent that may use credentials (and
// the client_id, when given), and not have been used: the store records
// its id with UseOnce in the transaction that creates the instance and
// records the events, so of concurrent redemptions, on any replicas,
// exactly one succeeds; a revocation (RevokeJoinToken) spends the id the
// same way, and the refusal's event says "was revoked" rather than "was
// already used". Refusals are invalid_grant.
func (s *Server) joinTokenGrant(ctx context.Context, r *Request, o audit.Origin, now time.Time) (TokenResponse, *Error) {
	if s.joinTokens == nil {
		return TokenResponse{}, errf(CodeUnsupportedGrantType, "grant_type %s is not supported", safeName(GrantJoinToken))
	}
	f := r.Form
	if r.Basic != nil || param(f, "client_secret") != "" || param(f, "client_assertion") != "" {
		return TokenResponse{}, errf(CodeInvalidRequest, "the join-token grant takes no client authentication: the join token is the credential")
	}
	raw := param(f, "join_token")
	if raw == "" {
		return TokenResponse{}, errf(CodeInvalidRequest, "join_token is required")
	}
	at := attestAttempt{attestor: AttestorJoinToken, method: attest.MethodJoinToken}
	refuse := func(format string, args ...any) *Error {
		e := errf(CodeInvalidGrant, "the join token is not valid")
		e.Reason = fmt.Sprintf(format, args...)
		return s.failJoin(ctx, o, at, e, now)
	}
	cl, err := s.joinTokens.Parse(raw)
	if err != nil {
		return TokenResponse{}, refuse("the join token is malformed or not signed by this server")
	}
	at.ev = attest.Evidence{Summary: map[string]string{"join_token": cl.ID}}
	if !now.Before(cl.ExpiresAt) {
		return TokenResponse{}, refuse("%s expired at %s", cl.ID, cl.ExpiresAt.Format(time.RFC3339))
	}
	a, e := s.attestedAgent(ctx, cl.AgentID)
	if e != nil {
		if e.Code == CodeServerError {
			return TokenResponse{}, e
		}
		return TokenResponse{}, refuse("%s", e.Reason)
	}
	at.agent = &a
	if ref := param(f, "client_id"); ref != "" && ref != a.ID && ref != a.Name {
		return TokenResponse{}, refuse("%s is bound to another agent than client_id", cl.ID)
	}
	if why := usable(a, now); why != "" {
		return TokenResponse{}, refuse("%s", why)
	}
	tp, e := s.tokenParams(f, a)
	if e == nil {
		tp.reasoningRef = o.ReasoningRef
	}
	if e != nil {
		return TokenResponse{}, s.failJoin(ctx, o, at, e, now)
	}
	proof, e := s.checkDPoP(r, a, now)
	if e != nil {
		return TokenResponse{}, s.failJoin(ctx, o, at, e, now)
	}
	insID, err := recordid.New(recordid.Instance, now, s.rand)
	if err != nil {
		return TokenResponse{}, serverError(err)
	}
	tok, err := s.tokens.IssueAccessToken(credential.AccessTokenParams{
		Agent: a, Audience: tp.resources, Scopes: tp.scopes, Instance: insID,
		IssuedAt: now, TTL: tp.ttl, TraceID: o.TraceID, ReasoningRef: tp.reasoningRef, JKT: proof.Thumbprint,
	})
	if err != nil {
		return TokenResponse{}, serverError(err)
	}
	tokenType := TokenTypeBearer
	if proof.Thumbprint != "" {
		tokenType = TokenTypeDPoP
	}
	var refused *Error
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		// Kept until the token would have expired anyway (and a minute).
		switch err := tx.UseOnce(ctx, joinTokenNS, cl.ID, now, cl.ExpiresAt.Add(time.Minute)); {
		case errors.Is(err, store.ErrAlreadyExists):
			refused = errf(CodeInvalidGrant, "the join token is not valid")
			refused.Reason = cl.ID + " " + spentHow(ctx, tx, cl.ID)
			return refused
		case err != nil:
			return err
		}
		in, err := tx.CreateInstance(ctx, store.Instance{
			ID: insID, AgentID: a.ID, Method: attest.MethodJoinToken, Attestor: AttestorJoinToken, Key: cl.ID,
			Evidence: map[string]string{"join_token": cl.ID}, SourceIP: o.Source.IP, FirstSeenAt: now, LastSeenAt: now,
			ExpiresAt: tok.ExpiresAt(),
		})
		if err != nil {
			return err
		}
		at.instance, at.created = &in, true
		if refused = useProof(ctx, tx, proof, now); refused != nil {
			return refused
		}
		issued := s.issuedEvent(o, &authClient{agent: a, method: GrantJoinToken}, tok, tokenType, now)
		issued.Instance = &audit.Instance{ID: in.ID, Method: attest.MethodJoinToken}
		issued.Details["grant_type"] = GrantJoinToken
		for _, ev := range []audit.Event{s.joinEvent(o, at, nil, now), issued} {
			if _, err := s.rec.Append(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case refused != nil && errors.Is(err, refused):
		at.instance = nil
		return TokenResponse{}, s.failJoin(ctx, o, at, refused, now)
	case err != nil:
		s.log.ErrorContext(ctx, "oauth: token not issued: audit trail not written", "agent", a.ID, "err", err)
		return TokenResponse{}, serverError(err)
	}
	return TokenResponse{
		AccessToken: tok.Raw,
		TokenType:   tokenType,
		ExpiresIn:   tok.Claims.Expiry - tok.Claims.IssuedAt,
		Scope:       tok.Claims.Scope,
	}, nil
}

// joinEvent is the instance.attested event of a redemption attempt.
func (s *Server) joinEvent(o audit.Origin, at attestAttempt, e *Error, now time.Time) audit.Event {
	ev := s.attestEvent(o, at, e, now)
	ev.Details["grant_type"] = GrantJoinToken
	return ev
}

// failJoin records a refused redemption and returns e.
func (s *Server) failJoin(ctx context.Context, o audit.Origin, at attestAttempt, e *Error, now time.Time) *Error {
	return s.refused(ctx, e, func() audit.Event { return s.joinEvent(o, at, e, now) })
}
