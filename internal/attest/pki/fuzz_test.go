package pki_test

import (
	"crypto/x509"
	"testing"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/pki"
	"github.com/agentid/agentid/internal/attest/pki/pkitest"
	"github.com/agentid/agentid/internal/store"
)

// FuzzFacts feeds arbitrary DER to the certificate attribute mapping and
// matches a matcher on it: it never panics, every fact and value is
// printable ASCII of at most 512 bytes, and the key is the thumbprint.
func FuzzFacts(f *testing.F) {
	root := pkitest.NewRoot(f, "Corp Root", now())
	leaf := root.Leaf(pkitest.LeafParams{CN: "runner", OU: []string{"payments", "ops"}, DNS: []string{"a.corp.example"},
		URIs: []string{"spiffe://corp.example/runner"}})
	f.Add(leaf.Cert.Raw, "x509:ou:pay*")
	f.Add(root.Cert.Raw, "x509:cn:*")
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01}, "x509:san-uri:spiffe://*")
	f.Fuzz(func(t *testing.T, der []byte, matcher string) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		ev := pki.Facts(c)
		if ev.Key == "" || ev.Key != ev.CertThumbprint {
			t.Fatalf("key %q, thumbprint %q", ev.Key, ev.CertThumbprint)
		}
		check := func(v string) {
			if v == "" || len(v) > 512 {
				t.Fatalf("fact of %d bytes", len(v))
			}
			for i := 0; i < len(v); i++ {
				if v[i] < 0x20 || v[i] > 0x7e {
					t.Fatalf("fact %q is not printable ASCII", v)
				}
			}
		}
		for _, v := range ev.Facts {
			check(v)
		}
		for _, vs := range ev.Values {
			for _, v := range vs {
				check(v)
			}
		}
		ev.Attestor = "corp-pki"
		m := attest.Match([]store.AttestationRule{{Attestor: "corp-pki", Matchers: []string{matcher}}}, ev)
		if _, err := attest.ParseMatcher(matcher); err != nil && m.Rule != -1 {
			t.Fatalf("a malformed matcher %q held", matcher)
		}
	})
}
