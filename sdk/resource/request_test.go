package resource_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/dpop"
	"github.com/agentid/agentid/sdk/resource"
	"github.com/google/go-cmp/cmp"
)

func newDPoPSigner(t testing.TB) *dpop.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dpopFixture is an issuer, a verifier and a client holding a DPoP key with
// a token bound to it.
type dpopFixture struct {
	is     *testIssuer
	key    signingKey
	clock  *fakeClock
	v      *resource.Verifier
	signer *dpop.Signer
	bound  string // a token bound to signer
	bearer string // an unbound token
}

func newDPoPFixture(t *testing.T, mod func(p *resource.VerifierParams)) *dpopFixture {
	f := &dpopFixture{key: newES256(t, "k1"), clock: &fakeClock{now: t0}, signer: newDPoPSigner(t)}
	f.is = newIssuer(t, f.key)
	f.v = newVerifier(t, f.is, f.clock, mod)
	c := f.is.claims(t0)
	c["cnf"] = map[string]any{"jkt": f.signer.Thumbprint()}
	f.bound = mint(t, f.key, c, nil)
	f.bearer = mint(t, f.key, f.is.claims(t0), nil)
	return f
}

// request builds a request with the Authorization header and the proofs.
func request(method, target, auth string, proofs ...string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader("{}"))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}

func (f *dpopFixture) proof(t *testing.T, s *dpop.Signer, method, url string, p dpop.ProofParams) string {
	t.Helper()
	if p.Now.IsZero() {
		p.Now = f.clock.Now()
	}
	proof, err := s.Proof(method, url, p)
	if err != nil {
		t.Fatal(err)
	}
	return proof
}

func TestVerifyRequestDPoP(t *testing.T) {
	f := newDPoPFixture(t, nil)
	const url = "https://api.example.com/tickets"
	good := f.proof(t, f.signer, "POST", url, dpop.ProofParams{AccessToken: f.bound})

	c, err := f.v.VerifyRequest(request("POST", url+"?page=2", "DPoP "+f.bound, good))
	if err != nil {
		t.Fatal(err)
	}
	if c.CnfJKT != f.signer.Thumbprint() {
		t.Fatalf("CnfJKT = %q", c.CnfJKT)
	}
	other := newDPoPSigner(t)
	tests := []struct {
		name string
		req  *http.Request
		want error
	}{
		{"replayed proof", request("POST", url, "DPoP "+f.bound, good), resource.ErrInvalidDPoPProof},
		{"bound token as Bearer", request("POST", url, "Bearer "+f.bound), resource.ErrDPoPRequired},
		{"bound token as Bearer with a proof", request("POST", url, "Bearer "+f.bound,
			f.proof(t, f.signer, "POST", url, dpop.ProofParams{AccessToken: f.bound})), resource.ErrDPoPRequired},
		{"no proof", request("POST", url, "DPoP "+f.bound), resource.ErrInvalidDPoPProof},
		{"two proofs", request("POST", url, "DPoP "+f.bound,
			f.proof(t, f.signer, "POST", url, dpop.ProofParams{AccessToken: f.bound}),
			f.proof(t, f.signer, "POST", url, dpop.ProofParams{AccessToken: f.bound})), resource.ErrInvalidDPoPProof},
		{"proof of another key", request("POST", url, "DPoP "+f.bound,
			f.proof(t, other, "POST", url, dpop.ProofParams{AccessToken: f.bound})), resource.ErrInvalidDPoPProof},
		{"proof for another URL", request("POST", url, "DPoP "+f.bound,
			f.proof(t, f.signer, "POST", "https://api.example.com/admin", dpop.ProofParams{AccessToken: f.bound})), resource.ErrInvalidDPoPProof},
		{"proof for another method", request("POST", url, "DPoP "+f.bound,
			f.proof(t, f.signer, "GET", url, dpop.ProofParams{AccessToken: f.bound})), resource.ErrInvalidDPoPProof},
		{"proof without ath", request("POST", url, "DPoP "+f.bound,
			f.proof(t, f.signer, "POST", url, dpop.ProofParams{})), resource.ErrInvalidDPoPProof},
		{"proof for another token", request("POST", url, "DPoP "+f.bound,
			f.proof(t, f.signer, "POST", url, dpop.ProofParams{AccessToken: f.bearer})), resource.ErrInvalidDPoPProof},
		{"stale proof", request("POST", url, "DPoP "+f.bound,
			f.proof(t, f.signer, "POST", url, dpop.ProofParams{AccessToken: f.bound, Now: t0.Add(-6 * time.Minute)})), resource.ErrInvalidDPoPProof},
		{"proof over plain http", request("POST", "http://api.example.com/tickets", "DPoP "+f.bound,
			f.proof(t, f.signer, "POST", url, dpop.ProofParams{AccessToken: f.bound})), resource.ErrInvalidDPoPProof},
		{"unbound token as DPoP", request("POST", url, "DPoP "+f.bearer,
			f.proof(t, f.signer, "POST", url, dpop.ProofParams{AccessToken: f.bearer})), resource.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.v.VerifyRequest(tt.req)
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("VerifyRequest = %v, %v; want %v", c, err, tt.want)
			}
		})
	}
	if _, err := f.v.VerifyRequest(request("GET", url, "Bearer "+f.bearer)); err != nil {
		t.Fatalf("bearer token: %v", err)
	}
}

func TestVerifyRequestExternalURL(t *testing.T) {
	f := newDPoPFixture(t, func(p *resource.VerifierParams) { p.ExternalURL = "https://public.example.com/api/" })
	r := request("GET", "http://10.0.0.7:8080/tickets?x=1", "DPoP "+f.bound,
		f.proof(t, f.signer, "GET", "https://public.example.com/api/tickets", dpop.ProofParams{AccessToken: f.bound}))
	if _, err := f.v.VerifyRequest(r); err != nil {
		t.Fatal(err)
	}
	r = request("GET", "http://10.0.0.7:8080/tickets", "DPoP "+f.bound,
		f.proof(t, f.signer, "GET", "http://10.0.0.7:8080/tickets", dpop.ProofParams{AccessToken: f.bound}))
	if _, err := f.v.VerifyRequest(r); !errors.Is(err, resource.ErrInvalidDPoPProof) {
		t.Fatalf("proof for the internal URL: %v", err)
	}
}

func TestVerifyRequestAuthorizationHeader(t *testing.T) {
	f := newDPoPFixture(t, nil)
	tests := []struct {
		name string
		auth []string
		want error // nil: accepted
	}{
		{"none", nil, resource.ErrNoToken},
		{"Basic", []string{"Basic dXNlcjpwYXNz"}, resource.ErrNoToken},
		{"scheme only", []string{"Bearer"}, resource.ErrInvalidRequest},
		{"empty token", []string{"Bearer "}, resource.ErrInvalidRequest},
		{"two tokens", []string{"Bearer a b"}, resource.ErrInvalidRequest},
		{"bad characters", []string{"Bearer a\"b"}, resource.ErrInvalidRequest},
		{"two headers", []string{"Bearer " + f.bearer, "Bearer " + f.bearer}, resource.ErrInvalidRequest},
		{"lower-case scheme", []string{"bearer " + f.bearer}, nil},
		{"extra spaces", []string{"Bearer   " + f.bearer}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "https://api.example.com/", nil)
			for _, a := range tt.auth {
				r.Header.Add("Authorization", a)
			}
			_, err := f.v.VerifyRequest(r)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("VerifyRequest = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyRequestCertificateBinding(t *testing.T) {
	f := newDPoPFixture(t, nil)
	cert := &x509.Certificate{Raw: []byte("client certificate")}
	sum := sha256.Sum256(cert.Raw)
	c := f.is.claims(t0)
	c["cnf"] = map[string]any{"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}
	tok := mint(t, f.key, c, nil)

	r := request("GET", "https://api.example.com/", "Bearer "+tok)
	r.TLS = &tls.ConnectionState{}
	if _, err := f.v.VerifyRequest(r); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("without the certificate: %v", err)
	}
	r.TLS.PeerCertificates = []*x509.Certificate{{Raw: []byte("another certificate")}}
	if _, err := f.v.VerifyRequest(r); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("with another certificate: %v", err)
	}
	r.TLS.PeerCertificates = []*x509.Certificate{cert}
	if _, err := f.v.VerifyRequest(r); err != nil {
		t.Fatalf("with the certificate: %v", err)
	}
}

func TestMiddleware(t *testing.T) {
	f := newDPoPFixture(t, nil)
	const url = "https://api.example.com/tickets"
	expired := f.is.claims(t0.Add(-time.Hour))
	down := newES256(t, "k-down")
	downIssuer := newIssuer(t, down)
	downIssuer.set(func(is *testIssuer) { is.status = http.StatusServiceUnavailable })
	vDown := newVerifier(t, downIssuer, f.clock, nil)

	tests := []struct {
		name       string
		v          *resource.Verifier
		req        *http.Request
		opts       []resource.MiddlewareOption
		wantStatus int
		wantAuth   []string
	}{
		{name: "bearer", req: request("GET", url, "Bearer "+f.bearer), wantStatus: 200},
		{name: "DPoP", req: request("GET", url, "DPoP "+f.bound, f.proof(t, f.signer, "GET", url, dpop.ProofParams{AccessToken: f.bound})),
			opts: []resource.MiddlewareOption{resource.RequireScopes("tickets:read")}, wantStatus: 200},
		{name: "no credentials", req: request("GET", url, ""), wantStatus: 401,
			wantAuth: []string{`Bearer realm="tickets"`, `DPoP realm="tickets", algs="ES256 EdDSA"`}},
		{name: "malformed", req: request("GET", url, "Bearer a b"), wantStatus: 400,
			wantAuth: []string{`Bearer realm="tickets", error="invalid_request", error_description="malformed access token"`}},
		{name: "expired", req: request("GET", url, "Bearer "+mint(t, f.key, expired, nil)), wantStatus: 401,
			wantAuth: []string{`Bearer realm="tickets", error="invalid_token", error_description="exp has passed"`}},
		{name: "expired DPoP", req: request("GET", url, "DPoP "+mint(t, f.key, expired, nil)), wantStatus: 401,
			wantAuth: []string{`DPoP realm="tickets", algs="ES256 EdDSA", error="invalid_token", error_description="exp has passed"`}},
		{name: "bound token as Bearer", req: request("GET", url, "Bearer "+f.bound), wantStatus: 401,
			wantAuth: []string{`DPoP realm="tickets", algs="ES256 EdDSA", error="invalid_token", error_description="token is DPoP-bound: use the DPoP scheme and a proof"`}},
		{name: "proof for another URL", req: request("GET", url, "DPoP "+f.bound, f.proof(t, f.signer, "GET", url+"/x", dpop.ProofParams{AccessToken: f.bound})),
			wantStatus: 401, wantAuth: []string{`DPoP realm="tickets", algs="ES256 EdDSA", error="invalid_dpop_proof", error_description="htu does not match the request URL"`}},
		{name: "missing scope", req: request("GET", url, "Bearer "+f.bearer), opts: []resource.MiddlewareOption{resource.RequireScopes("tickets:read", "admin")},
			wantStatus: 403, wantAuth: []string{`Bearer realm="tickets", error="insufficient_scope", error_description="the token lacks a required scope", scope="tickets:read admin"`}},
		{name: "JWKS down", v: vDown, req: request("GET", url, "Bearer "+mint(t, down, downIssuer.claims(t0), nil)), wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.v
			if v == nil {
				v = f.v
			}
			var got *resource.Claims
			h := resource.Middleware(v, append([]resource.MiddlewareOption{resource.WithRealm("tickets")}, tt.opts...)...)(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					got, _ = resource.ClaimsFromContext(r.Context())
					_, _ = io.WriteString(w, "ok")
				}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.wantStatus, w.Body)
			}
			if diff := cmp.Diff(tt.wantAuth, w.Header().Values("WWW-Authenticate")); diff != "" {
				t.Fatalf("WWW-Authenticate (-want +got):\n%s", diff)
			}
			if (got != nil) != (tt.wantStatus == 200) {
				t.Fatalf("handler claims = %+v", got)
			}
			if tt.wantStatus != 200 && strings.Contains(w.Body.String(), "eyJ") {
				t.Fatalf("the answer carries a token: %s", w.Body)
			}
		})
	}
	if _, ok := resource.ClaimsFromContext(t.Context()); ok {
		t.Fatal("claims in an empty context")
	}
}
