// Package testca makes SPIFFE certificate authorities for tests only: a
// self-signed P-256 CA of a trust domain that is a credential.CA and a
// bundle X.509 source, a rotating set of them with taints, an
// X.509-SVID issuer over either, and the P-256 keys and CSRs the tests
// send. Keys and signatures are real. Production code must not import it.
package testca

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
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/credential"
)

// Params describes a CA; zero fields take defaults.
type Params struct {
	// TrustDomain is the CA's SPIFFE URI SAN; default "example.org".
	TrustDomain string
	// Now is when the CA is made: valid from Now-1h; default time.Now().
	Now time.Time
	// TTL is how long after Now the CA expires; default 24h.
	TTL time.Duration
	// Serial is the certificate's serial number; default random.
	Serial int64
	// Subject is the certificate's subject; default CN "<trust domain> CA
	// <serial>", so that the CAs of a Rotating set have distinct names.
	Subject pkix.Name
	// KeyID is the credential.CAKey ID; default "sgk_<serial>".
	KeyID string
}

// CA is one self-signed P-256 CA. It is a credential.CA and a
// bundle.X509Source; it is immutable and safe for concurrent use.
type CA struct {
	// Cert is the self-signed CA certificate.
	Cert *x509.Certificate
	// Key is its private key.
	Key crypto.Signer
	// KeyID is the ID CurrentCA reports.
	KeyID string
}

var _ credential.CA = (*CA)(nil)

// New makes a CA; it fails the test on error.
func New(t testing.TB, p Params) *CA {
	t.Helper()
	if p.TrustDomain == "" {
		p.TrustDomain = "example.org"
	}
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	if p.TTL == 0 {
		p.TTL = 24 * time.Hour
	}
	serial := big.NewInt(p.Serial)
	if p.Serial == 0 {
		var err error
		if serial, err = rand.Int(rand.Reader, big.NewInt(1<<62)); err != nil {
			t.Fatal(err)
		}
		serial.Add(serial, big.NewInt(1))
	}
	if p.Subject.String() == "" {
		p.Subject = pkix.Name{CommonName: p.TrustDomain + " CA " + serial.String()}
	}
	if p.KeyID == "" {
		p.KeyID = "sgk_" + serial.String()
	}
	key := Key(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: p.Subject,
		NotBefore: p.Now.Add(-time.Hour), NotAfter: p.Now.Add(p.TTL),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
		URIs: []*url.URL{{Scheme: "spiffe", Host: p.TrustDomain}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key, KeyID: p.KeyID}
}

// CurrentCA returns the CA's key and one-certificate chain.
func (c *CA) CurrentCA() (credential.CAKey, error) {
	return credential.CAKey{ID: c.KeyID, Signer: c.Key, Chain: []*x509.Certificate{c.Cert}}, nil
}

// X509Authorities returns the CA's certificate.
func (c *CA) X509Authorities() []*x509.Certificate { return []*x509.Certificate{c.Cert} }

// Rotating is a set of CAs of one trust domain of which the newest signs;
// the older ones stay authorities until dropped, and any may be tainted.
// It is a credential.CA, a bundle.X509Source and a nodeapi.TaintSource,
// and safe for concurrent use.
type Rotating struct {
	p       Params
	mu      sync.Mutex
	all     []*CA
	tainted map[*CA]bool
}

var _ credential.CA = (*Rotating)(nil)

// NewRotating returns a set holding one CA made with p. Every CA it adds
// is made with p; a fixed p.Serial counts up from there, a fixed
// p.KeyID is shared.
func NewRotating(t testing.TB, p Params) *Rotating {
	t.Helper()
	r := &Rotating{p: p, tainted: map[*CA]bool{}}
	r.Rotate(t)
	return r
}

// Rotate adds a CA, which signs from now on, and returns it.
func (r *Rotating) Rotate(t testing.TB) *CA {
	t.Helper()
	r.mu.Lock()
	p := r.p
	if p.Serial != 0 {
		p.Serial += int64(len(r.all))
	}
	r.mu.Unlock()
	c := New(t, p)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, c)
	return c
}

// Drop removes the oldest CA.
func (r *Rotating) Drop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = r.all[1:]
}

// Taint marks the signing CA tainted and returns its certificate.
func (r *Rotating) Taint() *x509.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.all[len(r.all)-1]
	r.tainted[c] = true
	return c.Cert
}

// Current returns the signing CA.
func (r *Rotating) Current() *CA {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all[len(r.all)-1]
}

// CurrentCA returns the signing CA's key.
func (r *Rotating) CurrentCA() (credential.CAKey, error) { return r.Current().CurrentCA() }

// X509Authorities returns every CA's certificate, oldest first.
func (r *Rotating) X509Authorities() []*x509.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*x509.Certificate, len(r.all))
	for i, c := range r.all {
		out[i] = c.Cert
	}
	return out
}

// TaintedCAs returns the tainted CAs' certificates, oldest first.
func (r *Rotating) TaintedCAs() []*x509.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*x509.Certificate
	for _, c := range r.all {
		if r.tainted[c] {
			out = append(out, c.Cert)
		}
	}
	return out
}

// Issuer returns a credential.SVIDIssuer of X.509-SVIDs over ca, with
// crypto/rand; it fails the test on error.
func Issuer(t testing.TB, ca credential.CA) *credential.SVIDIssuer {
	t.Helper()
	iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{CA: ca, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// SVIDCert mints, with iss and a new key, an X.509-SVID for the SPIFFE ID
// valid for ttl from now (0: the issuer's default), as a TLS certificate.
func SVIDCert(t testing.TB, iss *credential.SVIDIssuer, id string, ttl time.Duration) *tls.Certificate {
	t.Helper()
	key := Key(t)
	sv, err := iss.X509SVID(credential.X509SVIDParams{SPIFFEID: id, PublicKey: &key.PublicKey, IssuedAt: time.Now(), TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(sv.Chain[0])
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: sv.Chain, PrivateKey: key, Leaf: leaf}
}

// Key returns a new P-256 key; it fails the test on error.
func Key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// CSRPEM returns a PEM "CERTIFICATE REQUEST" signed by key naming the DNS
// names (an SVID issuer must ignore them).
func CSRPEM(t testing.TB, key crypto.Signer, dnsNames ...string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: dnsNames}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}
