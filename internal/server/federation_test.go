package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// TestServerFederation: a server configured with a foreign trust domain
// (go-spiffe's bundle endpoint handler behind TLS) serves the initial
// bundle from start, fetches the endpoint's bundle in Serve, lists it on
// the admin API, and hands it out for an agent that federates with it.
func TestServerFederation(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("partner.example")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "partner CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		URIs: []*url.URL{{Scheme: "spiffe", Host: "partner.example"}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	initial := spiffebundle.FromX509Authorities(td, []*x509.Certificate{cert})
	initial.SetSequenceNumber(1)
	fetched := initial.Clone()
	fetched.SetSequenceNumber(2)
	h, err := federation.NewHandler(td, fetched)
	if err != nil {
		t.Fatal(err)
	}
	ep := httptest.NewTLSServer(h)
	t.Cleanup(ep.Close)
	roots := x509.NewCertPool()
	roots.AddCert(ep.Certificate())

	dir := t.TempDir()
	raw, err := initial.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "partner.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := server.ParseConfig([]byte("listen: "+ln.Addr().String()+"\ndata_dir: data\nfederation:\n"+
		"  - trust_domain: partner.example\n    bundle_endpoint_url: "+ep.URL+"/bundle\n    initial_bundle_file: partner.json\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	srv, err := server.New(ctx, cfg, server.Params{Logger: slog.New(slog.DiscardHandler), FederationRoots: roots})
	if err != nil {
		t.Fatal(err)
	}
	if b := srv.Federation().Bundles()["partner.example"]; b.Sequence != 1 {
		t.Fatalf("before Serve: %+v; want the initial bundle", b)
	}
	tok, _, err := srv.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changed := srv.Federation().Changed()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		_ = srv.Close()
	})
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve fetched no bundle within 10 s")
	}
	ac, err := admin.New(cfg.Issuer, tok)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ac.ListFederation(ctx)
	if err != nil || len(l.Items) != 1 || l.Items[0].Sequence != 2 || l.Items[0].FetchedAt == nil {
		t.Fatalf("ListFederation = %+v, %v", l.Items, err)
	}

	owner, err := ac.CreateOwner(ctx, admin.CreateOwnerRequest{Email: "o@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := ac.CreateAgent(ctx, admin.CreateAgentRequest{Name: "fed", Purpose: "p", Owners: []string{owner.ID},
		FederatesWith: []string{"partner.example", "later.example"}})
	if err != nil {
		t.Fatal(err)
	}
	got := srv.Federation().BundlesFor(a.FederatesWith)
	if len(got) != 1 || got["partner.example"].Sequence != 2 || len(got["partner.example"].X509Authorities) != 1 {
		t.Errorf("BundlesFor(%q) = %+v; want partner.example's fetched bundle", a.FederatesWith, got)
	}

	cfg.Federation[0].InitialBundleFile = filepath.Join(dir, "missing.json")
	if _, err := server.New(ctx, cfg, server.Params{Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Error("New with a missing initial bundle file succeeded")
	}
}
