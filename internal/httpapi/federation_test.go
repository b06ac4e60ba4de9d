package httpapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/audit"
	agentfed "github.com/agentid/agentid/internal/federation"
	"github.com/agentid/agentid/internal/httpapi"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/sdk/admin"
)

// fedEnv is the admin API with one federated trust domain, partner.example,
// whose bundle endpoint is go-spiffe's federation handler.
type fedEnv struct {
	admin, auditor *admin.Client
	url, secret    string
	fail           *atomic.Bool
	endpoint       string
}

func newFedEnv(t *testing.T) *fedEnv {
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

	// The foreign trust domain: a CA, its bundle, its endpoint.
	td := spiffeid.RequireTrustDomainFromString("partner.example")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "partner CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		URIs: []*url.URL{{Scheme: "spiffe", Host: "partner.example"}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	b := spiffebundle.FromX509Authorities(td, []*x509.Certificate{cert})
	b.SetSequenceNumber(42)
	b.SetRefreshHint(10 * time.Minute)
	fh, err := federation.NewHandler(td, b)
	if err != nil {
		t.Fatal(err)
	}
	e := &fedEnv{fail: &atomic.Bool{}}
	ep := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.fail.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		fh.ServeHTTP(w, r)
	}))
	t.Cleanup(ep.Close)
	e.endpoint = ep.URL + "/bundle"
	roots := x509.NewCertPool()
	roots.AddCert(ep.Certificate())
	fed, err := agentfed.New(ctx, agentfed.Params{
		Store: st, Recorder: rec, TrustDomain: "example.org", RootCAs: roots, Holder: "test", Clock: clock,
		Domains: []agentfed.Domain{{TrustDomain: "partner.example", EndpointURL: e.endpoint}},
	})
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
		Identity: reg, Auth: auth, Audit: st, Ready: st.Ping, Registerer: promReg, Gatherer: promReg, Federation: fed,
		Logger: log, Clock: clock, Rand: rand.Reader, TrustDomain: "example.org", Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	if e.secret, _, err = auth.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if e.admin, err = admin.New(e.url, e.secret); err != nil {
		t.Fatal(err)
	}
	aud, err := e.admin.CreateAdminToken(ctx, admin.CreateAdminTokenRequest{Name: "auditor", Role: "auditor"})
	if err != nil {
		t.Fatal(err)
	}
	if e.auditor, err = admin.New(e.url, aud.Token); err != nil {
		t.Fatal(err)
	}
	return e
}

func wantProblem(t *testing.T, what string, err error, status int, typ string) {
	t.Helper()
	var p *admin.Problem
	if !errors.As(err, &p) || p.Status != status || p.Type != typ {
		t.Errorf("%s: error %v, want a %d %s problem", what, err, status, typ)
	}
}

func TestFederationAdmin(t *testing.T) {
	e := newFedEnv(t)
	ctx := context.Background()
	l, err := e.admin.ListFederation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 || l.Items[0].HasBundle || l.Items[0].BundleEndpointProfile != "https_web" || l.Items[0].BundleEndpointURL != e.endpoint {
		t.Fatalf("before any fetch: %+v", l.Items)
	}
	_, err = e.admin.FederatedBundle(ctx, "partner.example")
	wantProblem(t, "bundle before any fetch", err, http.StatusNotFound, admin.ProblemNotFound)

	got, err := e.admin.RefreshFederatedBundle(ctx, "partner.example")
	if err != nil {
		t.Fatalf("RefreshFederatedBundle: %v", err)
	}
	if !got.HasBundle || got.Sequence != 42 || got.RefreshHintSeconds != 600 || got.X509Authorities != 1 || got.JWTAuthorities != 0 ||
		got.FetchedAt == nil || got.RefreshAt == nil || got.RefreshAt.Sub(*got.FetchedAt) != 10*time.Minute || got.LastError != "" {
		t.Errorf("after refresh: %+v", got)
	}
	l, err = e.admin.ListFederation(ctx)
	if err != nil || len(l.Items) != 1 || !cmp.Equal(l.Items[0], got) {
		t.Errorf("ListFederation = %+v, %v; want [%+v]", l.Items, err, got)
	}
	raw, err := e.admin.FederatedBundle(ctx, "partner.example")
	if err != nil {
		t.Fatal(err)
	}
	b, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("partner.example"), raw)
	if seq, _ := b.SequenceNumber(); err != nil || seq != 42 || len(b.X509Authorities()) != 1 {
		t.Errorf("the stored bundle does not parse back: %v", err)
	}

	e.fail.Store(true)
	_, err = e.admin.RefreshFederatedBundle(ctx, "partner.example")
	wantProblem(t, "refresh of a failing endpoint", err, http.StatusBadGateway, admin.ProblemBundleFetchFailed)
	var p *admin.Problem
	if errors.As(err, &p) && (!strings.Contains(p.Detail, "503") || !strings.Contains(p.Detail, "last good bundle")) {
		t.Errorf("problem detail %q", p.Detail)
	}
	l, _ = e.admin.ListFederation(ctx)
	if it := l.Items[0]; it.Failures != 1 || !strings.Contains(it.LastError, "503") || it.Sequence != 42 {
		t.Errorf("after a failed refresh: %+v", it)
	}

	_, err = e.admin.RefreshFederatedBundle(ctx, "unknown.example")
	wantProblem(t, "refresh of an unknown trust domain", err, http.StatusNotFound, admin.ProblemNotFound)
	_, err = e.admin.FederatedBundle(ctx, "unknown.example")
	wantProblem(t, "bundle of an unknown trust domain", err, http.StatusNotFound, admin.ProblemNotFound)
	_, err = e.auditor.ListFederation(ctx)
	wantProblem(t, "auditor", err, http.StatusForbidden, admin.ProblemForbidden)

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/v1/federation/partner.example/refresh", strings.NewReader(`{"force":true}`))
	req.Header.Set("Authorization", "Bearer "+e.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("refresh with a body: %d, want 400", resp.StatusCode)
	}
}

func TestAgentFederatesWithWire(t *testing.T) {
	e := newFedEnv(t)
	ctx := context.Background()
	own, err := e.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Email: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "fed", Purpose: "p", Owners: []string{own.ID},
		FederatesWith: []string{"partner.example", "acme.example"}})
	if err != nil || !cmp.Equal(a.FederatesWith, []string{"acme.example", "partner.example"}) {
		t.Fatalf("CreateAgent = %+v, %v", a.FederatesWith, err)
	}
	plain, err := e.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "plain", Purpose: "p", Owners: []string{own.ID}})
	if err != nil || plain.FederatesWith == nil || len(plain.FederatesWith) != 0 {
		t.Fatalf("an agent without federation: %#v, %v; want []", plain.FederatesWith, err)
	}
	a, err = e.admin.UpdateAgent(ctx, "fed", admin.UpdateAgentRequest{FederatesWith: &[]string{}})
	if err != nil || len(a.FederatesWith) != 0 || a.Version != 2 {
		t.Fatalf("clear: %+v, %v", a, err)
	}
	_, err = e.admin.UpdateAgent(ctx, "fed", admin.UpdateAgentRequest{FederatesWith: &[]string{"example.org"}})
	wantProblem(t, "own trust domain", err, http.StatusBadRequest, admin.ProblemValidation)
	var p *admin.Problem
	if errors.As(err, &p) && p.Field != "federates_with[0]" {
		t.Errorf("field %q, want federates_with[0]", p.Field)
	}
}
