package nodeapi_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// TestHandlerUnary: renew and the agents' SVIDs over real mutual TLS and
// HTTP/2, and the errors the client maps.
func TestHandlerUnary(t *testing.T) {
	e := newAPIEnv(t, 0)
	ctx := t.Context()
	c := e.client(e.nodeTLS)

	sv, err := c.Renew(ctx, csrDER(t))
	if err != nil {
		t.Fatal(err)
	}
	b := x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString(trustDomain), e.ca.X509Authorities())
	if id, _, err := x509svid.ParseAndVerify(sv.CertChain, b); err != nil || id.String() != "spiffe://example.org/node/"+e.nodeID {
		t.Errorf("renewed SVID: %v, %v", id, err)
	}
	if _, err := c.Renew(ctx, []byte("not a csr")); !errors.Is(err, nodeapi.ErrRejected) || !strings.Contains(err.Error(), "csr") {
		t.Errorf("Renew(bad CSR) = %v, want ErrRejected naming csr", err)
	}

	web := e.workloadAgent("web", "unix:uid:1000")
	x, err := c.X509SVID(ctx, web.ID, csrDER(t))
	if err != nil {
		t.Fatal(err)
	}
	if id, _, err := x509svid.ParseAndVerify(x.CertChain, b); err != nil || id.String() != web.SPIFFEID {
		t.Errorf("agent SVID: %v, %v", id, err)
	}
	if o := e.svids.origins[len(e.svids.origins)-1]; o.Actor != (audit.Actor{Type: audit.ActorNode, ID: e.nodeID}) ||
		o.Source.Node != e.nodeID || o.Source.IP != "127.0.0.1" || len(o.TraceID) != 32 {
		t.Errorf("origin of the SVID request = %+v", o)
	}
	j, err := c.JWTSVID(ctx, web.ID, nodeapi.JWTSVIDRequest{Audience: []string{"db"}, TTLSeconds: 60})
	if err != nil || j.Token == "" {
		t.Errorf("JWTSVID = %+v, %v", j, err)
	}
	if n := e.http2.Load(); n != 4 {
		t.Errorf("%d of 4 requests of the client over HTTP/2", n)
	}

	bare := e.workloadAgent("bare")
	suspended := e.workloadAgent("paused", "unix:uid:1")
	suspended.State = store.AgentSuspended
	e.agents.put(suspended)
	for name, err := range map[string]error{
		"no selectors":       second(c.X509SVID(ctx, bare.ID, csrDER(t))),
		"no selectors (JWT)": second(c.JWTSVID(ctx, bare.ID, nodeapi.JWTSVIDRequest{Audience: []string{"db"}})),
		"unknown":            second(c.X509SVID(ctx, newAgentID(t), csrDER(t))),
		"suspended":          second(c.X509SVID(ctx, suspended.ID, csrDER(t))),
	} {
		if !errors.Is(err, nodeapi.ErrAgentUnavailable) {
			t.Errorf("%s: %v, want ErrAgentUnavailable", name, err)
		}
	}
	for name, err := range map[string]error{
		"no audience":  second(c.JWTSVID(ctx, web.ID, nodeapi.JWTSVIDRequest{})),
		"negative TTL": second(c.JWTSVID(ctx, web.ID, nodeapi.JWTSVIDRequest{Audience: []string{"db"}, TTLSeconds: -1})),
		"huge TTL":     second(c.JWTSVID(ctx, web.ID, nodeapi.JWTSVIDRequest{Audience: []string{"db"}, TTLSeconds: 1 << 62})),
		"bad id":       second(c.X509SVID(ctx, "web", csrDER(t))),
		"bad CSR":      second(c.X509SVID(ctx, web.ID, []byte{1, 2, 3})),
	} {
		if !errors.Is(err, nodeapi.ErrRejected) {
			t.Errorf("%s: %v, want ErrRejected", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestHandlerJWTSVIDs: a batch answers one result per request, in order,
// issuing what it may and refusing each bad request on its own; a batch
// that is empty or too large is refused as a whole.
func TestHandlerJWTSVIDs(t *testing.T) {
	e := newAPIEnv(t, 0)
	ctx := t.Context()
	c := e.client(e.nodeTLS)
	web := e.workloadAgent("web", "unix:uid:1000")
	bare := e.workloadAgent("bare")
	res, err := c.JWTSVIDs(ctx, []nodeapi.JWTSVIDsItem{
		{AgentID: web.ID, JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"db"}}},
		{AgentID: web.ID}, // no audience
		{AgentID: "web", JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"db"}}}, // not an id
		{AgentID: bare.ID, JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"db"}}},
		{AgentID: newAgentID(t), JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"db"}}},
		{AgentID: web.ID, JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"cache"}, TTLSeconds: -1}},
		{AgentID: web.ID, JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"cache"}, TTLSeconds: 60}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []error{nil, nodeapi.ErrRejected, nodeapi.ErrRejected, nodeapi.ErrAgentUnavailable, nodeapi.ErrAgentUnavailable, nodeapi.ErrRejected, nil}
	if len(res) != len(want) {
		t.Fatalf("%d results, want %d", len(res), len(want))
	}
	for i, r := range res {
		switch {
		case want[i] == nil && (r.Err != nil || r.Token == "" || r.ExpiresAt.IsZero()):
			t.Errorf("request %d = %+v, want a JWT-SVID", i, r)
		case want[i] != nil && !errors.Is(r.Err, want[i]):
			t.Errorf("request %d: %v, want %v", i, r.Err, want[i])
		}
	}
	big := make([]nodeapi.JWTSVIDsItem, nodeapi.MaxJWTSVIDsBatch+1)
	for i := range big {
		big[i] = nodeapi.JWTSVIDsItem{AgentID: web.ID, JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"db"}}}
	}
	for name, items := range map[string][]nodeapi.JWTSVIDsItem{"empty": nil, "too many": big} {
		if _, err := c.JWTSVIDs(ctx, items); !errors.Is(err, nodeapi.ErrRejected) {
			t.Errorf("%s batch: %v, want ErrRejected", name, err)
		}
	}
}

// rawClient is an HTTP/2 client presenting the node's certificate, for
// requests the nodeapi.Client does not make.
func (e *apiEnv) rawClient(cert *tls.Certificate) *http.Client {
	e.t.Helper()
	cfg := tlsconfig.TLSClientConfig(x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString(trustDomain), e.ca.X509Authorities()),
		tlsconfig.AuthorizeID(spiffeid.RequireFromString("spiffe://"+trustDomain+nodeapi.ServerPath)))
	cfg.MinVersion = tls.VersionTLS13
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// TestHandlerBadRequests: malformed requests get problem+json answers
// with the right status and type, never a 500.
func TestHandlerBadRequests(t *testing.T) {
	e := newAPIEnv(t, 0)
	hc := e.rawClient(e.nodeTLS)
	web := e.workloadAgent("web", "unix:uid:1000")
	base := "https://" + e.addr
	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
		typ                             string
	}{
		{"unknown path", "GET", "/node/v1/nope", "", "", 404, admin.ProblemNotFound},
		{"wrong method", "GET", nodeapi.RenewPath, "", "", 405, admin.ProblemMethodNotAllowed},
		{"watch by POST", "POST", nodeapi.WatchPath, "application/json", "{}", 405, admin.ProblemMethodNotAllowed},
		{"not JSON", "POST", nodeapi.RenewPath, "application/json", "{", 400, admin.ProblemBadRequest},
		{"unknown field", "POST", nodeapi.RenewPath, "application/json", `{"csr":"","extra":1}`, 400, admin.ProblemBadRequest},
		{"two objects", "POST", nodeapi.RenewPath, "application/json", `{} {}`, 400, admin.ProblemBadRequest},
		{"empty", "POST", nodeapi.RenewPath, "application/json", ``, 400, admin.ProblemBadRequest},
		{"bad base64", "POST", "/node/v1/agents/" + web.ID + "/x509-svid", "application/json", `{"csr":"!!"}`, 400, admin.ProblemBadRequest},
		{"wrong type", "POST", "/node/v1/agents/" + web.ID + "/jwt-svid", "application/json", `{"audience":"db"}`, 400, admin.ProblemBadRequest},
		{"form", "POST", nodeapi.RenewPath, "application/x-www-form-urlencoded", "csr=x", 415, admin.ProblemUnsupportedMediaType},
		{"too large", "POST", nodeapi.RenewPath, "application/json", `{"csr":"` + strings.Repeat("A", nodeapi.MaxBodyBytes) + `"}`, 413, admin.ProblemBodyTooLarge},
		{"no CSR", "POST", nodeapi.RenewPath, "application/json", `{}`, 400, admin.ProblemValidation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tc.method, base+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p admin.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || p.Type != tc.typ || p.Status != tc.status ||
				resp.Header.Get("Content-Type") != "application/problem+json" || resp.ProtoMajor != 2 || len(p.TraceID) != 32 {
				t.Errorf("%s %s: %d %s %+v (HTTP/%d)", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), p, resp.ProtoMajor)
			}
		})
	}
}

// TestHandlerEvictedNode: an evicted or unknown node gets 403 on every
// endpoint (ErrEvicted), within the node cache's second.
func TestHandlerEvictedNode(t *testing.T) {
	e := newAPIEnv(t, 0)
	ctx := t.Context()
	c := e.client(e.nodeTLS)
	web := e.workloadAgent("web", "unix:uid:1000")
	if _, err := c.Renew(ctx, csrDER(t)); err != nil {
		t.Fatal(err)
	}
	e.nodes.evict(e.nodeID)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.X509SVID(ctx, web.ID, csrDER(t))
		if errors.Is(err, nodeapi.ErrEvicted) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an evicted node still gets SVIDs: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	checks := map[string]error{
		"renew": second(c.Renew(ctx, csrDER(t))),
		"jwt":   second(c.JWTSVID(ctx, web.ID, nodeapi.JWTSVIDRequest{Audience: []string{"db"}})),
		"jwts": second(c.JWTSVIDs(ctx, []nodeapi.JWTSVIDsItem{
			{AgentID: web.ID, JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"db"}}},
		})),
		"watch": c.Watch(ctx, func(nodeapi.Snapshot) error { return errors.New("no snapshot for an evicted node") }),
	}
	// A node the registry does not know.
	stranger := e.ca.svidCert(t, "spiffe://"+trustDomain+"/node/"+newNodeID(t), time.Hour)
	checks["unknown node"] = second(e.client(stranger).Renew(ctx, csrDER(t)))
	for name, err := range checks {
		if !errors.Is(err, nodeapi.ErrEvicted) || !strings.Contains(err.Error(), "evicted") {
			t.Errorf("%s: %v, want ErrEvicted", name, err)
		}
	}
}

// watchLines reads the raw watch stream, sending each line.
func (e *apiEnv) watchLines(ctx context.Context, cert *tls.Certificate) (<-chan nodeapi.WatchMessage, <-chan error) {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+e.addr+nodeapi.WatchPath, nil)
	hc := e.rawClient(cert)
	hc.Timeout = 0
	resp, err := hc.Do(req) //nolint:bodyclose // the reading goroutine closes it
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" || resp.ProtoMajor != 2 {
		e.t.Fatalf("watch: %d %s HTTP/%d", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ProtoMajor)
	}
	msgs, done := make(chan nodeapi.WatchMessage, 16), make(chan error, 1)
	go func() {
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var m nodeapi.WatchMessage
			if err := dec.Decode(&m); err != nil {
				done <- err
				return
			}
			msgs <- m
		}
	}()
	return msgs, done
}

func next(t *testing.T, msgs <-chan nodeapi.WatchMessage, done <-chan error) nodeapi.WatchMessage {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case err := <-done:
		t.Fatalf("the watch stream ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no watch message within 10s")
	}
	return nodeapi.WatchMessage{}
}

// TestWatchStream: the current snapshot at once (after the hub's first),
// each new revision, heartbeats, and the end of the stream when the node
// is evicted.
func TestWatchStream(t *testing.T) {
	e := newAPIEnv(t, 100*time.Millisecond)
	msgs, done := e.watchLines(t.Context(), e.nodeTLS)
	// No snapshot yet: heartbeats only.
	if m := next(t, msgs, done); m.Type != nodeapi.MessageHeartbeat || m.Snapshot != nil {
		t.Fatalf("before the first snapshot: %+v", m)
	}
	web := nodeapi.Agent{ID: newAgentID(t), Name: "web", SPIFFEID: "spiffe://example.org/agent/web", Selectors: []string{"unix:uid:1"}, Version: 1}
	e.snaps.set(t, nodeapi.Snapshot{Agents: []nodeapi.Agent{web}})
	m := next(t, msgs, done)
	for m.Type == nodeapi.MessageHeartbeat {
		m = next(t, msgs, done)
	}
	if m.Type != nodeapi.MessageSnapshot || m.Snapshot == nil || len(m.Snapshot.Agents) != 1 || m.Snapshot.Agents[0].ID != web.ID {
		t.Fatalf("snapshot message: %+v", m)
	}
	if rev, _ := nodeapi.Revision(*m.Snapshot); rev != m.Snapshot.Revision {
		t.Errorf("revision %s, want %s", m.Snapshot.Revision, rev)
	}
	first := m.Snapshot.Revision
	e.snaps.set(t, nodeapi.Snapshot{Agents: []nodeapi.Agent{web}, TaintedAuthorities: []string{nodeapi.Fingerprint(e.ca.Taint())}})
	for m = next(t, msgs, done); m.Type == nodeapi.MessageHeartbeat; m = next(t, msgs, done) {
	}
	if m.Snapshot.Revision == first || len(m.Snapshot.TaintedAuthorities) != 1 {
		t.Errorf("second snapshot: %+v", m.Snapshot)
	}
	heartbeats := 0
	for heartbeats < 3 {
		if m := next(t, msgs, done); m.Type == nodeapi.MessageHeartbeat {
			heartbeats++
		} else {
			t.Errorf("unexpected message without a change: %+v", m)
		}
	}

	e.nodes.evict(e.nodeID)
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Errorf("the stream of an evicted node ended with %v, want its end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch stream of an evicted node goes on")
	}
}

// TestClientWatch: nodeapi.Client.Watch hands over snapshots, returns
// ctx.Err() when cancelled, fn's error, ErrWatchTimeout on silence, and an
// error when the server closes the watches (shutdown).
func TestClientWatch(t *testing.T) {
	e := newAPIEnv(t, 50*time.Millisecond)
	e.snaps.set(t, nodeapi.Snapshot{})
	c := e.client(e.nodeTLS)

	ctx, cancel := context.WithCancel(t.Context())
	got := 0
	err := c.Watch(ctx, func(s nodeapi.Snapshot) error {
		got++
		if got == 1 {
			e.snaps.set(t, nodeapi.Snapshot{Agents: []nodeapi.Agent{{ID: newAgentID(t), Name: "a", Selectors: []string{"unix:uid:1"}}}})
		} else {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || got != 2 {
		t.Errorf("Watch after cancel = %v with %d snapshots, want context.Canceled after 2", err, got)
	}

	stop := errors.New("stop")
	if err := c.Watch(t.Context(), func(nodeapi.Snapshot) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Watch = %v, want fn's error", err)
	}

	// A watch timeout shorter than the heartbeat interval.
	quiet := newAPIEnv(t, time.Hour)
	qc, err := nodeapi.NewClient(nodeapi.ClientParams{
		Addr: quiet.addr, TrustDomain: trustDomain, Authorities: quiet.ca.X509Authorities,
		Certificate: func() (*tls.Certificate, error) { return quiet.nodeTLS, nil }, WatchTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer qc.CloseIdleConnections()
	if err := qc.Watch(t.Context(), func(nodeapi.Snapshot) error { return nil }); !errors.Is(err, nodeapi.ErrWatchTimeout) {
		t.Errorf("silent stream: %v, want ErrWatchTimeout", err)
	}

	errc := make(chan error, 1)
	go func() { errc <- c.Watch(t.Context(), func(nodeapi.Snapshot) error { return nil }) }()
	time.Sleep(200 * time.Millisecond)
	e.handler.CloseWatches()
	select {
	case err := <-errc:
		if err == nil || errors.Is(err, nodeapi.ErrEvicted) || errors.Is(err, context.Canceled) {
			t.Errorf("Watch after CloseWatches = %v, want the stream's end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("CloseWatches did not end the stream")
	}
}

// TestClientCertificateRotation: when the node's certificate changes, the
// client's next requests use a connection made with the new one (the
// server sees the new serial through the renewal's caller).
func TestClientCertificateRotation(t *testing.T) {
	e := newAPIEnv(t, 0)
	cur := e.nodeTLS
	c, err := nodeapi.NewClient(nodeapi.ClientParams{
		Addr: e.addr, TrustDomain: trustDomain, Authorities: e.ca.X509Authorities,
		Certificate: func() (*tls.Certificate, error) { return cur, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	if _, err := c.Renew(t.Context(), csrDER(t)); err != nil {
		t.Fatal(err)
	}
	// A certificate of another node: if the old connection were reused,
	// the server would still see the first node.
	other := newNodeID(t)
	e.nodes.add(other)
	cur = e.ca.svidCert(t, "spiffe://"+trustDomain+"/node/"+other, time.Hour)
	sv, err := c.Renew(t.Context(), csrDER(t))
	if err != nil || sv.SPIFFEID != "spiffe://example.org/node/"+other {
		t.Errorf("Renew after the certificate changed = %s, %v; want the new node's", sv.SPIFFEID, err)
	}
}

// TestHandlerNodeCache: requests within a second read the node once.
func TestHandlerNodeCache(t *testing.T) {
	e := newAPIEnv(t, 0)
	c := e.client(e.nodeTLS)
	web := e.workloadAgent("web", "unix:uid:1000")
	for range 5 {
		if _, err := c.JWTSVID(t.Context(), web.ID, nodeapi.JWTSVIDRequest{Audience: []string{"x"}}); err != nil {
			t.Fatal(err)
		}
	}
	e.nodes.mu.Lock()
	reads := e.nodes.reads
	e.nodes.mu.Unlock()
	if reads < 1 || reads > 2 {
		t.Errorf("%d node reads for 5 requests within a second", reads)
	}
}

// TestHandlerNodeScope: a node gets the SVIDs of the agents it serves (by
// id or by a rule over its evidence, ADR 0019); any other agent is
// answered exactly as an unknown one (404 not-found), on the X.509-SVID,
// JWT-SVID and batch paths, and nothing is issued.
func TestHandlerNodeScope(t *testing.T) {
	e := newAPIEnv(t, 0)
	ctx := t.Context()
	k8sNode := newNodeID(t)
	e.nodes.put(store.Node{ID: k8sNode, SPIFFEID: "spiffe://" + trustDomain + "/node/" + k8sNode, AttestationMethod: "kubernetes",
		Attestor: "prod", Facts: map[string]string{"k8s:ns": "payments", "k8s:node": "worker-3"}})
	k8sTLS := e.ca.svidCert(t, "spiffe://"+trustDomain+"/node/"+k8sNode, time.Hour)

	byID := e.workloadAgent("by-id", "unix:uid:1")
	byID.NodeScope = store.NodeScope{NodeIDs: []string{e.nodeID}}
	e.agents.put(byID)
	byRule := e.workloadAgent("by-rule", "unix:uid:2")
	byRule.NodeScope = store.NodeScope{Rules: []store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments"}}}}
	e.agents.put(byRule)
	// Out of everyone's scope, and suspended without selectors: still
	// only "unknown", never its state or name.
	hidden := e.workloadAgent("hidden")
	hidden.State = store.AgentSuspended
	hidden.NodeScope = store.NodeScope{NodeIDs: []string{newNodeID(t)}}
	e.agents.put(hidden)
	open := e.workloadAgent("open", "unix:uid:3")

	for _, tc := range []struct {
		name         string
		cert         *tls.Certificate
		served, not  []store.Agent
		servedByRule bool
	}{
		{"join-token node", e.nodeTLS, []store.Agent{byID, open}, []store.Agent{byRule, hidden}, false},
		{"kubernetes node", k8sTLS, []store.Agent{byRule, open}, []store.Agent{byID, hidden}, true},
	} {
		c := e.client(tc.cert)
		for _, a := range tc.served {
			if _, err := c.X509SVID(ctx, a.ID, csrDER(t)); err != nil {
				t.Errorf("%s: X509SVID(%s): %v", tc.name, a.Name, err)
			}
			if _, err := c.JWTSVID(ctx, a.ID, nodeapi.JWTSVIDRequest{Audience: []string{"db"}}); err != nil {
				t.Errorf("%s: JWTSVID(%s): %v", tc.name, a.Name, err)
			}
		}
		before := e.svids.issued()
		hc := e.rawClient(tc.cert)
		for _, a := range tc.not {
			for _, kind := range []struct{ path, body string }{
				{"x509-svid", `{"csr":"` + base64.StdEncoding.EncodeToString(csrDER(t)) + `"}`},
				{"jwt-svid", `{"audience":["db"]}`},
			} {
				got := rawProblem(t, hc, "https://"+e.addr+"/node/v1/agents/"+a.ID+"/"+kind.path, kind.body)
				// The same request for an agent that does not exist, by
				// the same id: the exact same answer.
				e.agents.mu.Lock()
				delete(e.agents.agents, a.ID)
				e.agents.mu.Unlock()
				want := rawProblem(t, hc, "https://"+e.addr+"/node/v1/agents/"+a.ID+"/"+kind.path, kind.body)
				e.agents.put(a)
				if got.Status != http.StatusNotFound || got.Type != admin.ProblemNotFound || got != want || strings.Contains(got.Detail, a.Name) {
					t.Errorf("%s: %s of %s = %+v, want as unknown %+v", tc.name, kind.path, a.Name, got, want)
				}
			}
		}
		items := []nodeapi.JWTSVIDsItem{}
		for _, a := range append(append([]store.Agent{}, tc.not...), tc.served...) {
			items = append(items, nodeapi.JWTSVIDsItem{AgentID: a.ID, JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"db"}}})
		}
		res, err := c.JWTSVIDs(ctx, items)
		if err != nil {
			t.Fatalf("%s: JWTSVIDs: %v", tc.name, err)
		}
		for i, r := range res {
			if in := i >= len(tc.not); in != (r.Err == nil && r.Token != "") {
				t.Errorf("%s: batch item %d (served %t): %+v", tc.name, i, in, r)
			} else if !in && !errors.Is(r.Err, nodeapi.ErrAgentUnavailable) {
				t.Errorf("%s: batch item %d: %v, want ErrAgentUnavailable", tc.name, i, r.Err)
			}
		}
		if n := e.svids.issued() - before; n != len(tc.served) {
			t.Errorf("%s: %d SVIDs issued to out-of-scope requests and the batch, want %d (the batch's served items)", tc.name, n, len(tc.served))
		}
	}
}

// rawProblem posts body to url and returns the problem answered, without
// its trace id.
func rawProblem(t *testing.T, hc *http.Client, url, body string) admin.Problem {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p admin.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	p.TraceID = ""
	return p
}
