// Package pki is the x509 attestor (ADR 0015 addendum): an instance
// proves itself with a client certificate of the deployment's PKI,
// presented by mutual TLS on the token endpoint (RFC 8705 §2.1, the IAM
// Roles Anywhere pattern). The chain is verified with crypto/x509 against
// the configured trust anchors, with the clientAuth extended key usage
// and the chain's name constraints; the configured CRLs, each checked for
// the signature of the CA that issued it, refuse revoked serials. The
// evidence's facts are the leaf's attributes (x509:cn, x509:ou,
// x509:san-uri, …) that agents' attestation rules match.
package pki

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentid/agentid/internal/attest"
)

// Config is one x509 attestor.
type Config struct {
	// Name is referenced by agents' attestation rules; a DNS label.
	Name string
	// TrustAnchorFiles are PEM files of CA certificates: the roots a
	// client certificate chain must lead to. At least one certificate.
	TrustAnchorFiles []string
	// CRLFiles are certificate revocation lists (PEM or DER) of the
	// anchors or of intermediates. A CRL of an anchor must verify with it
	// when loaded; a CRL of an intermediate is used for chains whose
	// intermediate verifies its signature. The files are re-read when
	// they change (checked at most every CRLRecheck, on attestation).
	CRLFiles []string
	// Logger receives CRL reloads and the files that failed to reload;
	// nil discards.
	Logger *slog.Logger
}

// CRLRecheck is how often, at most, an attestation checks whether the CRL
// files changed (modification time or size) and reloads them.
const CRLRecheck = 10 * time.Second

// maxFileBytes bounds a trust anchor or CRL file.
const maxFileBytes = 16 << 20

// Attestor verifies client certificate chains of one PKI. Safe for
// concurrent use.
type Attestor struct {
	name     string
	anchors  []*x509.Certificate
	roots    *x509.CertPool
	crlFiles []string
	clock    func() time.Time
	log      *slog.Logger

	mu        sync.Mutex
	crls      []*x509.RevocationList
	stamps    []fileStamp // of crlFiles, when last read (or found unreadable)
	checkedAt time.Time
}

// fileStamp is what tells that a file changed.
type fileStamp struct {
	modTime int64 // Unix nanoseconds
	size    int64
}

var _ attest.ChainAttestor = (*Attestor)(nil)

// New reads the trust anchors and CRLs of c; clock is required.
func New(c Config, clock func() time.Time) (*Attestor, error) {
	if err := attest.CheckName(c.Name); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if len(c.TrustAnchorFiles) == 0 {
		return nil, errors.New("pki: trust_anchor_files is required")
	}
	a := &Attestor{name: c.Name, roots: x509.NewCertPool(), crlFiles: c.CRLFiles, clock: clock, log: c.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	for _, f := range c.TrustAnchorFiles {
		certs, err := readCertificates(f)
		if err != nil {
			return nil, err
		}
		for _, cert := range certs {
			if !cert.IsCA || !cert.BasicConstraintsValid {
				return nil, fmt.Errorf("pki: %s: %q is not a CA certificate", f, cert.Subject)
			}
			a.anchors = append(a.anchors, cert)
			a.roots.AddCert(cert)
		}
	}
	a.stamps = stampFiles(a.crlFiles)
	var err error
	if a.crls, err = a.loadCRLs(); err != nil {
		return nil, err
	}
	a.checkedAt = clock()
	return a, nil
}

// loadCRLs reads every CRL file; a CRL of an anchor must verify with it.
func (a *Attestor) loadCRLs() ([]*x509.RevocationList, error) {
	var out []*x509.RevocationList
	for _, f := range a.crlFiles {
		crl, err := readCRL(f)
		if err != nil {
			return nil, err
		}
		for _, anchor := range a.anchors {
			if bytes.Equal(crl.RawIssuer, anchor.RawSubject) {
				if err := crl.CheckSignatureFrom(anchor); err != nil {
					return nil, fmt.Errorf("pki: %s: the CRL is not signed by the trust anchor %q: %w", f, anchor.Subject, err)
				}
			}
		}
		out = append(out, crl)
	}
	return out, nil
}

// stampFiles stats the files; a file that cannot be read has a zero stamp.
func stampFiles(files []string) []fileStamp {
	out := make([]fileStamp, len(files))
	for i, f := range files {
		if fi, err := os.Stat(f); err == nil {
			out[i] = fileStamp{fi.ModTime().UnixNano(), fi.Size()}
		}
	}
	return out
}

// currentCRLs returns the CRLs, first reloading the files when
// CRLRecheck has passed since the last look and one of them changed. A
// reload that fails keeps the CRLs loaded before (a stale one then
// refuses its issuer's certificates once past its next update) and is
// logged; it is tried again when the files change again.
func (a *Attestor) currentCRLs() []*x509.RevocationList {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clock()
	if len(a.crlFiles) == 0 || now.Sub(a.checkedAt) < CRLRecheck {
		return a.crls
	}
	a.checkedAt = now
	stamps := stampFiles(a.crlFiles)
	if slices.Equal(stamps, a.stamps) {
		return a.crls
	}
	a.stamps = stamps
	crls, err := a.loadCRLs()
	if err != nil {
		a.log.Warn("attestor: CRL reload failed; keeping the CRLs loaded before", "attestor", a.name, "err", err)
		return a.crls
	}
	a.crls = crls
	a.log.Info("attestor: CRLs reloaded", "attestor", a.name, "files", len(a.crlFiles))
	return a.crls
}

func readCertificates(path string) ([]*x509.Certificate, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: %s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pki: %s: no PEM certificate", path)
	}
	return out, nil
}

func readCRL(path string) (*x509.RevocationList, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "X509 CRL" {
			return nil, fmt.Errorf("pki: %s: PEM block %q is not an X509 CRL", path, blk.Type)
		}
		b = blk.Bytes
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	return crl, nil
}

func readFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if st.Size() > maxFileBytes {
		return nil, fmt.Errorf("pki: %s is larger than %d bytes", path, maxFileBytes)
	}
	b, err := os.ReadFile(path) //nolint:gosec // G304: an operator-configured path
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return b, nil
}

// Name is the configured name.
func (a *Attestor) Name() string { return a.name }

// Anchors are the trust anchors.
func (a *Attestor) Anchors() []*x509.Certificate { return a.anchors }

func (a *Attestor) refuse(kind error, issuer, format string, args ...any) *attest.Error {
	return &attest.Error{Kind: kind, Reason: fmt.Sprintf(format, args...), Attestor: a.name, Method: attest.MethodX509, Issuer: issuer}
}

// AttestChain verifies chain (the leaf first, then the intermediates the
// client presented) against the trust anchors at the clock's time: the
// leaf is not a CA and carries the clientAuth extended key usage, every
// certificate's extended key usages allow clientAuth, name constraints
// hold, and no certificate of the chain is on a CRL of its issuer. The
// error is an *attest.Error: ErrUntrusted when no chain leads to an
// anchor, ErrInvalid otherwise.
func (a *Attestor) AttestChain(_ context.Context, chain []*x509.Certificate) (attest.Evidence, error) {
	if len(chain) == 0 || len(chain) > attest.MaxChainLen {
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, "", "want 1 to %d client certificates", attest.MaxChainLen)
	}
	leaf := chain[0]
	issuerDN := leaf.Issuer.String()
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: a.roots, Intermediates: inter, CurrentTime: a.clock(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
			return attest.Evidence{}, a.refuse(attest.ErrUntrusted, issuerDN, "the client certificate does not chain to a trust anchor of attestor %s", a.name)
		}
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, issuerDN, "the client certificate chain is not valid: %s", verifyReason(err))
	}
	switch {
	case leaf.IsCA:
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, issuerDN, "the client certificate is a CA certificate")
	case !hasClientAuth(leaf):
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, issuerDN, "the client certificate lacks the clientAuth extended key usage")
	}
	// Revocation: every verified chain must be clean; a certificate is
	// checked against the CRLs its issuer signed.
	vc := chains[0]
	crls := a.currentCRLs()
	for _, c := range chains {
		for i := 0; i+1 < len(c); i++ {
			if why := a.revoked(crls, c[i], c[i+1]); why != "" {
				return attest.Evidence{}, a.refuse(attest.ErrInvalid, issuerDN, "%s", why)
			}
		}
	}
	anchor := vc[len(vc)-1]
	expiry := leaf.NotAfter
	for _, c := range vc {
		if c.NotAfter.Before(expiry) {
			expiry = c.NotAfter
		}
	}
	ev := Facts(leaf)
	ev.Attestor, ev.Method, ev.Issuer = a.name, attest.MethodX509, anchor.Subject.String()
	ev.Expiry = expiry.UTC()
	ev.Summary["anchor"] = anchor.Subject.String()
	return ev, nil
}

// revoked says why cert is revoked on a CRL of issuer, "" when it is not.
// A CRL past its nextUpdate refuses every certificate of its issuer (fail
// closed: refresh the CRL file).
func (a *Attestor) revoked(crls []*x509.RevocationList, cert, issuer *x509.Certificate) string {
	now := a.clock()
	for _, crl := range crls {
		if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) || crl.CheckSignatureFrom(issuer) != nil {
			continue
		}
		if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
			return fmt.Sprintf("the CRL of %q is past its next update (%s)", issuer.Subject, crl.NextUpdate.UTC().Format(time.RFC3339))
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber != nil && e.SerialNumber.Cmp(cert.SerialNumber) == 0 && !e.RevocationTime.After(now) {
				return fmt.Sprintf("certificate serial %s of %q is revoked", hexSerial(cert), issuer.Subject)
			}
		}
	}
	return ""
}

func hasClientAuth(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth {
			return true
		}
	}
	return false
}

// verifyReason is a client-safe text of a crypto/x509 verification error.
func verifyReason(err error) string {
	if ce, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		switch ce.Reason {
		case x509.Expired:
			return "a certificate is expired or not yet valid"
		case x509.IncompatibleUsage:
			return "a certificate's extended key usage does not allow clientAuth"
		case x509.CANotAuthorizedForThisName:
			return "a name of the certificate violates a CA's name constraints"
		case x509.NotAuthorizedToSign:
			return "a certificate that is not a CA signed another"
		case x509.TooManyIntermediates, x509.TooManyConstraints:
			return "the chain is too long or too constrained"
		default:
			return "a certificate is not valid"
		}
	}
	return "the chain does not verify"
}

func hexSerial(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	return strings.ToLower(c.SerialNumber.Text(16))
}

// maxValues bounds each multi-valued fact and maxFact each value: a
// certificate is only trusted after verification, but its attributes are
// still untrusted text for the audit trail.
const (
	maxValues = 32
	maxFact   = 512
)

// Facts maps a certificate's attributes to evidence facts: x509:cn,
// x509:issuer-cn and x509:issuer (single-valued), x509:o, x509:ou,
// x509:san-dns and x509:san-uri (multi-valued); the instance key and the
// cnf x5t#S256 are the base64url SHA-256 of its DER. Values that are not
// printable ASCII or longer than 512 bytes are left out, so that a matcher
// (printable ASCII) never holds on them. Summary has the leaf's subject,
// issuer, serial, SANs and validity. It reads only parsed fields and never
// fails.
func Facts(c *x509.Certificate) attest.Evidence {
	sum := sha256.Sum256(c.Raw)
	x5t := base64.RawURLEncoding.EncodeToString(sum[:])
	ev := attest.Evidence{
		Subject: c.Subject.String(), Key: x5t, CertThumbprint: x5t,
		Facts: map[string]string{}, Values: map[string][]string{},
		Summary: map[string]string{
			"subject": bounded(c.Subject.String()), "issuer": bounded(c.Issuer.String()),
			"serial": hexSerial(c), "not_after": c.NotAfter.UTC().Format(time.RFC3339), "x5t#S256": x5t,
			"sha256": hex.EncodeToString(sum[:]),
		},
	}
	single := map[string]string{"x509:cn": c.Subject.CommonName, "x509:issuer-cn": c.Issuer.CommonName, "x509:issuer": c.Issuer.String()}
	for k, v := range single {
		if ok(v) {
			ev.Facts[k] = v
		}
	}
	uris := make([]string, 0, len(c.URIs))
	for _, u := range c.URIs {
		uris = append(uris, u.String())
	}
	multi := map[string][]string{"x509:o": c.Subject.Organization, "x509:ou": c.Subject.OrganizationalUnit,
		"x509:san-dns": c.DNSNames, "x509:san-uri": uris}
	for k, vs := range multi {
		for _, v := range vs {
			if ok(v) && len(ev.Values[k]) < maxValues {
				ev.Values[k] = append(ev.Values[k], v)
			}
		}
	}
	if d := ev.Values["x509:san-dns"]; len(d) > 0 {
		ev.Summary["san_dns"] = bounded(strings.Join(d, ","))
	}
	if u := ev.Values["x509:san-uri"]; len(u) > 0 {
		ev.Summary["san_uri"] = bounded(strings.Join(u, ","))
	}
	return ev
}

func ok(v string) bool {
	if v == "" || len(v) > maxFact {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// bounded keeps a summary value printable and short.
func bounded(s string) string {
	if ok(s) {
		return s
	}
	if s == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:8])
}
