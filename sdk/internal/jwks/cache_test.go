package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeIssuer answers JWKS requests and counts them.
type fakeIssuer struct {
	mu           sync.Mutex
	keys         []jose.JSONWebKey
	status       int
	body         string // when set, the answer's body instead of keys
	cacheControl string
	fetches      int
	hold         chan struct{} // when set, answers wait for it to close
}

func (is *fakeIssuer) RoundTrip(r *http.Request) (*http.Response, error) {
	is.mu.Lock()
	is.fetches++
	hold := is.hold
	is.mu.Unlock()
	if hold != nil {
		<-hold
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	body := is.body
	if body == "" {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: is.keys})
		if err != nil {
			return nil, err
		}
		body = string(b)
	}
	h := http.Header{"Content-Type": {"application/jwk-set+json"}}
	if is.cacheControl != "" {
		h.Set("Cache-Control", is.cacheControl)
	}
	status := is.status
	if status == 0 {
		status = http.StatusOK
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

func (is *fakeIssuer) set(f func(is *fakeIssuer)) {
	is.mu.Lock()
	defer is.mu.Unlock()
	f(is)
}

func (is *fakeIssuer) count() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.fetches
}

// newCache returns a Cache of is's JWKS that refetches at most every 30 s.
func newCache(is *fakeIssuer, clock *fakeClock) *Cache {
	return New(Params{
		URL: "https://issuer.example.com/jwks", HTTPClient: &http.Client{Transport: is}, Clock: clock.Now,
		MinRefetchInterval: 30 * time.Second, DefaultMaxAge: 5 * time.Minute,
		WrapError: func(err error) error { return fmt.Errorf("test: %w", err) },
	})
}

func ecKey(t testing.TB, kid string) (*ecdsa.PrivateKey, jose.JSONWebKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}
}

func edKey(t testing.TB, kid string) (ed25519.PrivateKey, jose.JSONWebKey) {
	t.Helper()
	pub, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(jose.EdDSA), Use: "sig"}
}

// get calls c.Get for tokens arriving now.
func get(c *Cache, kid string) ([]jose.JSONWebKey, error) {
	return c.Get(context.Background(), kid, c.Generation())
}

func TestUnknownKidRefetch(t *testing.T) {
	_, k1 := ecKey(t, "k1")
	_, k2 := edKey(t, "k2")
	is := &fakeIssuer{keys: []jose.JSONWebKey{k1}, cacheControl: "max-age=3600"}
	clock := &fakeClock{now: t0}
	c := newCache(is, clock)
	for range 2 {
		if keys, err := get(c, "k1"); err != nil || len(keys) != 1 || keys[0].KeyID != "k1" {
			t.Fatalf("Get(k1) = %v, %v", keys, err)
		}
	}
	if is.count() != 1 || c.Generation() != 1 {
		t.Fatalf("%d fetches, generation %d, want 1 and 1", is.count(), c.Generation())
	}
	// The issuer rotates to k2. Too soon to fetch again: k2 is unknown for now.
	is.set(func(is *fakeIssuer) { is.keys = []jose.JSONWebKey{k2} })
	clock.Advance(29 * time.Second)
	if _, err := get(c, "k2"); !errors.Is(err, ErrRefetchLimited) {
		t.Fatalf("Get(k2) within the interval = %v, want ErrRefetchLimited", err)
	}
	clock.Advance(time.Second)
	before := c.Generation()
	if _, err := get(c, "k2"); err != nil {
		t.Fatalf("Get(k2) after the interval = %v", err)
	}
	if is.count() != 2 {
		t.Fatalf("%d fetches, want 2", is.count())
	}
	// A token that arrived before that fetch and names a kid it lacks is
	// refused for good; one arriving now may wait for the next fetch.
	if _, err := c.Get(context.Background(), "k3", before); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Get(k3, before the fetch) = %v, want ErrUnknownKey", err)
	}
	if _, err := get(c, "k3"); !errors.Is(err, ErrRefetchLimited) {
		t.Fatalf("Get(k3, now) = %v, want ErrRefetchLimited", err)
	}
	// k1 left the set: unknown, and not fetched again so soon.
	if _, err := get(c, "k1"); !errors.Is(err, ErrRefetchLimited) || is.count() != 2 {
		t.Fatalf("Get(k1) after the rotation = %v with %d fetches", err, is.count())
	}
}

func TestRefetchIsRateLimited(t *testing.T) {
	_, k1 := ecKey(t, "k1")
	is := &fakeIssuer{keys: []jose.JSONWebKey{k1}}
	clock := &fakeClock{now: t0}
	c := newCache(is, clock)
	// The first Get fetches and settles the kid at once.
	if _, err := get(c, "nope"); !errors.Is(err, ErrUnknownKey) || is.count() != 1 {
		t.Fatalf("first Get = %v with %d fetches, want ErrUnknownKey and 1", err, is.count())
	}
	for i := range 3 {
		clock.Advance(9 * time.Second)
		if _, err := get(c, "nope"); !errors.Is(err, ErrRefetchLimited) || is.count() != 1 {
			t.Fatalf("attempt %d: %v with %d fetches, want ErrRefetchLimited and 1", i, err, is.count())
		}
	}
	clock.Advance(3 * time.Second)
	if _, err := get(c, "nope"); !errors.Is(err, ErrUnknownKey) || is.count() != 2 {
		t.Fatalf("after the interval: %v with %d fetches, want ErrUnknownKey and 2", err, is.count())
	}
}

func TestCacheControl(t *testing.T) {
	_, k1 := ecKey(t, "k1")
	for _, tc := range []struct {
		name         string
		cacheControl string
		steps        []time.Duration // advance, then Get
		wantFetches  []int           // after each step
	}{
		{"max-age", "public, max-age=60", []time.Duration{0, 59 * time.Second, time.Second, 30 * time.Second}, []int{1, 1, 2, 2}},
		{"default", "", []time.Duration{0, 5*time.Minute - time.Second, time.Second}, []int{1, 1, 2}},
		{"capped at a day", "max-age=999999", []time.Duration{0, 24*time.Hour - time.Second, time.Second}, []int{1, 1, 2}},
		// Stale at once: fetched whenever needed, but at most every 30 s;
		// meanwhile the stale keys answer.
		{"no-store", "no-store", []time.Duration{0, 10 * time.Second, 19 * time.Second, time.Second, 0}, []int{1, 1, 1, 2, 2}},
		{"max-age=0", "max-age=0", []time.Duration{0, 29 * time.Second, time.Second}, []int{1, 1, 2}},
		{"invalid max-age is stale", "max-age=soon", []time.Duration{0, 30 * time.Second}, []int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := &fakeIssuer{keys: []jose.JSONWebKey{k1}, cacheControl: tc.cacheControl}
			clock := &fakeClock{now: t0}
			c := newCache(is, clock)
			for i, d := range tc.steps {
				clock.Advance(d)
				if _, err := get(c, "k1"); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got := is.count(); got != tc.wantFetches[i] {
					t.Fatalf("step %d: %d fetches, want %d", i, got, tc.wantFetches[i])
				}
			}
		})
	}
}

func TestBadJWKS(t *testing.T) {
	_, k1 := ecKey(t, "k1")
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string // in the error
	}{
		{"server error", http.StatusInternalServerError, `{"title":"down"}`, "answered HTTP 500"},
		{"not JSON", http.StatusOK, `<html>`, "not a JWK set"},
		{"no keys member", http.StatusOK, `{}`, "not a JWK set"},
		{"keys not an array", http.StatusOK, `{"keys":{}}`, "not a JWK set"},
		{"too large", http.StatusOK, `{"keys":[` + strings.Repeat(" ", maxBody) + `]}`, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := &fakeIssuer{status: tc.status, body: tc.body, cacheControl: "max-age=60"}
			clock := &fakeClock{now: t0}
			c := newCache(is, clock)
			_, err := get(c, "k1")
			var fe *FetchError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Err.Error(), "test: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Get = %v, want a *FetchError made by WrapError saying %q", err, tc.want)
			}
			var se *StatusError
			if errors.As(err, &se) != (tc.status != http.StatusOK) {
				t.Fatalf("Get = %v: *StatusError %v", err, se)
			}
			if se != nil && (se.StatusCode != tc.status || string(se.Body) != tc.body) {
				t.Fatalf("StatusError = %+v", se)
			}
			// Within the interval the failure stands, without a fetch.
			if _, err := get(c, "k1"); !errors.As(err, &fe) || is.count() != 1 {
				t.Fatalf("Get within the interval = %v with %d fetches", err, is.count())
			}
			// The issuer recovers, then fails again once the set is stale:
			// the keys fetched keep serving.
			is.set(func(is *fakeIssuer) { is.status, is.body, is.keys = http.StatusOK, "", []jose.JSONWebKey{k1} })
			clock.Advance(30 * time.Second)
			if _, err := get(c, "k1"); err != nil {
				t.Fatalf("Get after recovery = %v", err)
			}
			is.set(func(is *fakeIssuer) { is.status, is.body = tc.status, tc.body })
			clock.Advance(time.Minute)
			if _, err := get(c, "k1"); err != nil || is.count() != 3 {
				t.Fatalf("Get with a stale set and a bad answer = %v with %d fetches, want the stale key after 3", err, is.count())
			}
		})
	}
}

func TestNetworkError(t *testing.T) {
	down := errors.New("connection refused")
	c := New(Params{
		URL: "https://issuer.example.com/jwks", Clock: time.Now, MinRefetchInterval: time.Minute,
		HTTPClient: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, down })},
	})
	if _, err := get(c, "k1"); !errors.Is(err, down) {
		t.Fatalf("Get = %v, want the transport's error", err)
	}
}

// TestConcurrentGetsShareOneFetch: callers wait for one fetch instead of
// queueing behind each other, and one whose context ends stops waiting
// while the fetch goes on for the others.
func TestConcurrentGetsShareOneFetch(t *testing.T) {
	_, k1 := ecKey(t, "k1")
	hold := make(chan struct{})
	is := &fakeIssuer{keys: []jose.JSONWebKey{k1}, hold: hold}
	c := newCache(is, &fakeClock{now: t0})
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, "k1", 0)
		gaveUp <- err
	}()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := get(c, "k1"); err != nil {
				t.Error(err)
			}
		})
	}
	for is.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with its context cancelled = %v, want context.Canceled", err)
	}
	close(hold)
	wg.Wait()
	if is.count() != 1 {
		t.Fatalf("%d fetches, want 1", is.count())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCacheLifetime(t *testing.T) {
	const def = 5 * time.Minute
	for _, tc := range []struct {
		headers []string
		want    time.Duration
	}{
		{nil, def},
		{[]string{"max-age=60"}, time.Minute},
		{[]string{`public, MAX-AGE="120"`}, 2 * time.Minute},
		{[]string{"public", "max-age=30"}, 30 * time.Second},
		{[]string{"max-age=99999999999"}, maxMaxAge},
		{[]string{"max-age=-1"}, 0},
		{[]string{"max-age="}, 0},
		{[]string{"max-age=60, no-store"}, 0},
		{[]string{"No-Cache"}, 0},
		{[]string{"must-revalidate"}, def},
	} {
		h := http.Header{"Cache-Control": tc.headers}
		if got := cacheLifetime(h, def); got != tc.want {
			t.Errorf("cacheLifetime(%q) = %v, want %v", tc.headers, got, tc.want)
		}
	}
}

func TestParseKeySet(t *testing.T) {
	const xy = `"x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"`
	doc := `{"keys":[` +
		`{"kty":"EC","crv":"P-256","kid":"ok",` + xy + `},` +
		`{"kty":"EC","crv":"P-256","kid":"es256","alg":"ES256",` + xy + `},` +
		`{"kty":"EC","crv":"P-256","kid":"ps256","alg":"PS256",` + xy + `},` +
		`{"kty":"EC","crv":"P-256",` + xy + `},` +
		`{"kty":"EC","crv":"P-256","kid":"enc","use":"enc",` + xy + `},` +
		`{"kty":"EC","crv":"P-256","kid":"hs","alg":"HS256",` + xy + `},` +
		`{"kty":"oct","kid":"sym","k":"c2VjcmV0"},` +
		`{"kty":"ML-DSA","kid":"future","pub":"AAAA"},` +
		`{"kty":"EC","crv":"P-256","kid":"bad","x":"AA","y":"AA"}` +
		`]}`
	for _, tc := range []struct {
		algs []jose.SignatureAlgorithm
		want []string
	}{
		{nil, []string{"es256", "ok", "ps256"}},
		{[]jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}, []string{"es256", "ok"}},
	} {
		got, err := parseKeySet([]byte(doc), tc.algs)
		if err != nil {
			t.Fatal(err)
		}
		kids := slices.Sorted(maps.Keys(got))
		if diff := cmp.Diff(tc.want, kids); diff != "" {
			t.Errorf("algorithms %v: kept keys (-want +got):\n%s", tc.algs, diff)
		}
	}
	for _, bad := range []string{``, `[]`, `{}`, `{"keys":{}}`, `null`} {
		if _, err := parseKeySet([]byte(bad), nil); err == nil {
			t.Errorf("parseKeySet(%q) succeeded", bad)
		}
	}
}

func TestParseKeySetKeepsAtMostMaxKeys(t *testing.T) {
	_, k := ecKey(t, "k")
	var set jose.JSONWebKeySet
	for i := range maxKeys + 10 {
		k.KeyID = fmt.Sprint("k", i)
		set.Keys = append(set.Keys, k)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseKeySet(b, nil)
	if err != nil || len(got) != maxKeys {
		t.Fatalf("parseKeySet kept %d keys (%v), want %d", len(got), err, maxKeys)
	}
}

func FuzzCacheLifetime(f *testing.F) {
	f.Add("max-age=60")
	f.Add(`public, max-age="5", no-store`)
	f.Fuzz(func(t *testing.T, v string) {
		d := cacheLifetime(http.Header{"Cache-Control": {v}}, 5*time.Minute)
		if d < 0 || d > maxMaxAge {
			t.Fatalf("cacheLifetime(%q) = %v", v, d)
		}
	})
}

func FuzzParseKeySet(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"ok","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"x","k":"AA"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseKeySet(b, nil)
		if err != nil {
			return
		}
		for kid, ks := range keys {
			for _, k := range ks {
				if kid == "" || k.KeyID != kid || !k.IsPublic() || (k.Algorithm != "" && !Asymmetric(jose.SignatureAlgorithm(k.Algorithm))) {
					t.Fatalf("parseKeySet kept %+v", k)
				}
			}
		}
	})
}
