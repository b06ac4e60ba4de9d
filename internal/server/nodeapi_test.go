package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

var exampleTD = spiffeid.RequireTrustDomainFromString("example.org")

// nodeEnv is a control plane with its node API on loopback sockets and
// one node attested through the admin API, whose client follows the
// bundle of the snapshots it watches and presents its latest SVID.
type nodeEnv struct {
	t        *testing.T
	admin    *admin.Client
	owner    string
	nodeAddr string
	nodeID   string
	client   *nodeapi.Client
	stop     func() error // stops the server, returning Serve's error

	mu          sync.Mutex
	cert        *tls.Certificate
	authorities []*x509.Certificate
}

func startNodeAPI(t *testing.T, mutate func(*server.Config)) *nodeEnv {
	t.Helper()
	ln, cfg := devListener(t, func(cfg *server.Config) {
		cfg.NodeAPI.Listen = "127.0.0.1:0"
		cfg.NodeAPI.SyncInterval = 100 * time.Millisecond
		if mutate != nil {
			mutate(cfg)
		}
	})
	var nodeAddr string
	cp := serve(t, ln, cfg, server.Params{}, func(srv *server.Server) {
		nln, err := srv.ListenNodeAPI()
		if err != nil {
			t.Fatal(err)
		}
		nodeAddr = nln.Addr().String()
	})
	e := &nodeEnv{t: t, admin: cp.admin, nodeAddr: nodeAddr, stop: cp.stop}
	ctx := t.Context()
	own, err := e.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: "ops@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	e.owner = own.ID
	e.attest()
	if e.client, err = nodeapi.NewClient(nodeapi.ClientParams{
		Addr: e.nodeAddr, TrustDomain: "example.org", Authorities: e.currentAuthorities, Certificate: e.currentCert,
		Timeout: 5 * time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.client.CloseIdleConnections)
	return e
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func csrFor(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func tlsCert(t *testing.T, chain [][]byte, k *ecdsa.PrivateKey) *tls.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: k, Leaf: leaf}
}

func pemChain(s string) [][]byte {
	var chain [][]byte
	for rest := []byte(s); ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return chain
		}
		chain = append(chain, blk.Bytes)
	}
}

// attest attests the node with a join token, as agentid node does.
func (e *nodeEnv) attest() {
	att, cert := e.joinNode()
	e.nodeID = att.NodeID
	e.setBundle(att.Bundle)
	e.mu.Lock()
	e.cert = cert
	e.mu.Unlock()
}

// joinNode attests a node with a new join token and returns the answer
// and the node's TLS certificate.
func (e *nodeEnv) joinNode() (admin.AttestedNode, *tls.Certificate) {
	t := e.t
	tok, err := e.admin.CreateJoinToken(t.Context(), admin.CreateJoinTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	att, err := e.admin.AttestNode(t.Context(), admin.AttestNodeRequest{JoinToken: tok.Token,
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrFor(t, k)}))})
	if err != nil {
		t.Fatal(err)
	}
	return att, tlsCert(t, pemChain(att.CertChainPEM), k)
}

func (e *nodeEnv) setBundle(doc []byte) {
	e.t.Helper()
	b, err := spiffebundle.Parse(exampleTD, doc)
	if err != nil {
		e.t.Errorf("spiffebundle.Parse: %v", err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.authorities = b.X509Authorities()
}

func (e *nodeEnv) currentAuthorities() []*x509.Certificate {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.authorities
}

func (e *nodeEnv) currentCert() (*tls.Certificate, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cert, nil
}

func (e *nodeEnv) x509Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(exampleTD, e.currentAuthorities())
}

// agent registers an agent, with selectors when given.
func (e *nodeEnv) agent(name string, selectors ...string) admin.Agent {
	e.t.Helper()
	a, err := e.admin.CreateAgent(e.t.Context(), admin.CreateAgentRequest{
		Name: name, Owners: []string{e.owner}, Purpose: "node API tests", Selectors: selectors,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// watch runs the client's Watch, following the bundle, until ctx ends.
func (e *nodeEnv) watch(ctx context.Context) (<-chan nodeapi.Snapshot, <-chan error) {
	snaps, done := make(chan nodeapi.Snapshot, 64), make(chan error, 1)
	go func() {
		done <- e.client.Watch(ctx, func(s nodeapi.Snapshot) error {
			e.setBundle(s.Bundle)
			snaps <- s
			return nil
		})
	}()
	return snaps, done
}

// until waits for a snapshot satisfying ok.
func until(t *testing.T, snaps <-chan nodeapi.Snapshot, done <-chan error, what string, ok func(nodeapi.Snapshot) bool) nodeapi.Snapshot {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case s := <-snaps:
			if ok(s) {
				return s
			}
		case err := <-done:
			t.Fatalf("waiting for %s: the watch ended: %v", what, err)
		case <-timeout:
			t.Fatalf("no snapshot with %s", what)
		}
	}
}

func hasAgent(id string) func(nodeapi.Snapshot) bool {
	return func(s nodeapi.Snapshot) bool {
		for _, a := range s.Agents {
			if a.ID == id {
				return true
			}
		}
		return false
	}
}

// serverCert dials the node API as the node and returns the server's
// certificate chain and the negotiated protocol.
func (e *nodeEnv) serverCert() ([]*x509.Certificate, string) {
	e.t.Helper()
	cert, _ := e.currentCert()
	conn, err := tls.Dial("tcp", e.nodeAddr, &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // verified below with go-spiffe
		MinVersion:         tls.VersionTLS13, NextProtos: []string{"h2"}, Certificates: []tls.Certificate{*cert},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	cs := conn.ConnectionState()
	return cs.PeerCertificates, cs.NegotiatedProtocol
}

// issuedEvents returns the credential.issued audit events.
func (e *nodeEnv) issuedEvents() []admin.AuditEvent {
	e.t.Helper()
	var out []admin.AuditEvent
	for tok := ""; ; {
		l, err := e.admin.ListAuditEvents(e.t.Context(), admin.AuditQuery{Family: "issuance", PageSize: 1000, PageToken: tok})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ev := range l.Items {
			if ev.Type == "credential.issued" {
				out = append(out, ev)
			}
		}
		if tok = l.NextPageToken; tok == "" {
			return out
		}
	}
}

func details(t *testing.T, ev admin.AuditEvent) map[string]any {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(ev.Details, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestNodeAPI: a node attested with a join token renews its SVID and gets
// its agents' SVIDs over the node API; everything verifies with go-spiffe
// against the published bundle and is in the audit trail.
func TestNodeAPI(t *testing.T) {
	e := startNodeAPI(t, nil)
	ctx := t.Context()

	// The server is spiffe://example.org/agentid/server, over HTTP/2.
	chain, proto := e.serverCert()
	if id, _, err := x509svid.Verify(chain, e.x509Bundle()); err != nil || id.String() != "spiffe://example.org/agentid/server" || proto != "h2" {
		t.Errorf("server certificate %v, %v; protocol %q", id, err, proto)
	}

	k := newKey(t)
	sv, err := e.client.Renew(ctx, csrFor(t, k))
	if err != nil {
		t.Fatal(err)
	}
	if id, _, err := x509svid.ParseAndVerify(sv.CertChain, e.x509Bundle()); err != nil || id.String() != "spiffe://example.org/node/"+e.nodeID {
		t.Fatalf("renewed node SVID: %v, %v", id, err)
	}
	e.mu.Lock()
	e.cert = tlsCert(t, sv.CertChain, k)
	e.mu.Unlock()
	if n, err := e.admin.GetNode(ctx, e.nodeID); err != nil || n.SVIDSerial != e.cert.Leaf.SerialNumber.Text(16) {
		t.Errorf("node record after renewal: %+v, %v", n, err)
	}

	web := e.agent("web", "unix:uid:1000")
	x, err := e.client.X509SVID(ctx, web.ID, csrFor(t, newKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	if id, _, err := x509svid.ParseAndVerify(x.CertChain, e.x509Bundle()); err != nil || id.String() != web.SPIFFEID {
		t.Errorf("agent X.509-SVID: %v, %v", id, err)
	}
	j, err := e.client.JWTSVID(ctx, web.ID, nodeapi.JWTSVIDRequest{Audience: []string{"spiffe://example.org/db"}, TTLSeconds: 120})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := e.admin.TrustBundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := spiffebundle.Parse(exampleTD, raw)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := jwtsvid.ParseAndValidate(j.Token, tb, []string{"spiffe://example.org/db"}); err != nil || s.ID.String() != web.SPIFFEID ||
		!s.Expiry.Equal(j.ExpiresAt) {
		t.Errorf("JWT-SVID: %+v, %v", s, err)
	}

	bare := e.agent("bare")
	paused := e.agent("paused", "unix:uid:1001")
	if _, err := e.admin.SuspendAgent(ctx, paused.ID, admin.TransitionRequest{}); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"no selectors":           second(e.client.X509SVID(ctx, bare.ID, csrFor(t, newKey(t)))),
		"no selectors, JWT-SVID": second(e.client.JWTSVID(ctx, bare.ID, nodeapi.JWTSVIDRequest{Audience: []string{"x"}})),
		"suspended":              second(e.client.X509SVID(ctx, paused.ID, csrFor(t, newKey(t)))),
		"unknown":                second(e.client.X509SVID(ctx, "agt_01jdxkz7m0000000000000000b", csrFor(t, newKey(t)))),
	} {
		if !errors.Is(err, nodeapi.ErrAgentUnavailable) {
			t.Errorf("%s: %v, want ErrAgentUnavailable", name, err)
		}
	}
	if _, err := e.client.JWTSVID(ctx, web.ID, nodeapi.JWTSVIDRequest{}); !errors.Is(err, nodeapi.ErrRejected) {
		t.Errorf("JWT-SVID without an audience: %v, want ErrRejected", err)
	}

	// The trail: the attestation's SVID, the renewal and both agent SVIDs
	// name the node; the server's certificate names the system.
	var byNode, agentSVIDs, serverCerts int
	for _, ev := range e.issuedEvents() {
		d := details(t, ev)
		switch {
		case d["server"] == true:
			serverCerts++
			if ev.Actor == nil || ev.Actor.Type != "system" || d["spiffe_id"] != "spiffe://example.org/agentid/server" {
				t.Errorf("server certificate event: %+v %s", ev.Actor, ev.Details)
			}
		case ev.Actor != nil && ev.Actor.Type == "node":
			if ev.Actor.ID != e.nodeID {
				t.Errorf("event of another node: %+v", ev.Actor)
			}
			byNode++
			if ev.Agent != nil {
				agentSVIDs++
				if ev.Agent.ID != web.ID || ev.Source == nil || ev.Source.Node != e.nodeID || ev.Source.IP != "127.0.0.1" {
					t.Errorf("agent SVID event: agent %+v source %+v", ev.Agent, ev.Source)
				}
			}
		}
	}
	if byNode != 4 || agentSVIDs != 2 || serverCerts != 1 {
		t.Errorf("credential.issued: %d by the node (%d of agents), %d server certificates; want 4 (2) and 1", byNode, agentSVIDs, serverCerts)
	}
}

func second[T any](_ T, err error) error { return err }

// TestNodeAPIHandshakeRefusals: no certificate, a certificate of another
// CA, an agent's SVID instead of a node's: the TLS handshake fails.
func TestNodeAPIHandshakeRefusals(t *testing.T) {
	e := startNodeAPI(t, nil)
	other := startNodeAPI(t, nil) // another deployment, another CA
	web := e.agent("web", "unix:uid:1000")
	k := newKey(t)
	agentSVID, err := e.admin.IssueSVID(t.Context(), web.ID, admin.IssueSVIDRequest{Type: admin.SVIDTypeX509,
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrFor(t, k)}))})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.currentCert()
	// Without a certificate (the client refuses to connect without one,
	// so a plain TLS client).
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // the server is not the point here
		MinVersion:         tls.VersionTLS13,
	}}}
	if resp, err := hc.Post("https://"+e.nodeAddr+nodeapi.RenewPath, "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		t.Errorf("a client without a certificate got %d", resp.StatusCode)
	}
	for name, cert := range map[string]*tls.Certificate{
		"another CA": foreign,
		"agent SVID": tlsCert(t, pemChain(agentSVID.CertChainPEM), k),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := nodeapi.NewClient(nodeapi.ClientParams{
				Addr: e.nodeAddr, TrustDomain: "example.org", Authorities: e.currentAuthorities,
				Certificate: func() (*tls.Certificate, error) { return cert, nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			_, err = c.Renew(t.Context(), csrFor(t, newKey(t)))
			if err == nil || errors.Is(err, nodeapi.ErrRejected) || errors.Is(err, nodeapi.ErrEvicted) {
				t.Errorf("Renew = %v, want a failed handshake", err)
			}
		})
	}
}

// TestNodeAPIWatchHook: a new agent with selectors reaches a watching node
// at once through the registry's change hook (the sync interval is a
// minute), and so does a change of its selectors.
func TestNodeAPIWatchHook(t *testing.T) {
	e := startNodeAPI(t, func(c *server.Config) { c.NodeAPI.SyncInterval = time.Minute })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	snaps, done := e.watch(ctx)
	first := until(t, snaps, done, "the initial snapshot", func(nodeapi.Snapshot) bool { return true })
	if len(first.Agents) != 0 || len(first.Bundle) == 0 || len(first.Revision) != 64 {
		t.Errorf("initial snapshot: %+v", first)
	}
	e.agent("bare") // no selectors: no workload
	web := e.agent("web", "unix:uid:1000")
	s := until(t, snaps, done, "the new agent", hasAgent(web.ID))
	if len(s.Agents) != 1 || s.Agents[0].SPIFFEID != web.SPIFFEID || s.Agents[0].Selectors[0] != "unix:uid:1000" {
		t.Errorf("snapshot agents: %+v", s.Agents)
	}
	sel := []string{"unix:uid:1001"}
	if _, err := e.admin.UpdateAgent(ctx, web.ID, admin.UpdateAgentRequest{Selectors: &sel}); err != nil {
		t.Fatal(err)
	}
	until(t, snaps, done, "the new selectors", func(s nodeapi.Snapshot) bool {
		return len(s.Agents) == 1 && s.Agents[0].Selectors[0] == "unix:uid:1001"
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch after cancel = %v", err)
	}
}

// TestNodeAPITaint: tainting the CA reaches the watching node (the tainted
// fingerprint and the successor in the bundle), the server re-issues its
// own certificate from the successor, and the node renews from it.
func TestNodeAPITaint(t *testing.T) {
	e := startNodeAPI(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	snaps, done := e.watch(ctx)
	until(t, snaps, done, "the initial snapshot", func(nodeapi.Snapshot) bool { return true })
	before, _ := e.serverCert()
	ca, err := e.admin.GetCA(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var kid, fingerprint string
	for _, k := range ca.Items {
		if k.State == "active" {
			kid, fingerprint = k.ID, k.Fingerprint
		}
	}
	if _, err := e.admin.TaintCA(ctx, kid); err != nil {
		t.Fatal(err)
	}
	s := until(t, snaps, done, "the tainted CA", func(s nodeapi.Snapshot) bool {
		return len(s.TaintedAuthorities) == 1 && s.TaintedAuthorities[0] == fingerprint
	})
	if b, err := spiffebundle.Parse(exampleTD, s.Bundle); err != nil || len(b.X509Authorities()) != 2 {
		t.Errorf("bundle after the taint: %v authorities, %v", len(b.X509Authorities()), err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		after, _ := e.serverCert()
		if after[0].SerialNumber.Cmp(before[0].SerialNumber) != 0 {
			_, chains, err := x509svid.Verify(after, e.x509Bundle())
			if err != nil {
				t.Fatalf("new server certificate: %v", err)
			}
			if nodeapi.Fingerprint(chains[0][len(chains[0])-1]) == fingerprint {
				t.Error("the new server certificate is signed by the tainted CA")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server kept its certificate of the tainted CA")
		}
		time.Sleep(100 * time.Millisecond)
	}
	sv, err := e.client.Renew(ctx, csrFor(t, newKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	_, chains, err := x509svid.ParseAndVerify(sv.CertChain, e.x509Bundle())
	if err != nil {
		t.Fatalf("node SVID after the taint: %v", err)
	}
	if nodeapi.Fingerprint(chains[0][len(chains[0])-1]) == fingerprint {
		t.Error("the node SVID after the taint is signed by the tainted CA")
	}
	var serverCerts int
	for _, ev := range e.issuedEvents() {
		if details(t, ev)["server"] == true {
			serverCerts++
		}
	}
	if serverCerts != 2 {
		t.Errorf("%d server certificate events, want 2", serverCerts)
	}
}

// TestNodeAPIEviction: an evicted node gets ErrEvicted on every call, and
// its open watch stream ends at the next snapshot.
func TestNodeAPIEviction(t *testing.T) {
	e := startNodeAPI(t, nil)
	ctx := t.Context()
	web := e.agent("web", "unix:uid:1000")
	snaps, done := e.watch(ctx)
	until(t, snaps, done, "the agent", hasAgent(web.ID))
	if _, err := e.admin.EvictNode(ctx, e.nodeID, admin.EvictNodeRequest{Reason: "decommissioned"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Renew(ctx, csrFor(t, newKey(t))); !errors.Is(err, nodeapi.ErrEvicted) {
		t.Errorf("Renew after eviction: %v, want ErrEvicted", err)
	}
	for name, err := range map[string]error{
		"x509-svid": second(e.client.X509SVID(ctx, web.ID, csrFor(t, newKey(t)))),
		"jwt-svid":  second(e.client.JWTSVID(ctx, web.ID, nodeapi.JWTSVIDRequest{Audience: []string{"x"}})),
		"watch":     e.client.Watch(ctx, func(nodeapi.Snapshot) error { return errors.New("a snapshot for an evicted node") }),
	} {
		if !errors.Is(err, nodeapi.ErrEvicted) {
			t.Errorf("%s after eviction: %v, want ErrEvicted", name, err)
		}
	}
	e.agent("other", "unix:uid:1001") // a new snapshot: the stream re-checks its node
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("the evicted node's stream ended with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the evicted node's watch stream goes on")
	}
}

// TestNodeAPIServerCertRenewal: with a short credentials.max_ttl the
// server's certificate lives that long and is renewed at half of it.
func TestNodeAPIServerCertRenewal(t *testing.T) {
	e := startNodeAPI(t, func(c *server.Config) {
		c.Credentials.MaxTTL, c.Credentials.DefaultTTL, c.Credentials.TokenTTL = 10*time.Second, 10*time.Second, 5*time.Second
	})
	first, _ := e.serverCert()
	if ttl := first[0].NotAfter.Sub(first[0].NotBefore); ttl > 10*time.Second+time.Minute {
		t.Errorf("server certificate valid for %s, want about 10s", ttl)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		cur, _ := e.serverCert()
		if cur[0].SerialNumber.Cmp(first[0].SerialNumber) != 0 {
			if _, _, err := x509svid.Verify(cur, e.x509Bundle()); err != nil {
				t.Errorf("renewed server certificate: %v", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the server certificate was not renewed")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestNodeAPIShutdown: open watch streams do not hold up the shutdown
// (Serve returns without the grace period's deadline error) and end with
// an error for the node to reconnect on.
func TestNodeAPIShutdown(t *testing.T) {
	e := startNodeAPI(t, nil)
	snaps, done := e.watch(t.Context())
	until(t, snaps, done, "the initial snapshot", func(nodeapi.Snapshot) bool { return true })
	if err := e.stop(); err != nil {
		t.Errorf("Serve = %v, want a clean shutdown", err)
	}
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, nodeapi.ErrEvicted) {
			t.Errorf("Watch at shutdown = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch stream outlived the server")
	}
}
