package credential_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/golden"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store/sqlite"
)

const workloadID = "spiffe://example.org/agent/ticket-triage"

var td = spiffeid.RequireTrustDomainFromString("example.org")

// testCA is a CA made in the test: a self-signed P-256 root, and with
// intermediate an intermediate under it that signs.
type testCA struct {
	root   *x509.Certificate
	key    crypto.Signer
	chain  []*x509.Certificate // what CurrentCA returns
	signer crypto.Signer
	err    error
}

func (c *testCA) CurrentCA() (credential.CAKey, error) {
	if c.err != nil {
		return credential.CAKey{}, c.err
	}
	return credential.CAKey{ID: "sgk_ca", Signer: c.signer, Chain: c.chain}, nil
}

func caCert(t testing.TB, tmpl *x509.Certificate, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func caTemplate(serial int64, cn string, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
		URIs: []*url.URL{{Scheme: "spiffe", Host: "example.org"}},
	}
}

// newTestCA makes a root valid from notBefore to notAfter; with
// intermediate, an intermediate valid until interNotAfter signs.
func newTestCA(t testing.TB, notBefore, notAfter time.Time, intermediate bool, interNotAfter time.Time) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	root := caCert(t, caTemplate(1, "root", notBefore, notAfter), nil, key.Public(), key)
	c := &testCA{root: root, key: key, chain: []*x509.Certificate{root}, signer: key}
	if intermediate {
		ikey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		inter := caCert(t, caTemplate(2, "intermediate", notBefore, interNotAfter), root, ikey.Public(), key)
		c.chain, c.signer = []*x509.Certificate{inter, root}, ikey
	}
	return c
}

// newJWTKeys returns a keys.Manager of purpose jwt-svid with the algorithm.
func newJWTKeys(t testing.TB, alg string, clock func() time.Time) *keys.Manager {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Params{Path: filepath.Join(t.TempDir(), "agentid.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	root, err := keys.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m, err := keys.NewManager(context.Background(), keys.ManagerParams{
		Store: st, Root: root, Purpose: "jwt-svid", Algorithm: alg, MaxTokenTTL: time.Hour,
		Clock: clock, Rand: mrand.NewChaCha8([32]byte{3}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newSVIDIssuer(t testing.TB, ca credential.CA, ks credential.KeySource) *credential.SVIDIssuer {
	t.Helper()
	iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{CA: ca, JWTKeys: ks, Rand: mrand.NewChaCha8([32]byte{5})})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func workloadKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func parseChain(t *testing.T, chain [][]byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidSAN              = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// TestX509SVID mints SVIDs from a root and from an intermediate and has
// go-spiffe verify them against a bundle holding the root, then checks
// each X509-SVID §2–§4 requirement on the leaf.
func TestX509SVID(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	for _, tc := range []struct {
		name         string
		intermediate bool
		wantChain    int // certificates in the SVID chain
	}{
		{"root signs", false, 1},
		{"intermediate signs", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newTestCA(t, now.Add(-time.Hour), now.Add(24*time.Hour), tc.intermediate, now.Add(24*time.Hour))
			iss := newSVIDIssuer(t, ca, nil)
			wk := workloadKey(t)
			svid, err := iss.X509SVID(credential.X509SVIDParams{
				SPIFFEID: workloadID, PublicKey: wk.Public(), IssuedAt: now, MaxTTL: 2 * time.Hour,
			})
			if err != nil {
				t.Fatal(err)
			}
			certs := parseChain(t, svid.Chain)
			if len(certs) != tc.wantChain {
				t.Fatalf("chain of %d certificates, want %d", len(certs), tc.wantChain)
			}
			bundle := x509bundle.FromX509Authorities(td, []*x509.Certificate{ca.root})
			id, _, err := x509svid.Verify(certs, bundle)
			if err != nil {
				t.Fatalf("x509svid.Verify: %v", err)
			}
			if id.String() != workloadID {
				t.Errorf("verified ID %s, want %s", id, workloadID)
			}
			leaf := certs[0]
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != workloadID || len(leaf.DNSNames)+len(leaf.EmailAddresses)+len(leaf.IPAddresses) != 0 {
				t.Errorf("SANs: URIs %v DNS %v email %v IP %v; want only the SPIFFE ID", leaf.URIs, leaf.DNSNames, leaf.EmailAddresses, leaf.IPAddresses)
			}
			if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("KeyUsage = %b, want digitalSignature only", leaf.KeyUsage)
			}
			if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage); diff != "" {
				t.Errorf("ExtKeyUsage (-want +got):\n%s", diff)
			}
			if !leaf.BasicConstraintsValid || leaf.IsCA {
				t.Errorf("basic constraints valid %v CA %v, want present and not a CA", leaf.BasicConstraintsValid, leaf.IsCA)
			}
			critical := map[string]bool{}
			for _, e := range leaf.Extensions {
				critical[e.Id.String()] = e.Critical
			}
			for name, oid := range map[string]asn1.ObjectIdentifier{
				"basic constraints": oidBasicConstraints, "key usage": oidKeyUsage, "subject alternative name": oidSAN,
			} {
				if !critical[oid.String()] {
					t.Errorf("%s extension is missing or not critical", name)
				}
			}
			if len(leaf.RawSubject) != 2 { // an empty SEQUENCE
				t.Errorf("subject %q, want empty", leaf.Subject)
			}
			if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.Text(16) != svid.Serial {
				t.Errorf("serial %x, reported %s; want positive and equal", leaf.SerialNumber, svid.Serial)
			}
			if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(wk.Public()) {
				t.Error("the SVID certifies another key")
			}
			if want := now.Add(-credential.X509SVIDBackdate); !leaf.NotBefore.Equal(want) || !svid.NotBefore.Equal(want) {
				t.Errorf("NotBefore %v (reported %v), want %v", leaf.NotBefore, svid.NotBefore, want)
			}
			if want := now.Add(credential.DefaultX509SVIDTTL); !leaf.NotAfter.Equal(want) || !svid.ExpiresAt.Equal(want) {
				t.Errorf("NotAfter %v (reported %v), want %v (default TTL)", leaf.NotAfter, svid.ExpiresAt, want)
			}
			if svid.CAKeyID != "sgk_ca" || svid.SPIFFEID != workloadID {
				t.Errorf("CAKeyID %q SPIFFEID %q", svid.CAKeyID, svid.SPIFFEID)
			}
		})
	}
}

// TestX509SVIDSerialsDiffer: serial numbers are random.
func TestX509SVIDSerialsDiffer(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, now.Add(-time.Hour), now.Add(time.Hour), false, time.Time{})
	iss := newSVIDIssuer(t, ca, nil)
	seen := map[string]bool{}
	pub := workloadKey(t).Public()
	for range 50 {
		s, err := iss.X509SVID(credential.X509SVIDParams{SPIFFEID: workloadID, PublicKey: pub, IssuedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		if seen[s.Serial] {
			t.Fatalf("serial %s issued twice", s.Serial)
		}
		seen[s.Serial] = true
	}
}

func TestX509SVIDLifetime(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	sec := now.Truncate(time.Second)
	for _, tc := range []struct {
		name                string
		ttl, maxTTL         time.Duration
		caFrom, caTo, inter time.Time
		wantFrom, wantTo    time.Time
	}{
		{"asked", 10 * time.Minute, time.Hour, sec.Add(-time.Hour), sec.Add(time.Hour), time.Time{},
			sec.Add(-30 * time.Second), sec.Add(10 * time.Minute)},
		{"capped by policy", 3 * time.Hour, 15 * time.Minute, sec.Add(-time.Hour), sec.Add(5 * time.Hour), time.Time{},
			sec.Add(-30 * time.Second), sec.Add(15 * time.Minute)},
		{"capped by the CA", 0, 0, sec.Add(-time.Hour), sec.Add(20 * time.Minute), time.Time{},
			sec.Add(-30 * time.Second), sec.Add(20 * time.Minute)},
		{"capped by the intermediate", 0, 0, sec.Add(-time.Hour), sec.Add(5 * time.Hour), sec.Add(7 * time.Minute),
			sec.Add(-30 * time.Second), sec.Add(7 * time.Minute)},
		{"not before the CA", 0, 0, sec.Add(-10 * time.Second), sec.Add(5 * time.Hour), time.Time{},
			sec.Add(-10 * time.Second), sec.Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newTestCA(t, tc.caFrom, tc.caTo, !tc.inter.IsZero(), tc.inter)
			iss := newSVIDIssuer(t, ca, nil)
			s, err := iss.X509SVID(credential.X509SVIDParams{SPIFFEID: workloadID, PublicKey: workloadKey(t).Public(),
				IssuedAt: now, TTL: tc.ttl, MaxTTL: tc.maxTTL})
			if err != nil {
				t.Fatal(err)
			}
			leaf := parseChain(t, s.Chain)[0]
			if !leaf.NotBefore.Equal(tc.wantFrom) || !leaf.NotAfter.Equal(tc.wantTo) {
				t.Errorf("validity %v – %v, want %v – %v", leaf.NotBefore, leaf.NotAfter, tc.wantFrom, tc.wantTo)
			}
			if !s.ExpiresAt.Equal(tc.wantTo) {
				t.Errorf("ExpiresAt %v, want %v", s.ExpiresAt, tc.wantTo)
			}
		})
	}
}

// TestX509SVIDRSAKey: an RSA workload key also gets keyEncipherment.
func TestX509SVIDRSAKey(t *testing.T) {
	now := time.Now()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss := newSVIDIssuer(t, newTestCA(t, now.Add(-time.Hour), now.Add(time.Hour), false, time.Time{}), nil)
	for _, tc := range []struct {
		name string
		pub  crypto.PublicKey
		want x509.KeyUsage
	}{
		{"RSA", &rk.PublicKey, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment},
		{"Ed25519", edPub, x509.KeyUsageDigitalSignature},
	} {
		s, err := iss.X509SVID(credential.X509SVIDParams{SPIFFEID: workloadID, PublicKey: tc.pub, IssuedAt: now})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := parseChain(t, s.Chain)[0].KeyUsage; got != tc.want {
			t.Errorf("%s: KeyUsage %b, want %b", tc.name, got, tc.want)
		}
	}
}

func TestX509SVIDRefused(t *testing.T) {
	now := time.Now()
	good := newTestCA(t, now.Add(-time.Hour), now.Add(time.Hour), false, time.Time{})
	expired := newTestCA(t, now.Add(-2*time.Hour), now.Add(-time.Hour), false, time.Time{})
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := workloadKey(t).Public()
	for _, tc := range []struct {
		name string
		ca   credential.CA
		p    credential.X509SVIDParams
		want error
	}{
		{"no CA", nil, credential.X509SVIDParams{SPIFFEID: workloadID, PublicKey: pub, IssuedAt: now}, credential.ErrNoCA},
		{"CA failing", &testCA{err: errors.New("sealed")}, credential.X509SVIDParams{SPIFFEID: workloadID, PublicKey: pub, IssuedAt: now}, credential.ErrNoCA},
		{"expired CA", expired, credential.X509SVIDParams{SPIFFEID: workloadID, PublicKey: pub, IssuedAt: now}, credential.ErrNoCA},
		{"trust domain ID", good, credential.X509SVIDParams{SPIFFEID: "spiffe://example.org", PublicKey: pub, IssuedAt: now}, credential.ErrInvalidSVIDParams},
		{"not a SPIFFE ID", good, credential.X509SVIDParams{SPIFFEID: "https://example.org/x", PublicKey: pub, IssuedAt: now}, credential.ErrInvalidSVIDParams},
		{"no key", good, credential.X509SVIDParams{SPIFFEID: workloadID, IssuedAt: now}, credential.ErrInvalidSVIDParams},
		{"P-224 key", good, credential.X509SVIDParams{SPIFFEID: workloadID, PublicKey: p224.Public(), IssuedAt: now}, credential.ErrInvalidSVIDParams},
		{"negative TTL", good, credential.X509SVIDParams{SPIFFEID: workloadID, PublicKey: pub, IssuedAt: now, TTL: -time.Second}, credential.ErrInvalidSVIDParams},
		{"sub-second TTL", good, credential.X509SVIDParams{SPIFFEID: workloadID, PublicKey: pub, IssuedAt: now, TTL: time.Millisecond}, credential.ErrInvalidSVIDParams},
	} {
		iss := newSVIDIssuer(t, tc.ca, nil)
		if _, err := iss.X509SVID(tc.p); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// csrPEM makes a CSR signed by key that asks for names the SVID ignores.
func csrPEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "evil"},
		DNSNames: []string{"bank.example.com"},
		URIs:     []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/agent/admin"}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// TestX509SVIDFromCSR: the CSR gives the key and nothing else.
func TestX509SVIDFromCSR(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, now.Add(-time.Hour), now.Add(time.Hour), false, time.Time{})
	wk := workloadKey(t)
	pub, err := credential.ParseCSR(csrPEM(t, wk))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSVIDIssuer(t, ca, nil).X509SVID(credential.X509SVIDParams{SPIFFEID: workloadID, PublicKey: pub, IssuedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	leaf := parseChain(t, s.Chain)[0]
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != workloadID || len(leaf.DNSNames) != 0 || leaf.Subject.CommonName != "" {
		t.Errorf("leaf names: URIs %v DNS %v CN %q; want only %s", leaf.URIs, leaf.DNSNames, leaf.Subject.CommonName, workloadID)
	}
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(wk.Public()) {
		t.Error("the SVID certifies another key than the CSR's")
	}
}

func TestParseCSR(t *testing.T) {
	wk := workloadKey(t)
	good := csrPEM(t, wk)
	block, _ := pem.Decode(good)
	tampered := bytes.Clone(block.Bytes)
	tampered[len(tampered)-5] ^= 0x40 // inside the signature
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // G403: the point is that it is refused
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"PEM", good, true},
		{"PEM with whitespace", append(append([]byte("\n  "), good...), "\n\n"...), true},
		{"DER", block.Bytes, true},
		{"NEW CERTIFICATE REQUEST", pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: block.Bytes}), true},
		{"tampered signature", tampered, false},
		{"certificate PEM", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}), false},
		{"two blocks", append(bytes.Clone(good), good...), false},
		{"garbage", []byte("hello"), false},
		{"empty", nil, false},
		{"broken PEM", []byte("-----BEGIN CERTIFICATE REQUEST-----\n!!!\n"), false},
		{"P-224 key", csrPEM(t, p224), false},
		{"RSA 1024", csrPEM(t, small), false},
		{"too long", append(bytes.Clone(good), bytes.Repeat([]byte(" "), credential.MaxCSRBytes)...), false},
	} {
		pub, err := credential.ParseCSR(tc.in)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.ok && !wk.PublicKey.Equal(pub):
			t.Errorf("%s: returned another key", tc.name)
		case !tc.ok && !errors.Is(err, credential.ErrInvalidCSR):
			t.Errorf("%s: err = %v, want ErrInvalidCSR", tc.name, err)
		case !tc.ok && !errors.Is(err, credential.ErrInvalidSVIDParams):
			t.Errorf("%s: err = %v does not wrap ErrInvalidSVIDParams", tc.name, err)
		}
	}
}

// TestJWTSVID mints a JWT-SVID and has go-spiffe validate it against a
// bundle of the published key, then pins its header and claims.
func TestJWTSVID(t *testing.T) {
	now := time.Now()
	m := newJWTKeys(t, keys.ES256, time.Now)
	iss := newSVIDIssuer(t, nil, m)
	for _, aud := range [][]string{{"spiffe://example.org/db"}, {"https://api.example.org", "spiffe://example.org/db"}} {
		s, err := iss.JWTSVID(credential.JWTSVIDParams{SPIFFEID: workloadID, Audience: aud, IssuedAt: now, MaxTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		pub, _, ok := m.PublicKey(s.KeyID)
		if !ok {
			t.Fatal("key not published")
		}
		bundle := jwtbundle.FromJWTAuthorities(td, map[string]crypto.PublicKey{s.KeyID: pub})
		got, err := jwtsvid.ParseAndValidate(s.Token, bundle, aud[:1])
		if err != nil {
			t.Fatalf("jwtsvid.ParseAndValidate: %v", err)
		}
		if got.ID.String() != workloadID || !cmp.Equal(got.Audience, aud) {
			t.Errorf("validated sub %s aud %v, want %s %v", got.ID, got.Audience, workloadID, aud)
		}
		if want := now.Truncate(time.Second).Add(credential.DefaultJWTSVIDTTL); !got.Expiry.Equal(want) || !s.ExpiresAt().Equal(want) {
			t.Errorf("exp %v (reported %v), want %v", got.Expiry, s.ExpiresAt(), want)
		}
		if _, err := jwtsvid.ParseAndValidate(s.Token, bundle, []string{"someone-else"}); err == nil {
			t.Error("validated for an audience it does not name")
		}
	}
}

func TestJWTSVIDGolden(t *testing.T) {
	epoch := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	m := newJWTKeys(t, keys.ES256, func() time.Time { return epoch })
	iss := newSVIDIssuer(t, nil, m)
	for name, aud := range map[string][]string{
		"one_audience":  {"spiffe://example.org/db"},
		"two_audiences": {"https://api.example.org", "spiffe://example.org/db"},
	} {
		s, err := iss.JWTSVID(credential.JWTSVIDParams{SPIFFEID: workloadID, Audience: aud, IssuedAt: epoch, TTL: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		out := bytes.Replace(decode(t, s.Token), []byte(s.KeyID), []byte("<kid>"), 1)
		golden.Check(t, "jwt_svid_"+name, bytes.Replace(out, []byte(s.Claims.JTI), []byte("<jti>"), 1))
		if !strings.HasPrefix(s.Claims.JTI, "tok_") {
			t.Errorf("jti %q", s.Claims.JTI)
		}
	}
}

func TestJWTSVIDRefused(t *testing.T) {
	now := time.Now()
	es := newJWTKeys(t, keys.ES256, time.Now)
	ed := newJWTKeys(t, keys.EdDSA, time.Now)
	many := make([]string, credential.MaxSVIDAudiences+1)
	for i := range many {
		many[i] = "aud"
	}
	for _, tc := range []struct {
		name string
		ks   credential.KeySource
		p    credential.JWTSVIDParams
		want error
	}{
		{"no keys", nil, credential.JWTSVIDParams{SPIFFEID: workloadID, Audience: []string{"a"}, IssuedAt: now}, credential.ErrNoKey},
		{"EdDSA key", ed, credential.JWTSVIDParams{SPIFFEID: workloadID, Audience: []string{"a"}, IssuedAt: now}, credential.ErrNoKey},
		{"no audience", es, credential.JWTSVIDParams{SPIFFEID: workloadID, IssuedAt: now}, credential.ErrInvalidSVIDParams},
		{"empty audience", es, credential.JWTSVIDParams{SPIFFEID: workloadID, Audience: []string{""}, IssuedAt: now}, credential.ErrInvalidSVIDParams},
		{"audience with a space", es, credential.JWTSVIDParams{SPIFFEID: workloadID, Audience: []string{"a b"}, IssuedAt: now}, credential.ErrInvalidSVIDParams},
		{"too many audiences", es, credential.JWTSVIDParams{SPIFFEID: workloadID, Audience: many, IssuedAt: now}, credential.ErrInvalidSVIDParams},
		{"bad SPIFFE ID", es, credential.JWTSVIDParams{SPIFFEID: "spiffe://Example.org/x", Audience: []string{"a"}, IssuedAt: now}, credential.ErrInvalidSVIDParams},
		{"negative TTL", es, credential.JWTSVIDParams{SPIFFEID: workloadID, Audience: []string{"a"}, IssuedAt: now, TTL: -time.Minute}, credential.ErrInvalidSVIDParams},
	} {
		iss := newSVIDIssuer(t, nil, tc.ks)
		if _, err := iss.JWTSVID(tc.p); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestJWTSVIDTTL: the policy caps the lifetime, in whole seconds.
func TestJWTSVIDTTL(t *testing.T) {
	now := time.Now()
	iss := newSVIDIssuer(t, nil, newJWTKeys(t, keys.ES256, time.Now))
	for _, tc := range []struct {
		ttl, maxTTL, want time.Duration
	}{
		{0, 0, credential.DefaultJWTSVIDTTL},
		{0, time.Minute, time.Minute},
		{90*time.Second + 500*time.Millisecond, time.Hour, 90 * time.Second},
		{time.Hour, 10 * time.Minute, 10 * time.Minute},
	} {
		s, err := iss.JWTSVID(credential.JWTSVIDParams{SPIFFEID: workloadID, Audience: []string{"a"}, IssuedAt: now, TTL: tc.ttl, MaxTTL: tc.maxTTL})
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Duration(s.Claims.Expiry-s.Claims.IssuedAt) * time.Second; got != tc.want {
			t.Errorf("TTL %s max %s: lifetime %s, want %s", tc.ttl, tc.maxTTL, got, tc.want)
		}
	}
}

// BenchmarkX509SVID measures a mint against x509.CreateCertificate of the
// same template (issue 4's target: ≥ 70 % of its rate).
func BenchmarkX509SVID(b *testing.B) {
	now := time.Now()
	ca := newTestCA(b, now.Add(-time.Hour), now.Add(24*time.Hour), false, time.Time{})
	iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{CA: ca, Rand: rand.Reader})
	if err != nil {
		b.Fatal(err)
	}
	pub := workloadKey(b).Public()
	b.Run("X509SVID", func(b *testing.B) {
		for b.Loop() {
			if _, err := iss.X509SVID(credential.X509SVIDParams{SPIFFEID: workloadID, PublicKey: pub, IssuedAt: now}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CreateCertificate", func(b *testing.B) {
		u, _ := url.Parse(workloadID)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: now, NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, URIs: []*url.URL{u},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
		for b.Loop() {
			if _, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, pub, ca.key); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkJWTSVID(b *testing.B) {
	iss := newSVIDIssuer(b, nil, newJWTKeys(b, keys.ES256, time.Now))
	now := time.Now()
	for b.Loop() {
		if _, err := iss.JWTSVID(credential.JWTSVIDParams{SPIFFEID: workloadID, Audience: []string{"spiffe://example.org/db"}, IssuedAt: now}); err != nil {
			b.Fatal(err)
		}
	}
}
