package oauth_test

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/pki"
	"github.com/agentid/agentid/internal/attest/pki/pkitest"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/store"
)

// pkiEnv is an authorization server with an x509 attestor "corp-pki"
// trusting a test root (through an intermediate, and a name-constrained
// intermediate), and an agent "signer" whose rule is
// x509:ou:payments, x509:san-uri:spiffe://corp.example/payments/*.
type pkiEnv struct {
	*env
	root, inter, constrained *pkitest.CA
	revoked                  pkitest.Leaf
	signer                   store.Agent
}

func newPKIEnv(t *testing.T) *pkiEnv { return pkiEnvOn(t, sqliteEnv(t)) }

func pkiEnvOn(t *testing.T, e *env) *pkiEnv {
	t.Helper()
	root := pkitest.NewRoot(t, "Corp Root", e.clk.Now())
	x := &pkiEnv{env: e, root: root, inter: root.Intermediate("Corp Issuing"),
		constrained: root.Intermediate("Corp Payments", "payments.corp.example")}
	x.revoked = x.leaf(x.inter, nil)
	dir := t.TempDir()
	a, err := pki.New(pki.Config{Name: "corp-pki", TrustAnchorFiles: []string{pkitest.WritePEM(t, dir, "root.pem", root.Cert)},
		CRLFiles: []string{pkitest.WriteCRL(t, dir, "issuing.crl", x.inter.CRL(e.clk.Now(), x.revoked.Cert.SerialNumber))}}, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	set, err := attest.NewSetWithChains(nil, []attest.ChainAttestor{a})
	if err != nil {
		t.Fatal(err)
	}
	e.params.Attestors = set
	e.srv = e.withParams(nil)
	x.signer, _, _, _ = e.newAgent("signer", func(p *identity.CreateAgentParams) {
		p.AttestationRules = []store.AttestationRule{
			{Attestor: "corp-pki", Matchers: []string{"x509:ou:payments", "x509:san-uri:spiffe://corp.example/payments/*"}},
		}
	})
	return x
}

// leaf is a payments client certificate of ca, edited by edit.
func (x *pkiEnv) leaf(ca *pkitest.CA, edit func(*pkitest.LeafParams)) pkitest.Leaf {
	p := pkitest.LeafParams{CN: "signer-1", OU: []string{"payments"}, URIs: []string{"spiffe://corp.example/payments/signer"}}
	if edit != nil {
		edit(&p)
	}
	return ca.Leaf(p)
}

// mtlsRequest is a client_credentials request authenticated by the TLS
// client certificate chain (RFC 8705 §2.1).
func mtlsRequest(chain []*x509.Certificate, clientID string, kv ...string) *oauth.Request {
	f := form(append([]string{"grant_type", "client_credentials", "client_id", clientID}, kv...)...)
	return &oauth.Request{Form: f, PeerCertificates: chain, Origin: audit.Origin{Source: audit.Source{IP: "192.0.2.11"}}}
}

func TestTLSClientAuth(t *testing.T) {
	x := newPKIEnv(t)
	leaf := x.leaf(x.inter, nil)
	resp, oe := x.srv.Token(x.ctx, mtlsRequest([]*x509.Certificate{leaf.Cert, x.inter.Cert}, "signer", "scope", "tickets:read"))
	if oe != nil {
		t.Fatalf("Token: %v (%s)", oe, oe.Reason)
	}
	if resp.TokenType != oauth.TokenTypeBearer {
		t.Errorf("token_type = %q (RFC 8705 §3: a certificate-bound token is a Bearer token)", resp.TokenType)
	}
	c := x.claims(resp.AccessToken)
	cnf, _ := c["cnf"].(map[string]any)
	if cnf["x5t#S256"] != oauth.CertThumbprint(leaf.Cert) || cnf["jkt"] != nil {
		t.Fatalf("cnf = %v, want x5t#S256 %s", cnf, oauth.CertThumbprint(leaf.Cert))
	}
	ins, _ := c["agent_instance"].(string)
	if !strings.HasPrefix(ins, "ins_") || c["client_id"] != x.signer.ID {
		t.Fatalf("claims = %v", c)
	}
	in, err := x.st.GetInstance(x.ctx, ins)
	if err != nil || in.Method != attest.MethodX509 || in.Key != oauth.CertThumbprint(leaf.Cert) || in.Evidence["subject"] == "" {
		t.Errorf("instance = %+v, %v", in, err)
	}
	evs := x.events(oauth.EventInstanceAttested)
	if len(evs) != 1 || evs[0]["outcome"] != "success" {
		t.Fatalf("attested events = %v", evs)
	}
	d := evs[0]["details"].(map[string]any)
	if d["method"] != oauth.MethodTLSClientAuth || d["attest_method"] != attest.MethodX509 || d["attestor"] != "corp-pki" ||
		d["issuer"] != x.root.Cert.Subject.String() || !strings.HasPrefix(d["rule"].(string), "corp-pki: x509:ou:payments") {
		t.Errorf("attested event = %v", evs[0])
	}
	issued := x.events("credential.issued")
	if issued[len(issued)-1]["details"].(map[string]any)["cnf_x5t#S256"] != oauth.CertThumbprint(leaf.Cert) {
		t.Errorf("credential.issued = %v", issued[len(issued)-1])
	}
	if got := (&attestEnv{env: x.env}).introspect(resp.AccessToken); !got.Active || got.Cnf == nil || got.Cnf.X5TS256 != oauth.CertThumbprint(leaf.Cert) ||
		got.TokenType != oauth.TokenTypeBearer {
		t.Errorf("introspection = %+v (RFC 8705 §3.2: cnf x5t#S256)", got)
	}
	// A certificate under the name-constrained intermediate, within it.
	ok := x.leaf(x.constrained, func(p *pkitest.LeafParams) { p.DNS = []string{"signer.payments.corp.example"} })
	if _, oe := x.srv.Token(x.ctx, mtlsRequest([]*x509.Certificate{ok.Cert, x.constrained.Cert}, x.signer.ID)); oe != nil {
		t.Errorf("constrained intermediate: %v (%s)", oe, oe.Reason)
	}
	if !x.srv.SupportsTLSClientAuth() || len(x.srv.ClientCertAnchors()) != 1 {
		t.Error("the server does not advertise tls_client_auth")
	}
}

func TestTLSClientAuthRefusals(t *testing.T) {
	x := newPKIEnv(t)
	other := pkitest.NewRoot(t, "Corp Root", x.clk.Now()).Intermediate("Corp Issuing")
	chain := func(l pkitest.Leaf, ca *pkitest.CA) []*x509.Certificate { return []*x509.Certificate{l.Cert, ca.Cert} }
	cases := []struct {
		name     string
		chain    []*x509.Certificate
		clientID string
		reason   string
	}{
		{"wrong EKU", chain(x.leaf(x.inter, func(p *pkitest.LeafParams) { p.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }), x.inter),
			"signer", "extended key usage"},
		{"untrusted root", chain(x.leaf(other, nil), other), "signer", "does not chain to a trust anchor"},
		{"name constraints", chain(x.leaf(x.constrained, func(p *pkitest.LeafParams) { p.DNS = []string{"signer.evil.example"} }), x.constrained),
			"signer", "name constraints"},
		{"revoked serial", chain(x.revoked, x.inter), "signer", "is revoked"},
		{"matcher mismatch", chain(x.leaf(x.inter, func(p *pkitest.LeafParams) { p.OU = []string{"billing"} }), x.inter),
			"signer", "x509:ou:payments does not hold"},
		{"no rule", chain(x.leaf(x.inter, nil), x.inter), "bot", "no attestation rule for attestor corp-pki"},
		{"unknown agent", chain(x.leaf(x.inter, nil), x.inter), "nobody", "unknown agent"},
		{"no client_id", chain(x.leaf(x.inter, nil), x.inter), "", "client_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(x.events(oauth.EventInstanceAttested)) + len(x.events("client.authenticated"))
			_, oe := x.srv.Token(x.ctx, mtlsRequest(c.chain, c.clientID))
			if oe == nil || oe.Code != oauth.CodeInvalidClient || oe.Status >= 500 || !strings.Contains(oe.Reason, c.reason) {
				t.Fatalf("error = %v (%s), want invalid_client with %q", oe, reasonOf(oe), c.reason)
			}
			if strings.Contains(oe.Description, "revoked") || strings.Contains(oe.Description, "constraint") {
				t.Errorf("the client learns why: %q", oe.Description)
			}
			attested := x.events(oauth.EventInstanceAttested)
			if len(attested)+len(x.events("client.authenticated")) != before+1 {
				t.Fatal("no audit event")
			}
			if c.clientID == "" {
				return
			}
			last := attested[len(attested)-1]
			d := last["details"].(map[string]any)
			if last["outcome"] != "failure" || !strings.Contains(last["reason"].(string), c.reason) ||
				d["method"] != oauth.MethodTLSClientAuth || d["attest_method"] != attest.MethodX509 {
				t.Errorf("event = %v", last)
			}
		})
	}
	if strings.Contains(x.trail(), "PRIVATE KEY") {
		t.Error("a private key in the audit trail")
	}
}

func TestTLSClientAuthNotOffered(t *testing.T) {
	// Without an x509 attestor a client certificate is no credential: the
	// request has no client authentication.
	e := sqliteEnv(t)
	root := pkitest.NewRoot(t, "Corp Root", e.clk.Now())
	l := root.Leaf(pkitest.LeafParams{})
	_, oe := e.srv.Token(e.ctx, mtlsRequest([]*x509.Certificate{l.Cert}, e.agent.ID))
	if oe == nil || oe.Code != oauth.CodeInvalidClient || e.srv.SupportsTLSClientAuth() {
		t.Fatalf("error = %v", oe)
	}
}

func TestCertificateBoundActorToken(t *testing.T) {
	// A certificate-bound token used as an RFC 8693 actor_token needs its
	// certificate on the request (RFC 8705 §3).
	x := pkiEnvOn(t, sqliteXEnv(t).env)
	leaf := x.leaf(x.inter, nil)
	resp, oe := x.srv.Token(x.ctx, mtlsRequest([]*x509.Certificate{leaf.Cert, x.inter.Cert}, "signer"))
	if oe != nil {
		t.Fatal(oe)
	}
	f := form("grant_type", oauth.GrantTokenExchange, "actor_token", resp.AccessToken,
		"actor_token_type", "urn:ietf:params:oauth:token-type:access_token",
		"subject_token", resp.AccessToken, "subject_token_type", "urn:ietf:params:oauth:token-type:access_token")
	_, oe = x.srv.Token(x.ctx, &oauth.Request{Form: f})
	if oe == nil || oe.Code != oauth.CodeInvalidRequest || !strings.Contains(oe.Description, "client certificate") {
		t.Fatalf("actor token without its certificate: %+v", oe)
	}
	other := x.leaf(x.inter, nil)
	_, oe = x.srv.Token(x.ctx, &oauth.Request{Form: f, PeerCertificates: []*x509.Certificate{other.Cert, x.inter.Cert}})
	if oe == nil || !strings.Contains(oe.Description, "client certificate") {
		t.Fatalf("actor token with another certificate: %+v", oe)
	}
	_, oe = x.srv.Token(x.ctx, &oauth.Request{Form: f, PeerCertificates: []*x509.Certificate{leaf.Cert, x.inter.Cert}})
	if oe != nil && strings.Contains(oe.Description, "client certificate") {
		t.Fatalf("actor token with its certificate: %+v", oe)
	}
}

func reasonOf(e *oauth.Error) string {
	if e == nil {
		return ""
	}
	return e.Reason
}
