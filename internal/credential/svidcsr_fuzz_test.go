package credential_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/agentid/agentid/internal/credential"
)

// FuzzParseCSR feeds ParseCSR arbitrary bytes: it never panics, every
// error wraps ErrInvalidCSR, and a key it returns is one the standard
// library also finds in a request whose signature verifies.
func FuzzParseCSR(f *testing.F) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []any{p256, ed} {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
		f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte{0x30, 0x82, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, err := credential.ParseCSR(data)
		if err != nil {
			if !errors.Is(err, credential.ErrInvalidCSR) {
				t.Errorf("error %v does not wrap ErrInvalidCSR", err)
			}
			return
		}
		der := data
		if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
			b, _ := pem.Decode(data)
			der = b.Bytes
		}
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil || csr.CheckSignature() != nil {
			t.Fatalf("ParseCSR accepted a request the standard library refuses: %v", err)
		}
		if err := credential.CheckWorkloadKey(pub); err != nil {
			t.Errorf("ParseCSR returned a key CheckWorkloadKey refuses: %v", err)
		}
		if !pub.(interface{ Equal(x crypto.PublicKey) bool }).Equal(csr.PublicKey) {
			t.Error("ParseCSR returned another key than the request's")
		}
	})
}
