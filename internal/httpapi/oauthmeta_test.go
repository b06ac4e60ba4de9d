package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/agentid/agentid/internal/golden"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/httpapi"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/sdk/admin"
)

// keyClock is the settable clock of the signing keys in these tests.
type keyClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *keyClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *keyClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// keyAudit is the server's adapter of key events to the audit trail.
type keyAudit struct{ rec *audit.Recorder }

func (a keyAudit) RecordKeyEvent(ctx context.Context, tx store.Tx, ev keys.Event) error {
	o := audit.Origin{Actor: audit.Actor{Type: ev.Origin.ActorType, ID: ev.Origin.ActorID},
		Source: audit.Source{IP: ev.Origin.IP, UserAgent: ev.Origin.UserAgent}, TraceID: ev.Origin.TraceID}
	e := o.Event(audit.Admin, ev.Type)
	e.Details = ev.Details()
	_, err := a.rec.Append(ctx, tx, e)
	return err
}

// metaEnv is the HTTP API with signing keys, on a real SQLite store.
type metaEnv struct {
	st      store.Store
	keys    *keys.Manager
	clk     *keyClock
	handler http.Handler
	url     string // of the running server
	admin   *admin.Client
	secret  string // the admin token
	auditor string
}

// newMetaEnv builds the API with the issuer; an empty issuer means the
// server's own URL. rnd, when set, makes the keys deterministic.
func newMetaEnv(t testing.TB, issuer string, rnd io.Reader) *metaEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, sqlite.Params{Path: filepath.Join(dir, "agentid.db"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	root, err := keys.NewRootKey(bytes.Repeat([]byte{7}, keys.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return time.Now().UTC() }
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	e := &metaEnv{st: st, clk: &keyClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}}
	if rnd == nil {
		rnd = rand.Reader
	}
	e.keys, err = keys.NewManager(ctx, keys.ManagerParams{Store: st, Root: root, Purpose: "oauth",
		MaxTokenTTL: time.Hour, Holder: "test", Recorder: keyAudit{rec}, Clock: e.clk.Now, Rand: rnd, Logger: log})
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
	srv := httptest.NewUnstartedServer(nil)
	e.url = "http://" + srv.Listener.Addr().String()
	if issuer == "" {
		issuer = e.url
	}
	promReg := prometheus.NewRegistry()
	e.handler, err = httpapi.New(httpapi.Params{
		Identity: reg, Auth: auth, Audit: st, Ready: st.Ping, Registerer: promReg, Gatherer: promReg,
		Keys: e.keys, Issuer: issuer,
		Logger: log, Clock: clock, Rand: rand.Reader, TrustDomain: "example.org", Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = e.handler
	srv.Start()
	t.Cleanup(srv.Close)
	secret, _, err := auth.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.secret = secret
	if e.admin, err = admin.New(e.url, secret); err != nil {
		t.Fatal(err)
	}
	aud, err := e.admin.CreateAdminToken(ctx, admin.CreateAdminTokenRequest{Name: "auditor", Role: "auditor"})
	if err != nil {
		t.Fatal(err)
	}
	e.auditor = aud.Token
	return e
}

// serve answers one request in-process.
func (e *metaEnv) serve(method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, req)
	return w
}

func indent(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// TestDiscoveryDocuments fixes both discovery documents (RFC 8414 §2,
// OpenID Connect Discovery 1.0 §3) and the JWKS (RFC 7517 §5) on the wire.
func TestDiscoveryDocuments(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 3)
	e := newMetaEnv(t, "https://id.example.org/agentid", mathrand.NewChaCha8([32]byte{3}))
	for _, tt := range []struct {
		path, golden, contentType string
	}{
		{"/.well-known/oauth-authorization-server", "oauth_authorization_server", "application/json"},
		{"/.well-known/oauth-authorization-server/agentid", "oauth_authorization_server", "application/json"}, // RFC 8414 §3.1
		{"/.well-known/openid-configuration", "openid_configuration", "application/json"},
		{"/oauth2/jwks", "jwks", "application/jwk-set+json"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			w := e.serve("GET", tt.path, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			h := w.Header()
			want := map[string]string{
				"Content-Type": tt.contentType, "Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*",
			}
			for k, v := range want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			golden.Check(t, tt.golden, indent(t, w.Body.Bytes()))

			// Revalidation: the ETag answers 304 without a body.
			tag := h.Get("ETag")
			if !strings.HasPrefix(tag, `"`) {
				t.Fatalf("ETag %q", tag)
			}
			w = e.serve("GET", tt.path, map[string]string{"If-None-Match": `"other", ` + tag})
			if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
				t.Errorf("If-None-Match: %d %q", w.Code, w.Body)
			}
			w = e.serve("HEAD", tt.path, nil)
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Errorf("HEAD: %d %q", w.Code, w.Body)
			}
		})
	}
	body, _ := e.keys.JWKS()
	if w := e.serve("GET", "/oauth2/jwks", nil); !bytes.Equal(w.Body.Bytes(), body) {
		t.Error("the endpoint does not serve the manager's JWKS")
	}
}

// TestGoOIDCAcceptsDiscovery: a resource server using go-oidc discovers
// the issuer, fetches the JWKS from jwks_uri, and verifies tokens signed
// by the current key, across a rotation.
func TestGoOIDCAcceptsDiscovery(t *testing.T) {
	e := newMetaEnv(t, "", nil)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	if got := provider.Endpoint().TokenURL; got != e.url+"/oauth2/token" {
		t.Errorf("token URL %q", got)
	}
	var claims struct {
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&claims); err != nil || claims.JWKSURI != e.url+"/oauth2/jwks" {
		t.Fatalf("jwks_uri %q: %v", claims.JWKSURI, err)
	}
	verifier := provider.Verifier(&oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: []string{"ES256", "EdDSA"}})
	keySet := oidc.NewRemoteKeySet(ctx, claims.JWKSURI)
	sign := func(k *keys.ActiveKey) string {
		t.Helper()
		opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), k.ID)
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: k.Signer()}, opts)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		raw, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: e.url, Subject: "spiffe://example.org/agent/bot",
			Audience: jwt.Audience{"https://api.example.org"}, IssuedAt: jwt.NewNumericDate(now),
			Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	verify := func(raw string) {
		t.Helper()
		if _, err := verifier.Verify(ctx, raw); err != nil {
			t.Fatalf("go-oidc verifier: %v", err)
		}
		if _, err := keySet.VerifySignature(ctx, raw); err != nil {
			t.Fatalf("go-oidc RemoteKeySet: %v", err)
		}
	}
	k1, err := e.keys.Current()
	if err != nil {
		t.Fatal(err)
	}
	verify(sign(k1))

	// Rotate; once the new key signs, the cached key sets refetch the JWKS
	// for the unknown kid, and tokens of the old key still verify.
	if _, err := e.admin.RotateSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(7 * time.Minute)
	if err := e.keys.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	k2, err := e.keys.Current()
	if err != nil || k2.ID == k1.ID {
		t.Fatalf("after rotation Current = %v, %v", k2, err)
	}
	verify(sign(k2))
	verify(sign(k1))
}

func TestSigningKeysAdmin(t *testing.T) {
	e := newMetaEnv(t, "", nil)
	ctx := context.Background()
	first, err := e.admin.ListSigningKeys(ctx, false)
	if err != nil || len(first) != 1 || first[0].State != admin.SigningKeyActive || first[0].RetireAt != nil {
		t.Fatalf("ListSigningKeys = %+v, %v", first, err)
	}
	k, err := e.admin.RotateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clk.Now()
	want := admin.SigningKey{ID: k.ID, Algorithm: "ES256", Purpose: "oauth", State: admin.SigningKeyPending,
		PublishAt: now, ActivateAt: now.Add(6 * time.Minute), CreatedAt: now}
	if diff := cmp.Diff(want, k); diff != "" {
		t.Fatalf("RotateSigningKey (-want +got):\n%s", diff)
	}
	list, err := e.admin.ListSigningKeys(ctx, false)
	if err != nil || len(list) != 2 || list[0].State != admin.SigningKeyActive || list[1].ID != k.ID ||
		list[0].RetireAt == nil || !list[0].RetireAt.Equal(k.ActivateAt) {
		t.Fatalf("after rotation ListSigningKeys = %+v, %v", list, err)
	}
	// After the old key's tokens expired it leaves the JWKS and the
	// default list.
	e.clk.Advance(2 * time.Hour)
	if err := e.keys.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if list, err = e.admin.ListSigningKeys(ctx, false); err != nil || len(list) != 1 || list[0].ID != k.ID {
		t.Fatalf("ListSigningKeys = %+v, %v", list, err)
	}
	if list, err = e.admin.ListSigningKeys(ctx, true); err != nil || len(list) != 2 || list[0].State != admin.SigningKeyRemoved {
		t.Fatalf("ListSigningKeys(include removed) = %+v, %v", list, err)
	}

	// The rotation is an audit event of the admin who asked.
	evs, err := e.admin.ListAuditEvents(ctx, admin.AuditQuery{Family: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	var rotated *admin.AuditEvent
	for i := range evs.Items {
		if evs.Items[i].Type == keys.EventKeyRotated {
			rotated = &evs.Items[i]
		}
	}
	if rotated == nil || rotated.Actor == nil || rotated.Actor.Type != "admin" || rotated.Task == nil || rotated.Task.TraceID == "" {
		t.Fatalf("key.rotated event %+v", rotated)
	}
	var details map[string]any
	if err := json.Unmarshal(rotated.Details, &details); err != nil || details["kid"] != k.ID || details["retired_kid"] != first[0].ID {
		t.Fatalf("details %s: %v", rotated.Details, err)
	}

	for _, tt := range []struct {
		name, method, path, token, body string
		status                          int
		typ                             string
	}{
		{"auditor may not list", "GET", "/v1/keys", e.auditor, "", 403, admin.ProblemForbidden},
		{"auditor may not rotate", "POST", "/v1/keys/rotate", e.auditor, "", 403, admin.ProblemForbidden},
		{"no token", "POST", "/v1/keys/rotate", "", "", 401, admin.ProblemUnauthenticated},
		{"unknown body field", "POST", "/v1/keys/rotate", "admin", `{"algorithm":"EdDSA"}`, 400, admin.ProblemBadRequest},
		{"wrong method", "GET", "/v1/keys/rotate", "admin", "", 405, admin.ProblemMethodNotAllowed},
		{"bad include_removed", "GET", "/v1/keys?include_removed=maybe", "admin", "", 400, admin.ProblemBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, err := e.st.ListSigningKeys(ctx, "oauth")
			if err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequestWithContext(ctx, tt.method, e.url+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			token := tt.token
			if token == "admin" {
				token = e.secret
			}
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p admin.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || p.Type != tt.typ {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, p.Type, tt.status, tt.typ)
			}
			after, err := e.st.ListSigningKeys(ctx, "oauth")
			if err != nil || len(after) != len(before) {
				t.Fatalf("the request changed the keys: %d → %d (%v)", len(before), len(after), err)
			}
		})
	}
}

func TestKeysRequireIssuer(t *testing.T) {
	st, err := sqlite.Open(context.Background(), sqlite.Params{Path: filepath.Join(t.TempDir(), "a.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rec, _ := audit.NewRecorder(audit.RecorderParams{Store: st})
	reg, _ := identity.New(identity.Params{Store: st, Recorder: rec, TrustDomain: "example.org"})
	auth, _ := adminauth.New(adminauth.Params{Store: st, Recorder: rec})
	m, err := keys.NewManager(context.Background(), keys.ManagerParams{Store: st, Root: mustRoot(t), Purpose: "oauth", MaxTokenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	promReg := prometheus.NewRegistry()
	_, err = httpapi.New(httpapi.Params{Identity: reg, Auth: auth, Audit: st, Ready: st.Ping, Registerer: promReg,
		Gatherer: promReg, Keys: m, Logger: slog.New(slog.DiscardHandler), Clock: time.Now, Rand: rand.Reader})
	if err == nil || !strings.Contains(err.Error(), "Issuer") {
		t.Fatalf("New without Issuer = %v", err)
	}
}

func mustRoot(t *testing.T) *keys.RootKey {
	t.Helper()
	k, err := keys.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzJWKSIfNoneMatch: any If-None-Match header gets the JWKS or a 304,
// never an error.
func FuzzJWKSIfNoneMatch(f *testing.F) {
	f.Add(`"abc"`)
	f.Add(`W/"abc", *`)
	f.Add(`,,,`)
	e := newMetaEnv(f, "https://id.example.org", nil)
	tag := e.serve("GET", "/oauth2/jwks", nil).Header().Get("ETag")
	f.Add(tag)
	f.Fuzz(func(t *testing.T, inm string) {
		w := e.serve("GET", "/oauth2/jwks", map[string]string{"If-None-Match": inm})
		switch w.Code {
		case http.StatusOK:
			if w.Body.Len() == 0 {
				t.Fatal("empty JWKS")
			}
		case http.StatusNotModified:
			if !strings.Contains(inm, tag) && !strings.Contains(inm, "*") {
				t.Fatalf("304 for %q (ETag %s)", inm, tag)
			}
		default:
			t.Fatalf("status %d for %q", w.Code, inm)
		}
	})
}
