package bundle_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/json"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/bundle"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/golden"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/internal/testca"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

// newFakeCA returns an X509Source and a credential.CA over CA certificates
// made in the test (Rotate makes one more, Drop removes the oldest); the
// newest one signs.
func newFakeCA(t *testing.T) *testca.Rotating {
	t.Helper()
	return testca.NewRotating(t, testca.Params{Serial: 1, Subject: pkix.Name{Organization: []string{"agentid"}}, KeyID: "sgk_ca"})
}

func jwtKeys(t *testing.T, alg string, clock func() time.Time) *keys.Manager {
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
		Store: st, Root: root, Purpose: "jwt-svid", Algorithm: alg, MaxTokenTTL: time.Hour, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func newBundle(t *testing.T, p bundle.Params) *bundle.Bundle {
	t.Helper()
	if p.TrustDomain == "" {
		p.TrustDomain = "example.org"
	}
	if p.Clock == nil {
		p.Clock = time.Now
	}
	b, err := bundle.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func current(t *testing.T, b *bundle.Bundle) bundle.Document {
	t.Helper()
	d, err := b.Current()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPeerAcceptsBundle: go-spiffe parses the document, and verifies with
// it an X.509-SVID and a JWT-SVID minted by this server's issuer.
func TestPeerAcceptsBundle(t *testing.T) {
	ca := newFakeCA(t)
	ca.Rotate(t) // a next CA, published before it signs
	jk := jwtKeys(t, keys.ES256, time.Now)
	b := newBundle(t, bundle.Params{X509: ca, JWT: jk, RefreshHint: 90 * time.Second})
	d := current(t, b)

	parsed, err := spiffebundle.Parse(td, d.JSON)
	if err != nil {
		t.Fatalf("spiffebundle.Parse: %v\n%s", err, d.JSON)
	}
	if hint, ok := parsed.RefreshHint(); !ok || hint != 90*time.Second {
		t.Errorf("refresh hint %s (%v), want 90s", hint, ok)
	}
	if seq, ok := parsed.SequenceNumber(); !ok || seq != d.Sequence || seq == 0 {
		t.Errorf("sequence %d (%v), want %d", seq, ok, d.Sequence)
	}
	if !parsed.X509Bundle().Equal(x509bundle.FromX509Authorities(td, ca.X509Authorities())) {
		t.Error("X.509 authorities differ from the CA's")
	}
	if got := len(parsed.JWTAuthorities()); got != 1 {
		t.Errorf("%d JWT authorities, want 1", got)
	}
	if _, err := jwtbundle.Parse(td, d.JWTJWKS); err != nil {
		t.Errorf("jwtbundle.Parse(JWTJWKS): %v", err)
	}

	iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{CA: ca, JWTKeys: jk, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	wk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const id = "spiffe://example.org/agent/ticket-triage"
	x, err := iss.X509SVID(credential.X509SVIDParams{SPIFFEID: id, PublicKey: wk.Public(), IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := x509svid.ParseAndVerify(x.Chain, parsed); err != nil || got.String() != id {
		t.Errorf("x509svid.ParseAndVerify = %s, %v", got, err)
	}
	j, err := iss.JWTSVID(credential.JWTSVIDParams{SPIFFEID: id, Audience: []string{"spiffe://example.org/db"}, IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := jwtsvid.ParseAndValidate(j.Token, parsed, []string{"spiffe://example.org/db"}); err != nil || got.ID.String() != id {
		t.Errorf("jwtsvid.ParseAndValidate = %v, %v", got, err)
	}
}

// TestBundleGolden pins the document's shape with key material and the
// sequence replaced by placeholders.
func TestBundleGolden(t *testing.T) {
	ca := newFakeCA(t)
	b := newBundle(t, bundle.Params{X509: ca, JWT: jwtKeys(t, keys.ES256, time.Now)})
	raw := current(t, b).JSON
	for _, r := range []struct{ re, with string }{
		{`"(x|y|kid)":"[^"]*"`, `"$1":"<$1>"`},
		{`"x5c":\["[^"]*"\]`, `"x5c":["<certificate, base64 DER>"]`},
		{`"spiffe_sequence":[0-9]+`, `"spiffe_sequence":"<sequence>"`},
	} {
		raw = regexp.MustCompile(r.re).ReplaceAll(raw, []byte(r.with))
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	golden.Check(t, "bundle", out.Bytes())
}

// TestSequence: the sequence stays while nothing changes and increases
// with every change of the keys or the refresh hint, also when the clock
// goes back.
func TestSequence(t *testing.T) {
	clk := &clock{t: time.Unix(2_000_000_000, 0)}
	ca := newFakeCA(t)
	jk := jwtKeys(t, keys.ES256, clk.Now)
	b := newBundle(t, bundle.Params{X509: ca, JWT: jk, Clock: clk.Now})
	first := current(t, b)
	if first.Sequence != 2_000_000_000 {
		t.Errorf("first sequence %d, want the clock's Unix time", first.Sequence)
	}
	clk.Set(clk.Now().Add(time.Minute))
	if again := current(t, b); again.Sequence != first.Sequence || string(again.JSON) != string(first.JSON) {
		t.Errorf("unchanged bundle: sequence %d → %d", first.Sequence, again.Sequence)
	}

	ca.Rotate(t) // a new CA: the clock's time
	added := current(t, b)
	if added.Sequence != 2_000_000_060 || len(added.X509Authorities) != 2 {
		t.Errorf("after a new CA: sequence %d with %d authorities, want 2000000060 and 2", added.Sequence, len(added.X509Authorities))
	}
	ca.Drop() // a removal in the same second: previous + 1
	dropped := current(t, b)
	if dropped.Sequence != added.Sequence+1 {
		t.Errorf("after a removal in the same second: sequence %d, want %d", dropped.Sequence, added.Sequence+1)
	}
	clk.Set(clk.Now().Add(time.Minute))
	if _, err := jk.Rotate(context.Background(), keys.Origin{ActorType: "system"}); err != nil {
		t.Fatal(err)
	}
	rotated := current(t, b)
	if rotated.Sequence != 2_000_000_120 || len(rotated.JWTAuthorities) != 2 {
		t.Errorf("after a JWT key rotation: sequence %d with %d JWT keys, want 2000000120 and 2",
			rotated.Sequence, len(rotated.JWTAuthorities))
	}
	clk.Set(clk.Now().Add(-time.Hour)) // the clock goes back
	ca.Rotate(t)
	if back := current(t, b); back.Sequence != rotated.Sequence+1 {
		t.Errorf("after a change with the clock back: sequence %d, want %d", back.Sequence, rotated.Sequence+1)
	}
}

// TestBundleLeavesOutEdDSA: JWT-SVIDs are ES256 only, so an EdDSA key is
// no JWT authority.
func TestBundleLeavesOutEdDSA(t *testing.T) {
	b := newBundle(t, bundle.Params{JWT: jwtKeys(t, keys.EdDSA, time.Now)})
	d := current(t, b)
	if len(d.JWTAuthorities) != 0 {
		t.Errorf("%d JWT authorities from an EdDSA manager, want 0", len(d.JWTAuthorities))
	}
	parsed, err := spiffebundle.Parse(td, d.JSON)
	if err != nil {
		t.Fatalf("spiffebundle.Parse(empty bundle): %v", err)
	}
	if !parsed.Empty() {
		t.Error("bundle without authorities is not empty")
	}
	if diff := cmp.Diff(`{"keys":[]}`, string(d.JWTJWKS)); diff != "" {
		t.Errorf("JWTJWKS (-want +got):\n%s", diff)
	}
}

func TestNewRefuses(t *testing.T) {
	for name, p := range map[string]bundle.Params{
		"bad trust domain": {TrustDomain: "Example.org", Clock: time.Now},
		"no clock":         {TrustDomain: "example.org"},
		"sub-second hint":  {TrustDomain: "example.org", Clock: time.Now, RefreshHint: time.Millisecond},
	} {
		if _, err := bundle.New(p); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestCurrentConcurrent: callers racing a change each see sequence
// numbers that never go back.
func TestCurrentConcurrent(t *testing.T) {
	ca := newFakeCA(t)
	b := newBundle(t, bundle.Params{X509: ca, JWT: jwtKeys(t, keys.ES256, time.Now)})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var last uint64
			for range 50 {
				d, err := b.Current()
				if err != nil {
					t.Error(err)
					return
				}
				if d.Sequence < last {
					t.Errorf("sequence went back from %d to %d", last, d.Sequence)
				}
				last = d.Sequence
			}
		})
	}
	for range 3 {
		ca.Rotate(t)
	}
	wg.Wait()
	if got := len(current(t, b).X509Authorities); got != 4 {
		t.Errorf("%d X.509 authorities, want 4", got)
	}
}
