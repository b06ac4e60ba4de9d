package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/nodeapi"
)

// nodeAPI is the node API's part of the server (docs/adr/0012-node-api.md):
// the snapshot hub, the server's own certificate, the handler and the TLS
// configuration of its listener.
type nodeAPI struct {
	hub     *nodeapi.Hub
	cert    *nodeapi.ServerCert
	handler *nodeapi.Handler
	tls     *tls.Config

	mu sync.Mutex
	ln net.Listener // opened by ListenNodeAPI, served by Serve
}

// newNodeAPI builds the node API when node_api.listen is set. The server
// certificate lives as long as a node's SVID (1 h, or credentials.max_ttl
// when shorter), so that the CA schedule covers it.
func (s *Server) newNodeAPI(rec *audit.Recorder, clock func() time.Time) error {
	if s.cfg.NodeAPI.Listen == "" {
		return nil
	}
	holder, err := replicaID()
	if err != nil {
		return err
	}
	n := &nodeAPI{}
	if n.hub, err = nodeapi.NewHub(nodeapi.HubParams{
		Agents: s.store, Bundle: s.bundle, Federation: s.federation, CA: s.ca,
		SyncInterval: s.cfg.NodeAPI.SyncInterval, Clock: clock, Logger: s.log,
	}); err != nil {
		return fmt.Errorf("server: node API: %w", err)
	}
	iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{CA: s.ca, Rand: rand.Reader})
	if err != nil {
		return fmt.Errorf("server: node API: %w", err)
	}
	if n.cert, err = nodeapi.NewServerCert(nodeapi.ServerCertParams{
		TrustDomain: s.cfg.TrustDomain, Issuer: iss, CA: s.ca, Recorder: rec,
		TTL:    min(credential.DefaultX509SVIDTTL, s.cfg.Credentials.MaxTTL),
		Holder: holder, Clock: clock, Rand: rand.Reader, Logger: s.log,
	}); err != nil {
		return fmt.Errorf("server: node API: %w", err)
	}
	if n.handler, err = nodeapi.NewHandler(nodeapi.HandlerParams{
		TrustDomain: s.cfg.TrustDomain, Nodes: s.nodes, SVIDs: s.svids, Hub: n.hub,
		Clock: clock, Rand: rand.Reader, Logger: s.log,
	}); err != nil {
		return fmt.Errorf("server: node API: %w", err)
	}
	if n.tls, err = nodeapi.ServerTLSConfig(nodeapi.ServerTLSParams{
		TrustDomain: s.cfg.TrustDomain, GetCertificate: n.cert.GetCertificate,
		Authorities: s.ca.X509Authorities, Clock: clock,
	}); err != nil {
		return fmt.Errorf("server: node API: %w", err)
	}
	s.node = n
	return nil
}

// agentsChanged is the registry's change hook: nodes learn of a change of
// this replica at once.
func (s *Server) agentsChanged() {
	if s.node != nil {
		s.node.hub.Poke()
	}
}

// NodeAPIEnabled reports whether node_api.listen is configured.
func (s *Server) NodeAPIEnabled() bool { return s.node != nil }

// ListenNodeAPI opens the node API's listener (node_api.listen; port 0
// picks a free one) for Serve, which then serves and closes it, and
// returns it so that the caller learns its address. Serve opens it itself
// when ListenNodeAPI was not called. Errors when the node API is disabled
// or the listener is already open.
func (s *Server) ListenNodeAPI() (net.Listener, error) {
	if s.node == nil {
		return nil, errors.New("server: node API: node_api.listen is not configured")
	}
	s.node.mu.Lock()
	defer s.node.mu.Unlock()
	if s.node.ln != nil {
		return nil, errors.New("server: node API: the listener is already open")
	}
	ln, err := net.Listen("tcp", s.cfg.NodeAPI.Listen)
	if err != nil {
		return nil, fmt.Errorf("server: node API: listen: %w", err)
	}
	s.node.ln = ln
	return ln, nil
}

// nodeListener returns the listener Serve serves the node API on: the one
// ListenNodeAPI opened, or a new one; nil when the node API is disabled.
func (s *Server) nodeListener() (net.Listener, error) {
	if s.node == nil {
		return nil, nil
	}
	s.node.mu.Lock()
	ln := s.node.ln
	s.node.mu.Unlock()
	if ln != nil {
		return ln, nil
	}
	return s.ListenNodeAPI()
}

// nodeServer is the HTTP server of the node API: no read or write timeout
// on the connection, since watch streams last (the handler bounds unary
// bodies and each write), and watch streams end as soon as a shutdown
// starts.
func (s *Server) nodeServer(ctx context.Context) *http.Server {
	srv := &http.Server{
		Handler:           s.node.handler,
		TLSConfig:         s.node.tls,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelInfo),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.RegisterOnShutdown(s.node.handler.CloseWatches)
	return srv
}

// runNodeAPI runs the hub and the server certificate's renewal until ctx
// ends.
func (s *Server) runNodeAPI(ctx context.Context, wg *sync.WaitGroup) {
	if s.node == nil {
		return
	}
	wg.Go(func() { s.node.hub.Run(ctx) })
	wg.Go(func() { s.node.cert.Run(ctx) })
}
