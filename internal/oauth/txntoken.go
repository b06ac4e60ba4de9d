package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/dpop"
)

// TokenTypeTxnToken is the token type identifier of a transaction token
// (draft-ietf-oauth-transaction-tokens-10 §6.1).
const TokenTypeTxnToken = "urn:ietf:params:oauth:token-type:txn_token" //nolint:gosec // G101: a URN, not a credential

// TokenTypeNA is the token_type of a transaction token response (RFC 8693
// §2.2.1: the token is not an access token).
const TokenTypeNA = "N_A"

// Limits of the transaction token request parameters.
const (
	// MaxContextBytes bounds request_context and request_details.
	MaxContextBytes = 4 << 10
	// MaxReqWorkloads bounds the requesting workloads of a transaction
	// (the original requester and those of its replacements).
	MaxReqWorkloads = 8
)

// txnParams are the extra parameters of a transaction token request.
type txnParams struct {
	requestContext map[string]any // request_context, a JSON object
	requestDetails json.RawMessage
}

// parseContextObject validates a request_context or request_details
// parameter: a JSON object of at most MaxContextBytes. It returns the
// object compacted.
func parseContextObject(name, v string) (json.RawMessage, map[string]any, *Error) {
	if v == "" {
		return nil, nil, nil
	}
	if len(v) > MaxContextBytes {
		return nil, nil, errf(CodeInvalidRequest, "%s is longer than %d bytes", name, MaxContextBytes)
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, nil, errf(CodeInvalidRequest, "%s must be a JSON object", name)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(v)); err != nil {
		return nil, nil, errf(CodeInvalidRequest, "%s must be a JSON object", name)
	}
	return buf.Bytes(), m, nil
}

// parseTxn validates the parameters of a transaction token request
// (draft §6.1): audience the trust domain, no resource, a scope, and the
// optional request_context and request_details objects.
func (s *Server) parseTxn(xp exchangeParams, r *Request) (txnParams, *Error) {
	var tp txnParams
	f := r.Form
	switch {
	case s.trustDomain == "":
		return tp, errf(CodeInvalidRequest, "transaction tokens are not enabled")
	case len(f["resource"]) > 0:
		return tp, errf(CodeInvalidTarget, "a transaction token takes no resource; its audience is the trust domain")
	case len(xp.audiences) != 1 || xp.audiences[0] != s.trustDomain:
		return tp, errf(CodeInvalidTarget, "audience must be the trust domain %s", safeName(s.trustDomain))
	case len(xp.scopes) == 0:
		return tp, errf(CodeInvalidRequest, "scope is required for a transaction token")
	}
	var e *Error
	if _, tp.requestContext, e = parseContextObject("request_context", param(f, "request_context")); e != nil {
		return tp, e
	}
	if tp.requestDetails, _, e = parseContextObject("request_details", param(f, "request_details")); e != nil {
		return tp, e
	}
	return tp, nil
}

// txnOrigin is what a transaction token is about: its subject, chain,
// grant, the scope it may carry at most and the latest exp.
type txnOrigin struct {
	subject   string
	subjectID *credential.SubjectID
	act       json.RawMessage
	grantID   string
	scopes    []string // the widest scope allowed
	expiry    time.Time
	// replacement: the txn token being replaced.
	txn   string
	tctx  json.RawMessage
	reqWL string
}

// txnExchange issues a transaction token (draft-ietf-oauth-transaction-
// tokens-10 §6, ADR 0014 addendum A) to an authenticated actor.
func (s *Server) txnExchange(ctx context.Context, r *Request, o audit.Origin, at authAttempt, authOK audit.Event, clients []*authClient,
	actor store.Agent, xp exchangeParams, proof dpop.Proof, now time.Time) (TokenResponse, *Error) {
	denied := func(e *Error, txn string) *Error {
		ev := s.exchangeDenied(o, actor, e, now)
		ev.Details["issued_token_type"] = TokenTypeTxnToken
		a := authOK
		if txn != "" {
			setTxn(&ev, txn)
			setTxn(&a, txn)
		}
		return s.fail(ctx, o, at, e, now, a, ev)
	}
	tp, e := s.parseTxn(xp, r)
	if e != nil {
		return TokenResponse{}, denied(e, "")
	}
	var org txnOrigin
	if xp.subjectType == TokenTypeTxnToken {
		org, e = s.txnReplaced(ctx, xp, tp, now)
		if e != nil {
			return TokenResponse{}, denied(e, org.txn)
		}
	} else {
		sub, e := s.subjectToken(ctx, xp, now)
		if e == nil && sub.jkt != "" && proof.Thumbprint != sub.jkt {
			e = errf(CodeInvalidRequest, "the subject token is DPoP-bound: a DPoP proof by its key is required")
		}
		if e == nil {
			org, e = s.txnSubject(ctx, xp, sub, actor, now)
		}
		if e != nil {
			return TokenResponse{}, denied(e, "")
		}
	}
	for _, sc := range xp.scopes {
		if !slices.Contains(org.scopes, sc) {
			return TokenResponse{}, denied(errf(CodeInvalidScope, "the requested scope is wider than the subject token allows"), org.txn)
		}
	}
	expiry := now.Add(min(credential.MaxTxnTokenTTL, s.ttl, actor.MaxTTL))
	if org.expiry.Before(expiry) {
		expiry = org.expiry
	}
	expiry = expiry.Truncate(time.Second)
	if expiry.Unix()-now.Unix() < 1 {
		return TokenResponse{}, denied(errf(CodeInvalidRequest, "the subject token expires too soon"), org.txn)
	}
	txn := org.txn
	if txn == "" {
		var err error
		if txn, err = recordid.New(credential.TxnIDPrefix, now, s.rand); err != nil {
			return TokenResponse{}, s.fail(ctx, o, at, serverError(err), now)
		}
	}
	rctx := map[string]any{}
	for k, v := range tp.requestContext {
		rctx[k] = v
	}
	// agentid's own assertions win over what the requester says.
	rctx["authn"] = at.method
	if o.Source.IP != "" {
		rctx["req_ip"] = o.Source.IP
	} else {
		delete(rctx, "req_ip")
	}
	rraw, err := json.Marshal(rctx)
	if err != nil {
		return TokenResponse{}, s.fail(ctx, o, at, serverError(err), now)
	}
	tctx := tp.requestDetails
	reqWL := actor.SPIFFEID
	if org.txn != "" {
		tctx = org.tctx // immutable through the transaction
		if wl := strings.Split(org.reqWL, ","); !slices.Contains(wl, actor.SPIFFEID) {
			if len(wl) >= MaxReqWorkloads {
				return TokenResponse{}, denied(errf(CodeInvalidRequest, "the transaction has too many requesting workloads"), txn)
			}
			reqWL = org.reqWL + "," + actor.SPIFFEID
		} else {
			reqWL = org.reqWL
		}
	}
	tok, err := s.tokens.IssueTxnToken(credential.TxnTokenParams{
		Txn: txn, Audience: s.trustDomain, Subject: org.subject, SubjectID: org.subjectID, Scopes: xp.scopes,
		TCtx: tctx, RCtx: rraw, Requester: credential.AgentClaim{ID: actor.ID, Name: actor.Name}, ReqWL: reqWL,
		Act: org.act, GrantID: org.grantID, TraceID: o.TraceID, IssuedAt: now, Expiry: expiry,
	})
	if err != nil {
		return TokenResponse{}, s.fail(ctx, o, at, serverError(err), now)
	}
	issued := o.Event(audit.Issuance, "credential.issued")
	issued.Time = now
	issued.Actor = &audit.Actor{Type: audit.ActorAgent, ID: actor.ID}
	issued.Agent = agentAxis(actor)
	setTxn(&issued, txn)
	issued.Task.Scope = tok.Claims.Scope
	issued.Details = map[string]any{
		"kind": "txn_token", "txn": txn, "key_id": tok.KeyID, "ttl_s": tok.Claims.Expiry - tok.Claims.IssuedAt,
		"expires_at": time.Unix(tok.Claims.Expiry, 0).UTC().Format(time.RFC3339), "audience": []string{s.trustDomain},
		"token_type": TokenTypeNA, "grant_type": GrantTokenExchange, "subject_token_type": xp.subjectType,
		"issued_token_type": TokenTypeTxnToken, "req_wl": reqWL,
	}
	if org.txn != "" {
		issued.Details["replacement"] = true
	}
	if org.grantID != "" || len(org.act) > 0 {
		chain, _ := delegation.ParseAct(org.act)
		issued.Delegation = &audit.Delegation{Subject: org.subject, Actors: chain.Actors(), GrantID: org.grantID}
	}
	setTxn(&authOK, txn)
	if e := s.commitIssued(ctx, o, at, now, clients, proof, nil, authOK, issued); e != nil {
		return TokenResponse{}, e
	}
	return TokenResponse{
		AccessToken: tok.Raw, IssuedTokenType: TokenTypeTxnToken, TokenType: TokenTypeNA,
		ExpiresIn: tok.Claims.Expiry - tok.Claims.IssuedAt, Scope: tok.Claims.Scope,
	}, nil
}

// setTxn stamps the transaction id on an event's task axis.
func setTxn(ev *audit.Event, txn string) {
	if ev.Task == nil {
		ev.Task = &audit.Task{}
	} else {
		t := *ev.Task
		ev.Task = &t
	}
	ev.Task.Txn = txn
}

// txnReplaced checks a transaction token presented as the subject token
// (draft §10.11): one of agentid's, for this trust domain, not expired,
// its grant (if any) still active. The replacement keeps txn, sub, aud
// and tctx; its scope and lifetime can only shrink.
func (s *Server) txnReplaced(ctx context.Context, xp exchangeParams, tp txnParams, now time.Time) (txnOrigin, *Error) {
	c, err := s.tokens.ParseTxnToken(xp.subjectToken)
	if err != nil {
		return txnOrigin{}, errf(CodeInvalidRequest, "subject_token is not a transaction token of this issuer")
	}
	org := txnOrigin{
		subject: c.Subject, subjectID: c.SubjectID, act: c.Act, grantID: c.GrantID, scopes: strings.Fields(c.Scope),
		expiry: time.Unix(c.Expiry, 0).UTC(), txn: c.Txn, tctx: c.TCtx, reqWL: c.ReqWL,
	}
	switch {
	case c.Audience != s.trustDomain:
		return org, errf(CodeInvalidRequest, "subject_token is for another trust domain")
	case c.Expiry <= now.Unix():
		return org, errf(CodeInvalidRequest, "subject_token has expired")
	case len(tp.requestDetails) > 0:
		return org, errf(CodeInvalidRequest, "a replacement transaction token keeps its tctx: request_details is not allowed")
	}
	if c.GrantID != "" {
		g, err := s.store.GetGrant(ctx, c.GrantID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return org, errf(CodeInvalidRequest, "the subject token's grant does not exist")
		case err != nil:
			return org, serverError(err)
		case !g.RevokedAt.IsZero() || !now.Before(g.ExpiresAt):
			return org, errf(CodeInvalidRequest, "the subject token's grant is revoked or expired")
		}
	}
	return org, nil
}

// txnSubject derives a new transaction from a verified subject token:
// the actor's own token (its own transaction, or the delegated token it
// holds: the chain unchanged), or a token it may act for under a grant
// (one more actor, as for an exchanged access token).
func (s *Server) txnSubject(ctx context.Context, xp exchangeParams, sub *subjectInfo, actor store.Agent, now time.Time) (txnOrigin, *Error) {
	if sub.parentJTI != "" && sub.parentAgent == actor.ID {
		org := txnOrigin{subject: sub.subject, grantID: sub.grantID, expiry: sub.expiry}
		for _, sc := range sub.scopes {
			if slices.Contains(actor.Scopes, sc) {
				org.scopes = append(org.scopes, sc)
			}
		}
		if sub.grantID != "" {
			org.subjectID = &credential.SubjectID{Format: "iss_sub", Issuer: sub.issuer, Subject: sub.subject}
		}
		if sub.act != nil {
			raw, err := sub.act.Marshal()
			if err != nil {
				return org, serverError(err)
			}
			org.act = raw
		}
		return org, nil
	}
	gx := xp
	gx.audiences = nil // the trust domain, not a resource of the grant
	g, n, e := s.selectGrant(ctx, gx, sub, actor, now)
	if e != nil {
		return txnOrigin{}, e
	}
	chain := sub.act.Push(actor.SPIFFEID)
	raw, err := chain.Marshal()
	if err != nil {
		return txnOrigin{}, serverError(err)
	}
	return txnOrigin{
		subject: sub.subject, subjectID: &credential.SubjectID{Format: "iss_sub", Issuer: sub.issuer, Subject: sub.subject},
		act: raw, grantID: g.ID, scopes: n.Scopes, expiry: n.Expiry,
	}, nil
}
