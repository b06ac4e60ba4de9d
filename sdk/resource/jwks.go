package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// DefaultJWKSMaxAge is how long a JWKS is fresh when its answer has no
	// Cache-Control max-age.
	DefaultJWKSMaxAge = 5 * time.Minute
	// maxJWKSAge caps a JWKS's max-age.
	maxJWKSAge = 24 * time.Hour
	// fetchTimeout bounds one metadata or JWKS fetch.
	fetchTimeout = 30 * time.Second
	// maxBody bounds a metadata or JWKS document.
	maxBody = 1 << 20
	// maxKeys bounds the keys taken from a JWKS.
	maxKeys = 100
)

// keySet is the cached JWKS of the issuer.
type keySet struct {
	url         string
	http        *http.Client
	clock       func() time.Time
	minInterval time.Duration

	mu        sync.Mutex
	keys      map[string][]jose.JSONWebKey // by kid
	fetched   bool                         // keys came from a successful fetch
	freshTill time.Time                    // keys are fresh before this
	lastFetch time.Time                    // last attempt, successful or not
	lastErr   error                        // of the last attempt
	flight    *fetchFlight
}

// fetchFlight is one JWKS fetch that concurrent callers wait for.
type fetchFlight struct{ done chan struct{} }

// get returns the keys with kid. It fetches the JWKS when the cache is stale
// or lacks kid, unless the last fetch was less than minInterval ago; then it
// answers from the cache, even a stale one. The error is an *Error of kind
// ErrUnknownKey or ErrKeySetUnavailable.
func (ks *keySet) get(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	waited := false
	for {
		ks.mu.Lock()
		now := ks.clock()
		keys, known := ks.keys[kid]
		fresh := ks.fetched && now.Before(ks.freshTill)
		mayFetch := ks.flight != nil || ks.lastFetch.IsZero() || now.Sub(ks.lastFetch) >= ks.minInterval
		if known && (fresh || waited || !mayFetch) {
			ks.mu.Unlock()
			return keys, nil
		}
		if waited || !mayFetch {
			err := ks.missing()
			ks.mu.Unlock()
			return nil, err
		}
		f := ks.flight
		if f == nil {
			f = &fetchFlight{done: make(chan struct{})}
			ks.flight = f
			ks.lastFetch = now
			go ks.fetch(context.WithoutCancel(ctx), f)
		}
		ks.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, &Error{Kind: ErrKeySetUnavailable, Reason: "gave up waiting for the JWKS", Err: ctx.Err()}
		}
		waited = true
	}
}

// missing is the error for a kid the cache lacks; ks.mu is held.
func (ks *keySet) missing() error {
	if ks.lastErr != nil {
		return &Error{Kind: ErrKeySetUnavailable, Reason: "the issuer's JWKS could not be fetched", Err: ks.lastErr}
	}
	return fail(ErrUnknownKey, "unknown kid")
}

// fetch fetches the JWKS and hands the outcome to the waiters of f.
func (ks *keySet) fetch(ctx context.Context, f *fetchFlight) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	keys, maxAge, err := ks.download(ctx)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	defer close(f.done)
	ks.flight = nil
	ks.lastErr = err
	if err != nil {
		return // keep serving the keys we have
	}
	ks.keys, ks.fetched, ks.freshTill = keys, true, ks.clock().Add(maxAge)
}

// download GETs the JWKS and returns its keys and freshness lifetime.
func (ks *keySet) download(ctx context.Context) (map[string][]jose.JSONWebKey, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("resource: JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := ks.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("resource: JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("resource: JWKS: %s answered HTTP %d", ks.url, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, 0, fmt.Errorf("resource: JWKS: %w", err)
	}
	if len(b) > maxBody {
		return nil, 0, errors.New("resource: JWKS: document too large")
	}
	keys, err := parseKeySet(b)
	if err != nil {
		return nil, 0, err
	}
	return keys, cacheLifetime(resp.Header), nil
}

// parseKeySet parses a JWKS (RFC 7517 §5) and keeps its public signature
// keys with a kid. Keys of unknown types or with bad parameters are skipped,
// so that one new kind of key does not break verification with the others.
func parseKeySet(b []byte) (map[string][]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Keys == nil {
		return nil, errors.New("resource: JWKS: not a JWK set")
	}
	out := map[string][]jose.JSONWebKey{}
	n := 0
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if k.KeyID == "" || !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if k.Algorithm != "" && !asymmetric(jose.SignatureAlgorithm(k.Algorithm)) {
			continue
		}
		if n++; n > maxKeys {
			break
		}
		out[k.KeyID] = append(out[k.KeyID], k)
	}
	return out, nil
}

// cacheLifetime returns how long a response may be used by its
// Cache-Control header (RFC 9111 §5.2.2): 0 for no-store or no-cache,
// max-age capped at 24 h, DefaultJWKSMaxAge when neither is given.
func cacheLifetime(h http.Header) time.Duration {
	d := DefaultJWKSMaxAge
	for _, v := range h.Values("Cache-Control") {
		for _, dir := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
				if err != nil || secs < 0 {
					return 0 // RFC 9111 §4.2.1: an invalid max-age means stale
				}
				d = time.Duration(min(secs, int64(maxJWKSAge/time.Second))) * time.Second
			}
		}
	}
	return d
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
