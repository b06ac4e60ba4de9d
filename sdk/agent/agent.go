// Package agent gets and renews OAuth access tokens for an agent and
// attaches them to its outgoing requests.
//
// A TokenSource authenticates to agentid's token endpoint with
// private_key_jwt (RFC 7523 §2.2) and the client_credentials grant, so the
// agent holds a key, never a shared secret. It caches the token and renews
// it at a random point between 50% and 80% of its lifetime; concurrent
// callers share one renewal. With a dpop.Signer the tokens are bound to that
// key (RFC 9449). A Transport puts the token on every request, with a fresh
// DPoP proof when the token is bound and the W3C traceparent of the task.
// Exchange makes an RFC 8693 token exchange as the agent (a person's token
// for a delegated token, or a transaction token), and Delegated is a
// TokenSource of delegated tokens for a Transport.
//
// The package imports nothing from agentid's internal packages. TokenSource
// and Transport are safe for concurrent use.
package agent

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/agentid/agentid/sdk/dpop"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// Token types of a token response.
const (
	TokenTypeBearer = "Bearer"
	TokenTypeDPoP   = "DPoP"
)

const (
	// assertionLifetime is how long a client assertion is valid.
	assertionLifetime = 60 * time.Second
	// refreshTimeout bounds one renewal (discovery and token request).
	refreshTimeout = 30 * time.Second
	// maxResponse bounds a response body the package reads.
	maxResponse = 1 << 20
	// retryFloor is the least time between failed renewals while a cached
	// token is still valid.
	retryFloor = time.Second
)

// Error is an error answer of the token endpoint (RFC 6749 §5.2), or a
// non-OAuth error status (Code empty) such as a proxy's 502.
type Error struct {
	// Code is the OAuth error code, e.g. "invalid_client".
	Code string
	// Description is the server's error_description, if any.
	Description string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// RetryAfter is how long the server asked the client to wait before
	// asking again (its Retry-After header, RFC 9110 §10.2.3: with a 429
	// from agentid's limit on failed authentications, or a 503); 0 when
	// it did not say. A TokenSource does not ask again before then.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := "agent: token endpoint: HTTP " + fmt.Sprint(e.StatusCode)
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// TokenSourceParams configure a TokenSource. ClientID, a key (Key or
// KeyFile) and an endpoint (TokenURL or Issuer) are required.
type TokenSourceParams struct {
	// Issuer is the authorization server's issuer identifier. When TokenURL
	// is empty the token endpoint is discovered from the issuer's RFC 8414
	// metadata (/.well-known/oauth-authorization-server). The client
	// assertion's aud holds the issuer and the token endpoint.
	Issuer string
	// TokenURL is the token endpoint; when set, no discovery is made.
	TokenURL string
	// ClientID is the agent's client id (its agt_… id).
	ClientID string
	// Key signs the client assertions: ECDSA P-256 (ES256), Ed25519
	// (EdDSA) or RSA (RS256). It may be a KMS or hardware key.
	Key crypto.Signer
	// KeyFile is a PEM file to load Key from (see LoadPrivateKey) when Key
	// is nil.
	KeyFile string
	// KeyID is the kid of the registered key, put in the assertion header.
	KeyID string
	// Scopes are requested with scope; empty asks for every granted scope.
	Scopes []string
	// Resources are RFC 8707 resource indicators, the token's audiences.
	Resources []string
	// ReasoningRef is an optional opaque reference to the agent's plan or
	// reasoning trace that lands in the token and the audit trail.
	ReasoningRef string
	// DPoP, when set, binds the tokens to its key (RFC 9449).
	DPoP *dpop.Signer
	// HTTPClient sends the requests (default: a client with a 30 s timeout).
	HTTPClient *http.Client
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// Rand is the source of the renewal jitter (default
	// crypto/rand.Reader). Ids (assertion jti, trace ids) always come from
	// crypto/rand.
	Rand io.Reader
}

// TokenSource is an oauth2.TokenSource of an agent's access tokens.
// Construct it with NewTokenSource.
type TokenSource struct {
	issuer       string
	clientID     string
	assertion    jose.Signer
	scopes       []string
	resources    []string
	reasoningRef string
	dpop         *dpop.Signer
	http         *http.Client
	clock        func() time.Time
	nonces       nonces

	randMu sync.Mutex
	rand   io.Reader

	// grant, when set, makes the token request (a delegated source's
	// token exchange); nil is client_credentials.
	grant func() url.Values

	mu        sync.Mutex
	tokenURL  string // empty until discovered
	tok       *oauth2.Token
	refreshAt time.Time
	flight    *flight
	// holdErr is the last renewal's error while the server's Retry-After
	// runs (until holdUntil): callers get it without a request.
	holdErr   error
	holdUntil time.Time
}

// flight is one renewal that concurrent callers wait for.
type flight struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

var _ oauth2.TokenSource = (*TokenSource)(nil)

// NewTokenSource returns a TokenSource. It makes no request: discovery and
// the first token request happen on the first Token call.
func NewTokenSource(p TokenSourceParams) (*TokenSource, error) {
	if p.ClientID == "" {
		return nil, errors.New("agent: ClientID is required")
	}
	if p.Issuer == "" && p.TokenURL == "" {
		return nil, errors.New("agent: TokenURL or Issuer is required")
	}
	for _, u := range []string{p.Issuer, p.TokenURL} {
		if u != "" && !httpURL(u) {
			return nil, fmt.Errorf("agent: %q is not an http(s) URL", u)
		}
	}
	key := p.Key
	if key == nil {
		if p.KeyFile == "" {
			return nil, errors.New("agent: Key or KeyFile is required")
		}
		k, err := LoadPrivateKey(p.KeyFile)
		if err != nil {
			return nil, err
		}
		key = k
	}
	signer, err := assertionSigner(key, p.KeyID)
	if err != nil {
		return nil, err
	}
	s := &TokenSource{
		issuer:       strings.TrimRight(p.Issuer, "/"),
		tokenURL:     p.TokenURL,
		clientID:     p.ClientID,
		assertion:    signer,
		scopes:       p.Scopes,
		resources:    p.Resources,
		reasoningRef: p.ReasoningRef,
		dpop:         p.DPoP,
		http:         p.HTTPClient,
		clock:        p.Clock,
		rand:         p.Rand,
	}
	if s.http == nil {
		s.http = &http.Client{Timeout: refreshTimeout}
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return s, nil
}

// Token returns a valid token, renewing it when due. It implements
// oauth2.TokenSource; TokenContext is the same with a context.
func (s *TokenSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext returns the cached token until its renewal point (a random
// point between 50% and 80% of its lifetime), then renews it. Concurrent
// callers share one renewal; ctx bounds only this caller's wait. A
// traceparent in ctx (WithTraceparent) goes with the token request.
//
// When a renewal fails while the cached token is still valid, the cached
// token is returned and the renewal is retried on a later call; otherwise
// the error is returned: a *Error for an answer of the token endpoint.
// When that answer carried Retry-After, no request is sent before it has
// passed: callers meanwhile get the same error at once.
// TokenType of the result is "Bearer" or "DPoP"; Extra("scope") is the
// granted scope.
func (s *TokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	now := s.clock()
	if s.tok != nil && now.Before(s.refreshAt) {
		t := *s.tok
		s.mu.Unlock()
		return &t, nil
	}
	if s.holdErr != nil && now.Before(s.holdUntil) {
		err := s.holdErr
		s.mu.Unlock()
		return nil, err
	}
	f := s.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		s.flight = f
		go s.renew(context.WithoutCancel(ctx), f)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	t := *f.tok
	return &t, nil
}

// renew runs one renewal and hands its outcome to the waiters of f.
func (s *TokenSource) renew(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	tok, refreshAt, err := s.fetch(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	defer close(f.done)
	s.flight = nil
	now := s.clock()
	var wait time.Duration // the server's Retry-After
	if e := (*Error)(nil); errors.As(err, &e) {
		wait = e.RetryAfter
	}
	s.holdErr, s.holdUntil = nil, time.Time{}
	if err != nil && wait > 0 {
		s.holdErr, s.holdUntil = err, now.Add(wait)
	}
	switch {
	case err == nil:
		s.tok, s.refreshAt, f.tok = tok, refreshAt, tok
	case s.tok != nil && now.Before(s.tok.Expiry):
		// Keep serving the valid token; retry after a tenth of its
		// remaining life (at least a second), or when the server said,
		// but not after the token has expired.
		left := s.tok.Expiry.Sub(now)
		s.refreshAt = now.Add(min(max(left/10, retryFloor, wait), left))
		f.tok = s.tok
	default:
		f.err = err
	}
}

// fetch discovers the token endpoint if needed and requests a token. It
// returns the token and when to renew it.
func (s *TokenSource) fetch(ctx context.Context) (*oauth2.Token, time.Time, error) {
	endpoint, err := s.endpoint(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	start := s.clock()
	grant := s.clientCredentials
	if s.grant != nil {
		grant = s.grant
	}
	resp, err := s.requestToken(ctx, endpoint, grant())
	if err != nil {
		return nil, time.Time{}, err
	}
	tok, lifetime, err := s.parseToken(resp)
	if err != nil {
		return nil, time.Time{}, err
	}
	tok.Expiry = start.Add(lifetime)
	f, err := s.fraction()
	if err != nil {
		return nil, time.Time{}, err
	}
	refreshAt := start.Add(time.Duration(float64(lifetime) * (0.5 + 0.3*f)))
	return tok, refreshAt, nil
}

// endpoint returns the token endpoint, discovering it once.
func (s *TokenSource) endpoint(ctx context.Context) (string, error) {
	s.mu.Lock()
	u := s.tokenURL
	s.mu.Unlock()
	if u != "" {
		return u, nil
	}
	md, err := discover(ctx, s.http, s.issuer)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.tokenURL = md.TokenEndpoint
	s.mu.Unlock()
	return md.TokenEndpoint, nil
}

// fraction returns a uniform random number in [0, 1) from s.rand.
func (s *TokenSource) fraction() (float64, error) {
	var b [8]byte
	if err := s.readRand(b[:]); err != nil {
		return 0, err
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53), nil
}

func (s *TokenSource) readRand(b []byte) error {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return fmt.Errorf("agent: random: %w", err)
	}
	return nil
}

// httpURL reports whether s is an absolute http(s) URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
