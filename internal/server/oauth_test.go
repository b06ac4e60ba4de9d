package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// liveServer is a control plane on a real loopback socket with one agent
// ("bot") that has an ES256 client key and a client secret.
type liveServer struct {
	t      *testing.T
	url    string
	admin  *admin.Client
	token  string // admin token
	agent  admin.Agent
	key    *ecdsa.PrivateKey
	kid    string
	secret string
}

const apiAudience = "https://api.example.org"

func startServer(t *testing.T) *liveServer {
	t.Helper()
	return startLive(t, nil, nil)
}

// startLive is startServer with the dev configuration changed by mutate
// (when not nil) and perms the permissions of the agent "bot".
func startLive(t *testing.T, mutate func(*server.Config), perms []string) *liveServer {
	t.Helper()
	cp := startDev(t, mutate)
	ls := &liveServer{t: t, url: cp.url, admin: cp.admin, token: cp.token}
	ls.agent, ls.key, ls.kid, ls.secret = ls.newAgent(t.Context(), "bot", perms)
	return ls
}

func (ls *liveServer) newAgent(ctx context.Context, name string, perms []string) (admin.Agent, *ecdsa.PrivateKey, string, string) {
	t := ls.t
	t.Helper()
	owner, err := ls.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: name + "@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := ls.admin.CreateAgent(ctx, admin.CreateAgentRequest{
		Name: name, Owners: []string{owner.ID}, Purpose: "tests",
		Audiences: []string{apiAudience}, Scopes: []string{"tickets:read", "tickets:write"}, Permissions: perms,
	})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ls.admin.AddClientKey(ctx, a.Name, admin.AddClientKeyRequest{
		PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := ls.admin.CreateClientSecret(ctx, a.Name, admin.CreateClientSecretRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return a, priv, k.KeyID, sec.Secret
}

// assertion is a private_key_jwt client assertion built with go-jose.
func (ls *liveServer) assertion(jti string) string {
	ls.t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ls.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", ls.kid))
	if err != nil {
		ls.t.Fatal(err)
	}
	now := time.Now()
	raw, err := jwt.Signed(sig).Claims(jwt.Claims{
		Issuer: ls.agent.ClientID, Subject: ls.agent.ClientID, Audience: jwt.Audience{ls.url + "/oauth2/token"},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: jti,
	}).Serialize()
	if err != nil {
		ls.t.Fatal(err)
	}
	return raw
}

// post sends a form to an endpoint and decodes the JSON answer.
func (ls *liveServer) post(path string, form url.Values, header http.Header) (int, http.Header, map[string]any) {
	ls.t.Helper()
	req, err := http.NewRequestWithContext(ls.t.Context(), http.MethodPost, ls.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		ls.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	return ls.do(req)
}

func (ls *liveServer) do(req *http.Request) (int, http.Header, map[string]any) {
	ls.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ls.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ls.t.Fatal(err)
	}
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			ls.t.Fatalf("%s %s: %d, body %q is not JSON", req.Method, req.URL.Path, resp.StatusCode, b)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			ls.t.Errorf("Content-Type = %q", ct)
		}
	}
	return resp.StatusCode, resp.Header, m
}

// TestClientCredentialsWithPeers gets tokens with golang.org/x/oauth2 and
// verifies them with go-oidc through discovery and the JWKS.
func TestClientCredentialsWithPeers(t *testing.T) {
	ls := startServer(t)
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, ls.url)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	verifier := provider.VerifierContext(ctx, &oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: []string{oidc.ES256}})
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cc := clientcredentials.Config{
			ClientID: ls.agent.ClientID, ClientSecret: ls.secret, TokenURL: provider.Endpoint().TokenURL,
			Scopes: []string{"tickets:read"}, EndpointParams: url.Values{"resource": {apiAudience}}, AuthStyle: style,
		}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("auth style %d: %v", style, err)
		}
		if tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
			t.Errorf("token = %+v", tok)
		}
		idt, err := verifier.Verify(ctx, tok.AccessToken)
		if err != nil {
			t.Fatalf("go-oidc verify: %v", err)
		}
		var claims struct {
			Scope    string `json:"scope"`
			ClientID string `json:"client_id"`
			Agent    struct{ ID, Name string }
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if idt.Subject != "spiffe://example.org/agent/bot" || claims.Scope != "tickets:read" ||
			claims.ClientID != ls.agent.ClientID || claims.Agent.Name != "bot" ||
			len(idt.Audience) != 1 || idt.Audience[0] != apiAudience {
			t.Errorf("claims: sub %q aud %v %+v", idt.Subject, idt.Audience, claims)
		}
	}
	// A wrong secret is invalid_client through the peer too.
	cc := clientcredentials.Config{ClientID: ls.agent.ClientID, ClientSecret: "aidcs_wrong", TokenURL: ls.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}
	_, err = cc.Token(ctx)
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong secret: %v", err)
	}
}

func asRetrieveError(err error, re **oauth2.RetrieveError) bool {
	r, ok := err.(*oauth2.RetrieveError) //nolint:errorlint // clientcredentials returns it unwrapped
	*re = r
	return ok
}

func TestPrivateKeyJWTOverHTTP(t *testing.T) {
	ls := startServer(t)
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {ls.assertion("jti-1")},
	}
	status, h, body := ls.post("/oauth2/token", form, nil)
	if status != http.StatusOK || body["token_type"] != "Bearer" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("token: %d %v %v", status, h, body)
	}
	status, _, body = ls.post("/oauth2/token", form, nil)
	if status != http.StatusBadRequest || body["error"] != "invalid_client" {
		t.Errorf("replay: %d %v", status, body)
	}
}

func TestTokenEndpointBadInput(t *testing.T) {
	ls := startServer(t)
	basic := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(ls.agent.ClientID+":"+ls.secret))}}
	good := url.Values{"grant_type": {"client_credentials"}}
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}{
		{"GET", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, ls.url+"/oauth2/token", nil)
			return r
		}, 405, "invalid_request"},
		{"JSON body", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, ls.url+"/oauth2/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
			r.Header.Set("Content-Type", "application/json")
			r.Header["Authorization"] = basic["Authorization"]
			return r
		}, 400, "invalid_request"},
		{"no content type", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, ls.url+"/oauth2/token", strings.NewReader(good.Encode()))
			r.Header["Authorization"] = basic["Authorization"]
			return r
		}, 400, "invalid_request"},
		{"oversized body", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, ls.url+"/oauth2/token",
				strings.NewReader("grant_type=client_credentials&client_assertion="+strings.Repeat("a", 100<<10)))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 413, "invalid_request"},
		{"bad form encoding", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, ls.url+"/oauth2/token", strings.NewReader("grant_type=%zz"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 400, "invalid_request"},
		{"malformed basic", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, ls.url+"/oauth2/token", strings.NewReader(good.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Authorization", "Basic !!!")
			return r
		}, 401, "invalid_client"},
		{"repeated parameter", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, ls.url+"/oauth2/token", strings.NewReader("grant_type=client_credentials&grant_type=client_credentials"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header["Authorization"] = basic["Authorization"]
			return r
		}, 400, "invalid_request"},
		{"missing grant_type", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, ls.url+"/oauth2/token", strings.NewReader("scope=x"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header["Authorization"] = basic["Authorization"]
			return r
		}, 400, "invalid_request"},
		{"unsupported grant_type", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, ls.url+"/oauth2/token", strings.NewReader("grant_type=authorization_code"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header["Authorization"] = basic["Authorization"]
			return r
		}, 400, "unsupported_grant_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req().WithContext(t.Context())
			status, h, body := ls.do(req)
			if status != tc.status || body["error"] != tc.code {
				t.Errorf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
			if status == 401 && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.name == "GET" && h.Get("Allow") != "POST" {
				t.Errorf("Allow = %q", h.Get("Allow"))
			}
		})
	}
}

func TestIntrospectAndRevokeOverHTTP(t *testing.T) {
	ls := startServer(t)
	basic := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(ls.agent.ClientID+":"+ls.secret))}}
	_, _, body := ls.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic)
	tok, _ := body["access_token"].(string)
	if tok == "" {
		t.Fatalf("no token: %v", body)
	}
	adminAuth := http.Header{"Authorization": {"Bearer " + ls.token}}
	status, _, body := ls.post("/oauth2/introspect", url.Values{"token": {tok}}, adminAuth)
	if status != 200 || body["active"] != true || body["client_id"] != ls.agent.ClientID {
		t.Fatalf("introspect: %d %v", status, body)
	}
	status, h, body := ls.post("/oauth2/introspect", url.Values{"token": {tok}}, http.Header{"Authorization": {"Bearer aida_nope"}})
	if status != 401 || body["error"] != "invalid_token" || h.Get("WWW-Authenticate") == "" {
		t.Errorf("introspect with a bad admin token: %d %v", status, body)
	}
	// A resource server agent with the introspect permission.
	rs, _, _, rsSecret := ls.newAgent(t.Context(), "api-gateway", []string{"introspect"})
	status, _, body = ls.post("/oauth2/introspect", url.Values{"token": {tok}, "client_id": {rs.ClientID}, "client_secret": {rsSecret}}, nil)
	if status != 200 || body["active"] != true {
		t.Errorf("introspect by resource server: %d %v", status, body)
	}
	// The client revokes its token (RFC 7009); it is inactive afterwards.
	if status, _, body := ls.post("/oauth2/revoke", url.Values{"token": {tok}}, basic); status != 200 || body != nil {
		t.Fatalf("revoke: %d %v", status, body)
	}
	_, _, body = ls.post("/oauth2/introspect", url.Values{"token": {tok}}, adminAuth)
	if body["active"] != false || len(body) != 1 {
		t.Errorf("after revocation: %v", body)
	}
}
