// Package node is the `agentid node` process (ADR 0012, docs/spiffe.md
// "Running a node"): a per-host agent that attests itself to the control
// plane with a join token, holds an X.509-SVID of its own with which it
// talks to the server's node API over mTLS, and serves the SPIFFE
// Workload API (internal/workloadapi) to the workloads of its host on a
// Unix socket.
//
// The node's cache is the Workload API's Source: the agents of the last
// snapshot of the server's watch stream (a push: new and changed agents
// arrive at once), the trust bundle and federated bundles, the agents'
// X.509-SVIDs (minted when a workload first asks, with a key generated on
// the node, then renewed at half their lifetime, at once when a tainted
// CA signed them, dropped when the agent leaves the snapshot) and
// JWT-SVIDs (fetched on demand, kept until half their lifetime). It is
// mirrored to <data dir>/node-cache.json (0600, written atomically), so a
// node serves what it holds at once when it starts, with or without the
// server; nothing is ever served at or past its expiry.
//
// Run's loops reconnect the watch stream and retry failed requests with
// exponential backoff (250 ms doubling to Params.MaxBackoff, with
// jitter). When the server refuses the node (evicted), the node deletes
// its cache, stops serving and Run returns ErrEvicted.
package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/internal/buildinfo"
	"github.com/agentid/agentid/internal/urlcheck"
	"github.com/agentid/agentid/internal/workloadapi"
	"github.com/agentid/agentid/sdk/admin"
)

// Defaults.
const (
	// DefaultMaxBackoff is the longest wait between reconnections and
	// retries.
	DefaultMaxBackoff = 10 * time.Second
	// DefaultSocketMode is the mode of the Workload API socket: every
	// local process may connect, as the Workload API identifies each
	// caller by its peer credentials and serves only the agents whose
	// selectors it satisfies (SPIRE's agent socket is open likewise).
	DefaultSocketMode fs.FileMode = 0o777
	// MinBackoff is the first wait after a failure.
	MinBackoff = 250 * time.Millisecond
	// minNodeSVIDLife is how long a cached node SVID must still be valid
	// for a node to start with it rather than attest anew.
	minNodeSVIDLife = time.Minute
	// maxWait bounds every wait of the maintenance loop, so that a jump of
	// the wall clock is noticed.
	maxWait = time.Minute
)

// Errors of Run; test with errors.Is.
var (
	// ErrEvicted means the server refused the node: it was evicted (or is
	// unknown to the server). The node deleted its cache; a new join
	// token attests the host anew.
	ErrEvicted = errors.New("node: the server refused this node (evicted): its cache was deleted; attest the host again with a new join token")
	// ErrNoJoinToken means the node has nothing to start from: no join
	// token and no usable cache.
	ErrNoJoinToken = errors.New("node: no join token and no usable cache: pass a join token (agentid node token create) to attest this node")
	// ErrAttestation means the server refused the join token or the
	// attestation request.
	ErrAttestation = errors.New("node: attestation refused")
)

// Attestor attests a node with a join token at the admin API;
// *admin.Client implements it.
type Attestor interface {
	// AttestNode presents the join token and a CSR; a refusal is an
	// *admin.Problem (401 for any token problem).
	AttestNode(ctx context.Context, r admin.AttestNodeRequest) (admin.AttestedNode, error)
}

// Params configures a Node.
type Params struct {
	// DataDir holds the cache file; created (0700) if missing. Required.
	DataDir string
	// SocketPath is the Workload API's Unix socket. Its directory must
	// exist; a stale socket file is replaced. Required.
	SocketPath string
	// SocketMode is the socket's mode; zero: DefaultSocketMode.
	SocketMode fs.FileMode
	// ServerURL is the admin API's URL, where the node attests (https, or
	// http on loopback). Required when the node must attest and Attestor
	// is nil.
	ServerURL string
	// ServerCAFile is a PEM file of the CA certificates that verify the
	// admin API's TLS certificate; empty: the system's roots.
	ServerCAFile string
	// NodeAPIAddr is the host:port of the server's node API. Required
	// unless Upstream is set.
	NodeAPIAddr string
	// JoinToken attests the node when its cache holds no node SVID valid
	// for another minute. Never logged.
	JoinToken string
	// KubernetesTokenFile is, instead of a join token, a projected
	// service-account token file (read at each attestation: the kubelet
	// rotates it) that a kubernetes attestor of the server verifies.
	KubernetesTokenFile string
	// ClientCertFile and ClientKeyFile are, instead of a join token, a PEM
	// certificate chain and its key that the node presents by mutual TLS
	// to the admin API, verified by an x509 attestor of the server (https
	// only).
	ClientCertFile string
	ClientKeyFile  string
	// MaxBackoff bounds the waits between retries; zero:
	// DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Logger receives what the node does; nil discards it.
	Logger *slog.Logger
	// Clock is the time source. Required.
	Clock func() time.Time
	// Executable reads a Workload API caller's executable; nil: /proc.
	Executable workloadapi.ExecutableReader
	// Upstream is the node API client; nil: a nodeapi.Client of
	// NodeAPIAddr that authenticates with the node's SVID.
	Upstream Upstream
	// Attestor attests the node; nil: an admin API client of ServerURL.
	Attestor Attestor
}

// Node is the node process. Construct it with New and run it with Run,
// once.
type Node struct {
	p     Params
	log   *slog.Logger
	clock func() time.Time
	cache *cache
	bo    backoff

	wake      chan struct{} // wakes the maintenance loop
	evicted   chan struct{} // closed when the node was evicted
	evictOnce sync.Once
	after     func(time.Duration) <-chan time.Time // time.After; tests replace it

	up Upstream // set by Run
}

// New checks p and returns a Node.
func New(p Params) (*Node, error) {
	switch {
	case p.DataDir == "":
		return nil, errors.New("node: a data directory is required")
	case p.SocketPath == "":
		return nil, errors.New("node: a socket path is required")
	case p.Clock == nil:
		return nil, errors.New("node: Clock is required")
	case p.Upstream == nil && p.NodeAPIAddr == "":
		return nil, errors.New("node: the node API address (host:port) is required")
	case p.MaxBackoff < 0:
		return nil, errors.New("node: MaxBackoff must not be negative")
	}
	if err := p.checkAttestation(); err != nil {
		return nil, err
	}
	if p.Upstream == nil {
		if _, _, err := net.SplitHostPort(p.NodeAPIAddr); err != nil {
			return nil, fmt.Errorf("node: node API address %q: want host:port", p.NodeAPIAddr)
		}
	}
	if p.SocketMode == 0 {
		p.SocketMode = DefaultSocketMode
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	if p.MaxBackoff < MinBackoff {
		p.MaxBackoff = MinBackoff
	}
	n := &Node{
		p: p, log: p.Logger, clock: p.Clock,
		bo:      backoff{base: MinBackoff, max: p.MaxBackoff, jitter: rand.Int64N},
		wake:    make(chan struct{}, 1),
		evicted: make(chan struct{}),
		after:   time.After,
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.cache = newCache(p.Clock, n.log, disk{dir: p.DataDir}, n.bo)
	n.cache.kick = n.kick
	n.cache.onEvict = func() { n.evictOnce.Do(func() { close(n.evicted) }) }
	return n, nil
}

// kick wakes the maintenance loop.
func (n *Node) kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run runs the node until ctx ends (then it returns nil) or it cannot go
// on: it loads the cache, serves the Workload API on the socket at once,
// attests if it must, then keeps its SVIDs and snapshot fresh. It returns
// ErrEvicted when the server refused the node, an error wrapping
// ErrAttestation when the join token was refused, ErrNoJoinToken when it
// has nothing to start from, or an error of the socket. The socket is
// removed when Run returns.
func (n *Node) Run(ctx context.Context) error {
	if err := n.loadCache(); err != nil {
		return err
	}
	lis, err := listenSocket(n.p.SocketPath, n.p.SocketMode)
	if err != nil {
		return err
	}
	srv, err := workloadapi.New(workloadapi.Params{
		Source: n.cache, Logger: n.log, Clock: n.clock, Executable: n.p.Executable,
	})
	if err != nil {
		_ = lis.Close()
		return fmt.Errorf("node: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer n.log.Info("stopped")
	defer n.cache.shutdown() // no request, and no write of the cache, outlives Run
	defer wg.Wait()
	defer cancel()
	served := make(chan error, 1)
	wg.Go(func() { served <- srv.Serve(ctx, lis) })
	n.log.Info("serving the Workload API", "socket", n.p.SocketPath)

	if err := n.bootstrap(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if n.up, err = n.upstream(); err != nil {
		return err
	}
	n.cache.connect(ctx, n.up)
	wg.Go(func() { n.watchLoop(ctx) })
	wg.Go(func() { n.maintainLoop(ctx) })

	select {
	case <-ctx.Done():
		return nil
	case <-n.evicted:
		return ErrEvicted
	case err := <-served:
		if err == nil {
			err = errors.New("node: the Workload API stopped")
		}
		return err
	}
}

// loadCache prepares the data directory and loads the cache file; a file
// that cannot be read is logged and the node starts empty.
func (n *Node) loadCache() error {
	open, err := n.cache.disk.prepare()
	if err != nil {
		return err
	}
	if open {
		n.log.Warn("the data directory is open to other users; it holds private keys: chmod 0700", "dir", n.p.DataDir)
	}
	dc, err := n.cache.disk.load()
	switch {
	case err != nil:
		n.log.Error("cache file unusable; starting empty", "path", n.cache.disk.path(), "error", err)
	case dc != nil:
		n.cache.load(dc)
		td, id := n.cache.identity()
		n.log.Info("cache loaded", "path", n.cache.disk.path(), "trust_domain", td, "node_id", id)
	}
	return nil
}

// bootstrap makes sure the node has an SVID to talk to the server with:
// a cached one valid for another minute, or one from attesting with the
// join token. Without a token a node whose cache still holds something
// valid starts anyway and serves it.
func (n *Node) bootstrap(ctx context.Context) error {
	now := n.clock()
	node, _, _ := n.cache.nodeState()
	if node != nil && node.notAfter().Sub(now) >= minNodeSVIDLife {
		td, id := n.cache.identity()
		n.log.Info("using the cached node SVID", "node_id", id, "trust_domain", td, "expires_at", node.notAfter())
		if n.p.canAttest() {
			n.log.Info("attestation credential not used: the cache holds a valid node SVID")
		}
		return nil
	}
	if !n.p.canAttest() {
		switch {
		case node != nil && node.validAt(now):
			n.log.Warn("the cached node SVID expires within a minute; renewing it", "expires_at", node.notAfter())
			return nil
		case node != nil && n.cache.hasValidSVIDs():
			n.log.Error("the cached node SVID has expired: the node cannot reach the server until it attests again "+
				"with a new join token; serving the cached SVIDs until they expire", "expired_at", node.notAfter())
			return nil
		}
		return ErrNoJoinToken
	}
	att := n.p.Attestor
	if att == nil {
		var err error
		if att, err = newAttestor(n.p.ServerURL, n.p.ServerCAFile, n.p.ClientCertFile, n.p.ClientKeyFile); err != nil {
			return err
		}
	}
	var r retry
	for {
		err := n.attest(ctx, att)
		if err == nil || errors.Is(err, ErrAttestation) || ctx.Err() != nil {
			return err
		}
		r = n.bo.next(r, n.clock(), err)
		n.log.Warn("attestation failed; retrying", "error", err, "retry_at", r.at)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.after(r.at.Sub(n.clock())):
		}
	}
}

// attest attests the node with the join token: a new key, a CSR, the
// admin API's answer checked (an X.509-SVID of a node of the trust
// domain, for the key, that the bundle sent along verifies). Refusals by
// the server (4xx) wrap ErrAttestation.
func (n *Node) attest(ctx context.Context, att Attestor) error {
	key, csr, err := newKeyAndCSR()
	if err != nil {
		return err
	}
	req, err := n.p.attestRequest()
	if err != nil {
		return err
	}
	req.CSR = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))
	ans, err := att.AttestNode(ctx, req)
	var p *admin.Problem
	switch {
	case errors.As(err, &p) && p.Status == http.StatusUnauthorized && req.JoinToken == "":
		return fmt.Errorf("%w: %s", ErrAttestation, p.Detail)
	case errors.As(err, &p) && p.Status == http.StatusUnauthorized:
		return fmt.Errorf("%w: the join token is unknown, expired or already used; create a new one with `agentid node token create`", ErrAttestation)
	case errors.As(err, &p) && p.Status/100 == 4:
		return fmt.Errorf("%w: %s: %s", ErrAttestation, p.Title, p.Detail)
	case err != nil:
		return fmt.Errorf("node: attest: %w", err)
	}
	id, err := spiffeid.FromString(ans.SPIFFEID)
	if err != nil || id.Path() != "/node/"+ans.NodeID || ans.NodeID == "" {
		return fmt.Errorf("%w: the server answered SPIFFE ID %q for node %q", ErrAttestation, ans.SPIFFEID, ans.NodeID)
	}
	var chain [][]byte
	for rest := []byte(ans.CertChainPEM); ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		chain = append(chain, blk.Bytes)
	}
	s, err := newSVID(ans.SPIFFEID, chain, key, n.clock())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAttestation, err)
	}
	if len(ans.Bundle) == 0 {
		return fmt.Errorf("%w: the server sent no trust bundle", ErrAttestation)
	}
	b, err := parseBundle(id.TrustDomain().Name(), ans.Bundle)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAttestation, err)
	}
	if trustOf(s, b.x509Authorities(), nil) == untrusted {
		return fmt.Errorf("%w: the trust bundle sent does not verify the node SVID", ErrAttestation)
	}
	n.cache.setNode(id.TrustDomain().Name(), ans.NodeID, s, b)
	n.log.Info("attested", "node_id", ans.NodeID, "spiffe_id", ans.SPIFFEID, "expires_at", s.notAfter())
	return nil
}

// newAttestor returns an admin API client of serverURL for attestation:
// https (verified with the roots of caFile, else the system's), or http
// on a loopback host.
func newAttestor(serverURL, caFile, certFile, keyFile string) (Attestor, error) {
	if serverURL == "" {
		return nil, errors.New("node: the server URL (admin API) is required to attest")
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("node: server URL: %w", err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !urlcheck.Loopback(u.Hostname()) {
			return nil, fmt.Errorf("node: server URL %s: plain http is allowed on loopback only; use https", serverURL)
		}
		if caFile != "" {
			return nil, errors.New("node: a server CA file is given for a plain http server URL")
		}
		if certFile != "" {
			return nil, errors.New("node: a client certificate attests over https only")
		}
	default:
		return nil, fmt.Errorf("node: server URL %s: want https://host[:port]", serverURL)
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 10 * time.Second, ForceAttemptHTTP2: true}
	if caFile != "" {
		b, err := os.ReadFile(filepath.Clean(caFile))
		if err != nil {
			return nil, fmt.Errorf("node: server CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("node: server CA %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if certFile != "" {
		if err := withClientCert(tr, certFile, keyFile); err != nil {
			return nil, err
		}
	}
	c, err := admin.New(serverURL, "",
		admin.WithHTTPClient(&http.Client{Transport: tr, Timeout: 30 * time.Second}),
		admin.WithUserAgent("agentid-node/"+buildinfo.Version))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return c, nil
}

// listenSocket listens on the Unix socket path with the mode, replacing a
// stale socket file. The directory must exist; a file that is not a
// socket, or a socket another process serves, is left alone.
func listenSocket(path string, mode fs.FileMode) (net.Listener, error) {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("node: the socket's directory %s must exist", dir)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("node: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("node: another process serves %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("node: remove the stale socket: %w", err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("node: listen: %w", err)
	}
	if err := os.Chmod(path, mode); err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("node: socket mode: %w", err)
	}
	return lis, nil
}
