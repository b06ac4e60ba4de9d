package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Token type identifiers of RFC 8693 §3 and
// draft-ietf-oauth-transaction-tokens-10 §6.1.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token" //nolint:gosec // G101: a URN, not a credential
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"          //nolint:gosec // G101: a URN, not a credential
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"     //nolint:gosec // G101: a URN, not a credential
	TokenTypeTxnToken    = "urn:ietf:params:oauth:token-type:txn_token"    //nolint:gosec // G101: a URN, not a credential
	// TokenTypeNA is the token_type of a transaction token: it is not an
	// access token (RFC 8693 §2.2.1).
	TokenTypeNA = "N_A"
)

// grantTokenExchange is the grant type of RFC 8693 §2.1.
const grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange" //nolint:gosec // G101: a URN, not a credential

// ExchangeParams describe a token exchange (RFC 8693 §2.1). The agent
// authenticates with its TokenSource's key (private_key_jwt) and, when the
// TokenSource has a DPoP signer, binds the new token to that key.
type ExchangeParams struct {
	// SubjectToken is the token to act for: a person's token from a trusted
	// identity provider, another agent's token, a delegated token handed
	// over (sub-delegation), or a transaction token. Required.
	SubjectToken string
	// SubjectTokenType is its type, one of the TokenType… URIs (default
	// TokenTypeJWT).
	SubjectTokenType string
	// Scopes narrow the token; empty asks for all that the grant allows
	// (a transaction token needs them).
	Scopes []string
	// Resources (RFC 8707) and Audiences name where the token is for.
	Resources []string
	Audiences []string
	// RequestedTokenType is TokenTypeAccessToken (the default) or
	// TokenTypeTxnToken, whose audience is the trust domain (Audiences).
	RequestedTokenType string
	// RequestContext and RequestDetails are the transaction token request's
	// request_context and request_details objects.
	RequestContext map[string]any
	RequestDetails map[string]any
	// ReasoningRef, when set, replaces the TokenSource's.
	ReasoningRef string
}

// form is the exchange's form parameters.
func (p ExchangeParams) form(reasoningRef string) (url.Values, error) {
	if p.SubjectToken == "" {
		return nil, errors.New("agent: exchange: SubjectToken is required")
	}
	typ := p.SubjectTokenType
	if typ == "" {
		typ = TokenTypeJWT
	}
	f := url.Values{
		"grant_type": {grantTokenExchange}, "subject_token": {p.SubjectToken}, "subject_token_type": {typ},
	}
	if p.RequestedTokenType != "" {
		f.Set("requested_token_type", p.RequestedTokenType)
	}
	if len(p.Scopes) > 0 {
		f.Set("scope", strings.Join(p.Scopes, " "))
	}
	f["resource"] = append([]string(nil), p.Resources...)
	f["audience"] = append([]string(nil), p.Audiences...)
	for name, v := range map[string]map[string]any{"request_context": p.RequestContext, "request_details": p.RequestDetails} {
		if v == nil {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("agent: exchange: %s: %w", name, err)
		}
		f.Set(name, string(b))
	}
	if p.ReasoningRef != "" {
		reasoningRef = p.ReasoningRef
	}
	if reasoningRef != "" {
		f.Set("reasoning_ref", reasoningRef)
	}
	return f, nil
}

// Exchange makes one token exchange (RFC 8693) as the agent and returns the
// issued token: TokenType "Bearer", "DPoP" (bound to the TokenSource's
// DPoP key) or, for a transaction token, "N_A"; Extra("issued_token_type")
// and Extra("scope") are the response's. A traceparent in ctx goes with
// the request. An answer of the token endpoint is a *Error.
func (s *TokenSource) Exchange(ctx context.Context, p ExchangeParams) (*oauth2.Token, error) {
	f, err := p.form(s.reasoningRef)
	if err != nil {
		return nil, err
	}
	endpoint, err := s.endpoint(ctx)
	if err != nil {
		return nil, err
	}
	start := s.clock()
	resp, err := s.requestToken(ctx, endpoint, f)
	if err != nil {
		return nil, err
	}
	tok, lifetime, err := s.parseToken(resp)
	if err != nil {
		return nil, err
	}
	tok.Expiry = start.Add(lifetime)
	return tok, nil
}

// Delegated returns a TokenSource of delegated tokens: it exchanges
// p.SubjectToken (typically a person's token) for a token that acts for
// its subject, caches it and exchanges again at the renewal point, like
// the agent's own tokens, until the subject token or the grant ends. It
// shares s's key, DPoP signer, endpoint and HTTP client; use it with
// NewTransport. p is validated at the first exchange.
func (s *TokenSource) Delegated(p ExchangeParams) *TokenSource {
	d := &TokenSource{
		issuer: s.issuer, clientID: s.clientID, assertion: s.assertion, reasoningRef: s.reasoningRef,
		dpop: s.dpop, http: s.http, clock: s.clock, rand: s.rand,
	}
	s.mu.Lock()
	d.tokenURL = s.tokenURL
	s.mu.Unlock()
	d.grant = func() url.Values {
		f, err := p.form(d.reasoningRef)
		if err != nil {
			return url.Values{"grant_type": {grantTokenExchange}} // the server names what is missing
		}
		return f
	}
	return d
}
