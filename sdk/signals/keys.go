package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/agentid/agentid/sdk/internal/jwks"
	"github.com/go-jose/go-jose/v4"
)

// jwksMaxAge is how long a fetched JWKS is used when its answer has no
// Cache-Control max-age. agentid's SET keys are its token keys; rotation
// is announced by a new kid, which triggers a fetch anyway.
const jwksMaxAge = 5 * time.Minute

// Key lookup failures. errKeysUnavailable and errKeyRetryLater are
// transient: the SET is left unsettled, to be delivered again.
var (
	errUnknownKey      = errors.New("signals: unknown signing key")
	errKeysUnavailable = errors.New("signals: JWKS unavailable")
	errKeyRetryLater   = errors.New("signals: unknown kid, JWKS fetched too recently to fetch again")
)

// newKeySet returns the cache of the issuer's JWKS at jwksURL
// (sdk/internal/jwks, shared with sdk/resource): fetched when stale or
// when a kid is unknown, at most once per MinRefetchInterval, one fetch
// shared by concurrent pushes.
func (r *Receiver) newKeySet(jwksURL string) *jwks.Cache {
	return jwks.New(jwks.Params{
		URL: jwksURL, HTTPClient: r.cfg.PublicClient, Clock: r.clock, MinRefetchInterval: r.cfg.MinRefetchInterval,
		DefaultMaxAge: jwksMaxAge, Algorithms: algorithms(),
		WrapError: func(err error) error {
			var se *jwks.StatusError
			if errors.As(err, &se) {
				return httpError("jwks", se.StatusCode, se.Body)
			}
			return fmt.Errorf("signals: jwks: %w", err)
		},
	})
}

// lookupKeys discovers the transmitter if need be and returns how the SETs
// at hand find the issuer's keys: a JWKS fetched after now that lacks
// their kid refuses them (errUnknownKey). The lookup's other errors are
// errKeyRetryLater, when kid is unknown and the JWKS may not be fetched
// again yet, and errKeysUnavailable, when the fetch failed (or ctx ended)
// and the cache lacks kid.
func (r *Receiver) lookupKeys(ctx context.Context) (keyLookup, error) {
	if _, err := r.metadata(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	ks := r.keys
	r.mu.Unlock()
	gen := ks.Generation()
	return func(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
		keys, err := ks.Get(ctx, kid, gen)
		var fe *jwks.FetchError
		switch {
		case err == nil:
			return keys, nil
		case errors.Is(err, jwks.ErrUnknownKey):
			return nil, errUnknownKey
		case errors.Is(err, jwks.ErrRefetchLimited):
			return nil, errKeyRetryLater
		case errors.As(err, &fe):
			err = fe.Err
		}
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}, nil
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
