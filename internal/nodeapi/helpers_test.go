package nodeapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
	"github.com/agentid/agentid/internal/svid"
	"github.com/agentid/agentid/internal/testca"
)

const trustDomain = "example.org"

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testCA is a rotating self-signed P-256 CA of a trust domain (a
// credential.CA, a bundle.X509Source and a nodeapi.TaintSource) with an
// SVID issuer over it.
type testCA struct {
	*testca.Rotating
	iss *credential.SVIDIssuer
}

func newTestCA(t testing.TB, td string) *testCA {
	t.Helper()
	r := testca.NewRotating(t, testca.Params{TrustDomain: td, TTL: 48 * time.Hour})
	return &testCA{Rotating: r, iss: testca.Issuer(t, r)}
}

// svidCert mints an X.509-SVID of the CA for the SPIFFE ID, with a new key,
// as a TLS certificate.
func (c *testCA) svidCert(t testing.TB, id string, ttl time.Duration) *tls.Certificate {
	t.Helper()
	return testca.SVIDCert(t, c.iss, id, ttl)
}

func newNodeID(t *testing.T) string {
	t.Helper()
	id, err := recordid.New(recordid.Node, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newAgentID(t *testing.T) string {
	t.Helper()
	id, err := recordid.New(recordid.Agent, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func csrDER(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// fakeNodes is a node registry in memory; Renew mints with the CA.
type fakeNodes struct {
	ca *testCA

	mu     sync.Mutex
	nodes  map[string]store.Node
	reads  int
	renews int
}

func (f *fakeNodes) add(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[id] = store.Node{ID: id, SPIFFEID: "spiffe://" + trustDomain + "/node/" + id}
}

func (f *fakeNodes) evict(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[id]
	n.EvictedAt = time.Now()
	f.nodes[id] = n
}

func (f *fakeNodes) Get(_ context.Context, id string) (store.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	n, ok := f.nodes[id]
	if !ok {
		return store.Node{}, noderegistry.ErrNotFound
	}
	return n, nil
}

func (f *fakeNodes) Renew(_ context.Context, p noderegistry.RenewParams) (noderegistry.NodeSVID, error) {
	f.mu.Lock()
	n, ok := f.nodes[p.NodeID]
	f.renews++
	f.mu.Unlock()
	switch {
	case !ok:
		return noderegistry.NodeSVID{}, noderegistry.ErrNotFound
	case n.State() == store.NodeEvicted:
		return noderegistry.NodeSVID{}, noderegistry.ErrEvicted
	}
	pub, err := credential.ParseCSR(p.CSR)
	if err != nil {
		return noderegistry.NodeSVID{}, &noderegistry.ValidationError{Kind: noderegistry.ErrInvalid, Pkg: "noderegistry", Field: "csr", Reason: "bad"}
	}
	x, err := f.ca.iss.X509SVID(credential.X509SVIDParams{SPIFFEID: n.SPIFFEID, PublicKey: pub, IssuedAt: time.Now()})
	return noderegistry.NodeSVID{Node: n, SVID: x}, err
}

// fakeAgents holds agents in memory: an AgentLister, and the agents of fakeSVIDs.
type fakeAgents struct {
	mu     sync.Mutex
	agents map[string]store.Agent
}

func (f *fakeAgents) put(a store.Agent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.agents[a.ID] = a
}

func (f *fakeAgents) GetAgent(_ context.Context, id string) (store.Agent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.agents[id]
	if !ok {
		return store.Agent{}, store.ErrNotFound
	}
	return a, nil
}

// fakeSVIDs mints X.509-SVIDs with the CA and JWT-SVIDs as opaque strings,
// recording who asked.
type fakeSVIDs struct {
	ca     *testCA
	agents *fakeAgents

	mu      sync.Mutex
	origins []audit.Origin
}

func (f *fakeSVIDs) IssueX509(ctx context.Context, o audit.Origin, p svid.X509Params) (credential.X509SVID, store.Agent, error) {
	a, err := f.agents.GetAgent(ctx, p.Ref)
	if err != nil {
		return credential.X509SVID{}, store.Agent{}, svid.NotFound(p.Ref)
	}
	if p.Require != nil {
		if err := p.Require(a); err != nil {
			return credential.X509SVID{}, store.Agent{}, err
		}
	}
	if a.State != store.AgentActive {
		return credential.X509SVID{}, store.Agent{}, &svid.NotActiveError{Agent: a.Name, Reason: string(a.State)}
	}
	pub, err := credential.ParseCSR(p.CSR)
	if err != nil {
		return credential.X509SVID{}, store.Agent{}, &svid.ValidationError{Kind: svid.ErrInvalid, Pkg: "svid", Field: "csr", Reason: "bad"}
	}
	f.mu.Lock()
	f.origins = append(f.origins, o)
	f.mu.Unlock()
	sv, err := f.ca.iss.X509SVID(credential.X509SVIDParams{SPIFFEID: a.SPIFFEID, PublicKey: pub, IssuedAt: time.Now()})
	return sv, a, err
}

func (f *fakeSVIDs) IssueJWT(ctx context.Context, o audit.Origin, p svid.JWTParams) (credential.JWTSVID, store.Agent, error) {
	if len(p.Audience) == 0 {
		return credential.JWTSVID{}, store.Agent{}, &svid.ValidationError{Kind: svid.ErrInvalid, Pkg: "svid", Field: "audience", Reason: "required"}
	}
	a, err := f.agents.GetAgent(ctx, p.Ref)
	if err != nil {
		return credential.JWTSVID{}, store.Agent{}, svid.NotFound(p.Ref)
	}
	if p.Require != nil {
		if err := p.Require(a); err != nil {
			return credential.JWTSVID{}, store.Agent{}, err
		}
	}
	f.mu.Lock()
	f.origins = append(f.origins, o)
	f.mu.Unlock()
	return credential.JWTSVID{Token: "header.payload.sig", Claims: credential.JWTSVIDClaims{Subject: a.SPIFFEID, Expiry: time.Now().Add(p.TTL).Unix()}}, a, nil
}

func (f *fakeSVIDs) IssueJWTs(ctx context.Context, o audit.Origin, ps []svid.JWTParams) ([]svid.JWTResult, error) {
	out := make([]svid.JWTResult, len(ps))
	for i, p := range ps {
		out[i].SVID, out[i].Agent, out[i].Err = f.IssueJWT(ctx, o, p)
	}
	return out, nil
}

// fakeSnapshots is a Snapshots whose snapshot the test sets.
type fakeSnapshots struct {
	mu      sync.Mutex
	cur     *nodeapi.Snapshot
	changed chan struct{}
}

func newFakeSnapshots() *fakeSnapshots { return &fakeSnapshots{changed: make(chan struct{})} }

func (f *fakeSnapshots) set(t *testing.T, s nodeapi.Snapshot) {
	t.Helper()
	if s.Bundle == nil {
		s.Bundle = json.RawMessage(`{"keys":[]}`)
	}
	var err error
	if s.Revision, err = nodeapi.Revision(s); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur = &s
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeSnapshots) Current() (nodeapi.Snapshot, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return nodeapi.Snapshot{}, false
	}
	return *f.cur, true
}

// For is Current: the fake's snapshot is every node's.
func (f *fakeSnapshots) For(store.Node) (nodeapi.Snapshot, bool) { return f.Current() }

func (f *fakeSnapshots) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// apiEnv is a node API handler behind its real TLS configuration on a
// loopback socket, over fakes, with one registered node.
type apiEnv struct {
	t       *testing.T
	ca      *testCA
	nodes   *fakeNodes
	agents  *fakeAgents
	svids   *fakeSVIDs
	snaps   *fakeSnapshots
	handler *nodeapi.Handler
	cert    *nodeapi.ServerCert
	addr    string
	nodeID  string
	nodeTLS *tls.Certificate
	st      store.Store
	http2   atomic.Int64 // requests served over HTTP/2
}

func newAPIEnv(t *testing.T, heartbeat time.Duration) *apiEnv {
	t.Helper()
	e := &apiEnv{t: t, ca: newTestCA(t, trustDomain), snaps: newFakeSnapshots()}
	e.nodes = &fakeNodes{ca: e.ca, nodes: map[string]store.Node{}}
	e.agents = &fakeAgents{agents: map[string]store.Agent{}}
	e.svids = &fakeSVIDs{ca: e.ca, agents: e.agents}
	e.st, _ = storetest.Backends(t)[0].Open(t)
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: e.st, Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if e.cert, err = nodeapi.NewServerCert(nodeapi.ServerCertParams{
		TrustDomain: trustDomain, Issuer: e.ca.iss, CA: e.ca, Recorder: rec, Holder: "test", Clock: time.Now,
	}); err != nil {
		t.Fatal(err)
	}
	if e.handler, err = nodeapi.NewHandler(nodeapi.HandlerParams{
		TrustDomain: trustDomain, Nodes: e.nodes, SVIDs: e.svids, Hub: e.snaps,
		HeartbeatInterval: heartbeat, Clock: time.Now,
	}); err != nil {
		t.Fatal(err)
	}
	cfg, err := nodeapi.ServerTLSConfig(nodeapi.ServerTLSParams{
		TrustDomain: trustDomain, GetCertificate: e.cert.GetCertificate, Authorities: e.ca.X509Authorities, Clock: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			e.http2.Add(1)
		}
		e.handler.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: counted, TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelInfo)}
	srv.RegisterOnShutdown(e.handler.CloseWatches)
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	e.nodeID = newNodeID(t)
	e.nodes.add(e.nodeID)
	e.nodeTLS = e.ca.svidCert(t, "spiffe://"+trustDomain+"/node/"+e.nodeID, time.Hour)
	return e
}

// client is a nodeapi.Client presenting cert.
func (e *apiEnv) client(cert *tls.Certificate) *nodeapi.Client {
	e.t.Helper()
	c, err := nodeapi.NewClient(nodeapi.ClientParams{
		Addr: e.addr, TrustDomain: trustDomain, Authorities: e.ca.X509Authorities,
		Certificate: func() (*tls.Certificate, error) { return cert, nil },
		Timeout:     5 * time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.CloseIdleConnections)
	return c
}

// issued is the number of SVIDs the fake issued.
func (f *fakeSVIDs) issued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.origins)
}

// put registers a node record as is.
func (f *fakeNodes) put(n store.Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[n.ID] = n
}

// workloadAgent registers an active agent with selectors.
func (e *apiEnv) workloadAgent(name string, selectors ...string) store.Agent {
	e.t.Helper()
	a := store.Agent{ID: newAgentID(e.t), Name: name, SPIFFEID: "spiffe://" + trustDomain + "/agent/" + name,
		Selectors: selectors, State: store.AgentActive, Version: 1}
	e.agents.put(a)
	return a
}
