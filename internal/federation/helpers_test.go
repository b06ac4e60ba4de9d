package federation_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/internal/audit"
	agentfed "github.com/agentid/agentid/internal/federation"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
)

const (
	ownTD     = "example.org"
	partnerTD = "partner.example"
)

var partner = spiffeid.RequireTrustDomainFromString(partnerTD)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// foreignCA is a CA of a foreign trust domain and a JWT-SVID key of it.
type foreignCA struct {
	td     spiffeid.TrustDomain
	cert   *x509.Certificate
	key    crypto.Signer
	jwtKey *ecdsa.PrivateKey
	kid    string
}

// newForeignCA makes a self-signed CA whose URI SAN is spiffe://<uriTD>
// ("" for none; it may have a path), for trust domain td.
func newForeignCA(t *testing.T, td spiffeid.TrustDomain, uriTD, kid string) *foreignCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: td.Name() + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	if uriTD != "" {
		host, path, _ := strings.Cut(uriTD, "/")
		if path != "" {
			path = "/" + path
		}
		tmpl.URIs = []*url.URL{{Scheme: "spiffe", Host: host, Path: path}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	jk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &foreignCA{td: td, cert: cert, key: key, jwtKey: jk, kid: kid}
}

// bundle is the CA's SPIFFE bundle with the sequence and refresh hint.
func (c *foreignCA) bundle(t *testing.T, seq uint64, hint time.Duration) *spiffebundle.Bundle {
	t.Helper()
	b := spiffebundle.New(c.td)
	b.AddX509Authority(c.cert)
	if err := b.AddJWTAuthority(c.kid, c.jwtKey.Public()); err != nil {
		t.Fatal(err)
	}
	b.SetSequenceNumber(seq)
	if hint > 0 {
		b.SetRefreshHint(hint)
	}
	return b
}

func marshal(t *testing.T, b *spiffebundle.Bundle) []byte {
	t.Helper()
	raw, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// svid issues an X.509-SVID of the foreign trust domain.
func (c *foreignCA) svid(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, URIs: []*url.URL{{Scheme: "spiffe", Host: c.td.Name(), Path: path}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{cert}
}

// jwtSVID signs a JWT-SVID of the foreign trust domain for aud.
func (c *foreignCA) jwtSVID(t *testing.T, path, aud string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: c.jwtKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", c.kid))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{
		Subject: "spiffe://" + c.td.Name() + path, Audience: jwt.Audience{aud},
		Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), IssuedAt: jwt.NewNumericDate(now),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// endpoint is a foreign bundle endpoint: go-spiffe's federation handler
// over a bundle the test changes, behind httptest's TLS server. fail, when
// set, answers 503 instead; it counts the requests.
type endpoint struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bundle *spiffebundle.Bundle
	fail   atomic.Bool
	hits   atomic.Int64
}

// GetBundleForTrustDomain implements spiffebundle.Source for the handler.
func (e *endpoint) GetBundleForTrustDomain(td spiffeid.TrustDomain) (*spiffebundle.Bundle, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bundle.GetBundleForTrustDomain(td)
}

func (e *endpoint) set(b *spiffebundle.Bundle) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.bundle = b
}

// serveBundle starts a TLS bundle endpoint of td serving b.
func serveBundle(t *testing.T, td spiffeid.TrustDomain, b *spiffebundle.Bundle) *endpoint {
	t.Helper()
	e := &endpoint{bundle: b}
	h, err := federation.NewHandler(td, e)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		if e.fail.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// roots trusts the endpoint's TLS certificate.
func (e *endpoint) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(e.srv.Certificate())
	return p
}

func (e *endpoint) url() string { return e.srv.URL + "/bundle" }

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Params{Path: filepath.Join(t.TempDir(), "agentid.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// newManager builds a Manager on st with the domains, trusting roots.
func newManager(t *testing.T, st store.Store, c *clock, holder string, roots *x509.CertPool, ds ...agentfed.Domain) *agentfed.Manager {
	t.Helper()
	m, err := tryManager(st, c, holder, roots, ds...)
	if err != nil {
		t.Fatalf("federation.New: %v", err)
	}
	return m
}

func tryManager(st store.Store, c *clock, holder string, roots *x509.CertPool, ds ...agentfed.Domain) (*agentfed.Manager, error) {
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: c.now})
	if err != nil {
		return nil, err
	}
	return agentfed.New(context.Background(), agentfed.Params{
		Store: st, Recorder: rec, TrustDomain: ownTD, Domains: ds, RootCAs: roots,
		Timeout: 5 * time.Second, Holder: holder, Clock: c.now,
	})
}

// auditEvent is the part of a stored audit event the tests check.
type auditEvent struct {
	Type    string         `json:"type"`
	Outcome string         `json:"outcome"`
	Actor   *audit.Actor   `json:"actor"`
	Details map[string]any `json:"details"`
}

// events returns the audit events of the given type, oldest first.
func events(t *testing.T, st store.Store, typ string) []auditEvent {
	t.Helper()
	recs, _, err := st.ListAudit(context.Background(), store.AuditQuery{}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var out []auditEvent
	for _, r := range recs {
		var ev auditEvent
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}
