package httpapi_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/bundle"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/httpapi"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/internal/svid"
	"github.com/agentid/agentid/sdk/admin"
)

// svidCA is a self-signed CA made in the test: a credential.CA and a
// bundle.X509Source.
type svidCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (c *svidCA) CurrentCA() (credential.CAKey, error) {
	return credential.CAKey{ID: "sgk_testca", Signer: c.key, Chain: []*x509.Certificate{c.cert}}, nil
}

func (c *svidCA) X509Authorities() []*x509.Certificate { return []*x509.Certificate{c.cert} }

func newSVIDCA(t *testing.T) *svidCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		URIs: []*url.URL{{Scheme: "spiffe", Host: "example.org"}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &svidCA{cert: cert, key: key}
}

// newSVIDEnv is the admin API with SVIDs and the bundle endpoint.
func newSVIDEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, sqlite.Params{Path: filepath.Join(t.TempDir(), "agentid.db"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clock := func() time.Time { return time.Now().UTC() }
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	root, err := keys.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwtKeys, err := keys.NewManager(ctx, keys.ManagerParams{Store: st, Root: root, Purpose: "jwt-svid", MaxTokenTTL: time.Hour, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ca := newSVIDCA(t)
	iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{CA: ca, JWTKeys: jwtKeys, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	svids, err := svid.New(svid.Params{Store: st, Recorder: rec, Issuer: iss, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.New(bundle.Params{TrustDomain: "example.org", X509: ca, JWT: jwtKeys, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := identity.New(identity.Params{Store: st, Recorder: rec, TrustDomain: "example.org", Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := adminauth.New(adminauth.Params{Store: st, Recorder: rec, Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	promReg := prometheus.NewRegistry()
	h, err := httpapi.New(httpapi.Params{
		Identity: reg, Auth: auth, Audit: st, Ready: st.Ping, Registerer: promReg, Gatherer: promReg,
		SVIDs: svids, Bundle: b,
		Logger: log, Clock: clock, Rand: rand.Reader, TrustDomain: "example.org", Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	secret, _, err := auth.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := admin.New(srv.URL, secret)
	if err != nil {
		t.Fatal(err)
	}
	aud, err := c.CreateAdminToken(ctx, admin.CreateAdminTokenRequest{Name: "auditor", Role: "auditor"})
	if err != nil {
		t.Fatal(err)
	}
	return &env{url: srv.URL, store: st, admin: c, token: secret, auditor: aud.Token}
}

func testCSR(t *testing.T) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"ignored.example.com"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), key
}

// TestSVIDsThroughSDK mints both kinds of SVID through the SDK and has
// go-spiffe verify them against the bundle the endpoint serves.
func TestSVIDsThroughSDK(t *testing.T) {
	e := newSVIDEnv(t)
	ctx := context.Background()
	_, a := e.seed(t)
	raw, err := e.admin.TrustBundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	td := spiffeid.RequireTrustDomainFromString("example.org")
	tb, err := spiffebundle.Parse(td, raw)
	if err != nil {
		t.Fatalf("spiffebundle.Parse: %v", err)
	}

	csr, key := testCSR(t)
	x, err := e.admin.IssueSVID(ctx, a.Name, admin.IssueSVIDRequest{Type: admin.SVIDTypeX509, CSR: csr, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	for rest := []byte(x.CertChainPEM); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	id, _, err := x509svid.Verify(chain, tb)
	if err != nil {
		t.Fatalf("x509svid.Verify: %v", err)
	}
	if id.String() != a.SPIFFEID || x.SPIFFEID != a.SPIFFEID || x.Type != admin.SVIDTypeX509 {
		t.Errorf("X.509-SVID for %s (answer %+v), want %s", id, x, a.SPIFFEID)
	}
	if !key.PublicKey.Equal(chain[0].PublicKey) || chain[0].SerialNumber.Text(16) != x.Serial {
		t.Error("the SVID is not of the CSR's key or the serial differs")
	}
	if d := time.Until(x.ExpiresAt); d > 10*time.Minute || d < 9*time.Minute {
		t.Errorf("expires in %s, want 10m", d)
	}

	j, err := e.admin.IssueSVID(ctx, a.ID, admin.IssueSVIDRequest{Type: admin.SVIDTypeJWT, Audience: []string{"spiffe://example.org/db"}})
	if err != nil {
		t.Fatal(err)
	}
	// The bundle fetched before this JWT-SVID was minted verifies it.
	got, err := jwtsvid.ParseAndValidate(j.Token, tb, []string{"spiffe://example.org/db"})
	if err != nil {
		t.Fatalf("jwtsvid.ParseAndValidate: %v", err)
	}
	if got.ID.String() != a.SPIFFEID || j.JTI == "" || got.Claims["jti"] != j.JTI {
		t.Errorf("JWT-SVID sub %s jti %v, answer %+v", got.ID, got.Claims["jti"], j)
	}

	var listed []admin.SVIDRecord
	for token := ""; ; {
		l, err := e.admin.ListSVIDs(ctx, a.Name, 1, token)
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, l.Items...)
		if token = l.NextPageToken; token == "" {
			break
		}
	}
	if len(listed) != 2 || listed[0].Kind != admin.SVIDKindX509 || listed[0].Serial != x.Serial ||
		listed[1].Kind != admin.SVIDKindJWT || listed[1].JTI != j.JTI || listed[1].Audience[0] != "spiffe://example.org/db" ||
		listed[0].KeyID != "sgk_testca" || listed[0].Expired {
		t.Errorf("listed %+v", listed)
	}
	evs, err := e.admin.ListAuditEvents(ctx, admin.AuditQuery{Agent: a.ID, Family: "issuance"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range evs.Items {
		if ev.Type == "credential.issued" {
			var d struct{ Kind string }
			if err := json.Unmarshal(ev.Details, &d); err != nil {
				t.Fatal(err)
			}
			kinds = append(kinds, d.Kind)
		}
	}
	if strings.Join(kinds, ",") != "x509_svid,jwt_svid" {
		t.Errorf("credential.issued events of kinds %v", kinds)
	}
}

// TestSVIDBadInput: every bad request gets a problem and changes nothing.
func TestSVIDBadInput(t *testing.T) {
	e := newSVIDEnv(t)
	ctx := context.Background()
	_, a := e.seed(t)
	if _, err := e.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "paused", Purpose: "p", Owners: []string{"alice@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.SuspendAgent(ctx, "paused", admin.TransitionRequest{}); err != nil {
		t.Fatal(err)
	}
	csr, _ := testCSR(t)
	block, _ := pem.Decode([]byte(csr))
	tampered := bytes.Clone(block.Bytes)
	tampered[len(tampered)-4] ^= 1
	badSig := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}))
	path := "/v1/agents/" + a.Name + "/svids"
	before := e.snapshot(t)
	for _, tc := range []struct {
		name, path, token, body string
		status                  int
		typ, field              string
	}{
		{"bad CSR", path, e.token, `{"type":"x509","csr":"hello"}`, 400, admin.ProblemValidation, "csr"},
		{"CSR signature invalid", path, e.token, `{"type":"x509","csr":` + quote(badSig) + `}`, 400, admin.ProblemValidation, "csr"},
		{"no CSR", path, e.token, `{"type":"x509"}`, 400, admin.ProblemValidation, "csr"},
		{"audience on X.509", path, e.token, `{"type":"x509","csr":` + quote(csr) + `,"audience":["a"]}`, 400, admin.ProblemValidation, "audience"},
		{"missing audience", path, e.token, `{"type":"jwt"}`, 400, admin.ProblemValidation, "audience"},
		{"bad audience", path, e.token, `{"type":"jwt","audience":["a b"]}`, 400, admin.ProblemValidation, "audience"},
		{"CSR on JWT", path, e.token, `{"type":"jwt","audience":["a"],"csr":"x"}`, 400, admin.ProblemValidation, "csr"},
		{"no type", path, e.token, `{"audience":["a"]}`, 400, admin.ProblemValidation, "type"},
		{"unknown type", path, e.token, `{"type":"x509-svid"}`, 400, admin.ProblemValidation, "type"},
		{"bad ttl", path, e.token, `{"type":"jwt","audience":["a"],"ttl":"soon"}`, 400, admin.ProblemValidation, "ttl"},
		{"sub-second ttl", path, e.token, `{"type":"jwt","audience":["a"],"ttl":"10ms"}`, 400, admin.ProblemValidation, "ttl"},
		{"unknown field", path, e.token, `{"type":"jwt","audience":["a"],"sub":"x"}`, 400, admin.ProblemBadRequest, "sub"},
		{"unknown agent", "/v1/agents/nobody/svids", e.token, `{"type":"jwt","audience":["a"]}`, 404, admin.ProblemNotFound, ""},
		{"bad agent ref", "/v1/agents/No%20Such/svids", e.token, `{"type":"jwt","audience":["a"]}`, 400, admin.ProblemValidation, "agent"},
		{"suspended agent", "/v1/agents/paused/svids", e.token, `{"type":"x509","csr":` + quote(csr) + `}`, 409, admin.ProblemIllegalTransition, ""},
	} {
		status, _, p := e.raw(t, http.MethodPost, tc.path, tc.token, "application/json", strings.NewReader(tc.body), nil)
		if status != tc.status || p.Type != tc.typ || p.Field != tc.field {
			t.Errorf("%s: %d %s field %q (%s), want %d %s field %q", tc.name, status, p.Type, p.Field, p.Detail, tc.status, tc.typ, tc.field)
		}
	}
	for name, q := range map[string]string{"bad page token": "?page_token=nope", "bad page size": "?page_size=0"} {
		if status, _, p := e.raw(t, http.MethodGet, path+q, e.token, "", nil, nil); status != 400 || p.Field == "" {
			t.Errorf("%s: %d field %q", name, status, p.Field)
		}
	}
	if diff := cmp.Diff(before, e.snapshot(t)); diff != "" {
		t.Errorf("bad input changed the store (-before +after):\n%s", diff)
	}
	// Refused admin authentication is audited; nothing else happens.
	for _, tc := range []struct {
		name, token string
		status      int
	}{{"auditor", e.auditor, 403}, {"no token", "", 401}} {
		if status, _, _ := e.raw(t, http.MethodPost, path, tc.token, "application/json", strings.NewReader(`{"type":"jwt","audience":["a"]}`), nil); status != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, status, tc.status)
		}
	}
	cs, _, err := e.store.ListCredentials(ctx, store.CredentialFilter{}, store.Page{})
	if err != nil || len(cs) != 0 {
		t.Errorf("credentials recorded: %d, %v", len(cs), err)
	}
}

// quote is s as a JSON string.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBundleEndpoint: public, JSON, cacheable for the refresh hint,
// revalidated by ETag.
func TestBundleEndpoint(t *testing.T) {
	e := newSVIDEnv(t)
	resp, err := http.Get(e.url + "/spiffe/bundle")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" ||
		resp.Header.Get("Cache-Control") != "public, max-age=300" || resp.Header.Get("ETag") == "" {
		t.Fatalf("GET /spiffe/bundle: %d %v", resp.StatusCode, resp.Header)
	}
	status, hdr, _ := e.raw(t, http.MethodGet, "/spiffe/bundle", "", "", nil, map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if status != http.StatusNotModified || hdr.Get("ETag") != resp.Header.Get("ETag") {
		t.Errorf("revalidation: %d ETag %q", status, hdr.Get("ETag"))
	}
	post, err := http.Post(e.url+"/spiffe/bundle", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /spiffe/bundle: %d, want 405", post.StatusCode)
	}
}
