package node_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/attest/pki/pkitest"
	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/node"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// podToken is a projected service-account token of the cluster for
// audience aud.
func podToken(cluster *idptest.IdP, ns, sa, aud string) string {
	now := time.Now()
	return cluster.Mint("es1", map[string]any{
		"iss": cluster.URL, "sub": "system:serviceaccount:" + ns + ":" + sa, "aud": []string{aud},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      ns,
			"serviceaccount": map[string]any{"name": sa, "uid": "sa-uid"},
			"pod":            map[string]any{"name": "agentid-node-x1", "uid": "pod-uid-1"},
			"node":           map[string]any{"name": "worker-1", "uid": "node-uid-1"},
		},
	})
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// nodesBy lists the server's nodes attested with method.
func nodesBy(t *testing.T, ls *liveServer, method string) []admin.Node {
	t.Helper()
	l, err := ls.admin.ListNodes(t.Context(), admin.ListNodesParams{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []admin.Node
	for _, n := range l.Items {
		if n.AttestationMethod == method {
			out = append(out, n)
		}
	}
	return out
}

// TestEndToEndKubernetesAttestation: a node attests with a projected
// service-account token of a test cluster, then serves SVIDs; a token for
// another audience is refused (401, ErrAttestation) and audited.
func TestEndToEndKubernetesAttestation(t *testing.T) {
	cluster := idptest.New(t)
	ls := startServer(t, t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "", func(c *server.Config) {
		c.Attestors = []server.AttestorConfig{{Name: "cluster", Kind: "kubernetes", Issuer: cluster.URL, Audience: "agentid", TLSCAFile: cluster.CAFile}}
		c.NodeAPI.Attestation = []server.NodeAttestationRule{{Attestor: "cluster", Matchers: []string{"k8s:ns:agentid-system", "k8s:sa:agentid-node"}}}
	})
	triage := ls.agent(t, "triage", time.Minute)
	tokFile := writeFile(t, "token", []byte(podToken(cluster, "agentid-system", "agentid-node", "agentid")))
	rn := startNode(t, ls, t.TempDir(), t.TempDir(), "", func(p *node.Params) { p.KubernetesTokenFile = tokFile })
	if sv := fetchX509(t, rn.addr).DefaultSVID(); sv.ID.String() != triage.SPIFFEID {
		t.Fatalf("SVID %s, want %s", sv.ID, triage.SPIFFEID)
	}
	if ns := nodesBy(t, ls, noderegistry.MethodKubernetes); len(ns) != 1 || ns[0].Attestor != "cluster" ||
		ns[0].Facts["k8s:ns"] != "agentid-system" || ns[0].Facts["k8s:sa"] != "agentid-node" {
		t.Fatalf("kubernetes nodes: %+v, want one, with the attestor and facts its scope rules match (ADR 0019)", ns)
	}

	for name, tok := range map[string]string{
		"wrong audience":        podToken(cluster, "agentid-system", "agentid-node", "other"),
		"wrong service account": podToken(cluster, "agentid-system", "default", "agentid"),
	} {
		bad := writeFile(t, "token", []byte(tok))
		rn := startNode(t, ls, t.TempDir(), t.TempDir(), "", func(p *node.Params) { p.KubernetesTokenFile = bad })
		if err := rn.wait(t, 15*time.Second); !errors.Is(err, node.ErrAttestation) {
			t.Errorf("%s: node: %v, want ErrAttestation", name, err)
		}
	}
	// The admin API's answer to refused evidence: an RFC 9457 401.
	_, err := ls.admin.AttestNode(t.Context(), admin.AttestNodeRequest{KubernetesToken: podToken(cluster, "agentid-system", "agentid-node", "other"), CSR: "x"})
	var p *admin.Problem
	if !errors.As(err, &p) || p.Status != http.StatusUnauthorized || p.Type != admin.ProblemUnauthenticated {
		t.Errorf("AttestNode with a token for another audience: %v, want a 401 problem", err)
	}
	evs, err := ls.admin.ListAuditEvents(t.Context(), admin.AuditQuery{Family: "authentication", PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, ev := range evs.Items {
		if ev.Type == noderegistry.EventNodeAttested && ev.Outcome == "failure" {
			failed++
		}
	}
	if failed != 3 {
		t.Errorf("failed node.attested events: %d, want 3", failed)
	}
}

// TestEndToEndX509Attestation: over https, a node presents a client
// certificate of the hosts PKI by mutual TLS and attests; one of an
// untrusted root is refused (ErrAttestation).
func TestEndToEndX509Attestation(t *testing.T) {
	now := time.Now()
	hosts := pkitest.NewRoot(t, "hosts root", now)
	web := pkitest.NewRoot(t, "web root", now)
	srvLeaf := web.Leaf(pkitest.LeafParams{CN: "localhost", DNS: []string{"localhost"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	srvCert, srvKey := certAndKey(t, srvLeaf)
	webCA := pkitest.WritePEM(t, t.TempDir(), "web.pem", web.Cert)
	port := freePort(t)
	ls := startServer(t, t.TempDir(), "127.0.0.1:"+port, "127.0.0.1:0", "", func(c *server.Config) {
		c.Issuer = "https://localhost:" + port
		c.TLS = server.TLSConfig{CertFile: srvCert, KeyFile: srvKey}
		c.Attestors = []server.AttestorConfig{{Name: "hosts", Kind: "x509",
			TrustAnchorFiles: []string{pkitest.WritePEM(t, t.TempDir(), "hosts.pem", hosts.Cert)}}}
		c.NodeAPI.Attestation = []server.NodeAttestationRule{{Attestor: "hosts", Matchers: []string{"x509:san-dns:*.nodes.example.com"}}}
	})
	pool := x509.NewCertPool()
	pool.AddCert(web.Cert)
	var err error
	if ls.admin, err = admin.New(ls.url, ls.tok, admin.WithHTTPClient(&http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}})); err != nil {
		t.Fatal(err)
	}
	triage := ls.agent(t, "triage", time.Minute)

	cert, key := certAndKey(t, hosts.Leaf(pkitest.LeafParams{CN: "host-1", DNS: []string{"host-1.nodes.example.com"}}))
	rn := startNode(t, ls, t.TempDir(), t.TempDir(), "", func(p *node.Params) {
		p.ServerCAFile, p.ClientCertFile, p.ClientKeyFile = webCA, cert, key
	})
	if sv := fetchX509(t, rn.addr).DefaultSVID(); sv.ID.String() != triage.SPIFFEID {
		t.Fatalf("SVID %s, want %s", sv.ID, triage.SPIFFEID)
	}
	if ns := nodesBy(t, ls, noderegistry.MethodX509); len(ns) != 1 {
		t.Fatalf("x509 nodes: %+v, want one", ns)
	}

	foreign := pkitest.NewRoot(t, "hosts root", now)
	cert, key = certAndKey(t, foreign.Leaf(pkitest.LeafParams{CN: "host-2", DNS: []string{"host-2.nodes.example.com"}}))
	bad := startNode(t, ls, t.TempDir(), t.TempDir(), "", func(p *node.Params) {
		p.ServerCAFile, p.ClientCertFile, p.ClientKeyFile = webCA, cert, key
	})
	if err := bad.wait(t, 15*time.Second); !errors.Is(err, node.ErrAttestation) {
		t.Errorf("untrusted chain: node: %v, want ErrAttestation", err)
	}
}

// certAndKey writes a leaf's certificate and PKCS #8 key as PEM files.
func certAndKey(t *testing.T, l pkitest.Leaf) (certFile, keyFile string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: l.Cert.Raw})),
		writeFile(t, "key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// freePort returns a free loopback port.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
