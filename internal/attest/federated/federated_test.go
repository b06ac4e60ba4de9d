package federated_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/federated"
	"github.com/agentid/agentid/internal/attest/pki/pkitest"
	"github.com/agentid/agentid/internal/federation"
	"github.com/agentid/agentid/internal/store"
)

const (
	td  = "partner.example"
	aud = "https://agentid.example.com"
)

// bundles is a fixed set of federated bundles (what federation.Manager
// hands out).
type bundles map[string]federation.Bundle

func (b bundles) BundlesFor(tds []string) map[string]federation.Bundle {
	out := map[string]federation.Bundle{}
	for _, t := range tds {
		if x, ok := b[t]; ok {
			out[t] = x
		}
	}
	return out
}

// partner is a federated trust domain: an X.509 CA and a JWT key.
type partner struct {
	ca  *pkitest.CA
	key *ecdsa.PrivateKey
	kid string
}

func newPartner(t *testing.T, now time.Time) partner {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return partner{ca: pkitest.NewRoot(t, "partner CA", now), key: k, kid: "k1"}
}

func (p partner) bundle() federation.Bundle {
	return federation.Bundle{TrustDomain: td, X509Authorities: []*x509.Certificate{p.ca.Cert},
		JWTAuthorities: map[string]crypto.PublicKey{p.kid: &p.key.PublicKey}}
}

func (p partner) jwt(t *testing.T, claims map[string]any, edit func(*jose.SignerOptions)) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", p.kid)
	if edit != nil {
		edit(opts)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func svidClaims(now time.Time) map[string]any {
	return map[string]any{"sub": "spiffe://" + td + "/payments/runner", "aud": []string{aud},
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
}

func TestAttestJWT(t *testing.T) {
	now := time.Now()
	p := newPartner(t, now)
	a, err := federated.New(federated.Config{Name: "partner", TrustDomain: td, Audience: aud}, bundles{td: p.bundle()}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	raw := p.jwt(t, svidClaims(now), nil)
	// An independent peer accepts it too.
	bid := spiffeid.RequireTrustDomainFromString(td)
	if _, err := jwtsvid.ParseAndValidate(raw, jwtbundle.FromJWTAuthorities(bid, p.bundle().JWTAuthorities), []string{aud}); err != nil {
		t.Fatalf("go-spiffe refuses the test SVID: %v", err)
	}
	if got := federated.UnverifiedTrustDomain(raw); got != td {
		t.Fatalf("UnverifiedTrustDomain = %q", got)
	}
	ev, err := a.AttestJWT(context.Background(), raw)
	if err != nil {
		t.Fatalf("AttestJWT: %v", err)
	}
	if ev.Method != attest.MethodSPIFFE || ev.Key != "spiffe://partner.example/payments/runner" || ev.Issuer != "spiffe://partner.example" ||
		ev.Summary["svid"] != "jwt" || ev.CertThumbprint != "" {
		t.Errorf("evidence = %+v", ev)
	}
	rules := []store.AttestationRule{{Attestor: "partner", Matchers: []string{"spiffe:id:spiffe://partner.example/payments/*"}}}
	if m := attest.Match(rules, ev); m.Rule != 0 {
		t.Errorf("Match = %+v", m)
	}
	if m := attest.Match([]store.AttestationRule{{Attestor: "partner", Matchers: []string{"spiffe:id:spiffe://partner.example/billing/*"}}}, ev); m.Rule != -1 {
		t.Errorf("a billing rule matched: %+v", m)
	}

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	with := func(edit func(map[string]any)) string {
		c := svidClaims(now)
		edit(c)
		return p.jwt(t, c, nil)
	}
	forged := partner{ca: p.ca, key: other, kid: p.kid}
	cases := []struct {
		name, raw, why string
	}{
		{"two audiences", with(func(c map[string]any) { c["aud"] = []string{aud, "https://other.example"} }), "alone"},
		{"other audience", with(func(c map[string]any) { c["aud"] = []string{"https://other.example"} }), "audience"},
		{"expired", with(func(c map[string]any) { c["exp"] = now.Add(-5 * time.Minute).Unix() }), "expired"},
		{"iat ahead", with(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }), "iat"},
		{"no exp", with(func(c map[string]any) { delete(c, "exp") }), "exp"},
		{"not a SPIFFE ID", with(func(c map[string]any) { c["sub"] = "runner" }), "subject"},
		{"other trust domain", with(func(c map[string]any) { c["sub"] = "spiffe://other.example/x" }), "bundle"},
		{"forged", forged.jwt(t, svidClaims(now), nil), "not valid"},
		{"unknown kid", p.jwt(t, svidClaims(now), func(o *jose.SignerOptions) { o.WithHeader("kid", "k9") }), "k9"},
		{"no kid", p.jwt(t, svidClaims(now), func(o *jose.SignerOptions) { delete(o.ExtraHeaders, "kid") }), "key id"},
		{"not a JWS", "a.b.c", "not valid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.AttestJWT(context.Background(), c.raw)
			var ae *attest.Error
			if !errors.As(err, &ae) || !errors.Is(err, attest.ErrInvalid) || !strings.Contains(ae.Reason, c.why) {
				t.Fatalf("err = %v, want ErrInvalid with %q", err, c.why)
			}
			if ae.Attestor != "partner" || ae.Method != attest.MethodSPIFFE {
				t.Errorf("error names %q/%q", ae.Attestor, ae.Method)
			}
		})
	}

	none, _ := federated.New(federated.Config{Name: "partner", TrustDomain: td, Audience: aud}, bundles{}, time.Now)
	if _, err := none.AttestJWT(context.Background(), raw); !errors.Is(err, attest.ErrUnavailable) {
		t.Errorf("no bundle: %v", err)
	}
	set, err := attest.NewSetWithChains(nil, []attest.ChainAttestor{a})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.AttestJWTSVID(context.Background(), "other.example", raw); !errors.Is(err, attest.ErrUntrusted) {
		t.Errorf("unrouted trust domain: %v", err)
	}
	if _, err := set.AttestJWTSVID(context.Background(), td, raw); err != nil || !set.HasSVIDs() || set.HasPKI() || set.ChainAnchors() != nil {
		t.Errorf("routed: %v", err)
	}
	if _, err := attest.NewSetWithChains(nil, []attest.ChainAttestor{a, must(federated.New(federated.Config{Name: "again", TrustDomain: td, Audience: aud}, nil, time.Now))}); err == nil {
		t.Error("two attestors of one trust domain")
	}
}

func must(a *federated.Attestor, err error) *federated.Attestor {
	if err != nil {
		panic(err)
	}
	return a
}

func TestAttestChain(t *testing.T) {
	now := time.Now()
	p := newPartner(t, now)
	a, err := federated.New(federated.Config{Name: "partner", TrustDomain: td, Audience: aud}, bundles{td: p.bundle()}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := p.ca.Leaf(pkitest.LeafParams{URIs: []string{"spiffe://" + td + "/payments/runner"}})
	ev, err := a.AttestChain(context.Background(), []*x509.Certificate{leaf.Cert})
	if err != nil {
		t.Fatalf("AttestChain: %v", err)
	}
	if ev.Key != "spiffe://partner.example/payments/runner" || ev.CertThumbprint == "" || ev.Summary["svid"] != "x509" || !ev.Expiry.Equal(leaf.Cert.NotAfter) {
		t.Errorf("evidence = %+v", ev)
	}
	impostor := pkitest.NewRoot(t, "partner CA", now)
	cases := []struct {
		name  string
		chain []*x509.Certificate
		kind  error
		why   string
	}{
		{"other trust domain", []*x509.Certificate{p.ca.Leaf(pkitest.LeafParams{URIs: []string{"spiffe://other.example/x"}}).Cert}, attest.ErrUntrusted, "not an X.509-SVID"},
		{"no SPIFFE ID", []*x509.Certificate{p.ca.Leaf(pkitest.LeafParams{DNS: []string{"x.example"}}).Cert}, attest.ErrUntrusted, "not an X.509-SVID"},
		{"two URIs", []*x509.Certificate{p.ca.Leaf(pkitest.LeafParams{URIs: []string{"spiffe://" + td + "/a", "spiffe://" + td + "/b"}}).Cert}, attest.ErrUntrusted, "not an X.509-SVID"},
		{"foreign CA", []*x509.Certificate{impostor.Leaf(pkitest.LeafParams{URIs: []string{"spiffe://" + td + "/a"}}).Cert}, attest.ErrInvalid, "does not verify"},
		{"CA leaf", []*x509.Certificate{p.ca.Leaf(pkitest.LeafParams{IsCA: true, URIs: []string{"spiffe://" + td + "/a"}}).Cert}, attest.ErrInvalid, "does not verify"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.AttestChain(context.Background(), c.chain)
			if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("err = %v, want %v with %q", err, c.kind, c.why)
			}
		})
	}
	late, _ := federated.New(federated.Config{Name: "partner", TrustDomain: td, Audience: aud}, bundles{td: p.bundle()},
		func() time.Time { return now.Add(48 * time.Hour) })
	if _, err := late.AttestChain(context.Background(), []*x509.Certificate{leaf.Cert}); !errors.Is(err, attest.ErrInvalid) {
		t.Errorf("expired SVID: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, c := range []federated.Config{
		{Name: "P", TrustDomain: td, Audience: aud},
		{Name: "p", TrustDomain: "spiffe://" + td, Audience: aud},
		{Name: "p", TrustDomain: "Partner.Example", Audience: aud},
		{Name: "p", TrustDomain: td},
	} {
		if _, err := federated.New(c, nil, time.Now); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// FuzzUnverifiedTrustDomain: never panics, and a result is a valid trust
// domain name.
func FuzzUnverifiedTrustDomain(f *testing.F) {
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly90ZC9hIn0.c2ln")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, raw string) {
		got := federated.UnverifiedTrustDomain(raw)
		if got == "" {
			return
		}
		if _, err := spiffeid.TrustDomainFromString(got); err != nil {
			t.Fatalf("%q is not a trust domain", got)
		}
	})
}
