package oauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/federated"
	"github.com/agentid/agentid/internal/attest/pki/pkitest"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/federation"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/store"
)

const partnerTD = "partner.example"

// partnerBundles is the federated bundle of partner.example, as
// federation.Manager hands it out.
type partnerBundles map[string]federation.Bundle

func (b partnerBundles) BundlesFor(tds []string) map[string]federation.Bundle {
	out := map[string]federation.Bundle{}
	for _, t := range tds {
		if x, ok := b[t]; ok {
			out[t] = x
		}
	}
	return out
}

// spiffeEnv is an authorization server with a spiffe attestor "partner"
// for the federated trust domain partner.example, and an agent "courier"
// whose rule is spiffe:id:spiffe://partner.example/shipping/*.
type spiffeEnv struct {
	*env
	ca      *pkitest.CA
	key     *ecdsa.PrivateKey
	courier store.Agent
}

func newSPIFFEEnv(t *testing.T) *spiffeEnv {
	t.Helper()
	e := sqliteEnv(t)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x := &spiffeEnv{env: e, ca: pkitest.NewRoot(t, "partner CA", e.clk.Now()), key: k}
	b := partnerBundles{partnerTD: {TrustDomain: partnerTD, X509Authorities: []*x509.Certificate{x.ca.Cert},
		JWTAuthorities: map[string]crypto.PublicKey{"k1": &k.PublicKey}}}
	a, err := federated.New(federated.Config{Name: "partner", TrustDomain: partnerTD, Audience: testIssuer}, b, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	set, err := attest.NewSetWithChains(nil, []attest.ChainAttestor{a})
	if err != nil {
		t.Fatal(err)
	}
	e.params.Attestors = set
	e.srv = e.withParams(nil)
	x.courier, _, _, _ = e.newAgent("courier", func(p *identity.CreateAgentParams) {
		p.AttestationRules = []store.AttestationRule{{Attestor: "partner", Matchers: []string{"spiffe:id:spiffe://partner.example/shipping/*"}}}
	})
	return x
}

// svid is a JWT-SVID of sub for agentid, valid from the real now (go-spiffe
// checks exp against it) until after the test clock.
func (x *spiffeEnv) svid(sub string, edit func(map[string]any)) string {
	x.t.Helper()
	c := map[string]any{"sub": sub, "aud": []string{testIssuer}, "iat": time.Now().Unix(), "exp": x.clk.Now().Add(10 * time.Minute).Unix()}
	if edit != nil {
		edit(c)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: x.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		x.t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		x.t.Fatal(err)
	}
	return raw
}

func jwtSVIDRequest(raw, clientID string) *oauth.Request {
	return &oauth.Request{Form: form("grant_type", "client_credentials", "client_assertion_type", federated.AssertionType,
		"client_assertion", raw, "client_id", clientID), Origin: audit.Origin{Source: audit.Source{IP: "192.0.2.12"}}}
}

func TestJWTSVIDClientAuthentication(t *testing.T) {
	x := newSPIFFEEnv(t)
	resp, oe := x.srv.Token(x.ctx, jwtSVIDRequest(x.svid("spiffe://partner.example/shipping/courier-1", nil), "courier"))
	if oe != nil {
		t.Fatalf("Token: %v (%s)", oe, oe.Reason)
	}
	c := x.claims(resp.AccessToken)
	ins, _ := c["agent_instance"].(string)
	if !strings.HasPrefix(ins, "ins_") || c["client_id"] != x.courier.ID || c["cnf"] != nil {
		t.Fatalf("claims = %v", c)
	}
	in, err := x.st.GetInstance(x.ctx, ins)
	if err != nil || in.Method != attest.MethodSPIFFE || in.Key != "spiffe://partner.example/shipping/courier-1" {
		t.Errorf("instance = %+v, %v", in, err)
	}
	evs := x.events(oauth.EventInstanceAttested)
	d := evs[len(evs)-1]["details"].(map[string]any)
	if d["method"] != oauth.MethodSPIFFEJWT || d["attest_method"] != attest.MethodSPIFFE || d["issuer"] != "spiffe://partner.example" {
		t.Errorf("event = %v", evs[len(evs)-1])
	}
	if !x.srv.SupportsSPIFFE() || x.srv.SupportsTLSClientAuth() || !x.srv.RequestsClientCerts() {
		t.Error("capabilities")
	}

	cases := []struct {
		name, raw, clientID, reason string
	}{
		{"matcher mismatch", x.svid("spiffe://partner.example/billing/b", nil), "courier", "does not hold"},
		{"other trust domain", x.svid("spiffe://other.example/shipping/c", nil), "courier", "no attestor trusts"},
		{"two audiences", x.svid("spiffe://partner.example/shipping/c", func(c map[string]any) { c["aud"] = []string{testIssuer, resourceA} }), "courier", "alone"},
		{"expired at the server's clock", x.svid("spiffe://partner.example/shipping/c", func(c map[string]any) {
			c["exp"] = x.clk.Now().Add(-10 * time.Minute).Unix()
		}), "courier", "has expired"},
		{"no client_id", x.svid("spiffe://partner.example/shipping/c", nil), "", "client_id"},
		{"unknown agent", x.svid("spiffe://partner.example/shipping/c", nil), "nobody", "unknown agent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(x.events(oauth.EventInstanceAttested))
			_, oe := x.srv.Token(x.ctx, jwtSVIDRequest(c.raw, c.clientID))
			if oe == nil || oe.Code != oauth.CodeInvalidClient || !strings.Contains(oe.Reason, c.reason) {
				t.Fatalf("error = %v (%s), want invalid_client with %q", oe, reasonOf(oe), c.reason)
			}
			if got := len(x.events(oauth.EventInstanceAttested)); got != before+1 {
				t.Errorf("%d attested events, want %d", got, before+1)
			}
		})
	}
}

func TestX509SVIDClientAuthentication(t *testing.T) {
	x := newSPIFFEEnv(t)
	leaf := x.ca.Leaf(pkitest.LeafParams{URIs: []string{"spiffe://partner.example/shipping/courier-2"}})
	resp, oe := x.srv.Token(x.ctx, mtlsRequest([]*x509.Certificate{leaf.Cert}, "courier"))
	if oe != nil {
		t.Fatalf("Token: %v (%s)", oe, oe.Reason)
	}
	c := x.claims(resp.AccessToken)
	if cnf, _ := c["cnf"].(map[string]any); cnf["x5t#S256"] != oauth.CertThumbprint(leaf.Cert) {
		t.Errorf("cnf = %v", c["cnf"])
	}
	evs := x.events(oauth.EventInstanceAttested)
	if d := evs[len(evs)-1]["details"].(map[string]any); d["method"] != oauth.MethodSPIFFEX509 || d["attest_method"] != attest.MethodSPIFFE {
		t.Errorf("event = %v", evs[len(evs)-1])
	}
	impostor := pkitest.NewRoot(t, "partner CA", x.clk.Now())
	for name, chain := range map[string][]*x509.Certificate{
		"foreign CA":       {impostor.Leaf(pkitest.LeafParams{URIs: []string{"spiffe://partner.example/shipping/c"}}).Cert},
		"matcher mismatch": {x.ca.Leaf(pkitest.LeafParams{URIs: []string{"spiffe://partner.example/billing/c"}}).Cert},
		"not an SVID":      {x.ca.Leaf(pkitest.LeafParams{DNS: []string{"c.partner.example"}}).Cert},
	} {
		_, oe := x.srv.Token(x.ctx, mtlsRequest(chain, "courier"))
		if oe == nil || oe.Code != oauth.CodeInvalidClient {
			t.Errorf("%s: %v", name, oe)
		}
	}
}
