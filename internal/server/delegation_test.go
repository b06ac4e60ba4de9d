package server_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// startDelegationServer is startServer with the IdP as a trusted issuer.
func startDelegationServer(t *testing.T, idp *idptest.IdP) *liveServer {
	t.Helper()
	return startLive(t, func(cfg *server.Config) {
		cfg.Delegation.Issuers = []server.TrustedIssuerConfig{{Issuer: idp.URL, Audience: idptest.Audience, TLSCAFile: idp.CAFile}}
	}, nil)
}

// TestDelegationOverHTTP runs the worked sequence of docs/delegation.md
// against a real server: alice logs in at her IdP, grants the bot, the
// bot exchanges her token with a plain RFC 8693 form post, a resource
// verifies the result with go-oidc and introspects it, and revoking the
// grant makes it inactive.
func TestDelegationOverHTTP(t *testing.T) {
	idp := idptest.New(t)
	ls := startDelegationServer(t, idp)
	ctx := t.Context()
	aliceToken := idp.Mint("rs1", idp.Claims("alice", time.Now()))

	// alice creates the grant herself, with her IdP token.
	person, err := admin.New(ls.url, aliceToken)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(24 * time.Hour)
	g, err := person.CreateMyGrant(ctx, admin.CreateGrantRequest{
		Agent: "bot", Scopes: []string{"tickets:read"}, Audiences: []string{apiAudience}, ExpiresAt: &exp,
	})
	if err != nil {
		t.Fatalf("CreateMyGrant: %v", err)
	}
	if g.Subject != "alice" || g.SubjectIssuer != idp.URL || g.CreatedByType != "person" || !g.Active {
		t.Errorf("grant = %+v", g)
	}
	mine, err := person.ListMyGrants(ctx, true, 0, "")
	if err != nil || len(mine.Items) != 1 {
		t.Errorf("ListMyGrants = %+v, %v", mine, err)
	}
	// A bad person token is a 401 problem.
	bad, _ := admin.New(ls.url, aliceToken+"x")
	if _, err := bad.ListMyGrants(ctx, false, 0, ""); !admin.IsProblem(err, admin.ProblemUnauthenticated) {
		t.Errorf("ListMyGrants with a bad token: %v", err)
	}

	// The bot exchanges alice's token: a plain form post (RFC 8693 §2.1).
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {aliceToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"},
		"resource":           {apiAudience},
		"scope":              {"tickets:read"},
	}
	basic := http.Header{"Authorization": {"Basic " + basicAuth(ls.agent.ClientID, ls.secret)}}
	status, hdr, body := ls.post("/oauth2/token", form, basic)
	if status != http.StatusOK || body["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" ||
		body["token_type"] != "Bearer" || body["scope"] != "tickets:read" || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("exchange: %d %v %v", status, hdr, body)
	}
	tok, _ := body["access_token"].(string)

	// go-oidc, an independent verifier, accepts it through discovery and
	// the JWKS; the chain reads sub = alice, act = the bot. Discovery
	// advertises the grant type (RFC 8414 §2).
	provider, err := oidc.NewProvider(ctx, ls.url)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	if err := provider.Claims(&meta); err != nil || !slices.Contains(meta.GrantTypes, "urn:ietf:params:oauth:grant-type:token-exchange") {
		t.Errorf("grant_types_supported = %v, %v", meta.GrantTypes, err)
	}
	idt, err := provider.VerifierContext(ctx, &oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: []string{oidc.ES256}}).Verify(ctx, tok)
	if err != nil {
		t.Fatalf("go-oidc verify: %v", err)
	}
	var claims struct {
		Act struct {
			Sub string `json:"sub"`
		} `json:"act"`
		GrantID string `json:"grant_id"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "alice" || claims.Act.Sub != ls.agent.SPIFFEID || claims.GrantID != g.ID {
		t.Errorf("token: sub %q, act %+v, grant %q", idt.Subject, claims.Act, claims.GrantID)
	}

	// Introspection shows the chain and the grant; revoking the grant
	// cascades.
	adminAuth := http.Header{"Authorization": {"Bearer " + ls.token}}
	_, _, in := ls.post("/oauth2/introspect", url.Values{"token": {tok}}, adminAuth)
	if in["active"] != true || in["grant_id"] != g.ID || in["sub"] != "alice" {
		t.Errorf("introspection = %v", in)
	}
	rev, err := ls.admin.RevokeGrant(ctx, g.ID, admin.RevokeGrantRequest{Reason: "trip cancelled"})
	if err != nil || rev.TokensAffected != 1 || rev.Grant.Active {
		t.Fatalf("RevokeGrant = %+v, %v", rev, err)
	}
	if _, _, in := ls.post("/oauth2/introspect", url.Values{"token": {tok}}, adminAuth); in["active"] != false {
		t.Errorf("introspection after revocation = %v", in)
	}

	// Bad exchanges get RFC 6749 §5.2 errors, never a 5xx.
	for name, tc := range map[string]struct {
		edit func(url.Values)
		code string
	}{
		"revoked grant":    {func(url.Values) {}, "invalid_request"},
		"no subject token": {func(f url.Values) { f.Del("subject_token") }, "invalid_request"},
		"unknown type":     {func(f url.Values) { f.Set("subject_token_type", "saml") }, "invalid_request"},
		"garbage token":    {func(f url.Values) { f.Set("subject_token", "x.y.z") }, "invalid_request"},
		"repeated scope":   {func(f url.Values) { f["scope"] = []string{"a", "b"} }, "invalid_request"},
	} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		tc.edit(f)
		status, _, body := ls.post("/oauth2/token", f, basic)
		if status != http.StatusBadRequest || body["error"] != tc.code {
			t.Errorf("%s: %d %v, want 400 %s", name, status, body, tc.code)
		}
	}

	// The trail has the whole story, and never a token.
	var types []string
	evs, err := ls.admin.ListAuditEvents(ctx, admin.AuditQuery{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs.Items {
		types = append(types, ev.Type)
	}
	all := strings.Join(types, " ")
	for _, want := range []string{"person.authenticated", "grant.created", "credential.issued", "grant.revoked"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit trail lacks %s: %s", want, all)
		}
	}
}

func TestDelegationConfig(t *testing.T) {
	good := `
delegation:
  max_chain_depth: 4
  issuers:
    - issuer: https://login.example.com
      audience: agentid
      tls_ca_file: ./idp-ca.pem
      algorithms: [RS256]
`
	cfg, err := server.ParseConfig([]byte(good), "/etc/agentid")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Delegation.MaxChainDepth != 4 || cfg.Delegation.Issuers[0].TLSCAFile != "/etc/agentid/idp-ca.pem" {
		t.Errorf("delegation config = %+v", cfg.Delegation)
	}
	if cfg, err := server.ParseConfig([]byte("{}"), "/"); err != nil || cfg.Delegation.MaxChainDepth != 5 {
		t.Errorf("default max_chain_depth = %d, %v", cfg.Delegation.MaxChainDepth, err)
	}
	for name, doc := range map[string]string{
		"depth 0":      "delegation: {max_chain_depth: 11}",
		"http issuer":  "delegation: {issuers: [{issuer: 'http://idp.example.com', audience: a}]}",
		"no audience":  "delegation: {issuers: [{issuer: 'https://idp.example.com'}]}",
		"both jwks":    "delegation: {issuers: [{issuer: 'https://idp.example.com', audience: a, jwks_url: 'https://idp.example.com/k', jwks_file: k}]}",
		"HS256":        "delegation: {issuers: [{issuer: 'https://idp.example.com', audience: a, algorithms: [HS256]}]}",
		"twice":        "delegation: {issuers: [{issuer: 'https://idp.example.com', audience: a}, {issuer: 'https://idp.example.com', audience: b}]}",
		"unknown key":  "delegation: {issuers: [{issuer: 'https://idp.example.com', audience: a, colour: blue}]}",
		"self as peer": "delegation: {issuers: [{issuer: 'http://127.0.0.1:8080', audience: a}]}",
	} {
		if _, err := server.ParseConfig([]byte(doc), "/"); err == nil {
			t.Errorf("%s: ParseConfig accepted %s", name, doc)
		}
	}
}

// basicAuth is the RFC 6749 §2.3.1 Basic credential: id and secret
// form-encoded, then base64.
func basicAuth(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}
