// Package pkitest builds a deployment PKI for tests: a root CA, an
// intermediate, client leaves and CRLs, with real keys and signatures,
// written to PEM files for the x509 attestor's config.
package pkitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority with its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	t    testing.TB
	next *big.Int
}

// Leaf is a client certificate with its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// LeafParams describes a leaf; zero fields take defaults (CN "agent",
// clientAuth, valid from notBefore to notBefore+24h).
type LeafParams struct {
	CN          string
	O, OU       []string
	DNS         []string
	URIs        []string
	ExtKeyUsage []x509.ExtKeyUsage
	IsCA        bool
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewRoot returns a self-signed root CA named cn, valid around now.
func NewRoot(t testing.TB, cn string, now time.Time) *CA {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"Example Corp"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return &CA{Cert: sign(t, tmpl, tmpl, k.Public(), k), Key: k, t: t, next: big.NewInt(100)}
}

// Intermediate returns a CA signed by ca; permittedDNS, when set, are its
// name constraints (permitted DNS domains).
func (ca *CA) Intermediate(cn string, permittedDNS ...string) *CA {
	ca.t.Helper()
	k := newKey(ca.t)
	tmpl := &x509.Certificate{
		SerialNumber: ca.serial(), Subject: pkix.Name{CommonName: cn, Organization: []string{"Example Corp"}},
		NotBefore: ca.Cert.NotBefore, NotAfter: ca.Cert.NotAfter.Add(-time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		PermittedDNSDomains: permittedDNS, PermittedDNSDomainsCritical: len(permittedDNS) > 0,
	}
	return &CA{Cert: sign(ca.t, tmpl, ca.Cert, k.Public(), ca.Key), Key: k, t: ca.t, next: big.NewInt(1000)}
}

// Leaf issues a client certificate.
func (ca *CA) Leaf(p LeafParams) Leaf {
	ca.t.Helper()
	k := newKey(ca.t)
	if p.CN == "" {
		p.CN = "agent"
	}
	if p.ExtKeyUsage == nil {
		p.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: ca.serial(), Subject: pkix.Name{CommonName: p.CN, Organization: p.O, OrganizationalUnit: p.OU},
		NotBefore: ca.Cert.NotBefore, NotAfter: ca.Cert.NotBefore.Add(25 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: p.ExtKeyUsage, DNSNames: p.DNS,
		IsCA: p.IsCA, BasicConstraintsValid: true,
	}
	for _, u := range p.URIs {
		pu, err := url.Parse(u)
		if err != nil {
			ca.t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	return Leaf{Cert: sign(ca.t, tmpl, ca.Cert, k.Public(), ca.Key), Key: k}
}

// CRL returns a DER CRL of ca revoking serials, valid from now for a day.
func (ca *CA) CRL(now time.Time, serials ...*big.Int) []byte {
	ca.t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return der
}

func (ca *CA) serial() *big.Int {
	ca.next = new(big.Int).Add(ca.next, big.NewInt(1))
	return new(big.Int).Set(ca.next)
}

func sign(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// WritePEM writes certs to a PEM file in dir and returns its path.
func WritePEM(t testing.TB, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return write(t, dir, name, b)
}

// WriteCRL writes a DER CRL as PEM in dir and returns its path.
func WriteCRL(t testing.TB, dir, name string, der []byte) string {
	t.Helper()
	return write(t, dir, name, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
}

func write(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TLSCertificate is l with the intermediates chain for a TLS client.
func (l Leaf) TLSCertificate(chain ...*x509.Certificate) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{l.Cert.Raw}, PrivateKey: l.Key, Leaf: l.Cert}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}
