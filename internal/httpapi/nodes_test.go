package httpapi_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/bundle"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/httpapi"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/sdk/admin"
)

// newNodeEnv is the admin API with the node registry and the bundle
// endpoint; node is a client without an admin token, as a node has none.
func newNodeEnv(t *testing.T) (*env, *admin.Client) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Params{Path: filepath.Join(t.TempDir(), "agentid.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return newNodeEnvOn(t, st)
}

// newNodeEnvOn is newNodeEnv on the store st.
func newNodeEnvOn(t *testing.T, st store.Store) (*env, *admin.Client) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	clock := func() time.Time { return time.Now().UTC() }
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	ca := newSVIDCA(t)
	iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{CA: ca, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := noderegistry.New(noderegistry.Params{Store: st, Recorder: rec, Issuer: iss, TrustDomain: "example.org", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.New(bundle.Params{TrustDomain: "example.org", X509: ca, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := identity.New(identity.Params{Store: st, Recorder: rec, TrustDomain: "example.org", Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := adminauth.New(adminauth.Params{Store: st, Recorder: rec, Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	promReg := prometheus.NewRegistry()
	h, err := httpapi.New(httpapi.Params{
		Identity: reg, Auth: auth, Audit: st, Ready: st.Ping, Registerer: promReg, Gatherer: promReg,
		Nodes: nodes, Bundle: b,
		Logger: log, Clock: clock, Rand: rand.Reader, TrustDomain: "example.org", Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	secret, _, err := auth.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := admin.New(srv.URL, secret)
	if err != nil {
		t.Fatal(err)
	}
	aud, err := c.CreateAdminToken(ctx, admin.CreateAdminTokenRequest{Name: "auditor", Role: "auditor"})
	if err != nil {
		t.Fatal(err)
	}
	node, err := admin.New(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	return &env{url: srv.URL, store: st, admin: c, token: secret, auditor: aud.Token}, node
}

// parseChain reads a PEM certificate chain.
func parseChain(t *testing.T, chainPEM string) []*x509.Certificate {
	t.Helper()
	var chain []*x509.Certificate
	for rest := []byte(chainPEM); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return chain
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
}

// auditBodies returns every audit event's body.
func auditBodies(t *testing.T, st store.Store) string {
	t.Helper()
	recs, _, err := st.ListAudit(context.Background(), store.AuditQuery{}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range recs {
		b.Write(r.Body)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestNodesThroughSDK: an administrator creates a join token, a node
// attests with it (no admin token) and go-spiffe verifies its SVID against
// the bundle in the answer; the node is listed, shown and evicted.
func TestNodesThroughSDK(t *testing.T) {
	e, node := newNodeEnv(t)
	ctx := context.Background()
	tok, err := e.admin.CreateJoinToken(ctx, admin.CreateJoinTokenRequest{TTLSeconds: 300})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.Token, noderegistry.SecretPrefix) || !strings.HasPrefix(tok.ID, "njt_") {
		t.Errorf("created token %+v", tok)
	}
	if left := time.Until(tok.ExpiresAt); left < 4*time.Minute || left > 5*time.Minute {
		t.Errorf("token expires in %s, want 5m", left)
	}
	csr, key := testCSR(t)
	att, err := node.AttestNode(ctx, admin.AttestNodeRequest{JoinToken: tok.Token, CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("example.org"), att.Bundle)
	if err != nil {
		t.Fatalf("spiffebundle.Parse(answer's bundle): %v", err)
	}
	chain := parseChain(t, att.CertChainPEM)
	id, _, err := x509svid.Verify(chain, tb)
	if err != nil {
		t.Fatalf("x509svid.Verify: %v", err)
	}
	want := "spiffe://example.org/node/" + att.NodeID
	if id.String() != want || att.SPIFFEID != want || !key.PublicKey.Equal(chain[0].PublicKey) {
		t.Errorf("SVID proves %s (answer %s) for another key?; want %s", id, att.SPIFFEID, want)
	}
	if !att.ExpiresAt.Equal(chain[0].NotAfter) {
		t.Errorf("expires_at %v, certificate %v", att.ExpiresAt, chain[0].NotAfter)
	}

	// A second attestation with the token: refused, like any bad token.
	_, err = node.AttestNode(ctx, admin.AttestNodeRequest{JoinToken: tok.Token, CSR: csr})
	if !admin.IsProblem(err, admin.ProblemUnauthenticated) {
		t.Errorf("replayed token: %v, want an unauthenticated problem", err)
	}

	n, err := e.admin.GetNode(ctx, att.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	wantNode := admin.Node{
		ID: att.NodeID, SPIFFEID: want, State: admin.NodeStateActive, AttestationMethod: "join_token",
		AttestedAt: n.AttestedAt, LastSeenAt: n.AttestedAt, SVIDSerial: chain[0].SerialNumber.Text(16),
		SVIDKeyID: "sgk_testca", SVIDExpiresAt: att.ExpiresAt, Version: 1,
	}
	if diff := cmp.Diff(wantNode, n); diff != "" {
		t.Errorf("GetNode (-want +got):\n%s", diff)
	}
	l, err := e.admin.ListNodes(ctx, admin.ListNodesParams{})
	if err != nil || len(l.Items) != 1 || l.Items[0].ID != att.NodeID {
		t.Errorf("ListNodes = %+v, %v", l, err)
	}
	ev, err := e.admin.EvictNode(ctx, att.NodeID, admin.EvictNodeRequest{Reason: "host retired"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.State != admin.NodeStateEvicted || ev.EvictedAt == nil || !strings.HasPrefix(ev.EvictedBy, "adm_") || ev.Version != 2 {
		t.Errorf("evicted node %+v", ev)
	}
	for state, want := range map[string]int{admin.NodeStateActive: 0, admin.NodeStateEvicted: 1} {
		if l, err := e.admin.ListNodes(ctx, admin.ListNodesParams{State: state}); err != nil || len(l.Items) != want {
			t.Errorf("ListNodes(%s) = %d nodes, %v; want %d", state, len(l.Items), err, want)
		}
	}
	_, err = e.admin.EvictNode(ctx, att.NodeID, admin.EvictNodeRequest{})
	if !admin.IsProblem(err, admin.ProblemIllegalTransition) {
		t.Errorf("second eviction: %v, want illegal-transition", err)
	}
	if trail := auditBodies(t, e.store); strings.Contains(trail, tok.Token) ||
		!strings.Contains(trail, `"node.attested"`) || !strings.Contains(trail, `"node.evicted"`) {
		t.Errorf("audit trail holds the join token, or lacks the node events:\n%s", trail)
	}
}

// postJSON sends a raw request and returns the status, the problem (if
// any) and the headers.
func postJSON(t *testing.T, method, url, token, body string) (int, admin.Problem, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p admin.Problem
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s %s: %d, not problem+json: %s", method, url, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, p, resp.Header
}

// TestNodeRequestsRefused: bad input gets a clear problem and changes
// nothing; every bad join token gets the very same 401.
func TestNodeRequestsRefused(t *testing.T) {
	e, node := newNodeEnv(t)
	ctx := context.Background()
	csr, _ := testCSR(t)
	used, err := e.admin.CreateJoinToken(ctx, admin.CreateJoinTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.AttestNode(ctx, admin.AttestNodeRequest{JoinToken: used.Token, CSR: csr}); err != nil {
		t.Fatal(err)
	}
	fresh, err := e.admin.CreateJoinToken(ctx, admin.CreateJoinTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	attest := e.url + admin.NodeAttestPath
	body := func(tok, csr string) string {
		b, _ := json.Marshal(admin.AttestNodeRequest{JoinToken: tok, CSR: csr})
		return string(b)
	}
	var unauthorized []admin.Problem
	for name, tok := range map[string]string{
		"replayed":  used.Token,
		"unknown":   noderegistry.SecretPrefix + strings.Repeat("A", 43),
		"malformed": "hello",
		"missing":   "",
		"too long":  strings.Repeat("a", 10_000),
		"admin":     e.token, // an admin token is no join token
	} {
		status, p, _ := postJSON(t, http.MethodPost, attest, "", body(tok, csr))
		if status != http.StatusUnauthorized || p.Type != admin.ProblemUnauthenticated {
			t.Errorf("%s token: %d %+v, want 401 unauthenticated", name, status, p)
		}
		p.TraceID = ""
		unauthorized = append(unauthorized, p)
	}
	for _, p := range unauthorized[1:] {
		if diff := cmp.Diff(unauthorized[0], p); diff != "" {
			t.Errorf("refused tokens got different answers (-first +this):\n%s", diff)
		}
	}

	snap := e.snapshot(t)
	nodesBefore, _, err := e.store.ListNodes(ctx, store.NodeFilter{}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, url, token, body string
		status                         int
		typ, field                     string
	}{
		{"bad CSR", http.MethodPost, attest, "", body(fresh.Token, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"),
			400, admin.ProblemValidation, "csr"},
		{"no CSR", http.MethodPost, attest, "", body(fresh.Token, ""), 400, admin.ProblemValidation, "csr"},
		{"huge CSR", http.MethodPost, attest, "", body(fresh.Token, strings.Repeat("A", 40<<10)), 400, admin.ProblemBadRequest, "csr"},
		{"unknown field", http.MethodPost, attest, "", `{"join_token":"x","csr":"y","node":"z"}`, 400, admin.ProblemBadRequest, "node"},
		{"not JSON", http.MethodPost, attest, "", `join_token=x`, 400, admin.ProblemBadRequest, ""},
		{"GET attest", http.MethodGet, attest, "", "", 405, admin.ProblemMethodNotAllowed, ""},
		{"token TTL too short", http.MethodPost, e.url + "/v1/node-tokens", e.token, `{"ttl_seconds":30}`, 400, admin.ProblemValidation, "ttl_seconds"},
		{"token TTL too long", http.MethodPost, e.url + "/v1/node-tokens", e.token, `{"ttl_seconds":86401}`, 400, admin.ProblemValidation, "ttl_seconds"},
		{"token TTL negative", http.MethodPost, e.url + "/v1/node-tokens", e.token, `{"ttl_seconds":-1}`, 400, admin.ProblemBadRequest, "ttl_seconds"},
		{"token without admin token", http.MethodPost, e.url + "/v1/node-tokens", "", `{}`, 401, admin.ProblemUnauthenticated, ""},
		{"token by an auditor", http.MethodPost, e.url + "/v1/node-tokens", e.auditor, `{}`, 403, admin.ProblemForbidden, ""},
		{"list by an auditor", http.MethodGet, e.url + "/v1/nodes", e.auditor, "", 403, admin.ProblemForbidden, ""},
		{"bad state", http.MethodGet, e.url + "/v1/nodes?state=gone", e.token, "", 400, admin.ProblemBadRequest, "state"},
		{"bad node id", http.MethodGet, e.url + "/v1/nodes/agt_1", e.token, "", 400, admin.ProblemValidation, "id"},
		{"unknown node", http.MethodGet, e.url + "/v1/nodes/nod_" + strings.Repeat("0", 26), e.token, "", 404, admin.ProblemNotFound, ""},
		{"evict unknown", http.MethodPost, e.url + "/v1/nodes/nod_" + strings.Repeat("0", 26) + "/evict", e.token, `{}`, 404, admin.ProblemNotFound, ""},
		{"evict bad reason", http.MethodPost, e.url + "/v1/nodes/nod_" + strings.Repeat("0", 26) + "/evict", e.token, `{"reason":"a\u0007"}`, 400, admin.ProblemValidation, "reason"},
	} {
		status, p, hdr := postJSON(t, tc.method, tc.url, tc.token, tc.body)
		if status != tc.status || p.Type != tc.typ || p.Field != tc.field {
			t.Errorf("%s: %d %s field %q (%s), want %d %s field %q", tc.name, status, p.Type, p.Field, p.Detail, tc.status, tc.typ, tc.field)
		}
		if status == 405 && hdr.Get("Allow") != http.MethodPost {
			t.Errorf("%s: Allow %q", tc.name, hdr.Get("Allow"))
		}
	}
	after := e.snapshot(t)
	after.HeadSeq = snap.HeadSeq // refusals are audited; nothing else may change
	if diff := cmp.Diff(snap, after); diff != "" {
		t.Errorf("refused requests changed the store (-before +after):\n%s", diff)
	}
	if nodesAfter, _, _ := e.store.ListNodes(ctx, store.NodeFilter{}, store.Page{}); !cmp.Equal(nodesBefore, nodesAfter) {
		t.Error("refused requests changed the nodes")
	}
	// The fresh token survived the bad CSRs.
	if _, err := node.AttestNode(ctx, admin.AttestNodeRequest{JoinToken: fresh.Token, CSR: csr}); err != nil {
		t.Errorf("attest with the token refused CSRs were sent with: %v", err)
	}
	trail := auditBodies(t, e.store)
	for _, secret := range []string{used.Token, fresh.Token} {
		if strings.Contains(trail, secret) {
			t.Error("the audit trail holds a join token")
		}
	}
	for _, reason := range []string{"replayed token", "unknown token", "malformed token", "bad CSR"} {
		if !strings.Contains(trail, `"reason":"`+reason+`"`) {
			t.Errorf("no audit event with reason %q", reason)
		}
	}
}

// TestNodeEndpointsAbsent: without a node registry the endpoints are not
// served.
func TestNodeEndpointsAbsent(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{admin.NodeAttestPath, "/v1/node-tokens"} {
		status, p, _ := postJSON(t, http.MethodPost, e.url+path, e.token, `{}`)
		if status != http.StatusNotFound || p.Type != admin.ProblemNotFound {
			t.Errorf("POST %s without a registry: %d %s, want 404", path, status, p.Type)
		}
	}
}
