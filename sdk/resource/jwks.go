package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agentid/agentid/sdk/internal/jwks"
	jose "github.com/go-jose/go-jose/v4"
)

const (
	// DefaultJWKSMaxAge is how long a JWKS is fresh when its answer has no
	// Cache-Control max-age.
	DefaultJWKSMaxAge = 5 * time.Minute
	// fetchTimeout bounds one metadata fetch.
	fetchTimeout = 30 * time.Second
	// maxBody bounds a metadata document.
	maxBody = 1 << 20
)

// newKeySet returns the cache of the issuer's JWKS (sdk/internal/jwks).
// It keeps keys of every asymmetric algorithm: one the Verifier does not
// accept never verifies, since the token's alg must be the key's.
func newKeySet(jwksURL string, hc *http.Client, clock func() time.Time, minInterval time.Duration) *jwks.Cache {
	return jwks.New(jwks.Params{
		URL: jwksURL, HTTPClient: hc, Clock: clock, MinRefetchInterval: minInterval, DefaultMaxAge: DefaultJWKSMaxAge,
		WrapError: func(err error) error { return fmt.Errorf("resource: JWKS: %w", err) },
	})
}

// keysFor returns the issuer's keys with kid, fetching the JWKS when the cache
// is stale or lacks kid (at most once per MinRefetchInterval). The error is
// an *Error of kind ErrUnknownKey or ErrKeySetUnavailable.
func (v *Verifier) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	keys, err := v.keys.Get(ctx, kid, v.keys.Generation())
	var fe *jwks.FetchError
	switch {
	case err == nil:
		return keys, nil
	case errors.Is(err, jwks.ErrUnknownKey), errors.Is(err, jwks.ErrRefetchLimited):
		return nil, fail(ErrUnknownKey, "unknown kid")
	case errors.As(err, &fe):
		return nil, &Error{Kind: ErrKeySetUnavailable, Reason: "the issuer's JWKS could not be fetched", Err: fe.Err}
	}
	return nil, &Error{Kind: ErrKeySetUnavailable, Reason: "gave up waiting for the JWKS", Err: err}
}

// discoverJWKS fetches the issuer's RFC 8414 metadata and returns its
// jwks_uri, after checking the metadata names the issuer (§3.3).
func discoverJWKS(ctx context.Context, hc *http.Client, issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("resource: issuer %q is not an http(s) URL without query and fragment", issuer)
	}
	u.Path = "/.well-known/oauth-authorization-server" + strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("resource: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("resource: discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("resource: discovery: %s answered HTTP %d", u, resp.StatusCode)
	}
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&md); err != nil {
		return "", fmt.Errorf("resource: discovery: metadata: %w", err)
	}
	if md.Issuer != issuer {
		return "", fmt.Errorf("resource: discovery: metadata names issuer %q, want %q", md.Issuer, issuer)
	}
	if !httpURL(md.JWKSURI) {
		return "", errors.New("resource: discovery: metadata has no http(s) jwks_uri")
	}
	return md.JWKSURI, nil
}
