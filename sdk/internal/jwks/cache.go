// Package jwks holds what sdk/resource and sdk/signals share to verify
// tokens signed by agentid: a cache of the issuer's JWKS (RFC 7517) and the
// checks of a JWS in compact serialization and of its JWT claims.
//
// A Cache fetches the JWKS on first use, keeps it as long as its
// Cache-Control header says (RFC 9111 §5.2.2), and fetches it again when
// it is stale or a token names an unknown kid (key rotation), at most once
// per MinRefetchInterval. Concurrent callers share one fetch; a caller whose
// context ends stops waiting, the fetch goes on for the others. When a
// fetch fails, the keys fetched before keep serving.
//
// The package is internal to the SDK: its API may change with its two
// users. It imports nothing from agentid's internal packages.
package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// maxMaxAge caps a JWKS's max-age.
	maxMaxAge = 24 * time.Hour
	// fetchTimeout bounds one JWKS fetch.
	fetchTimeout = 30 * time.Second
	// maxBody bounds a JWKS document.
	maxBody = 1 << 20
	// maxKeys bounds the keys taken from a JWKS.
	maxKeys = 100
)

// Key lookup failures of Get.
var (
	// ErrUnknownKey: a JWKS fetched after the generation the caller named
	// lacks the kid.
	ErrUnknownKey = errors.New("jwks: unknown signing key")
	// ErrRefetchLimited: the kid is unknown and the JWKS was fetched too
	// recently to be fetched again; a later Get may find it.
	ErrRefetchLimited = errors.New("jwks: unknown kid, JWKS fetched too recently to fetch again")
)

// FetchError is returned by Get when the cache lacks a kid because the
// last fetch of the JWKS failed.
type FetchError struct {
	// Err is why the fetch failed, as Params.WrapError made it.
	Err error
}

func (e *FetchError) Error() string { return "jwks: JWKS unavailable: " + e.Err.Error() }

// Unwrap returns Err.
func (e *FetchError) Unwrap() error { return e.Err }

// StatusError is a JWKS answer with another status than 200 OK.
type StatusError struct {
	URL        string
	StatusCode int
	// Body is the start of the answer's body.
	Body []byte
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s answered HTTP %d", e.URL, e.StatusCode) }

// Params configure a Cache. URL, HTTPClient and Clock are required.
type Params struct {
	// URL is the JWKS's http(s) URL.
	URL string
	// HTTPClient fetches the JWKS.
	HTTPClient *http.Client
	// Clock returns the current time.
	Clock func() time.Time
	// MinRefetchInterval is the least time between two fetches, whatever
	// the cache headers and unknown kids say.
	MinRefetchInterval time.Duration
	// DefaultMaxAge is how long a JWKS is fresh when its answer has no
	// Cache-Control max-age (capped at 24 h).
	DefaultMaxAge time.Duration
	// Algorithms are the signature algorithms kept: a key that states
	// another alg is dropped. Empty: every asymmetric algorithm.
	Algorithms []jose.SignatureAlgorithm
	// WrapError, when set, turns a fetch failure into the caller's error
	// (e.g. to prefix it with the package name).
	WrapError func(error) error
}

// Cache is a cache of one JWKS. It is safe for concurrent use.
type Cache struct {
	p Params

	mu        sync.Mutex
	keys      map[string][]jose.JSONWebKey // by kid
	gen       uint64                       // successful fetches so far
	freshTill time.Time                    // keys are fresh before this
	lastFetch time.Time                    // last attempt, successful or not
	lastErr   error                        // of the last attempt
	flight    *flight
}

// flight is one JWKS fetch that concurrent callers wait for.
type flight struct{ done chan struct{} }

// New returns a Cache. It does no I/O: the JWKS is fetched on first use.
func New(p Params) *Cache {
	if p.WrapError == nil {
		p.WrapError = func(err error) error { return err }
	}
	return &Cache{p: p}
}

// Generation returns the number of successful fetches so far. A caller
// takes it when a token arrives and hands it to Get.
func (c *Cache) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Get returns the keys with kid. after is a generation (see Generation):
// when a JWKS fetched since then lacks kid, the kid is unknown for good.
// Get fetches the JWKS when the cache is stale or lacks kid, unless the
// last fetch was less than MinRefetchInterval ago; then it answers from the
// cache, even a stale one. Concurrent calls share one fetch.
//
// The error is ErrUnknownKey when a JWKS fetched since after (now, if need
// be) lacks kid; ErrRefetchLimited when kid is unknown and the JWKS may not
// be fetched again yet; a *FetchError when the last fetch failed and the
// cache lacks kid; ctx's error when ctx ends while Get waits for a fetch
// (which goes on).
func (c *Cache) Get(ctx context.Context, kid string, after uint64) ([]jose.JSONWebKey, error) {
	waited := false
	for {
		c.mu.Lock()
		now := c.p.Clock()
		keys, known := c.keys[kid]
		fresh := c.gen > 0 && now.Before(c.freshTill)
		mayFetch := c.flight != nil || c.lastFetch.IsZero() || now.Sub(c.lastFetch) >= c.p.MinRefetchInterval
		switch {
		case known && (fresh || waited || !mayFetch):
			c.mu.Unlock()
			return keys, nil
		case !known && c.gen > after:
			c.mu.Unlock()
			return nil, ErrUnknownKey
		case waited || !mayFetch:
			err := c.missing()
			c.mu.Unlock()
			return nil, err
		}
		f := c.flight
		if f == nil {
			f = &flight{done: make(chan struct{})}
			c.flight = f
			c.lastFetch = now
			go c.fetch(context.WithoutCancel(ctx), f)
		}
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		waited = true
	}
}

// missing is the error for a kid the cache lacks and may not fetch; c.mu
// is held.
func (c *Cache) missing() error {
	if c.lastErr != nil {
		return &FetchError{Err: c.lastErr}
	}
	return ErrRefetchLimited
}

// fetch fetches the JWKS and hands the outcome to the waiters of f.
func (c *Cache) fetch(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	keys, maxAge, err := c.download(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	defer close(f.done)
	c.flight = nil
	if err != nil {
		c.lastErr = c.p.WrapError(err)
		return // keep serving the keys we have
	}
	c.lastErr = nil
	c.keys, c.freshTill = keys, c.p.Clock().Add(maxAge)
	c.gen++
}

// download GETs the JWKS and returns its keys and freshness lifetime.
func (c *Cache) download(ctx context.Context) (map[string][]jose.JSONWebKey, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.p.URL, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.p.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if resp.StatusCode != http.StatusOK {
		return nil, 0, &StatusError{URL: c.p.URL, StatusCode: resp.StatusCode, Body: b}
	}
	if err != nil {
		return nil, 0, err
	}
	if len(b) > maxBody {
		return nil, 0, errors.New("document too large")
	}
	keys, err := parseKeySet(b, c.p.Algorithms)
	if err != nil {
		return nil, 0, err
	}
	return keys, cacheLifetime(resp.Header, c.p.DefaultMaxAge), nil
}

// parseKeySet parses a JWKS (RFC 7517 §5) and keeps its public signature
// keys with a kid and an allowed algorithm (or none stated; see
// Params.Algorithms). Keys of unknown types or with bad parameters are
// skipped, so that one new kind of key does not break verification with
// the others.
func parseKeySet(b []byte, algs []jose.SignatureAlgorithm) (map[string][]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Keys == nil {
		return nil, errors.New("not a JWK set")
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
		if alg := jose.SignatureAlgorithm(k.Algorithm); alg != "" && (!Asymmetric(alg) || (len(algs) > 0 && !slices.Contains(algs, alg))) {
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
// max-age capped at 24 h, def when neither is given.
func cacheLifetime(h http.Header, def time.Duration) time.Duration {
	d := min(def, maxMaxAge)
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
				d = time.Duration(min(secs, int64(maxMaxAge/time.Second))) * time.Second
			}
		}
	}
	return d
}
