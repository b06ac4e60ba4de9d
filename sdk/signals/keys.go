package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	// jwksMaxAge is how long a fetched JWKS is used before it is fetched
	// again. agentid's SET keys are its token keys; rotation is announced
	// by a new kid, which triggers a fetch anyway.
	jwksMaxAge = 5 * time.Minute
	// maxKeys bounds the keys taken from a JWKS.
	maxKeys = 100
)

// Key lookup failures. errKeysUnavailable and errKeyRetryLater are
// transient: the SET is left unsettled, to be delivered again.
var (
	errUnknownKey      = errors.New("signals: unknown signing key")
	errKeysUnavailable = errors.New("signals: JWKS unavailable")
	errKeyRetryLater   = errors.New("signals: unknown kid, JWKS fetched too recently to fetch again")
)

// keySet is a small cache of the issuer's JWKS (the one of its access
// tokens). sdk/resource's cache is not exported, so this is its minimal
// twin: fetched when stale or when a kid is unknown, at most once per
// minInterval.
type keySet struct {
	http        *http.Client
	clock       func() time.Time
	minInterval time.Duration

	mu        sync.Mutex
	url       string
	keys      map[string][]jose.JSONWebKey
	fetchedAt time.Time // last success
	lastTry   time.Time // last attempt
	gen       uint64    // successful fetches so far
}

// generation returns the number of successful fetches so far.
func (ks *keySet) generation() uint64 {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.gen
}

// setURL sets the JWKS URL (from the metadata); a new URL drops the cache.
func (ks *keySet) setURL(u string) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.url != u {
		ks.url, ks.keys, ks.fetchedAt, ks.lastTry = u, nil, time.Time{}, time.Time{}
		ks.gen++
	}
}

// get returns the keys with kid. after is the generation when the SET
// arrived: a JWKS fetched since then that lacks kid settles it. The error
// is errUnknownKey when such a JWKS (fetched now if need be) lacks kid,
// errKeyRetryLater when kid is unknown and the JWKS may not be fetched
// again yet, errKeysUnavailable when the fetch failed and the cache lacks
// kid.
func (ks *keySet) get(ctx context.Context, kid string, after uint64) ([]jose.JSONWebKey, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock() // polls are serial: holding the lock while fetching costs nothing
	now := ks.clock()
	keys, known := ks.keys[kid]
	fresh := !ks.fetchedAt.IsZero() && now.Sub(ks.fetchedAt) < jwksMaxAge
	if known && fresh {
		return keys, nil
	}
	if !known && ks.gen > after && !ks.fetchedAt.IsZero() {
		return nil, errUnknownKey // fetched after the SET arrived
	}
	if !ks.lastTry.IsZero() && now.Sub(ks.lastTry) < ks.minInterval {
		if known {
			return keys, nil
		}
		return nil, errKeyRetryLater
	}
	ks.lastTry = now
	fetched, err := ks.download(ctx)
	if err != nil {
		if known {
			return keys, nil // keep serving the keys we have
		}
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	ks.keys, ks.fetchedAt = fetched, now
	ks.gen++
	if keys, known = fetched[kid]; !known {
		return nil, errUnknownKey
	}
	return keys, nil
}

// download GETs the JWKS.
func (ks *keySet) download(ctx context.Context) (map[string][]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	b, err := getJSON(ctx, ks.http, "jwks", ks.url, "application/jwk-set+json, application/json")
	if err != nil {
		return nil, err
	}
	return parseKeySet(b)
}

// parseKeySet parses a JWKS (RFC 7517 §5) and keeps its public signature
// keys with a kid and an allowed algorithm (or none stated). Keys of unknown
// types are skipped, so that a new kind of key does not break the others.
func parseKeySet(b []byte) (map[string][]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Keys == nil {
		return nil, errors.New("signals: JWKS: not a JWK set")
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
		if k.Algorithm != "" && !allowedAlg(k.Algorithm) {
			continue
		}
		if n++; n > maxKeys {
			break
		}
		out[k.KeyID] = append(out[k.KeyID], k)
	}
	return out, nil
}

func allowedAlg(alg string) bool {
	for _, a := range algorithms() {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// getJSON GETs url and returns its body, after checking for 200.
func getJSON(ctx context.Context, hc *http.Client, op, url, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("signals: %s: %w", op, err)
	}
	req.Header.Set("Accept", accept)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("signals: %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := readBody(resp)
	if err != nil {
		return nil, fmt.Errorf("signals: %s: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, httpError(op, resp.StatusCode, b)
	}
	return b, nil
}

// readBody reads a bounded response body.
func readBody(resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, errors.New("response too large")
	}
	return b, nil
}

// httpError makes an *HTTPError, with the RFC 9457 title and detail of the
// body when it has them.
func httpError(op string, status int, body []byte) *HTTPError {
	e := &HTTPError{Op: op, StatusCode: status}
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) == nil {
		switch {
		case p.Title != "" && p.Detail != "":
			e.Problem = p.Title + ": " + p.Detail
		default:
			e.Problem = p.Title + p.Detail
		}
	}
	return e
}
