package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/attest/pki/pkitest"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
	"github.com/agentid/agentid/sdk/resource"
)

// serverTLS writes a self-signed serving certificate for 127.0.0.1 to dir
// and returns its cert and key files and a pool trusting it.
func serverTLS(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "agentid test server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(c)
	return certFile, keyFile, roots
}

// TestMutualTLSClientAuthOverHTTPS runs docs/attestation.md's PKI example
// over real sockets: a server with tls and an x509 attestor requests
// client certificates; an agent's instance authenticates with its
// certificate (RFC 8705 §2.1) and gets a token bound to it (§3), which a
// resource server checks with sdk/resource against the certificate on
// its own mutual TLS connection.
func TestMutualTLSClientAuthOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, serverRoots := serverTLS(t, dir)
	ca := pkitest.NewRoot(t, "Corp Root", time.Now())
	inter := ca.Intermediate("Corp Issuing")
	ln, cfg := devListener(t, func(c *server.Config) {
		c.TLS = server.TLSConfig{CertFile: certFile, KeyFile: keyFile}
		c.Attestors = []server.AttestorConfig{{Name: "corp-pki", Kind: "x509",
			TrustAnchorFiles: []string{pkitest.WritePEM(t, dir, "corp-root.pem", ca.Cert)}}}
	})
	cfg.Issuer = "https://" + ln.Addr().String()
	cp := serve(t, ln, cfg, server.Params{}, nil)
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverRoots, MinVersion: tls.VersionTLS12}}}
	adm, err := admin.New(cp.url, cp.token, admin.WithHTTPClient(anon))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	owner, err := adm.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: "o@example.org", DisplayName: "O"})
	if err != nil {
		t.Fatal(err)
	}
	const api = "https://api.example.org"
	if _, err := adm.CreateAgent(ctx, admin.CreateAgentRequest{
		Name: "signer", Purpose: "signs invoices", Owners: []string{owner.ID}, Audiences: []string{api},
		AttestationRules: []admin.AttestationRule{{Attestor: "corp-pki", Matchers: []string{"x509:ou:payments", "x509:san-dns:*.corp.example"}}},
	}); err != nil {
		t.Fatal(err)
	}

	// The listener names the trust anchor as an acceptable CA.
	var acceptable [][]byte
	probe := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverRoots, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			acceptable = cri.AcceptableCAs
			return &tls.Certificate{}, nil
		}}}}
	if resp, err := probe.Get(cp.url + "/.well-known/oauth-authorization-server"); err != nil {
		t.Fatal(err)
	} else {
		var meta map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&meta)
		_ = resp.Body.Close()
		if meta["tls_client_certificate_bound_access_tokens"] != true || !strings.Contains(toJSON(meta["token_endpoint_auth_methods_supported"]), "tls_client_auth") {
			t.Errorf("metadata = %v", meta)
		}
	}
	if len(acceptable) != 1 || string(acceptable[0]) != string(ca.Cert.RawSubject) {
		t.Errorf("acceptable CAs = %d names", len(acceptable))
	}

	withCert := func(l pkitest.Leaf) *http.Client {
		c := l.TLSCertificate(inter.Cert)
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverRoots, MinVersion: tls.VersionTLS12,
			Certificates: []tls.Certificate{c}}}}
	}
	token := func(hc *http.Client) (int, map[string]any) {
		resp, err := hc.PostForm(cp.url+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"signer"}, "resource": {api}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var body map[string]any
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		return resp.StatusCode, body
	}
	leaf := inter.Leaf(pkitest.LeafParams{CN: "signer-1", OU: []string{"payments"}, DNS: []string{"signer-1.corp.example"}})
	status, body := token(withCert(leaf))
	if status != http.StatusOK || body["token_type"] != "Bearer" {
		t.Fatalf("token: %d %v", status, body)
	}
	raw, _ := body["access_token"].(string)

	bad := inter.Leaf(pkitest.LeafParams{OU: []string{"payments"}, DNS: []string{"x.corp.example"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if status, body := token(withCert(bad)); status >= 500 || body["error"] != "invalid_client" {
		t.Errorf("wrong EKU: %d %v", status, body)
	}
	if status, body := token(anon); status >= 500 || body["error"] != "invalid_client" {
		t.Errorf("no certificate: %d %v", status, body)
	}

	// A resource server with mutual TLS checks the binding.
	v, err := resource.NewVerifier(ctx, resource.VerifierParams{Issuer: cp.url, Audience: api, HTTPClient: anon})
	if err != nil {
		t.Fatal(err)
	}
	rs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := v.VerifyRequest(r); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	rs.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	rs.StartTLS()
	t.Cleanup(rs.Close)
	call := func(l pkitest.Leaf) int {
		c := l.TLSCertificate(inter.Cert)
		tr := rs.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{c}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rs.URL+"/invoices", nil)
		req.Header.Set("Authorization", "Bearer "+raw)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := call(leaf); got != http.StatusOK {
		t.Errorf("with the bound certificate: %d", got)
	}
	other := inter.Leaf(pkitest.LeafParams{OU: []string{"payments"}, DNS: []string{"signer-2.corp.example"}})
	if got := call(other); got != http.StatusUnauthorized {
		t.Errorf("with another certificate: %d", got)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
