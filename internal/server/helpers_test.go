package server_test

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/federation"

	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// controlPlane is a server serving its HTTP API on a loopback socket until
// the end of the test.
type controlPlane struct {
	srv   *server.Server
	cfg   server.Config // the configuration srv was built from
	url   string        // cfg.Issuer
	token string        // the bootstrap admin token
	admin *admin.Client // an admin client holding token
	// stop stops Serve and closes the server the first time it is called
	// and returns Serve's error every time; the test's cleanup calls it
	// and reports that error.
	stop func() error
}

// devListener listens on a loopback port and returns the listener and
// server.DevConfig for it (issuer http://<addr>, data in a temporary
// directory), changed by mutate when it is not nil.
func devListener(tb testing.TB, mutate func(*server.Config)) (net.Listener, server.Config) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	cfg := server.DevConfig(tb.TempDir(), ln.Addr().String())
	cfg.Issuer = "http://" + ln.Addr().String()
	if mutate != nil {
		mutate(&cfg)
	}
	return ln, cfg
}

// startDev is serve on devListener(tb, mutate) with default Params.
func startDev(tb testing.TB, mutate func(*server.Config)) *controlPlane {
	tb.Helper()
	ln, cfg := devListener(tb, mutate)
	return serve(tb, ln, cfg, server.Params{}, nil)
}

// serve builds a server from cfg and p (a nil Logger discards), bootstraps
// its first admin token, calls beforeServe (when not nil) and serves on ln
// until stop or the end of the test.
func serve(tb testing.TB, ln net.Listener, cfg server.Config, p server.Params, beforeServe func(*server.Server)) *controlPlane {
	tb.Helper()
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(tb.Context())
	srv, err := server.New(ctx, cfg, p)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	cp := &controlPlane{srv: srv, cfg: cfg, url: cfg.Issuer}
	var (
		once     sync.Once
		serving  bool
		done     = make(chan error, 1)
		serveErr error
	)
	cp.stop = func() error {
		once.Do(func() {
			cancel()
			if serving {
				serveErr = <-done
			} else {
				_ = ln.Close()
			}
			_ = srv.Close()
		})
		return serveErr
	}
	tb.Cleanup(func() {
		if err := cp.stop(); err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	if cp.token, _, err = srv.Bootstrap(ctx); err != nil {
		tb.Fatal(err)
	}
	if beforeServe != nil {
		beforeServe(srv)
	}
	serving = true
	go func() { done <- srv.Serve(ctx, ln) }()
	if cp.admin, err = admin.New(cfg.Issuer, cp.token); err != nil {
		tb.Fatal(err)
	}
	return cp
}

// mustGet is a GET request for u, bound to the test's context.
func mustGet(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// servePartner is serve for a server federating with the trust domain of
// initial, whose bundle endpoint (go-spiffe's handler behind TLS, trusted
// through Params.FederationRoots) serves served; initial is the
// initial_bundle_file, and extraYAML is appended to the configuration.
func servePartner(t *testing.T, initial, served *spiffebundle.Bundle, extraYAML string, beforeServe func(*server.Server)) *controlPlane {
	t.Helper()
	h, err := federation.NewHandler(served.TrustDomain(), served)
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
		"  - trust_domain: "+initial.TrustDomain().Name()+"\n    bundle_endpoint_url: "+ep.URL+"/bundle\n"+
		"    initial_bundle_file: partner.json\n"+extraYAML), dir)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, ln, cfg, server.Params{FederationRoots: roots}, beforeServe)
}
