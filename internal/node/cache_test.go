package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/workloadapi"
)

// agent returns the cache's agent by name.
func (tc *testCache) agent(t *testing.T, name string) store.Agent {
	t.Helper()
	for _, a := range tc.Agents() {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no agent %s in the cache", name)
	return store.Agent{}
}

// TestX509SVIDOnDemandThenCached: the first request mints an SVID that
// verifies against the trust bundle; later ones are served from memory.
func TestX509SVIDOnDemandThenCached(t *testing.T) {
	tc := newTestCache(t)
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage"))
	a := tc.agent(t, "triage")
	if a.State != store.AgentActive || a.SPIFFEID != spiffeIDOf(agentID("triage")) || len(a.Selectors) != 1 {
		t.Fatalf("agent = %+v", a)
	}
	sv, err := tc.X509SVID(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	b := x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString(trustDomain), []*x509.Certificate{tc.ca.Cert})
	if _, _, err := x509svid.ParseAndVerify(sv.Chain, b, x509svid.WithTime(tc.clock.Now())); err != nil {
		t.Fatalf("x509svid.ParseAndVerify: %v", err)
	}
	again, err := tc.X509SVID(t.Context(), a)
	if err != nil || serial(t, again.Chain) != serial(t, sv.Chain) {
		t.Fatalf("second X509SVID = %v, %v; want the cached SVID", again.ExpiresAt, err)
	}
	if n := tc.up.calls(a.ID); n != 1 {
		t.Errorf("upstream X509SVID calls = %d, want 1", n)
	}
	tb, err := tc.TrustBundle()
	if err != nil || len(tb.X509Authorities) != 1 || !tb.X509Authorities[0].Equal(tc.ca.Cert) {
		t.Errorf("TrustBundle = %+v, %v", tb, err)
	}
}

// TestX509SVIDNeverPastNotAfter: an SVID is served until just before its
// NotAfter and never from then on, also when no new one can be had.
func TestX509SVIDNeverPastNotAfter(t *testing.T) {
	tc := newTestCache(t)
	tc.up.set(func(f *fakeUpstream) { f.ttl = time.Minute })
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage"))
	a := tc.agent(t, "triage")
	sv, err := tc.X509SVID(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	tc.up.set(func(f *fakeUpstream) { f.err = errFakeDown })
	tc.clock.Set(sv.ExpiresAt.Add(-time.Second))
	if got, err := tc.X509SVID(t.Context(), a); err != nil || serial(t, got.Chain) != serial(t, sv.Chain) {
		t.Fatalf("a second before expiry: %v; want the SVID", err)
	}
	tc.clock.Set(sv.ExpiresAt)
	if _, err := tc.X509SVID(t.Context(), a); !errors.Is(err, workloadapi.ErrNoSVID) {
		t.Fatalf("at NotAfter: %v, want ErrNoSVID", err)
	}
	tc.settle()
	// maintain drops it from memory and from the file.
	tc.maintain()
	dc, err := tc.disk.load()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := dc.AgentSVIDs[a.ID]; ok {
		t.Error("the expired SVID is still in the cache file")
	}
}

// TestX509SVIDSingleflight: concurrent first requests for one agent make
// one request to the server and all get its SVID.
func TestX509SVIDSingleflight(t *testing.T) {
	tc := newTestCache(t)
	gate := make(chan struct{})
	tc.up.set(func(f *fakeUpstream) { f.gate = gate })
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage"))
	a := tc.agent(t, "triage")
	const callers = 16
	serials := make(chan string, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			sv, err := tc.X509SVID(t.Context(), a)
			if err != nil {
				t.Error(err)
				serials <- ""
				return
			}
			serials <- serial(t, sv.Chain)
		})
	}
	for tc.up.calls(a.ID) == 0 {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	close(serials)
	first := ""
	for s := range serials {
		if first == "" {
			first = s
		}
		if s != first || s == "" {
			t.Fatalf("callers got different SVIDs: %q and %q", first, s)
		}
	}
	if n := tc.up.calls(a.ID); n != 1 {
		t.Errorf("upstream X509SVID calls = %d, want 1", n)
	}
}

// TestX509SVIDServerDown: without the server and without a cached SVID the
// answer wraps ErrNoSVID; failed requests are retried after a backoff, not
// on every call.
func TestX509SVIDServerDown(t *testing.T) {
	tc := newTestCache(t)
	tc.up.set(func(f *fakeUpstream) { f.err = errFakeDown })
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage"))
	a := tc.agent(t, "triage")
	if _, err := tc.X509SVID(t.Context(), a); !errors.Is(err, workloadapi.ErrNoSVID) || !errors.Is(err, errFakeDown) {
		t.Fatalf("X509SVID = %v, want ErrNoSVID wrapping the failure", err)
	}
	tc.settle()
	if _, err := tc.X509SVID(t.Context(), a); !errors.Is(err, workloadapi.ErrNoSVID) {
		t.Fatalf("X509SVID = %v", err)
	}
	if n := tc.up.calls(a.ID); n != 1 {
		t.Fatalf("calls during the backoff = %d, want 1", n)
	}
	next := tc.maintain()
	if want := tc.clock.Now().Add(MinBackoff / 2); !next.Equal(want) {
		t.Errorf("maintain's next = %s, want the retry at +125ms", next.Sub(tc.clock.Now()))
	}
	tc.up.set(func(f *fakeUpstream) { f.err = nil })
	tc.clock.Add(MinBackoff)
	tc.maintain() // retries in the background
	tc.settle()
	if _, err := tc.X509SVID(t.Context(), a); err != nil {
		t.Fatalf("after the server came back: %v", err)
	}
	if n := tc.up.calls(a.ID); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
}

// TestRenewalAtHalfLife: maintain renews an SVID at half its lifetime,
// not before, and serves the old one meanwhile.
func TestRenewalAtHalfLife(t *testing.T) {
	tc := newTestCache(t)
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage"))
	a := tc.agent(t, "triage")
	sv, err := tc.X509SVID(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	// Half-way from its receipt (now) to its NotAfter.
	half := tc.clock.Now().Add(sv.ExpiresAt.Sub(tc.clock.Now()) / 2)
	if next := tc.maintain(); !next.Equal(half) {
		t.Fatalf("maintain's next = %s, want half-life %s", next, half)
	}
	tc.clock.Set(half.Add(-time.Second))
	tc.maintain()
	if n := tc.up.calls(a.ID); n != 1 {
		t.Fatalf("renewed before half-life: %d calls", n)
	}
	tc.clock.Set(half)
	tc.maintain()
	tc.settle()
	got, err := tc.X509SVID(t.Context(), a)
	if err != nil || serial(t, got.Chain) == serial(t, sv.Chain) {
		t.Fatalf("after renewal: %v; want a new SVID", err)
	}
	if n := tc.up.calls(a.ID); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
}

// TestTaintReissue: when the CA that signed an SVID is tainted, the SVID
// is re-issued at once (and served until then); one the bundle no longer
// verifies is not served.
func TestTaintReissue(t *testing.T) {
	tc := newTestCache(t)
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage", "billing"))
	triage, billing := tc.agent(t, "triage"), tc.agent(t, "billing")
	old, err := tc.X509SVID(t.Context(), triage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.X509SVID(t.Context(), billing); err != nil {
		t.Fatal(err)
	}
	// The CA is tainted: a successor signs, both are in the bundle.
	next := newTestCA(t, 2)
	tc.up.set(func(f *fakeUpstream) { f.ca = next })
	both := bundleDoc(t, trustDomain, nil, tc.ca, next)
	tc.applySnapshot(snapshot("r2", 1000, both, []string{fingerprint(tc.ca.Cert)}, "triage", "billing"))
	if got, err := tc.X509SVID(t.Context(), triage); err != nil || serial(t, got.Chain) != serial(t, old.Chain) {
		t.Fatalf("before re-issue: %v; want the tainted SVID still served", err)
	}
	tc.maintain()
	tc.settle()
	for _, a := range []store.Agent{triage, billing} {
		got, err := tc.X509SVID(t.Context(), a)
		if err != nil || !issuedBy(t, got.Chain, next) {
			t.Fatalf("%s after taint: %v; want an SVID of the successor", a.Name, err)
		}
	}
	// The bundle drops the first CA: nothing it signed is served, and a
	// renewal under it would not be either.
	tc.up.set(func(f *fakeUpstream) { f.ca = tc.ca; f.err = errFakeDown })
	onlyFirst := bundleDoc(t, trustDomain, nil, tc.ca)
	tc.applySnapshot(snapshot("r3", 1000, onlyFirst, nil, "triage", "billing"))
	if _, err := tc.X509SVID(t.Context(), triage); !errors.Is(err, workloadapi.ErrNoSVID) {
		t.Fatalf("SVID of a CA not in the bundle: %v, want ErrNoSVID", err)
	}
}

// TestDropOnRemoval: an agent that leaves the snapshot loses its SVIDs, in
// memory and on disk.
func TestDropOnRemoval(t *testing.T) {
	tc := newTestCache(t)
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage", "billing"))
	triage := tc.agent(t, "triage")
	if _, err := tc.X509SVID(t.Context(), triage); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.JWTSVID(t.Context(), triage, []string{"https://api"}); err != nil {
		t.Fatal(err)
	}
	tc.applySnapshot(snapshot("r2", 1000, tc.bundle, nil, "billing"))
	if len(tc.Agents()) != 1 {
		t.Fatalf("agents = %+v", tc.Agents())
	}
	if _, err := tc.X509SVID(t.Context(), triage); !errors.Is(err, workloadapi.ErrNoSVID) {
		t.Fatalf("X509SVID of a removed agent = %v", err)
	}
	if _, err := tc.JWTSVID(t.Context(), triage, []string{"https://api"}); err == nil {
		t.Fatal("JWTSVID of a removed agent succeeded")
	}
	dc, err := tc.disk.load()
	if err != nil {
		t.Fatal(err)
	}
	if len(dc.AgentSVIDs) != 0 || dc.Snapshot.Revision != "r2" {
		t.Errorf("cache file: %d SVIDs, revision %s", len(dc.AgentSVIDs), dc.Snapshot.Revision)
	}
}

// TestJWTSVIDCache: a JWT-SVID is kept per agent and audience (in any
// order) until half its lifetime; then a new one is fetched, and if that
// fails the cached one is served until it expires.
// TestJWTSVIDBatching: JWT-SVID requests made while a batch is in flight
// go to the server together in the next one, and each gets its own token.
func TestJWTSVIDBatching(t *testing.T) {
	tc := newTestCache(t)
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage"))
	a := tc.agent(t, "triage")
	gate := make(chan struct{})
	tc.up.mu.Lock()
	tc.up.jwtGate = gate
	tc.up.mu.Unlock()
	tokens := make([]string, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	ask := func(i int) {
		wg.Go(func() { tokens[i], errs[i] = tc.JWTSVID(t.Context(), a, []string{fmt.Sprintf("aud-%d", i)}) })
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	ask(0)
	waitFor("the first batch", func() bool { tc.up.mu.Lock(); defer tc.up.mu.Unlock(); return len(tc.up.jwtBatches) == 1 })
	ask(1)
	ask(2)
	waitFor("two queued requests", func() bool {
		tc.jwtBatch.mu.Lock()
		defer tc.jwtBatch.mu.Unlock()
		return len(tc.jwtBatch.queue) == 2
	})
	close(gate)
	wg.Wait()
	for i := range tokens {
		if errs[i] != nil || !strings.HasSuffix(tokens[i], fmt.Sprintf("aud-%d", i)) {
			t.Errorf("request %d = %q, %v", i, tokens[i], errs[i])
		}
	}
	tc.up.mu.Lock()
	defer tc.up.mu.Unlock()
	if !slices.Equal(tc.up.jwtBatches, []int{1, 2}) {
		t.Errorf("batches %v, want [1 2]", tc.up.jwtBatches)
	}
}

func TestJWTSVIDCache(t *testing.T) {
	tc := newTestCache(t)
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage"))
	a := tc.agent(t, "triage")
	first, err := tc.JWTSVID(t.Context(), a, []string{"b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := tc.JWTSVID(t.Context(), a, []string{"a", "b", "a"}); err != nil || again != first {
		t.Fatalf("same audience = %q, %v; want the cached %q", again, err, first)
	}
	if other, err := tc.JWTSVID(t.Context(), a, []string{"c"}); err != nil || other == first {
		t.Fatalf("another audience = %q, %v", other, err)
	}
	tc.clock.Add(150 * time.Second) // half of 5 min
	second, err := tc.JWTSVID(t.Context(), a, []string{"a", "b"})
	if err != nil || second == first {
		t.Fatalf("at half-life = %q, %v; want a new one", second, err)
	}
	tc.up.set(func(f *fakeUpstream) { f.err = errFakeDown })
	tc.clock.Add(150 * time.Second)
	if got, err := tc.JWTSVID(t.Context(), a, []string{"a", "b"}); err != nil || got != second {
		t.Fatalf("server down, token valid = %q, %v; want the cached one", got, err)
	}
	tc.clock.Add(150 * time.Second)
	if got, err := tc.JWTSVID(t.Context(), a, []string{"a", "b"}); err == nil {
		t.Fatalf("server down, token expired = %q; want an error", got)
	}
}

// TestJWTSVIDSurvivesSweep: a fetched JWT-SVID reaches its caller even
// when another flight's sweep of a full cache drops it from the cache
// before the caller reads it (seen under load as "no JWT-SVID").
func TestJWTSVIDSurvivesSweep(t *testing.T) {
	tc := newTestCache(t)
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage"))
	a := tc.agent(t, "triage")
	aud := []string{"x"}
	key := jwtKey(a.ID, aud)
	f := &flight{done: make(chan struct{})}
	tc.fetchJWT(t.Context(), tc.up, a.ID, aud, key, f)
	tc.mu.Lock()
	clear(tc.jwts) // what a concurrent flight does to a full cache
	tc.mu.Unlock()
	if tok, err := tc.validJWT(key, f.jwt, f.err); err != nil || tok == "" {
		t.Fatalf("after a sweep = %q, %v; want the fetched JWT-SVID", tok, err)
	}
	tc.clock.Add(10 * time.Minute)
	if tok, err := tc.validJWT(key, f.jwt, f.err); err == nil {
		t.Fatalf("expired = %q; want an error", tok)
	}
}

// TestPersistenceRoundTrip: what a cache holds comes back from its file
// (mode 0600 in a 0700 directory) in a new cache.
func TestPersistenceRoundTrip(t *testing.T) {
	tc := newTestCache(t)
	tc.disk.dir = filepath.Join(tc.disk.dir, "data")
	if _, err := tc.disk.prepare(); err != nil {
		t.Fatal(err)
	}
	key, csr, err := newKeyAndCSR()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tc.up.Renew(t.Context(), csr)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := newSVID(resp.SPIFFEID, resp.CertChain, key, tc.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseBundle(trustDomain, tc.bundle)
	if err != nil {
		t.Fatal(err)
	}
	tc.setNode(trustDomain, "nod_test", ns, b)
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage"))
	sv, err := tc.X509SVID(t.Context(), tc.agent(t, "triage"))
	if err != nil {
		t.Fatal(err)
	}
	tc.settle()

	for path, want := range map[string]os.FileMode{tc.disk.dir: 0o700, tc.disk.path(): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, mode %v; want %v", path, err, fi.Mode().Perm(), want)
		}
	}
	dc, err := tc.disk.load()
	if err != nil {
		t.Fatal(err)
	}
	c2 := newCache(tc.clock.Now, tc.log, tc.disk, testBackoff())
	c2.load(dc)
	if td, id := c2.identity(); td != trustDomain || id != "nod_test" {
		t.Errorf("identity = %s, %s", td, id)
	}
	if crt, err := c2.nodeCertificate(); err != nil || !crt.Leaf.Equal(ns.certs[0]) {
		t.Errorf("node certificate = %v", err)
	}
	if len(c2.Agents()) != 1 || len(c2.authorities()) != 1 {
		t.Fatalf("agents %d, authorities %d", len(c2.Agents()), len(c2.authorities()))
	}
	got, err := c2.X509SVID(t.Context(), c2.Agents()[0])
	if err != nil || serial(t, got.Chain) != serial(t, sv.Chain) {
		t.Fatalf("loaded X509SVID: %v; want the SVID served before", err)
	}
	if !got.Key.Public().(*ecdsa.PublicKey).Equal(sv.Key.Public()) {
		t.Error("loaded SVID has another key")
	}
}

// TestCorruptCacheFile: a cache file that does not decode is an error of
// load (Run then starts empty).
func TestCorruptCacheFile(t *testing.T) {
	d := disk{dir: t.TempDir()}
	for name, content := range map[string]string{
		"garbage":       "{not json",
		"wrong version": `{"version": 99}`,
	} {
		if err := os.WriteFile(d.path(), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if dc, err := d.load(); err == nil {
			t.Errorf("%s: load = %+v, want an error", name, dc)
		}
	}
	if err := os.Remove(d.path()); err != nil {
		t.Fatal(err)
	}
	if dc, err := d.load(); dc != nil || err != nil {
		t.Errorf("no file: load = %v, %v; want nothing", dc, err)
	}
}

// TestEvictionWipes: ErrEvicted from the server makes the cache forget
// everything, remove its file and serve nothing.
func TestEvictionWipes(t *testing.T) {
	tc := newTestCache(t)
	if _, err := tc.disk.prepare(); err != nil {
		t.Fatal(err)
	}
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage", "billing"))
	triage, billing := tc.agent(t, "triage"), tc.agent(t, "billing")
	if _, err := tc.X509SVID(t.Context(), triage); err != nil {
		t.Fatal(err)
	}
	tc.settle()
	if _, err := os.Stat(tc.disk.path()); err != nil {
		t.Fatal(err)
	}
	tc.up.set(func(f *fakeUpstream) { f.err = nodeapi.ErrEvicted })
	changed := tc.Changed()
	if _, err := tc.X509SVID(t.Context(), billing); !errors.Is(err, workloadapi.ErrNoSVID) {
		t.Fatalf("X509SVID = %v", err)
	}
	select {
	case <-tc.evicts:
	case <-time.After(10 * time.Second):
		t.Fatal("onEvict not called")
	}
	select {
	case <-changed:
	default:
		t.Error("eviction did not signal a change")
	}
	if _, err := os.Stat(tc.disk.path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cache file after eviction: %v", err)
	}
	if _, err := tc.X509SVID(t.Context(), triage); !errors.Is(err, workloadapi.ErrNoSVID) {
		t.Errorf("X509SVID after eviction = %v", err)
	}
	if _, err := tc.TrustBundle(); err == nil {
		t.Error("TrustBundle after eviction succeeded")
	}
	if _, err := tc.nodeCertificate(); err == nil {
		t.Error("node certificate after eviction")
	}
	tc.applySnapshot(snapshot("r2", 1000, tc.bundle, nil, "triage"))
	if _, err := tc.TrustBundle(); err == nil {
		t.Error("a snapshot after eviction was applied")
	}
}

// TestBackoff: waits double from 250 ms to the maximum, less up to half
// of jitter.
func TestBackoff(t *testing.T) {
	b := backoff{base: MinBackoff, max: 2 * time.Second, jitter: func(int64) int64 { return 0 }}
	var got []time.Duration
	for i := range 6 {
		got = append(got, b.delay(i))
	}
	want := []time.Duration{125, 250, 500, 1000, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays without jitter = %v, want %v ms", got, want)
		}
	}
	full := backoff{base: MinBackoff, max: 2 * time.Second, jitter: func(n int64) int64 { return n - 1 }}
	if d := full.delay(10); d != 2*time.Second {
		t.Errorf("delay with the most jitter = %s, want 2s", d)
	}
}

// TestWatchLoopBackoff: the watch loop reconnects after failures with
// growing waits, and a snapshot resets them.
func TestWatchLoopBackoff(t *testing.T) {
	clock := newFakeClock()
	ca := newTestCA(t, 1)
	up := newFakeUpstream(clock, ca)
	n, err := New(Params{DataDir: t.TempDir(), SocketPath: "unused", Clock: clock.Now, Upstream: up, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n.bo.jitter = func(int64) int64 { return 0 }
	n.up = up
	bundle := bundleDoc(t, trustDomain, nil, ca)
	n.cache.td = trustDomain
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Fail 4 times, deliver a snapshot and fail, fail once more, then stop.
	script := []bool{false, false, false, false, true, false}
	calls := 0
	up.watch = func(ctx context.Context, fn func(nodeapi.Snapshot) error) error {
		defer func() { calls++ }()
		if calls >= len(script) {
			cancel()
			return ctx.Err()
		}
		if script[calls] {
			_ = fn(snapshot("r1", 1000, bundle, nil, "triage"))
		}
		return errFakeDown
	}
	var waits []time.Duration
	n.after = func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		return ch
	}
	n.watchLoop(ctx)
	want := []time.Duration{125, 250, 500, 500, 125, 250}
	if len(waits) != len(want) {
		t.Fatalf("waits = %v, want %v ms", waits, want)
	}
	for i := range want {
		if waits[i] != want[i]*time.Millisecond {
			t.Fatalf("waits = %v, want %v ms", waits, want)
		}
	}
	if len(n.cache.Agents()) != 1 {
		t.Error("the snapshot was not applied")
	}
}

// TestRenewAtShortTTL: a short-lived SVID, whose NotBefore the issuer
// backdated by 30 s, is due half-way from its receipt, not at once.
func TestRenewAtShortTTL(t *testing.T) {
	tc := newTestCache(t)
	tc.up.set(func(f *fakeUpstream) { f.ttl = 4 * time.Second })
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage"))
	sv, err := tc.X509SVID(t.Context(), tc.agent(t, "triage"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(sv.Chain[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := sv.ExpiresAt.Sub(c.NotBefore); got != 34*time.Second {
		t.Fatalf("lifetime %s, want 4s + 30s backdating", got)
	}
	if next, want := tc.maintain(), tc.clock.Now().Add(2*time.Second); !next.Equal(want) {
		t.Errorf("due in %s, want 2s", next.Sub(tc.clock.Now()))
	}
}
