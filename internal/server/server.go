// Package server is agentid's composition root: it turns a Config into a
// running control plane (store, root key, audit recorder and checkpointer,
// signing keys, X.509 CA, SVIDs and the trust bundle, federated trust
// domains' bundles, registry, node registry, admin authentication, HTTP
// API) and owns the start and stop order.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/buildinfo"
	"github.com/agentid/agentid/internal/bundle"
	"github.com/agentid/agentid/internal/ca"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/federation"
	"github.com/agentid/agentid/internal/httpapi"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/internal/ssf"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/postgres"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/internal/svid"
)

// Server is one control-plane process. Construct it with New, then Serve;
// Close releases it.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    store.Store
	checkpts *audit.Checkpointer
	recorder *audit.Recorder
	keys     *keys.Manager
	ca       *ca.Manager
	oauth    *oauth.Server
	tokens   *credential.Issuer // signs access tokens and SETs
	ssf      *ssf.Service
	auth     *adminauth.Service
	handler  http.Handler

	// jwtSVIDKeys, svids and bundle issue SVIDs and publish the trust
	// bundle (svid.go).
	jwtSVIDKeys *keys.Manager
	svids       *svid.Service
	bundle      *bundle.Bundle

	// federation keeps the foreign trust domains' bundles
	// (federation.go); federationRoots verify their bundle endpoints.
	federation      *federation.Manager
	federationRoots *x509.CertPool

	// nodes is the node registry (nodes.go).
	nodes *noderegistry.Service
	// attestors are the configured attestors, shared by the OAuth server
	// and the node registry; nil when there are none.
	attestors *attest.Set

	// delegation holds grants and trusted issuers (delegation.go).
	delegation *delegation.Service

	// node is the node API, nil when node_api.listen is empty
	// (nodeapi.go).
	node *nodeAPI

	// policy is the decision point (policy.go).
	policy *policy.Service
	// approvalWebhook notifies of approval events; nil when not configured.
	approvalWebhook *policy.Webhook

	// retention overrides the audit retention loop's interval and clock
	// (zero: AuditRetentionInterval and the wall clock); set only by tests.
	retention struct {
		every time.Duration
		now   func() time.Time
	}
}

// Params are what New needs besides the config.
type Params struct {
	Logger *slog.Logger
	// Getenv reads AGENTID_ROOT_KEY and AGENTID_POSTGRES_DSN; default
	// os.Getenv.
	Getenv func(string) string
	// FederationRoots verify the TLS certificates of the federated trust
	// domains' bundle endpoints (the Web PKI of the https_web profile);
	// nil: the system's roots. For tests.
	FederationRoots *x509.CertPool
}

// New opens the store (applying migrations), loads or creates the root key
// and the checkpoint key, and builds every service.
func New(ctx context.Context, cfg Config, p Params) (*Server, error) {
	if p.Logger == nil {
		return nil, errors.New("server: Logger is required")
	}
	if p.Getenv == nil {
		p.Getenv = os.Getenv
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data dir: %w", err)
	}
	root, err := loadRootKey(cfg, p.Getenv)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg, p)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: p.Logger, store: st, federationRoots: p.FederationRoots}
	if err := s.build(ctx, root); err != nil {
		_ = st.Close()
		return nil, err
	}
	return s, nil
}

func loadRootKey(cfg Config, getenv func(string) string) (*keys.RootKey, error) {
	if v := getenv("AGENTID_ROOT_KEY"); v != "" {
		k, err := keys.RootKeyFromBase64(v)
		if err != nil {
			return nil, fmt.Errorf("server: AGENTID_ROOT_KEY: %w", err)
		}
		return k, nil
	}
	k, err := keys.LoadOrCreateRootKey(cfg.RootKeyFile)
	if err != nil {
		return nil, fmt.Errorf("server: root key: %w", err)
	}
	return k, nil
}

func openStore(ctx context.Context, cfg Config, p Params) (store.Store, error) {
	switch cfg.Store.Driver {
	case "postgres":
		dsn := cfg.Store.DSN
		if dsn == "" {
			dsn = p.Getenv("AGENTID_POSTGRES_DSN")
		}
		if dsn == "" {
			return nil, fmt.Errorf("%w: store.dsn (or AGENTID_POSTGRES_DSN) is required for the postgres driver", ErrConfig)
		}
		st, err := postgres.Open(ctx, postgres.Params{DSN: dsn, Logger: p.Logger})
		if err != nil {
			return nil, fmt.Errorf("server: open postgres store: %w", err)
		}
		return st, nil
	default:
		st, err := sqlite.Open(ctx, sqlite.Params{Path: cfg.Store.Path, Logger: p.Logger})
		if err != nil {
			return nil, fmt.Errorf("server: open sqlite store: %w", err)
		}
		return st, nil
	}
}

func (s *Server) build(ctx context.Context, root *keys.RootKey) error {
	clock := func() time.Time { return time.Now().UTC() }
	cp, err := audit.NewCheckpointer(ctx, audit.CheckpointerParams{
		Store: s.store, Root: root, Every: s.cfg.Audit.CheckpointEvery, Clock: clock, Rand: rand.Reader, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("server: audit checkpoints: %w", err)
	}
	s.checkpts = cp
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: s.store, Checkpoints: cp, Clock: clock, Rand: rand.Reader, Logger: s.log,
		OnAppend: ssf.NewOutbox(s.cfg.Issuer).OnAppend})
	if err != nil {
		return fmt.Errorf("server: audit recorder: %w", err)
	}
	s.recorder = rec
	if s.keys, err = s.newKeyManager(ctx, root, rec, clock); err != nil {
		return err
	}
	if s.ca, err = s.newCA(ctx, root, rec, clock); err != nil {
		return err
	}
	if s.delegation, err = s.newDelegation(rec, clock); err != nil {
		return err
	}
	if s.oauth, err = s.newOAuth(root, rec, clock); err != nil {
		return err
	}
	if err := s.newSVIDs(ctx, root, rec, clock); err != nil {
		return err
	}
	if err := s.newFederation(ctx, rec, clock); err != nil {
		return err
	}
	if err := s.newNodes(rec, clock); err != nil {
		return err
	}
	if err := s.newNodeAPI(rec, clock); err != nil {
		return err
	}
	if err := s.newPolicy(rec, clock); err != nil {
		return err
	}
	promReg := prometheus.NewRegistry()
	if s.ssf, err = ssf.New(ssf.Params{Store: s.store, Recorder: rec, Signer: s.tokens, Issuer: s.cfg.Issuer, Clock: clock,
		Sealer: root, PushAllowedHosts: s.cfg.SSF.PushAllowedHosts, Logger: s.log, Registerer: promReg}); err != nil {
		return fmt.Errorf("server: shared signals: %w", err)
	}
	reg, err := identity.New(identity.Params{
		Store: s.store, Recorder: rec, TrustDomain: s.cfg.TrustDomain,
		DefaultTTL: s.cfg.Credentials.DefaultTTL, MaxTTLCap: s.cfg.Credentials.MaxTTL,
		Clock: clock, Rand: rand.Reader, OnChange: s.agentsChanged, OwnerGrants: s.delegation,
	})
	if err != nil {
		return fmt.Errorf("server: registry: %w", err)
	}
	s.auth, err = adminauth.New(adminauth.Params{Store: s.store, Recorder: rec, Clock: clock, Rand: rand.Reader})
	if err != nil {
		return fmt.Errorf("server: admin auth: %w", err)
	}
	proxies, err := s.cfg.Proxies()
	if err != nil {
		return err
	}
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		auditIndexLag(s.store))
	s.handler, err = httpapi.New(httpapi.Params{
		Identity: reg, Auth: s.auth, Audit: s.store, PruneAudit: rec.Prune, Ready: s.store.Ping,
		Keys: s.keys, Issuer: s.cfg.Issuer, OAuth: s.oauth, CA: s.ca,
		SVIDs: s.svids, Bundle: s.bundle, Federation: s.federation, Nodes: s.nodes, Policy: s.policy,
		Grants: s.delegation, SSF: s.ssf,
		Registerer: promReg, Gatherer: promReg,
		Logger: s.log, Clock: clock, Rand: rand.Reader,
		TrustDomain: s.cfg.TrustDomain, Version: buildinfo.Version, TrustedProxies: proxies,
		FailedAuth: s.cfg.Limits.failedAuth(), Recorder: rec,
	})
	if err != nil {
		return fmt.Errorf("server: http api: %w", err)
	}
	return nil
}

// Handler is the server's HTTP handler (for tests that serve it
// themselves). Serve also runs the signing-key refresh; a caller serving
// Handler for longer than the keys' prepublication delay (about 6 min)
// must run Keys().Run (and CA().Run and JWTSVIDKeys().Run) too, or
// signing stops with keys.ErrStale.
func (s *Server) Handler() http.Handler { return s.handler }

// Keys is the manager of the OAuth token signing keys.
func (s *Server) Keys() *keys.Manager { return s.keys }

// Auth is the admin authentication service (dev mode mints tokens with it).
func (s *Server) Auth() *adminauth.Service { return s.auth }

// Bootstrap creates the bootstrap admin token if no admin token exists yet
// and returns its secret (shown once) and whether it was created.
func (s *Server) Bootstrap(ctx context.Context) (string, bool, error) {
	secret, created, err := s.auth.Bootstrap(ctx)
	if err != nil {
		return "", false, fmt.Errorf("server: bootstrap admin token: %w", err)
	}
	return secret, created, nil
}

// Listen opens the configured listener.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("server: listen: %w", err)
	}
	return ln, nil
}

// Serve serves HTTP(S) on ln, and the node API when node_api.listen is
// set (on the listener ListenNodeAPI opened, or a new one), and runs the
// periodic checkpointer and the signing-key refresh (and scheduled
// rotation) until ctx is cancelled, then shuts down gracefully (in-flight
// requests finish, up to 10 s; watch streams of the node API end at once)
// and signs a final checkpoint.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("server: tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		s.requestClientCerts(srv.TLSConfig)
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	nodeLn, err := s.nodeListener()
	if err != nil {
		return err
	}

	cpCtx, stopCP := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.checkpts.Run(cpCtx, s.cfg.Audit.CheckpointInterval); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("audit checkpointer stopped", "err", err)
		}
	}()
	wg.Go(func() { s.keys.Run(cpCtx) })
	wg.Go(func() { s.ca.Run(cpCtx) })
	wg.Go(func() { s.jwtSVIDKeys.Run(cpCtx) })
	wg.Go(func() { s.federation.Run(cpCtx) })
	wg.Go(func() { s.runCollectors(cpCtx) })
	wg.Go(func() { s.runAuditIndexer(cpCtx) })
	wg.Go(func() { s.runAuditRetention(cpCtx) })
	wg.Go(func() { s.runApprovalWebhook(cpCtx) })
	wg.Go(func() { s.runSSFPush(cpCtx) })
	s.runNodeAPI(cpCtx, &wg)

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	servers := []*http.Server{srv}
	if nodeLn != nil {
		s.log.Info("node API serving", "addr", nodeLn.Addr().String())
		nsrv := s.nodeServer(ctx)
		servers = append(servers, nsrv)
		go func() { errc <- nsrv.ServeTLS(nodeLn, "", "") }()
	}
	running := len(servers)
	select {
	case err = <-errc: // a listener failed: stop the other too
		running--
	case <-ctx.Done():
	}
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	shErrs := make([]error, len(servers))
	var swg sync.WaitGroup
	for i, hs := range servers {
		swg.Go(func() { shErrs[i] = hs.Shutdown(shCtx) })
	}
	swg.Wait()
	cancel()
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		err = errors.Join(shErrs...)
	}
	for ; running > 0; running-- {
		if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			s.log.Warn("http server", "err", serr)
		}
	}
	stopCP()
	wg.Wait()
	if _, cerr := s.checkpts.CheckpointHead(context.WithoutCancel(ctx)); cerr != nil {
		s.log.Warn("final audit checkpoint", "err", cerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close closes the store.
func (s *Server) Close() error { return s.store.Close() }

// NewLogger builds the process logger from the config.
func NewLogger(w io.Writer, c LogConfig) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
