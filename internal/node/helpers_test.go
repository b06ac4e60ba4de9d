package node

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/internal/testca"
)

const trustDomain = "example.org"

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// newTestCA is a self-signed P-256 CA of the trust domain.
func newTestCA(t testing.TB, serial int64) *testca.CA {
	t.Helper()
	return testca.New(t, testca.Params{TrustDomain: trustDomain, Serial: serial, KeyID: "sgk_ca"})
}

// bundleDoc is a SPIFFE bundle document with the CAs and a JWT key.
func bundleDoc(t testing.TB, td string, jwtKey crypto.PublicKey, cas ...*testca.CA) []byte {
	t.Helper()
	b := spiffebundle.New(spiffeid.RequireTrustDomainFromString(td))
	for _, ca := range cas {
		b.AddX509Authority(ca.Cert)
	}
	if jwtKey != nil {
		if err := b.AddJWTAuthority("sgk_jwt", jwtKey); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// agentID and spiffeIDOf name the test agents: agt_<name>,
// spiffe://example.org/agent/<name>.
func agentID(name string) string { return "agt_" + name }
func spiffeIDOf(agentID string) string {
	return "spiffe://" + trustDomain + "/agent/" + strings.TrimPrefix(agentID, "agt_")
}

// snapshot is a snapshot of the agents (selector unix:uid:<uid>) with the
// bundle and taints.
func snapshot(rev string, uid int, bundle []byte, taint []string, names ...string) nodeapi.Snapshot {
	s := nodeapi.Snapshot{Revision: rev, Bundle: bundle, TaintedAuthorities: taint}
	for _, n := range names {
		s.Agents = append(s.Agents, nodeapi.Agent{
			ID: agentID(n), Name: n, SPIFFEID: spiffeIDOf(agentID(n)),
			Selectors: []string{fmt.Sprintf("unix:uid:%d", uid)}, Version: 1,
		})
	}
	return s
}

var errFakeDown = errors.New("fake: connection refused")

// fakeUpstream is the node API in miniature: it mints real SVIDs with a
// test CA at the fake clock's time, hands out opaque JWT-SVIDs, and
// streams the snapshots sent on snaps.
type fakeUpstream struct {
	clock *fakeClock

	mu         sync.Mutex
	ca         *testca.CA
	ttl        time.Duration
	jwtTTL     time.Duration
	err        error         // every call fails with it when set
	gate       chan struct{} // X509SVID waits for it when set
	jwtGate    chan struct{} // JWTSVIDs waits for it when set
	jwtBatches []int         // the size of each JWTSVIDs batch
	x509Calls  map[string]int
	jwtCalls   int
	renewCalls int
	closed     int
	snaps      chan nodeapi.Snapshot
	watch      func(ctx context.Context, fn func(nodeapi.Snapshot) error) error
}

var _ Upstream = (*fakeUpstream)(nil)

func newFakeUpstream(clock *fakeClock, ca *testca.CA) *fakeUpstream {
	return &fakeUpstream{
		clock: clock, ca: ca, ttl: time.Hour, jwtTTL: 5 * time.Minute,
		x509Calls: map[string]int{}, snaps: make(chan nodeapi.Snapshot, 16),
	}
}

func (f *fakeUpstream) CurrentCA() (credential.CAKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ca.CurrentCA()
}

func (f *fakeUpstream) set(fn func(f *fakeUpstream)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeUpstream) mint(spiffeID string, csrDER []byte) (nodeapi.X509SVID, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nodeapi.X509SVID{}, err
	}
	iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{CA: f, Rand: rand.Reader})
	if err != nil {
		return nodeapi.X509SVID{}, err
	}
	f.mu.Lock()
	ttl := f.ttl
	f.mu.Unlock()
	sv, err := iss.X509SVID(credential.X509SVIDParams{SPIFFEID: spiffeID, PublicKey: csr.PublicKey, IssuedAt: f.clock.Now(), TTL: ttl})
	if err != nil {
		return nodeapi.X509SVID{}, err
	}
	return nodeapi.X509SVID{SPIFFEID: sv.SPIFFEID, CertChain: sv.Chain, ExpiresAt: sv.ExpiresAt}, nil
}

func (f *fakeUpstream) Renew(_ context.Context, csr []byte) (nodeapi.X509SVID, error) {
	f.mu.Lock()
	f.renewCalls++
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return nodeapi.X509SVID{}, err
	}
	return f.mint("spiffe://"+trustDomain+"/node/nod_test", csr)
}

func (f *fakeUpstream) X509SVID(ctx context.Context, id string, csr []byte) (nodeapi.X509SVID, error) {
	f.mu.Lock()
	f.x509Calls[id]++
	err, gate := f.err, f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nodeapi.X509SVID{}, ctx.Err()
		}
	}
	if err != nil {
		return nodeapi.X509SVID{}, err
	}
	return f.mint(spiffeIDOf(id), csr)
}

func (f *fakeUpstream) JWTSVIDs(ctx context.Context, items []nodeapi.JWTSVIDsItem) ([]nodeapi.JWTSVIDResult, error) {
	f.mu.Lock()
	f.jwtBatches = append(f.jwtBatches, len(items))
	gate := f.jwtGate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := make([]nodeapi.JWTSVIDResult, len(items))
	for i, it := range items {
		f.jwtCalls++
		out[i].JWTSVID = nodeapi.JWTSVID{
			Token:     fmt.Sprintf("jwt-%d-%s-%s", f.jwtCalls, it.AgentID, strings.Join(it.Audience, ",")),
			ExpiresAt: f.clock.Now().Add(f.jwtTTL),
		}
	}
	return out, nil
}

func (f *fakeUpstream) Watch(ctx context.Context, fn func(nodeapi.Snapshot) error) error {
	f.mu.Lock()
	w, err := f.watch, f.err
	f.mu.Unlock()
	if w != nil {
		return w(ctx, fn)
	}
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case s := <-f.snaps:
			if err := fn(s); err != nil {
				return err
			}
		}
	}
}

func (f *fakeUpstream) CloseIdleConnections() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
}

func (f *fakeUpstream) calls(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.x509Calls[id]
}

// testCache is a cache on a temporary data directory, connected to a fake
// upstream.
type testCache struct {
	*cache
	clock  *fakeClock
	up     *fakeUpstream
	ca     *testca.CA
	bundle []byte
	evicts chan struct{}
}

func newTestCache(t testing.TB) *testCache {
	t.Helper()
	clock := newFakeClock()
	ca := newTestCA(t, 1)
	up := newFakeUpstream(clock, ca)
	tc := &testCache{clock: clock, up: up, ca: ca, evicts: make(chan struct{}, 1)}
	tc.cache = newCache(clock.Now, slog.New(slog.DiscardHandler), disk{dir: t.TempDir()}, testBackoff())
	tc.onEvict = func() { tc.evicts <- struct{}{} }
	tc.td = trustDomain
	tc.bundle = bundleDoc(t, trustDomain, nil, ca)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); tc.shutdown() })
	tc.connect(ctx, up)
	return tc
}

// testBackoff is a backoff without jitter: 250 ms doubling to 10 s.
func testBackoff() backoff {
	return backoff{base: MinBackoff, max: DefaultMaxBackoff, jitter: func(int64) int64 { return 0 }}
}

// settle waits for the end of every background request.
func (tc *testCache) settle() { tc.bg.Wait() }

// serial is the serial number of an SVID's leaf.
func serial(t *testing.T, chain [][]byte) string {
	t.Helper()
	c, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.Text(16)
}

// issuedBy reports whether the SVID's leaf was signed by the CA.
func issuedBy(t *testing.T, chain [][]byte, ca *testca.CA) bool {
	t.Helper()
	c, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(c.RawIssuer, ca.Cert.RawSubject) && c.CheckSignatureFrom(ca.Cert) == nil
}
