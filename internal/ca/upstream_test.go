package ca_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/ca"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/testca"
)

// testPKI is a deployment PKI: a root and an intermediate CA that signs
// agentid's CA certificates.
type testPKI struct {
	root, inter       *x509.Certificate
	rootKey, interKey *ecdsa.PrivateKey
}

func issue(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func caTemplate(cn string, serial int64, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{Organization: []string{"Example Corp"}, CommonName: cn},
		NotBefore: t0.Add(-24 * time.Hour), NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

func newPKI(t *testing.T, interNotAfter time.Time) *testPKI {
	t.Helper()
	p := &testPKI{rootKey: testca.Key(t), interKey: testca.Key(t)}
	rt := caTemplate("Example Root CA", 1, t0.Add(10*365*24*time.Hour))
	p.root = issue(t, rt, rt, p.rootKey.Public(), p.rootKey)
	p.inter = issue(t, caTemplate("Example Issuing CA", 2, interNotAfter), p.root, p.interKey.Public(), p.rootKey)
	return p
}

func writePEM(t *testing.T, dir, name, typ string, ders ...[]byte) string {
	t.Helper()
	var b []byte
	for _, d := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// files writes the upstream cert, key and bundle files of p.
func (p *testPKI) files(t *testing.T) (certFile, keyFile, bundleFile string) {
	t.Helper()
	dir := t.TempDir()
	kd, err := x509.MarshalPKCS8PrivateKey(p.interKey)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, "upstream.crt", "CERTIFICATE", p.inter.Raw),
		writePEM(t, dir, "upstream.key", "PRIVATE KEY", kd),
		writePEM(t, dir, "bundle.crt", "CERTIFICATE", p.root.Raw)
}

func TestUpstream(t *testing.T) {
	pki := newPKI(t, t0.Add(365*24*time.Hour))
	up, err := ca.LoadUpstream(pki.files(t))
	if err != nil {
		t.Fatal(err)
	}
	e := sqliteEnv(t)
	p := e.params(e.st, "r")
	p.Upstream = up
	m := e.manager(p)
	if !m.Upstream() {
		t.Fatal("Upstream() = false")
	}
	k := e.current(m)
	if len(k.Chain) != 2 || !k.Chain[1].Equal(pki.inter) {
		t.Fatalf("chain of %d", len(k.Chain))
	}
	c := k.Chain[0]
	if err := c.CheckSignatureFrom(pki.inter); err != nil {
		t.Fatalf("the agentid CA is not signed by the upstream CA: %v", err)
	}
	if c.Issuer.CommonName != "Example Issuing CA" || !c.IsCA || !c.MaxPathLenZero || len(c.URIs) != 1 ||
		c.URIs[0].String() != "spiffe://example.org" {
		t.Fatalf("agentid CA certificate: issuer %s ca %v uris %v", c.Issuer, c.IsCA, c.URIs)
	}
	if auths := m.X509Authorities(); len(auths) != 1 || !auths[0].Equal(pki.root) {
		t.Fatalf("authorities: %d", len(auths))
	}
	// An SVID chains through the agentid CA and the upstream intermediate
	// to the upstream root.
	svid := leaf(t, k, t0, time.Hour)
	if len(svid) != 3 {
		t.Fatalf("SVID chain of %d", len(svid))
	}
	if err := verify(svid, m.X509Authorities(), t0); err != nil {
		t.Fatal(err)
	}
	// A rotation signs the successor with the upstream CA too; the
	// authorities do not change.
	e.clk.Advance(4 * time.Hour)
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	l := e.list(m)
	if len(l) != 2 || len(l[1].Chain) != 2 || l[1].Chain[0].CheckSignatureFrom(pki.inter) != nil {
		t.Fatalf("successor %+v", l)
	}
	if auths := m.X509Authorities(); len(auths) != 1 {
		t.Fatalf("authorities after rotation: %d", len(auths))
	}
	// A self-signed upstream CA (the root itself) is left out of chains.
	dir := t.TempDir()
	kd, err := x509.MarshalECPrivateKey(pki.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	up2, err := ca.LoadUpstream(writePEM(t, dir, "c", "CERTIFICATE", pki.root.Raw),
		writePEM(t, dir, "k", "EC PRIVATE KEY", kd), writePEM(t, dir, "b", "CERTIFICATE", pki.root.Raw))
	if err != nil {
		t.Fatal(err)
	}
	e2 := sqliteEnv(t)
	p2 := e2.params(e2.st, "r")
	p2.Upstream = up2
	k2 := e2.current(e2.manager(p2))
	if len(k2.Chain) != 1 {
		t.Fatalf("chain under a root upstream: %d", len(k2.Chain))
	}
	if err := verify(leaf(t, k2, t0, time.Hour), []*x509.Certificate{pki.root}, t0); err != nil {
		t.Fatal(err)
	}
	// The upstream key never prints.
	for _, s := range []string{fmt.Sprint(up), fmt.Sprintf("%+v %#v", up, up)} {
		if !strings.HasPrefix(s, "ca.Upstream(") || strings.Contains(s, "D:") {
			t.Errorf("Upstream prints as %q", s)
		}
	}
	if b, _ := json.Marshal(e.list(m)); containsAny(b, mustBytes(t, pki.interKey)) {
		t.Error("the upstream key is in List")
	}
}

func mustBytes(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUpstreamClamps: the agentid CA never outlives the upstream CA.
func TestUpstreamClamps(t *testing.T) {
	pki := newPKI(t, t0.Add(10*time.Hour))
	up, err := ca.LoadUpstream(pki.files(t))
	if err != nil {
		t.Fatal(err)
	}
	e := sqliteEnv(t)
	p := e.params(e.st, "r")
	p.Upstream = up
	k := e.current(e.manager(p))
	if !k.Chain[0].NotAfter.Equal(pki.inter.NotAfter) {
		t.Fatalf("NotAfter %v, upstream's %v", k.Chain[0].NotAfter, pki.inter.NotAfter)
	}
}

func TestUpstreamRejected(t *testing.T) {
	pki := newPKI(t, t0.Add(365*24*time.Hour))
	other := newPKI(t, t0.Add(365*24*time.Hour))
	dir := t.TempDir()
	key := func(k *ecdsa.PrivateKey) string {
		d, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(t, t.TempDir(), "k", "PRIVATE KEY", d)
	}
	cert := func(cs ...*x509.Certificate) string {
		var ders [][]byte
		for _, c := range cs {
			ders = append(ders, c.Raw)
		}
		return writePEM(t, t.TempDir(), "c", "CERTIFICATE", ders...)
	}
	leafKey := testca.Key(t)
	notCA := issue(t, &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}, pki.root, leafKey.Public(), pki.rootKey)
	pl0Key := testca.Key(t)
	pl0Tmpl := caTemplate("Path Zero CA", 10, t0.Add(time.Hour))
	pl0Tmpl.MaxPathLenZero = true
	pathZero := issue(t, pl0Tmpl, pki.root, pl0Key.Public(), pki.rootKey)
	expKey := testca.Key(t)
	expTmpl := caTemplate("Expired CA", 11, t0.Add(-time.Hour))
	expired := issue(t, expTmpl, pki.root, expKey.Public(), pki.rootKey)
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		cert, key, root string
	}{
		{"missing file", filepath.Join(dir, "nope"), key(pki.interKey), cert(pki.root)},
		{"not PEM", garbage, key(pki.interKey), cert(pki.root)},
		{"key is a certificate", cert(pki.inter), cert(pki.inter), cert(pki.root)},
		{"key mismatch", cert(pki.inter), key(pki.rootKey), cert(pki.root)},
		{"not a CA", cert(notCA), key(leafKey), cert(pki.root)},
		{"path length 0", cert(pathZero), key(pl0Key), cert(pki.root)},
		{"expired", cert(expired), key(expKey), cert(pki.root)},
		{"other root", cert(pki.inter), key(pki.interKey), cert(other.root)},
		{"empty bundle", cert(pki.inter), key(pki.interKey), garbage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, err := ca.LoadUpstream(tt.cert, tt.key, tt.root)
			if err == nil {
				e := sqliteEnv(t)
				p := e.params(e.st, "r")
				p.Upstream = up
				_, err = ca.New(t.Context(), p)
			}
			if !errors.Is(err, ca.ErrUpstream) {
				t.Fatalf("err = %v, want ErrUpstream", err)
			}
		})
	}
}

// TestSwitchToUpstream: a server restarted with an upstream CA where it
// had self-signed roots publishes an upstream-signed CA at once; the old
// root stays an authority while its SVIDs live, so no SVID ever fails.
func TestSwitchToUpstream(t *testing.T) {
	pki := newPKI(t, t0.Add(365*24*time.Hour))
	up, err := ca.LoadUpstream(pki.files(t))
	if err != nil {
		t.Fatal(err)
	}
	e := sqliteEnv(t)
	self := e.manager(e.params(e.st, "r"))
	old := e.current(self)
	e.clk.Advance(time.Hour)
	oldSVID := leaf(t, old, e.clk.Now(), time.Hour)

	p := e.params(e.st, "r")
	p.Upstream = up
	m := e.manager(p)
	l := e.list(m)
	if len(l) != 2 || l[1].State != keys.StatePending || l[1].Chain[0].CheckSignatureFrom(pki.inter) != nil {
		t.Fatalf("after the switch: %v", states(l))
	}
	auths := m.X509Authorities()
	if len(auths) != 2 || !auths[0].Equal(pki.root) || !auths[1].Equal(old.Chain[0]) {
		t.Fatalf("authorities during the switch: %d", len(auths))
	}
	if err := verify(oldSVID, auths, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	// A second restart with the same config does not rotate again.
	if l := e.list(e.manager(p)); len(l) != 2 {
		t.Fatalf("%d keys after a second restart", len(l))
	}
	e.clk.Set(l[1].ActivateAt)
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	k := e.current(m)
	if k.ID != l[1].ID {
		t.Fatal("the upstream-signed CA does not sign")
	}
	if err := verify(leaf(t, k, e.clk.Now(), time.Hour), m.X509Authorities(), e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	e.clk.Set(e.list(m)[0].RemoveAt)
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if auths := m.X509Authorities(); len(auths) != 1 || !auths[0].Equal(pki.root) {
		t.Fatalf("authorities after the switch: %d", len(auths))
	}

	// Another trust domain: a CA of the new one is published.
	p.TrustDomain = "other.example"
	if l := e.list(e.manager(p)); len(l) != 3 || l[2].Chain[0].URIs[0].String() != "spiffe://other.example" {
		t.Fatalf("after a trust domain change: %v", states(l))
	}
}
