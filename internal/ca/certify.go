package ca

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"time"

	"github.com/agentid/agentid/internal/keys"
)

// maxCommonName is the upper bound of a CommonName (RFC 5280 appendix A,
// ub-common-name).
const maxCommonName = 64

// certifier issues the certificate of each new CA key.
type certifier struct {
	td    string
	uri   *url.URL // spiffe://<trust domain>
	ttl   time.Duration
	up    *Upstream
	chain [][]byte // the upstream certificates that follow ours
	rand  io.Reader
}

var _ keys.Certifier = (*certifier)(nil)

func newCertifier(p Params) (*certifier, error) {
	c := &certifier{
		td: p.TrustDomain, uri: &url.URL{Scheme: "spiffe", Host: p.TrustDomain},
		ttl: p.TTL, up: p.Upstream, rand: p.Rand,
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.up != nil {
		for _, u := range append([]*x509.Certificate{c.up.Cert}, c.up.Intermediates...) {
			if !selfSigned(u) {
				c.chain = append(c.chain, u.Raw)
			}
		}
	}
	return c, nil
}

// selfSigned reports whether c is a root: its subject is its issuer.
func selfSigned(c *x509.Certificate) bool { return bytes.Equal(c.RawSubject, c.RawIssuer) }

// Certify implements keys.Certifier (see the package doc for the
// certificate's contents and validity).
func (c *certifier) Certify(_ context.Context, r keys.CertRequest) ([][]byte, error) {
	notBefore := r.Now.Add(-Backdate)
	notAfter := r.Now.Add(c.ttl)
	if need := r.RetireBy.Add(r.MaxTokenTTL + keys.RemovalLeeway); need.After(notAfter) {
		notAfter = need
	}
	serial, err := c.serial()
	if err != nil {
		return nil, err
	}
	cn := c.td + " CA " + r.ID
	if len(cn) > maxCommonName {
		cn = "CA " + r.ID
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"agentid"}, CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{c.uri},
	}
	parent, signer := tmpl, r.Signer
	if c.up != nil {
		if !c.up.Cert.NotAfter.After(r.Now) {
			return nil, fmt.Errorf("%w: its certificate expired at %s", ErrUpstream, c.up.Cert.NotAfter.UTC())
		}
		tmpl.NotAfter = minTime(tmpl.NotAfter, c.up.Cert.NotAfter)
		tmpl.NotBefore = maxTime(tmpl.NotBefore, c.up.Cert.NotBefore)
		parent, signer = c.up.Cert, c.up.Signer
	}
	der, err := x509.CreateCertificate(c.rand, tmpl, parent, r.Signer.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("ca: sign CA certificate for %s: %w", r.ID, err)
	}
	return append([][]byte{der}, c.chain...), nil
}

// serial returns a random positive 128-bit serial number.
func (c *certifier) serial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := io.ReadFull(c.rand, b[:]); err != nil {
			return nil, fmt.Errorf("ca: serial number: %w", err)
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
