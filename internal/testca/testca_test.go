package testca_test

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/testca"
)

// verify checks an SVID with go-spiffe against the authorities.
func verify(t *testing.T, chain [][]byte, authorities []*x509.Certificate) (string, error) {
	t.Helper()
	b := x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString("example.org"), authorities)
	id, _, err := x509svid.ParseAndVerify(chain, b)
	return id.String(), err
}

func TestCA(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	c := testca.New(t, testca.Params{Now: now, TTL: 48 * time.Hour, Serial: 7})
	if got, want := c.Cert.Subject.CommonName, "example.org CA 7"; got != want {
		t.Errorf("CN = %q, want %q", got, want)
	}
	if !c.Cert.IsCA || !c.Cert.NotBefore.Equal(now.Add(-time.Hour)) || !c.Cert.NotAfter.Equal(now.Add(48*time.Hour)) {
		t.Errorf("certificate: CA %v, valid %v–%v", c.Cert.IsCA, c.Cert.NotBefore, c.Cert.NotAfter)
	}
	if len(c.Cert.URIs) != 1 || c.Cert.URIs[0].String() != "spiffe://example.org" {
		t.Errorf("URIs = %v", c.Cert.URIs)
	}
	k, err := c.CurrentCA()
	if err != nil || k.ID != "sgk_7" || k.Chain[0] != c.Cert {
		t.Errorf("CurrentCA() = %v, %v", k, err)
	}
	if err := c.Cert.CheckSignatureFrom(c.Cert); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
}

func TestIssuerSVIDs(t *testing.T) {
	c := testca.New(t, testca.Params{})
	cert := testca.SVIDCert(t, testca.Issuer(t, c), "spiffe://example.org/agent/bot", time.Hour)
	id, err := verify(t, cert.Certificate, c.X509Authorities())
	if err != nil || id != "spiffe://example.org/agent/bot" {
		t.Fatalf("verify = %q, %v", id, err)
	}
	if _, err := verify(t, cert.Certificate, testca.New(t, testca.Params{}).X509Authorities()); err == nil {
		t.Fatal("an SVID verified against another CA")
	}
}

func TestRotating(t *testing.T) {
	r := testca.NewRotating(t, testca.Params{Serial: 1, KeyID: "sgk_ca"})
	iss := testca.Issuer(t, r)
	first := r.Current()
	old := testca.SVIDCert(t, iss, "spiffe://example.org/a", time.Hour)
	if got := r.Taint(); got != first.Cert {
		t.Fatal("Taint() did not return the signing CA")
	}
	next := r.Rotate(t)
	if next.Cert.SerialNumber.Int64() != 2 || r.Current() != next {
		t.Fatalf("Rotate: serial %v, current is the new CA %v", next.Cert.SerialNumber, r.Current() == next)
	}
	if k, _ := r.CurrentCA(); k.ID != "sgk_ca" || k.Chain[0] != next.Cert {
		t.Errorf("CurrentCA() = %v", k)
	}
	if got := r.X509Authorities(); len(got) != 2 || got[0] != first.Cert || got[1] != next.Cert {
		t.Errorf("X509Authorities() = %v", got)
	}
	if got := r.TaintedCAs(); len(got) != 1 || got[0] != first.Cert {
		t.Errorf("TaintedCAs() = %v", got)
	}
	cur := testca.SVIDCert(t, iss, "spiffe://example.org/a", time.Hour)
	if _, err := verify(t, cur.Certificate, []*x509.Certificate{next.Cert}); err != nil {
		t.Errorf("new SVID not signed by the new CA: %v", err)
	}
	r.Drop()
	if got := r.X509Authorities(); len(got) != 1 || got[0] != next.Cert {
		t.Errorf("after Drop: %v", got)
	}
	if _, err := verify(t, old.Certificate, r.X509Authorities()); err == nil {
		t.Error("an SVID of a dropped CA verified")
	}
}

func TestCSRPEM(t *testing.T) {
	key := testca.Key(t)
	b, rest := pem.Decode(testca.CSRPEM(t, key, "not-me.example.com"))
	if b == nil || b.Type != "CERTIFICATE REQUEST" || len(rest) != 0 {
		t.Fatalf("not one PEM CSR: %v", b)
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil || !key.PublicKey.Equal(csr.PublicKey) {
		t.Errorf("CSR not signed by key: %v", err)
	}
	if len(csr.DNSNames) != 1 || csr.DNSNames[0] != "not-me.example.com" {
		t.Errorf("DNSNames = %v", csr.DNSNames)
	}
}
