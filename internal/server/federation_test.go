package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
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
	var changed <-chan struct{}
	cp := servePartner(t, initial, fetched, "", func(srv *server.Server) {
		if b := srv.Federation().Bundles()["partner.example"]; b.Sequence != 1 {
			t.Fatalf("before Serve: %+v; want the initial bundle", b)
		}
		changed = srv.Federation().Changed()
	})
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve fetched no bundle within 10 s")
	}
	ctx, ac, srv := t.Context(), cp.admin, cp.srv
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

	cfg := cp.cfg
	cfg.Federation[0].InitialBundleFile = filepath.Join(filepath.Dir(cfg.Federation[0].InitialBundleFile), "missing.json")
	if _, err := server.New(ctx, cfg, server.Params{Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Error("New with a missing initial bundle file succeeded")
	}
}
