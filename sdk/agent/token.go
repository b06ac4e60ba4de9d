package agent

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/sdk/dpop"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"golang.org/x/oauth2"
)

// assertionType is the client_assertion_type of RFC 7523 §2.2.
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionSigner returns the JWS signer of client assertions with key.
func assertionSigner(key crypto.Signer, kid string) (jose.Signer, error) {
	var alg jose.SignatureAlgorithm
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("agent: ECDSA key is not on P-256")
		}
		alg = jose.ES256
	case ed25519.PublicKey:
		alg = jose.EdDSA
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return nil, errors.New("agent: RSA key shorter than 2048 bits")
		}
		alg = jose.RS256
	default:
		return nil, fmt.Errorf("agent: unsupported key type %T (want ECDSA P-256, Ed25519 or RSA)", pub)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: cryptosigner.Opaque(key)}, opts)
	if err != nil {
		return nil, fmt.Errorf("agent: assertion signer: %w", err)
	}
	return s, nil
}

// assertionClaims are a client assertion's claims (RFC 7523 §3).
type assertionClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience []string `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	JTI      string   `json:"jti"`
}

// clientAssertion returns a fresh signed client assertion for endpoint:
// iss = sub = client id, aud = [issuer, token endpoint], a 60 s lifetime
// and a random jti.
func (s *TokenSource) clientAssertion(endpoint string, now time.Time) (string, error) {
	aud := []string{endpoint}
	if s.issuer != "" && s.issuer != endpoint {
		aud = []string{s.issuer, endpoint}
	}
	payload, err := json.Marshal(assertionClaims{
		Issuer:   s.clientID,
		Subject:  s.clientID,
		Audience: aud,
		Expiry:   now.Add(assertionLifetime).Unix(),
		IssuedAt: now.Unix(),
		JTI:      rand.Text(),
	})
	if err != nil {
		return "", fmt.Errorf("agent: client assertion: %w", err)
	}
	jws, err := s.assertion.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("agent: sign client assertion: %w", err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("agent: sign client assertion: %w", err)
	}
	return out, nil
}

// requestToken sends the token request with the grant's parameters,
// retrying once with the server's nonce when it asks for one (RFC 9449 §8),
// and returns a 200 response.
func (s *TokenSource) requestToken(ctx context.Context, endpoint string, grant url.Values) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, sent, err := s.tokenRequest(ctx, endpoint, grant)
		if err != nil {
			return nil, err
		}
		resp, err := s.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("agent: token request: %w", err)
		}
		nonce := resp.Header.Get("DPoP-Nonce")
		if s.dpop != nil {
			s.nonces.update(endpoint, nonce)
		}
		if resp.StatusCode == http.StatusOK {
			return resp, nil
		}
		e := readError(resp, s.clock())
		resp.Body.Close()
		if e.Code == "use_dpop_nonce" && s.dpop != nil && validNonce(nonce) && nonce != sent && attempt == 0 {
			continue
		}
		return nil, e
	}
}

// clientCredentials is the grant of the TokenSource's own tokens.
func (s *TokenSource) clientCredentials() url.Values {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(s.scopes) > 0 {
		form.Set("scope", strings.Join(s.scopes, " "))
	}
	for _, r := range s.resources {
		form.Add("resource", r)
	}
	if s.reasoningRef != "" {
		form.Set("reasoning_ref", s.reasoningRef)
	}
	return form
}

// tokenRequest builds one token request of the grant with a fresh
// assertion (its jti is single use) and, with DPoP, a fresh proof; it
// returns the DPoP nonce it used.
func (s *TokenSource) tokenRequest(ctx context.Context, endpoint string, grant url.Values) (*http.Request, string, error) {
	now := s.clock()
	assertion, err := s.clientAssertion(endpoint, now)
	if err != nil {
		return nil, "", err
	}
	form := url.Values{}
	for k, v := range grant {
		form[k] = v
	}
	form.Set("client_id", s.clientID)
	form.Set("client_assertion_type", assertionType)
	form.Set("client_assertion", assertion)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", fmt.Errorf("agent: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if tp, ok := TraceparentFromContext(ctx); ok {
		req.Header.Set("Traceparent", tp)
	}
	var nonce string
	if s.dpop != nil {
		nonce = s.nonces.get(endpoint)
		proof, err := s.dpop.Proof(http.MethodPost, endpoint, dpop.ProofParams{Now: now, Nonce: nonce})
		if err != nil {
			return nil, "", fmt.Errorf("agent: token request: %w", err)
		}
		req.Header.Set("DPoP", proof)
	}
	return req, nonce, nil
}

// tokenResponse is a successful token response (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	// IssuedTokenType is set by a token exchange (RFC 8693 §2.2.1).
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope"`
}

// parseToken reads a 200 token response and closes its body.
func (s *TokenSource) parseToken(resp *http.Response) (*oauth2.Token, time.Duration, error) {
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&tr); err != nil {
		return nil, 0, fmt.Errorf("agent: token response: %w", err)
	}
	if tr.AccessToken == "" {
		return nil, 0, errors.New("agent: token response without access_token")
	}
	if tr.ExpiresIn <= 0 || tr.ExpiresIn > int64(24*time.Hour/time.Second) {
		return nil, 0, errors.New("agent: token response without a valid expires_in")
	}
	var typ string
	switch {
	case strings.EqualFold(tr.TokenType, TokenTypeBearer):
		typ = TokenTypeBearer
	case strings.EqualFold(tr.TokenType, TokenTypeDPoP) && s.dpop != nil:
		typ = TokenTypeDPoP
	case tr.TokenType == TokenTypeNA && tr.IssuedTokenType == TokenTypeTxnToken:
		typ = TokenTypeNA
	default:
		return nil, 0, fmt.Errorf("agent: token response: unexpected token_type %q", tr.TokenType)
	}
	tok := &oauth2.Token{AccessToken: tr.AccessToken, TokenType: typ, ExpiresIn: tr.ExpiresIn}
	extra := map[string]any{"scope": tr.Scope}
	if tr.IssuedTokenType != "" {
		extra["issued_token_type"] = tr.IssuedTokenType
	}
	tok = tok.WithExtra(extra)
	return tok, time.Duration(tr.ExpiresIn) * time.Second, nil
}

// maxRetryAfter bounds how long a TokenSource honours a Retry-After.
const maxRetryAfter = time.Hour

// readError turns a token endpoint's error answer into an *Error.
func readError(resp *http.Response, now time.Time) *Error {
	e := &Error{StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now)}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/json" {
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body) == nil {
			e.Code, e.Description = printable(body.Error, 64), printable(body.Description, 512)
		}
	}
	if e.Code == "" && e.Description == "" {
		e.Description = http.StatusText(resp.StatusCode)
	}
	return e
}

// retryAfter reads a Retry-After value (RFC 9110 §10.2.3: delay-seconds
// or an HTTP-date) as a wait from now, at most maxRetryAfter; 0 when it is
// absent, malformed or past.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// printable returns s when it is short printable ASCII (RFC 6749 §5.2
// error and error_description), else a shortened and cleaned copy.
func printable(s string, n int) string {
	out := []byte(s)
	if len(out) > n {
		out = out[:n]
	}
	for i, c := range out {
		if c < 0x20 || c > 0x7e {
			out[i] = '?'
		}
	}
	return string(out)
}
