package noderegistry_test

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/kubernetes"
	"github.com/agentid/agentid/internal/attest/pki"
	"github.com/agentid/agentid/internal/attest/pki/pkitest"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/bundle"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/testca"
)

// evidenceEnv is an env whose registry also attests nodes with evidence:
// a Kubernetes cluster (a JWKS-serving test issuer) and a test PKI.
type evidenceEnv struct {
	*env
	cluster *idptest.IdP
	pki     *pkitest.CA
	foreign *pkitest.CA
}

// nodeRules let the agentid-system/agentid-node service account and
// certificates of *.nodes.example.com attest nodes.
var nodeRules = []store.AttestationRule{
	{Attestor: "cluster", Matchers: []string{"k8s:ns:agentid-system", "k8s:sa:agentid-node"}},
	{Attestor: "hosts", Matchers: []string{"x509:san-dns:*.nodes.example.com"}},
}

func newEvidenceEnv(t *testing.T) *evidenceEnv {
	t.Helper()
	st, _ := storeOf(t)
	e := &env{t: t, ctx: t.Context(), st: st, clock: &clock{now: time.Now().UTC()}}
	ee := &evidenceEnv{env: e, cluster: idptest.New(t)}
	ee.pki = pkitest.NewRoot(t, "hosts root", e.clock.Now())
	ee.foreign = pkitest.NewRoot(t, "foreign root", e.clock.Now())
	k8s, err := kubernetes.New(kubernetes.Config{Name: "cluster", Issuer: ee.cluster.URL, Audience: "agentid", TLSCAFile: ee.cluster.CAFile}, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := pki.New(pki.Config{Name: "hosts", TrustAnchorFiles: []string{pkitest.WritePEM(t, t.TempDir(), "root.pem", ee.pki.Cert)}}, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	set, err := attest.NewSetWithChains([]attest.Attestor{k8s}, []attest.ChainAttestor{hosts})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.ca = newTestCA(t, e.clock.Now())
	iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{Rand: rand.Reader, CA: e.ca})
	if err != nil {
		t.Fatal(err)
	}
	if e.svc, err = noderegistry.New(noderegistry.Params{
		Store: st, Recorder: rec, Issuer: iss, TrustDomain: "example.org", Clock: e.clock.Now,
		Attestors: set, NodeRules: nodeRules,
	}); err != nil {
		t.Fatal(err)
	}
	if e.bundle, err = bundle.New(bundle.Params{TrustDomain: "example.org", X509: e.ca, Clock: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	return ee
}

// podToken is a projected token of a pod of namespace ns and service
// account sa, for audience aud.
func (e *evidenceEnv) podToken(ns, sa, aud string) string {
	now := e.clock.Now()
	return e.cluster.Mint("es1", map[string]any{
		"iss": e.cluster.URL, "sub": "system:serviceaccount:" + ns + ":" + sa, "aud": []string{aud},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      ns,
			"serviceaccount": map[string]any{"name": sa, "uid": "sa-uid"},
			"pod":            map[string]any{"name": "agentid-node-x1", "uid": "pod-uid-1"},
			"node":           map[string]any{"name": "worker-1", "uid": "node-uid-1"},
		},
	})
}

func (e *evidenceEnv) attestWith(p noderegistry.AttestParams) (noderegistry.NodeSVID, error) {
	p.Source, p.TraceID = nodeSource, "0af7651916cd43dd8448eb211c80319c"
	return e.svc.Attest(e.ctx, p)
}

func TestAttestWithEvidence(t *testing.T) {
	e := newEvidenceEnv(t)
	csr := csrPEM(t, testca.Key(t))
	tok := e.podToken("agentid-system", "agentid-node", "agentid")
	leaf := e.pki.Leaf(pkitest.LeafParams{CN: "host-1", DNS: []string{"host-1.nodes.example.com"}})
	for _, tc := range []struct {
		name     string
		p        noderegistry.AttestParams
		method   string
		rule     string
		attestor string
		facts    map[string]string
		values   map[string][]string
	}{
		{"kubernetes", noderegistry.AttestParams{KubernetesToken: tok, CSR: csr}, noderegistry.MethodKubernetes,
			"cluster: k8s:ns:agentid-system, k8s:sa:agentid-node", "cluster",
			map[string]string{"k8s:ns": "agentid-system", "k8s:sa": "agentid-node", "k8s:pod-name": "agentid-node-x1",
				"k8s:pod-uid": "pod-uid-1", "k8s:node": "worker-1"}, nil},
		{"x509", noderegistry.AttestParams{PeerCertificates: []*x509.Certificate{leaf.Cert}, CSR: csr}, noderegistry.MethodX509,
			"hosts: x509:san-dns:*.nodes.example.com", "hosts",
			map[string]string{"x509:cn": "host-1", "x509:issuer-cn": "hosts root", "x509:issuer": "CN=hosts root,O=Example Corp"},
			map[string][]string{"x509:san-dns": {"host-1.nodes.example.com"}}},
	} {
		before := e.head()
		got, err := e.attestWith(tc.p)
		if err != nil {
			t.Fatalf("%s: Attest: %v", tc.name, err)
		}
		if got.Node.AttestationMethod != tc.method {
			t.Errorf("%s: method %q, want %q", tc.name, got.Node.AttestationMethod, tc.method)
		}
		if id := e.verify(got.SVID); id != "spiffe://example.org/node/"+got.Node.ID {
			t.Errorf("%s: SVID proves %s", tc.name, id)
		}
		// What the node proved is kept on its record (ADR 0019).
		stored, err := e.svc.Get(e.ctx, got.Node.ID)
		if err != nil {
			t.Fatalf("%s: Get: %v", tc.name, err)
		}
		for _, n := range []store.Node{got.Node, stored} {
			if n.Attestor != tc.attestor || !maps.Equal(n.Facts, tc.facts) ||
				!maps.EqualFunc(n.FactValues, tc.values, slices.Equal) {
				t.Errorf("%s: node kept attestor %q, facts %v, values %v; want %q, %v, %v",
					tc.name, n.Attestor, n.Facts, n.FactValues, tc.attestor, tc.facts, tc.values)
			}
		}
		evs := e.events(before, tok)
		if len(evs) != 2 || evs[0]["type"] != noderegistry.EventNodeAttested || evs[0]["outcome"] != "success" {
			t.Fatalf("%s: events %v, want node.attested and credential.issued", tc.name, evs)
		}
		d, _ := evs[0]["details"].(map[string]any)
		if d["method"] != tc.method || d["rule"] != tc.rule || d["node_id"] != got.Node.ID || d["evidence"] == nil {
			t.Errorf("%s: node.attested details %v", tc.name, d)
		}
	}
	e.verifyTrail()
}

func TestAttestWithEvidenceRefused(t *testing.T) {
	e := newEvidenceEnv(t)
	csr := csrPEM(t, testca.Key(t))
	other := pkitest.NewRoot(t, "hosts root", e.clock.Now()) // same name, another key
	for _, tc := range []struct {
		name    string
		p       noderegistry.AttestParams
		reason  string
		wantErr error
	}{
		{"wrong audience", noderegistry.AttestParams{KubernetesToken: e.podToken("agentid-system", "agentid-node", "other"), CSR: csr},
			noderegistry.ReasonBadEvidence, noderegistry.ErrEvidenceRefused},
		{"unknown issuer", noderegistry.AttestParams{KubernetesToken: "not-a-jwt", CSR: csr},
			noderegistry.ReasonBadEvidence, noderegistry.ErrEvidenceRefused},
		{"wrong service account", noderegistry.AttestParams{KubernetesToken: e.podToken("agentid-system", "default", "agentid"), CSR: csr},
			noderegistry.ReasonNoRule, noderegistry.ErrEvidenceRefused},
		{"untrusted chain", noderegistry.AttestParams{PeerCertificates: []*x509.Certificate{
			e.foreign.Leaf(pkitest.LeafParams{DNS: []string{"host-1.nodes.example.com"}}).Cert}, CSR: csr},
			noderegistry.ReasonBadEvidence, noderegistry.ErrEvidenceRefused},
		{"impostor root", noderegistry.AttestParams{PeerCertificates: []*x509.Certificate{
			other.Leaf(pkitest.LeafParams{DNS: []string{"host-1.nodes.example.com"}}).Cert}, CSR: csr},
			noderegistry.ReasonBadEvidence, noderegistry.ErrEvidenceRefused},
		{"certificate matching no rule", noderegistry.AttestParams{PeerCertificates: []*x509.Certificate{
			e.pki.Leaf(pkitest.LeafParams{DNS: []string{"laptop.example.com"}}).Cert}, CSR: csr},
			noderegistry.ReasonNoRule, noderegistry.ErrEvidenceRefused},
		{"bad CSR", noderegistry.AttestParams{KubernetesToken: e.podToken("agentid-system", "agentid-node", "agentid"), CSR: []byte("junk")},
			noderegistry.ReasonBadCSR, noderegistry.ErrInvalid},
	} {
		before := e.head()
		got, err := e.attestWith(tc.p)
		if !errors.Is(err, tc.wantErr) || got.SVID.Chain != nil {
			t.Errorf("%s: Attest = %v, want %v", tc.name, err, tc.wantErr)
		}
		if tc.wantErr == noderegistry.ErrEvidenceRefused && !errors.Is(err, noderegistry.ErrUnauthenticated) { //nolint:errorlint // sentinel comparison
			t.Errorf("%s: %v does not match ErrUnauthenticated", tc.name, err)
		}
		evs := e.events(before, tc.p.KubernetesToken)
		if len(evs) != 1 || evs[0]["type"] != noderegistry.EventNodeAttested || evs[0]["outcome"] != "failure" || evs[0]["reason"] != tc.reason {
			t.Errorf("%s: events %v, want one failed node.attested, reason %q", tc.name, evs, tc.reason)
		}
	}
	if n := e.nodes(); len(n) != 0 {
		t.Errorf("nodes after refusals: %v", n)
	}
	e.verifyTrail()
}

func TestCheckNodeRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []store.AttestationRule
	}{
		{"unknown attestor", []store.AttestationRule{{Attestor: "nope", Matchers: []string{"k8s:ns:x"}}}},
		{"no matchers", []store.AttestationRule{{Attestor: "cluster"}}},
		{"bad matcher", []store.AttestationRule{{Attestor: "cluster", Matchers: []string{"k8s:bogus:x"}}}},
	} {
		if _, err := noderegistry.CheckNodeRules(tc.rules, nil); err == nil {
			t.Errorf("%s: CheckNodeRules accepted %v", tc.name, tc.rules)
		}
	}
}
