package pki_test

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/pki"
	"github.com/agentid/agentid/internal/attest/pki/pkitest"
	"github.com/agentid/agentid/internal/store"
)

func now() time.Time { return time.Unix(1_790_000_000, 0).UTC() }

type fixture struct {
	root, inter, constrained, other *pkitest.CA
	dir                             string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	root := pkitest.NewRoot(t, "Corp Root", now())
	return fixture{
		root: root, inter: root.Intermediate("Corp Issuing"), constrained: root.Intermediate("Corp Payments", "payments.corp.example"),
		other: pkitest.NewRoot(t, "Corp Root", now()), dir: t.TempDir(),
	}
}

func (f fixture) attestor(t *testing.T, crls ...string) *pki.Attestor {
	t.Helper()
	a, err := pki.New(pki.Config{Name: "corp-pki", TrustAnchorFiles: []string{pkitest.WritePEM(t, f.dir, "anchors.pem", f.root.Cert)}, CRLFiles: crls}, now)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAttestChain(t *testing.T) {
	f := newFixture(t)
	leaf := f.inter.Leaf(pkitest.LeafParams{CN: "runner-1", OU: []string{"payments"}, DNS: []string{"runner-1.corp.example"},
		URIs: []string{"spiffe://corp.example/payments/runner"}})
	a := f.attestor(t)
	ev, err := a.AttestChain(context.Background(), []*x509.Certificate{leaf.Cert, f.inter.Cert})
	if err != nil {
		t.Fatalf("AttestChain: %v", err)
	}
	if ev.Attestor != "corp-pki" || ev.Method != attest.MethodX509 || ev.Issuer != f.root.Cert.Subject.String() {
		t.Errorf("evidence = %+v", ev)
	}
	if ev.Key == "" || ev.Key != ev.CertThumbprint || ev.Summary["x5t#S256"] != ev.Key {
		t.Errorf("key %q, thumbprint %q", ev.Key, ev.CertThumbprint)
	}
	if !ev.Expiry.Equal(leaf.Cert.NotAfter) {
		t.Errorf("expiry %v, want %v", ev.Expiry, leaf.Cert.NotAfter)
	}
	wantFacts := map[string]string{"x509:cn": "runner-1", "x509:issuer-cn": "Corp Issuing", "x509:issuer": "CN=Corp Issuing,O=Example Corp"}
	if diff := cmp.Diff(wantFacts, ev.Facts); diff != "" {
		t.Errorf("facts (-want +got):\n%s", diff)
	}
	rules := []store.AttestationRule{
		{Attestor: "corp-pki", Matchers: []string{"x509:ou:billing"}},
		{Attestor: "corp-pki", Matchers: []string{"x509:ou:payments", "x509:san-uri:spiffe://corp.example/payments/*", "x509:issuer-cn:Corp Issuing"}},
	}
	if m := attest.Match(rules, ev); m.Rule != 1 {
		t.Errorf("Match = %+v, want rule 1", m)
	}
	if m := attest.Match(rules[:1], ev); m.Rule != -1 || !strings.Contains(m.Why, "x509:ou:billing does not hold") {
		t.Errorf("mismatch Match = %+v", m)
	}
}

func TestAttestChainRefused(t *testing.T) {
	f := newFixture(t)
	revokedLeaf := f.inter.Leaf(pkitest.LeafParams{CN: "revoked"})
	revokedInter := f.root.Intermediate("Corp Revoked Issuing")
	crlInter := pkitest.WriteCRL(t, f.dir, "inter.crl", f.inter.CRL(now(), revokedLeaf.Cert.SerialNumber))
	crlRoot := pkitest.WriteCRL(t, f.dir, "root.crl", f.root.CRL(now(), revokedInter.Cert.SerialNumber))
	// A CRL naming the intermediate but signed by another key is ignored.
	impostor := pkitest.NewRoot(t, "Corp Issuing", now())
	forged := pkitest.WriteCRL(t, f.dir, "forged.crl", impostor.CRL(now(), f.inter.Leaf(pkitest.LeafParams{}).Cert.SerialNumber))
	a := f.attestor(t, crlInter, crlRoot, forged)

	serverOnly := f.inter.Leaf(pkitest.LeafParams{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	noEKU := f.inter.Leaf(pkitest.LeafParams{ExtKeyUsage: []x509.ExtKeyUsage{}})
	outside := f.constrained.Leaf(pkitest.LeafParams{DNS: []string{"runner.evil.example"}})
	inside := f.constrained.Leaf(pkitest.LeafParams{DNS: []string{"runner.payments.corp.example"}})
	caLeaf := f.inter.Leaf(pkitest.LeafParams{IsCA: true})
	foreign := f.other.Intermediate("Corp Issuing")
	cases := []struct {
		name  string
		chain []*x509.Certificate
		kind  error
		why   string
	}{
		{"wrong EKU", []*x509.Certificate{serverOnly.Cert, f.inter.Cert}, attest.ErrInvalid, "extended key usage"},
		{"no EKU", []*x509.Certificate{noEKU.Cert, f.inter.Cert}, attest.ErrInvalid, "clientAuth"},
		{"untrusted root", []*x509.Certificate{foreign.Leaf(pkitest.LeafParams{}).Cert, foreign.Cert}, attest.ErrUntrusted, "does not chain"},
		{"missing intermediate", []*x509.Certificate{f.inter.Leaf(pkitest.LeafParams{}).Cert}, attest.ErrUntrusted, "does not chain"},
		{"name constraints", []*x509.Certificate{outside.Cert, f.constrained.Cert}, attest.ErrInvalid, "name constraints"},
		{"revoked leaf", []*x509.Certificate{revokedLeaf.Cert, f.inter.Cert}, attest.ErrInvalid, "is revoked"},
		{"revoked intermediate", []*x509.Certificate{revokedInter.Leaf(pkitest.LeafParams{}).Cert, revokedInter.Cert}, attest.ErrInvalid, "is revoked"},
		{"CA leaf", []*x509.Certificate{caLeaf.Cert, f.inter.Cert}, attest.ErrInvalid, "CA certificate"},
		{"empty", nil, attest.ErrInvalid, "client certificates"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.AttestChain(context.Background(), c.chain)
			var ae *attest.Error
			if !errors.As(err, &ae) || !errors.Is(err, c.kind) || !strings.Contains(ae.Reason, c.why) {
				t.Fatalf("err = %v, want %v with %q", err, c.kind, c.why)
			}
			if ae.Attestor != "corp-pki" || ae.Method != attest.MethodX509 {
				t.Errorf("error names %q/%q", ae.Attestor, ae.Method)
			}
		})
	}
	if _, err := a.AttestChain(context.Background(), []*x509.Certificate{inside.Cert, f.constrained.Cert}); err != nil {
		t.Errorf("a name within the constraints: %v", err)
	}
	if _, err := a.AttestChain(context.Background(), []*x509.Certificate{f.inter.Leaf(pkitest.LeafParams{}).Cert, f.inter.Cert}); err != nil {
		t.Errorf("a leaf on the forged CRL only: %v", err)
	}
}

func TestStaleCRLRefuses(t *testing.T) {
	f := newFixture(t)
	crl := pkitest.WriteCRL(t, f.dir, "inter.crl", f.inter.CRL(now().Add(-48*time.Hour)))
	a := f.attestor(t, crl)
	_, err := a.AttestChain(context.Background(), []*x509.Certificate{f.inter.Leaf(pkitest.LeafParams{}).Cert, f.inter.Cert})
	if !errors.Is(err, attest.ErrInvalid) || !strings.Contains(err.Error(), "next update") {
		t.Fatalf("err = %v", err)
	}
}

// TestCRLReload: a changed CRL file takes effect within CRLRecheck
// without a restart; a file that fails to reload keeps the CRLs loaded
// before; a fixed file is read again.
func TestCRLReload(t *testing.T) {
	f := newFixture(t)
	leaf := f.inter.Leaf(pkitest.LeafParams{CN: "runner"})
	chain := []*x509.Certificate{leaf.Cert, f.inter.Cert}
	clk := now()
	crl := pkitest.WriteCRL(t, f.dir, "inter.crl", f.inter.CRL(now()))
	a, err := pki.New(pki.Config{Name: "corp-pki", TrustAnchorFiles: []string{pkitest.WritePEM(t, f.dir, "anchors.pem", f.root.Cert)},
		CRLFiles: []string{crl}}, func() time.Time { return clk })
	if err != nil {
		t.Fatal(err)
	}
	attestOK := func(want bool, when string) {
		t.Helper()
		_, err := a.AttestChain(context.Background(), chain)
		if got := err == nil; got != want {
			t.Fatalf("%s: AttestChain = %v, want success %v", when, err, want)
		}
		if err != nil && !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("%s: err = %v, want revoked", when, err)
		}
	}
	attestOK(true, "before the revocation")

	// The leaf is revoked: a new CRL file, seen after CRLRecheck.
	pkitest.WriteCRL(t, f.dir, "inter.crl", f.inter.CRL(now(), leaf.Cert.SerialNumber))
	attestOK(true, "before the recheck interval")
	clk = clk.Add(pki.CRLRecheck)
	attestOK(false, "after the recheck interval")

	// A broken file keeps the CRLs loaded before.
	if err := os.WriteFile(crl, []byte("not a CRL"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk = clk.Add(pki.CRLRecheck)
	attestOK(false, "with a broken file")

	// The fixed file (the leaf no longer listed) is read again.
	pkitest.WriteCRL(t, f.dir, "inter.crl", f.inter.CRL(now()))
	clk = clk.Add(pki.CRLRecheck)
	attestOK(true, "after the fix")
}

func TestNewRefuses(t *testing.T) {
	f := newFixture(t)
	anchors := pkitest.WritePEM(t, f.dir, "anchors.pem", f.root.Cert)
	impostor := pkitest.NewRoot(t, "Corp Root", now())
	leaf := f.inter.Leaf(pkitest.LeafParams{})
	cases := []struct {
		name string
		c    pki.Config
		why  string
	}{
		{"no anchors", pki.Config{Name: "p"}, "trust_anchor_files"},
		{"bad name", pki.Config{Name: "P!", TrustAnchorFiles: []string{anchors}}, "DNS label"},
		{"missing file", pki.Config{Name: "p", TrustAnchorFiles: []string{f.dir + "/nope.pem"}}, "no such file"},
		{"leaf as anchor", pki.Config{Name: "p", TrustAnchorFiles: []string{pkitest.WritePEM(t, f.dir, "leaf.pem", leaf.Cert)}}, "not a CA"},
		{"forged anchor CRL", pki.Config{Name: "p", TrustAnchorFiles: []string{anchors},
			CRLFiles: []string{pkitest.WriteCRL(t, f.dir, "forged.crl", impostor.CRL(now()))}}, "not signed by the trust anchor"},
		{"not a CRL", pki.Config{Name: "p", TrustAnchorFiles: []string{anchors}, CRLFiles: []string{anchors}}, "not an X509 CRL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := pki.New(c.c, now); err == nil || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("err = %v, want %q", err, c.why)
			}
		})
	}
}

func TestSetAttestChain(t *testing.T) {
	f := newFixture(t)
	set, err := attest.NewSetWithChains(nil, []attest.ChainAttestor{f.attestor(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !set.HasChains() || set.Len() != 1 || len(set.ChainAnchors()) != 1 {
		t.Fatalf("set: chains %v, len %d", set.HasChains(), set.Len())
	}
	if _, err := set.AttestChain(context.Background(), []*x509.Certificate{f.inter.Leaf(pkitest.LeafParams{}).Cert, f.inter.Cert}); err != nil {
		t.Fatal(err)
	}
	foreign := f.other.Intermediate("x")
	_, err = set.AttestChain(context.Background(), []*x509.Certificate{foreign.Leaf(pkitest.LeafParams{}).Cert, foreign.Cert})
	if !errors.Is(err, attest.ErrUntrusted) {
		t.Fatalf("foreign chain: %v", err)
	}
	if _, err := attest.NewSetWithChains(nil, []attest.ChainAttestor{f.attestor(t), f.attestor(t)}); err == nil {
		t.Fatal("a duplicate name was accepted")
	}
}
