package node

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/workloadapi"
)

// svid is an X.509-SVID the node holds, with its private key. It is
// immutable once built.
type svid struct {
	spiffeID string
	chain    [][]byte            // DER, the SVID first, then intermediates
	certs    []*x509.Certificate // chain, parsed
	key      *ecdsa.PrivateKey
	keyDER   []byte    // key, PKCS #8 DER, as the Workload API sends it
	received time.Time // when the node received it (zero: unknown)
}

// minRenewal is the least time between receiving an SVID and renewing
// it, so that SVIDs that live very briefly (a CA about to expire caps
// them) do not make the node ask again and again.
const minRenewal = time.Second

// newSVID checks an X.509-SVID received at received for key: a valid
// SVID per the X509-SVID spec (go-spiffe's x509svid.ParseRaw: one SPIFFE
// ID URI SAN, not a CA, signing certificates that are CAs), for the key,
// with the SPIFFE ID want ("" accepts any).
func newSVID(want string, chain [][]byte, key *ecdsa.PrivateKey, received time.Time) (*svid, error) {
	if len(chain) == 0 {
		return nil, errors.New("node: X.509-SVID without certificates")
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("node: encode the SVID key: %w", err)
	}
	parsed, err := x509svid.ParseRaw(bytes.Join(chain, nil), pkcs8)
	if err != nil {
		return nil, fmt.Errorf("node: X.509-SVID: %w", err)
	}
	if id := parsed.ID.String(); want != "" && id != want {
		return nil, fmt.Errorf("node: X.509-SVID is for %s, want %s", id, want)
	}
	cp := make([][]byte, len(chain))
	for i, c := range parsed.Certificates {
		cp[i] = c.Raw
	}
	return &svid{spiffeID: parsed.ID.String(), chain: cp, certs: parsed.Certificates, key: key, keyDER: pkcs8, received: received}, nil
}

// notAfter is the SVID's expiry: from then on it is never served.
func (s *svid) notAfter() time.Time { return s.certs[0].NotAfter }

// renewAt is half-way through the SVID's lifetime, counted from when it
// was received: issuers backdate NotBefore (by 30 s here) against clock
// skew, which would make a short-lived SVID due at once. Never earlier
// than minRenewal after its receipt.
func (s *svid) renewAt() time.Time {
	start, na := s.certs[0].NotBefore, s.certs[0].NotAfter
	if s.received.After(start) {
		start = s.received
	}
	return start.Add(max(na.Sub(start)/2, minRenewal))
}

// validAt reports whether the SVID may be served at now.
func (s *svid) validAt(now time.Time) bool { return now.Before(s.notAfter()) }

// workload is the SVID as the Workload API serves it.
func (s *svid) workload() workloadapi.X509SVID {
	return workloadapi.X509SVID{SPIFFEID: s.spiffeID, Chain: s.chain, Key: s.key, KeyDER: s.keyDER, ExpiresAt: s.notAfter()}
}

// tlsCertificate is the SVID as a TLS client certificate.
func (s *svid) tlsCertificate() *tls.Certificate {
	return &tls.Certificate{Certificate: s.chain, PrivateKey: s.key, Leaf: s.certs[0]}
}

// newKeyAndCSR returns a fresh P-256 key and a PKCS #10 request for it
// (DER). The server uses only its key.
func newKeyAndCSR() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("node: generate a key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("node: certificate request: %w", err)
	}
	return key, csr, nil
}

// fingerprint is the lowercase hex SHA-256 of a certificate's DER, the
// form of nodeapi.Snapshot.TaintedAuthorities.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// trustStatus is what the current bundle says of an SVID.
type trustStatus int

const (
	// trusted: the SVID's issuer is in the bundle and not tainted.
	trusted trustStatus = iota
	// tainted: a CA certificate of its chain, or the bundle authority that
	// signed it, is tainted: re-issue now, serve it meanwhile.
	tainted
	// untrusted: no authority of the bundle signed it: it would not
	// verify, so it is not served.
	untrusted
)

// trustOf checks an SVID's chain against the bundle's X.509 authorities
// and the tainted fingerprints: the intermediates of the chain, and the
// authority whose signature the last certificate of the chain bears.
func trustOf(s *svid, authorities []*x509.Certificate, taint map[string]bool) trustStatus {
	status := trusted
	for _, c := range s.certs[1:] {
		if taint[fingerprint(c)] {
			status = tainted
		}
	}
	top := s.certs[len(s.certs)-1]
	for _, a := range authorities {
		if !bytes.Equal(top.RawIssuer, a.RawSubject) {
			continue
		}
		if len(top.AuthorityKeyId) > 0 && len(a.SubjectKeyId) > 0 && !bytes.Equal(top.AuthorityKeyId, a.SubjectKeyId) {
			continue
		}
		if top.CheckSignatureFrom(a) != nil {
			continue
		}
		if taint[fingerprint(a)] {
			return tainted
		}
		return status
	}
	return untrusted
}
