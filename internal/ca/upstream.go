package ca

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"time"
)

// maxPEMFile bounds an upstream PEM file.
const maxPEMFile = 1 << 20

// Upstream is the deployment's CA that signs agentid's CA certificates,
// so that agentid signs as its intermediate. Print it freely: its String
// and Format never show the private key.
type Upstream struct {
	// Cert is the certificate of the upstream CA whose key signs.
	Cert *x509.Certificate
	// Intermediates are the certificates from Cert toward a root, in
	// order; roots among them are left out of agentid's chains.
	Intermediates []*x509.Certificate
	// Signer is Cert's private key.
	Signer crypto.Signer
	// Roots are the upstream trust anchors: what the trust bundle lists.
	Roots []*x509.Certificate
}

// String names the upstream CA without its key.
func (u *Upstream) String() string {
	if u == nil || u.Cert == nil {
		return "ca.Upstream(<none>)"
	}
	return "ca.Upstream(" + u.Cert.Subject.String() + ")"
}

// Format writes String for every verb.
func (u *Upstream) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, u.String()) }

// LoadUpstream reads an upstream CA from PEM files: certFile holds the
// upstream CA certificate followed by any intermediates toward its root;
// keyFile its private key (PKCS #8, SEC 1 "EC PRIVATE KEY" or PKCS #1 "RSA
// PRIVATE KEY", unencrypted); bundleFile the upstream root certificates.
// Errors wrap ErrUpstream. New checks the result further.
func LoadUpstream(certFile, keyFile, bundleFile string) (*Upstream, error) {
	certs, err := readCerts(certFile)
	if err != nil {
		return nil, err
	}
	roots, err := readCerts(bundleFile)
	if err != nil {
		return nil, err
	}
	b, err := readPEMFile(keyFile)
	if err != nil {
		return nil, err
	}
	signer, err := parseKey(b)
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUpstream, keyFile, err)
	}
	return &Upstream{Cert: certs[0], Intermediates: certs[1:], Signer: signer, Roots: roots}, nil
}

func readPEMFile(path string) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // the operator names the file in the config
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUpstream, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrUpstream, path, err)
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrUpstream, path, maxPEMFile)
	}
	return b, nil
}

// readCerts reads the CERTIFICATE blocks of a PEM file, at least one.
func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := readPEMFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUpstream, path, err)
	}
	return certs, nil
}

// parseCerts parses the CERTIFICATE blocks of PEM data; other blocks are
// errors.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q, want CERTIFICATE", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM CERTIFICATE block")
	}
	return out, nil
}

// parseKey parses the one private key block of PEM data.
func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("no PEM private key block")
	}
	defer clear(blk.Bytes)
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not an unencrypted private key", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("malformed private key")
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%T is not a signing key", k)
	}
	return s, nil
}

// check verifies that the upstream CA can sign agentid's CA certificates
// at now: a CA certificate allowed to sign certificates and sub-CAs, not
// expired, whose key is Signer, chaining to Roots through Intermediates.
func (u *Upstream) check(now time.Time) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrUpstream, fmt.Sprintf(format, args...))
	}
	switch {
	case u.Cert == nil || u.Signer == nil:
		return bad("a certificate and its private key are required")
	case len(u.Roots) == 0:
		return bad("the upstream bundle holds no root certificate")
	case !u.Cert.BasicConstraintsValid || !u.Cert.IsCA:
		return bad("certificate %q is not a CA certificate", u.Cert.Subject)
	case u.Cert.KeyUsage != 0 && u.Cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return bad("certificate %q may not sign certificates (no keyCertSign)", u.Cert.Subject)
	case u.Cert.MaxPathLenZero && u.Cert.MaxPathLen == 0:
		return bad("certificate %q has path length 0: it may not sign the agentid CA", u.Cert.Subject)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := u.Signer.Public().(equaler); !ok || !e.Equal(u.Cert.PublicKey) {
		return bad("the private key does not match certificate %q", u.Cert.Subject)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range u.Roots {
		if !r.BasicConstraintsValid || !r.IsCA {
			return bad("bundle certificate %q is not a CA certificate", r.Subject)
		}
		roots.AddCert(r)
	}
	for _, c := range u.Intermediates {
		inter.AddCert(c)
	}
	if _, err := u.Cert.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return bad("certificate %q does not chain to the upstream bundle: %v", u.Cert.Subject, err)
	}
	return nil
}
