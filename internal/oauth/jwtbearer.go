package oauth

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/dpop"
)

// GrantJWTBearer is the grant type of RFC 7523 §2.1: a JWT (here the
// attestation evidence of ADR 0015) as an authorization grant.
const GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer" //nolint:gosec // G101: a grant type URN, not a credential

// EventInstanceAttested (family authentication) records every attestation
// attempt (ADR 0015 §5): details method, attestor, issuer, evidence (the
// summary, never the token), rule (the rule that matched); on failure the
// reason (why the evidence was refused or why no rule matched).
const EventInstanceAttested = "instance.attested"

// notProven is the client-facing description of an attestation that does
// not prove the agent (unknown agent, no matching rule): the client
// learns nothing about which.
const notProven = "the assertion does not prove an instance of the agent"

// errRetry makes jwtBearer run again: the instance changed between the
// read and the transaction (a concurrent first attestation of one key).
var errRetry = errors.New("oauth: instance changed concurrently")

// attestAttempt is what an attestation found out, for its audit event.
type attestAttempt struct {
	agent    *store.Agent
	ev       attest.Evidence
	attestor string
	method   string
	issuer   string
	rule     string
	instance *store.Instance
	created  bool
}

// jwtBearer handles the JWT bearer grant (RFC 7523 §2.1, ADR 0015 §4):
// assertion is attestation evidence, client_id names the agent (id or
// name). The evidence must verify with a configured attestor and match
// one of the agent's attestation rules; the instance it proves is
// created or refreshed with the audit events, and the token carries it
// as agent_instance.
func (s *Server) jwtBearer(ctx context.Context, r *Request, o audit.Origin, now time.Time) (TokenResponse, *Error) {
	if s.attestors.Len() == 0 {
		return TokenResponse{}, errf(CodeUnsupportedGrantType, "grant_type %s is not supported: no attestor is configured", safeName(GrantJWTBearer))
	}
	f := r.Form
	switch {
	case r.Basic != nil || param(f, "client_secret") != "" || param(f, "client_assertion") != "":
		return TokenResponse{}, errf(CodeInvalidRequest, "the jwt-bearer grant takes no client authentication: the assertion is the credential")
	case param(f, "assertion") == "":
		return TokenResponse{}, errf(CodeInvalidRequest, "assertion is required")
	case param(f, "client_id") == "":
		return TokenResponse{}, errf(CodeInvalidRequest, "client_id (the agent's id or name) is required")
	}
	for range 3 {
		resp, e := s.attestOnce(ctx, r, o, now)
		if e == nil || !errors.Is(e, errRetry) {
			return resp, e
		}
	}
	return TokenResponse{}, serverError(errRetry)
}

func (s *Server) attestOnce(ctx context.Context, r *Request, o audit.Origin, now time.Time) (TokenResponse, *Error) {
	f := r.Form
	at := attestAttempt{}
	ev, err := s.attestors.Attest(ctx, param(f, "assertion"))
	if err != nil {
		var ae *attest.Error
		if !errors.As(err, &ae) {
			return TokenResponse{}, serverError(err)
		}
		at.attestor, at.method, at.issuer = ae.Attestor, ae.Method, ae.Issuer
		if errors.Is(err, attest.ErrUnavailable) {
			s.log.WarnContext(ctx, "oauth: attestor trust material unavailable", "attestor", ae.Attestor, "err", ae.Err)
			e := &Error{Code: CodeTemporarilyUnavailable, Status: http.StatusServiceUnavailable,
				Description: "the assertion's issuer keys are unavailable; retry later", Reason: ae.Reason}
			return TokenResponse{}, s.failAttest(ctx, o, at, e, now)
		}
		return TokenResponse{}, s.failAttest(ctx, o, at, errf(CodeInvalidGrant, "the assertion is not valid: %s", ae.Reason), now)
	}
	at.ev, at.attestor, at.method, at.issuer = ev, ev.Attestor, ev.Method, ev.Issuer

	a, e := s.attestedAgent(ctx, param(f, "client_id"))
	if e != nil {
		return TokenResponse{}, s.failAttest(ctx, o, at, e, now)
	}
	at.agent = &a
	if why := usable(a, now); why != "" {
		return TokenResponse{}, s.failAttest(ctx, o, at, grantRefused("%s", why), now)
	}
	m := attest.Match(a.AttestationRules, ev)
	if m.Rule < 0 {
		return TokenResponse{}, s.failAttest(ctx, o, at, grantRefused("%s", m.Why), now)
	}
	at.rule = attest.RuleString(a.AttestationRules[m.Rule])

	// The instance this evidence proves, as it stands now; the
	// transaction below creates or refreshes it, and retries when it
	// changed in between.
	planned, err := s.store.GetInstanceByKey(ctx, a.ID, ev.Attestor, ev.Key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		id, err := recordid.New(recordid.Instance, now, s.rand)
		if err != nil {
			return TokenResponse{}, serverError(err)
		}
		planned = store.Instance{ID: id}
	case err != nil:
		return TokenResponse{}, serverError(err)
	case !planned.RevokedAt.IsZero():
		at.instance = &planned
		return TokenResponse{}, s.failAttest(ctx, o, at, grantRefused("instance %s was revoked", planned.ID), now)
	}
	at.instance = &store.Instance{ID: planned.ID}
	authOK := s.attestEvent(o, at, nil, now)

	tp, e := s.tokenParams(f, a)
	if e == nil {
		tp.reasoningRef = o.ReasoningRef
	}
	var proof dpop.Proof
	if e == nil {
		proof, e = s.checkDPoP(r, a, now)
	}
	c := &authClient{agent: a, method: GrantJWTBearer}
	if e != nil {
		return TokenResponse{}, s.fail(ctx, o, authAttempt{}, e, now, authOK, s.deniedEvent(o, c, e, now))
	}
	// The token does not outlive the evidence.
	if left := ev.Expiry.Sub(now).Truncate(time.Second); left < tp.ttl {
		tp.ttl = max(left, time.Second)
	}
	tok, err := s.tokens.IssueAccessToken(credential.AccessTokenParams{
		Agent: a, Audience: tp.resources, Scopes: tp.scopes, Instance: planned.ID,
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
		in, created, e := s.upsertInstance(ctx, tx, planned, ev, a.ID, o.Source.IP, now)
		if e != nil {
			refused = e
			return e
		}
		at.instance, at.created = &in, created
		if refused = useProof(ctx, tx, proof, now); refused != nil {
			return refused
		}
		issued := s.issuedEvent(o, c, tok, tokenType, now)
		issued.Instance = &audit.Instance{ID: in.ID, Method: ev.Method}
		issued.Details["grant_type"] = GrantJWTBearer
		for _, ev := range []audit.Event{s.attestEvent(o, at, nil, now), issued} {
			if _, err := s.rec.Append(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errRetry):
		return TokenResponse{}, retryError()
	case refused != nil && errors.Is(err, refused):
		return TokenResponse{}, s.failAttest(ctx, o, at, refused, now)
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

// upsertInstance creates the planned instance or refreshes it inside tx.
// It returns errRetry (as an *Error) when the instance is not the one
// planned, and invalid_grant when it was revoked meanwhile.
func (s *Server) upsertInstance(ctx context.Context, tx store.Tx, planned store.Instance, ev attest.Evidence, agentID, ip string, now time.Time) (store.Instance, bool, *Error) {
	cur, err := tx.GetInstanceByKey(ctx, agentID, ev.Attestor, ev.Key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if planned.Version != 0 {
			return store.Instance{}, false, retryError()
		}
		in, err := tx.CreateInstance(ctx, store.Instance{
			ID: planned.ID, AgentID: agentID, Method: ev.Method, Attestor: ev.Attestor, Key: ev.Key,
			Evidence: ev.Summary, SourceIP: ip, FirstSeenAt: now, LastSeenAt: now, ExpiresAt: ev.Expiry,
		})
		switch {
		case errors.Is(err, store.ErrAlreadyExists):
			return store.Instance{}, false, retryError()
		case err != nil:
			return store.Instance{}, false, serverError(err)
		}
		return in, true, nil
	case err != nil:
		return store.Instance{}, false, serverError(err)
	case cur.ID != planned.ID:
		return store.Instance{}, false, retryError()
	case !cur.RevokedAt.IsZero():
		return store.Instance{}, false, grantRefused("instance %s was revoked", cur.ID)
	}
	in, err := tx.UpdateInstance(ctx, cur.ID, func(in store.Instance) (store.Instance, error) {
		if !in.RevokedAt.IsZero() {
			return in, errRetry
		}
		in.Evidence, in.SourceIP, in.LastSeenAt = maps.Clone(ev.Summary), ip, now
		if ev.Expiry.After(in.ExpiresAt) {
			in.ExpiresAt = ev.Expiry
		}
		return in, nil
	})
	switch {
	case errors.Is(err, errRetry), errors.Is(err, store.ErrConflict):
		return store.Instance{}, false, retryError()
	case err != nil:
		return store.Instance{}, false, serverError(err)
	}
	return in, false, nil
}

// retryError is a server error wrapping errRetry: jwtBearer retries on
// it.
func retryError() *Error { return serverError(errRetry) }

// attestedAgent finds the agent a jwt-bearer request names by id or name.
func (s *Server) attestedAgent(ctx context.Context, ref string) (store.Agent, *Error) {
	if len(ref) > 64 {
		return store.Agent{}, grantRefused("client_id is longer than 64 bytes")
	}
	var (
		a   store.Agent
		err error
	)
	if strings.HasPrefix(ref, recordid.Agent+"_") {
		a, err = s.store.GetAgent(ctx, ref)
	} else {
		a, err = s.store.GetAgentByName(ctx, ref)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Agent{}, grantRefused("unknown agent %s", printable(ref))
	case err != nil:
		return store.Agent{}, serverError(err)
	}
	return a, nil
}

// grantRefused is invalid_grant with the generic description and the
// precise reason for the audit trail.
func grantRefused(format string, args ...any) *Error {
	e := errf(CodeInvalidGrant, "%s", notProven)
	e.Reason = fmt.Sprintf(format, args...)
	return e
}

// failAttest records a failed attestation and returns e (or a server
// error when the trail cannot be written).
func (s *Server) failAttest(ctx context.Context, o audit.Origin, at attestAttempt, e *Error, now time.Time) *Error {
	return s.refused(ctx, e, func() audit.Event { return s.attestEvent(o, at, e, now) })
}

// refused records the event ev makes of a refused request and returns e,
// or a server error when the trail cannot be written; a server error is
// returned as is, unrecorded.
func (s *Server) refused(ctx context.Context, e *Error, ev func() audit.Event) *Error {
	if e.Code == CodeServerError {
		return e
	}
	if err := s.record(ctx, ev()); err != nil {
		s.log.ErrorContext(ctx, "oauth: audit trail not written", "err", err)
		return serverError(err)
	}
	return e
}

// attestEvent is the audit event of one attestation attempt.
func (s *Server) attestEvent(o audit.Origin, at attestAttempt, e *Error, now time.Time) audit.Event {
	ev := o.Event(audit.Authentication, EventInstanceAttested)
	ev.Time = now
	if at.agent != nil {
		ev.Agent = agentAxis(*at.agent)
		ev.Actor = &audit.Actor{Type: audit.ActorAgent, ID: at.agent.ID}
	}
	ev.Details = map[string]any{"grant_type": GrantJWTBearer}
	for k, v := range map[string]string{"method": at.method, "attestor": at.attestor, "issuer": at.issuer, "rule": at.rule} {
		if v != "" {
			ev.Details[k] = v
		}
	}
	if len(at.ev.Summary) > 0 {
		ev.Details["evidence"] = maps.Clone(at.ev.Summary)
	}
	if at.instance != nil && at.instance.ID != "" {
		ev.Instance = &audit.Instance{ID: at.instance.ID, Method: at.method}
		if e == nil {
			ev.Details["instance_created"] = at.created
		}
	}
	if e != nil {
		ev.Outcome = audit.Failure
		ev.Reason = e.Reason
		ev.Details["error"] = e.Code
	}
	return ev
}

// instanceActive reports whether the instance a token names in
// agent_instance is not revoked (ADR 0015 §3); true when it names none.
// An instance that no longer exists is not active.
func (s *Server) instanceActive(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return true, nil
	}
	in, err := s.store.GetInstance(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return in.RevokedAt.IsZero(), nil
}

// SupportsJWTBearer reports whether the token endpoint takes the JWT
// bearer grant: at least one attestor is configured.
func (s *Server) SupportsJWTBearer() bool { return s.attestors.Len() > 0 }
