package node_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	swl "github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/agentid/agentid/internal/node"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// End-to-end tests: a real server (internal/server, SQLite in a temporary
// directory, the admin API and the node API on loopback ports), a real
// node (internal/node on a temporary socket), and go-spiffe's Workload API
// client as the workload, whose uid the agents select.

const td = "example.org"

// logBuffer collects a component's log and prints it when the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func testLogger(t *testing.T, name string) *slog.Logger {
	t.Helper()
	b := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Logf("%s log:\n%s", name, b.buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// liveServer is a running server on a data directory.
type liveServer struct {
	dir      string
	url      string // admin API
	nodeAddr string // node API
	admin    *admin.Client
	tok      string // the admin token
	cancel   context.CancelFunc
	done     chan error
	srv      *server.Server
	once     sync.Once
}

// startServer starts a server on dir, listening on addr and nodeAddr
// ("127.0.0.1:0" picks a port), with a node API that syncs every 100 ms.
// tok is the admin token of an earlier start on dir, "" the first time.
func startServer(t *testing.T, dir, addr, nodeAddr, tok string, mut ...func(*server.Config)) *liveServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.DevConfig(dir, ln.Addr().String())
	cfg.Issuer = "http://" + ln.Addr().String()
	cfg.NodeAPI.Listen = nodeAddr
	cfg.NodeAPI.SyncInterval = 100 * time.Millisecond
	for _, m := range mut {
		m(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Params{Logger: testLogger(t, "server "+ln.Addr().String())})
	if err != nil {
		cancel()
		_ = ln.Close()
		t.Fatal(err)
	}
	secret, created, err := srv.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		tok = secret
	}
	nln, err := srv.ListenNodeAPI()
	if err != nil {
		t.Fatal(err)
	}
	ls := &liveServer{dir: dir, url: cfg.Issuer, nodeAddr: nln.Addr().String(), tok: tok, cancel: cancel, done: make(chan error, 1), srv: srv}
	go func() { ls.done <- srv.Serve(ctx, ln) }()
	if ls.admin, err = admin.New(ls.url, tok); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ls.stop)
	return ls
}

// stop stops the server (idempotent).
func (ls *liveServer) stop() {
	ls.once.Do(func() {
		ls.cancel()
		if err := <-ls.done; err != nil {
			fmt.Fprintf(os.Stderr, "server: %v\n", err)
		}
		_ = ls.srv.Close()
	})
}

// restart starts the server again on the same directory and ports.
func (ls *liveServer) restart(t *testing.T) *liveServer {
	t.Helper()
	return startServer(t, ls.dir, strings.TrimPrefix(ls.url, "http://"), ls.nodeAddr, ls.tok)
}

// agent registers an agent whose workloads are this test's processes.
func (ls *liveServer) agent(t *testing.T, name string, maxTTL time.Duration) admin.Agent {
	t.Helper()
	ctx := t.Context()
	if _, err := ls.admin.GetOwner(ctx, "owner@example.org"); err != nil {
		if _, err := ls.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: "owner@example.org"}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := ls.admin.CreateAgent(ctx, admin.CreateAgentRequest{
		Name: name, Owners: []string{"owner@example.org"}, Purpose: "end-to-end tests",
		Selectors: []string{fmt.Sprintf("unix:uid:%d", os.Getuid())}, MaxTTLSeconds: int64(maxTTL / time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// joinToken creates a join token.
func (ls *liveServer) joinToken(t *testing.T) string {
	t.Helper()
	tok, err := ls.admin.CreateJoinToken(t.Context(), admin.CreateJoinTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

// bundle returns the trust bundle the server publishes.
func (ls *liveServer) bundle(t *testing.T) *spiffebundle.Bundle {
	t.Helper()
	raw, err := ls.admin.TrustBundle(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString(td), raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runningNode is a node running in the background.
type runningNode struct {
	socket string
	addr   string // for go-spiffe: unix://<socket>
	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
}

// startNode runs a node on dataDir against the server, with a socket in
// sockDir.
func startNode(t *testing.T, ls *liveServer, dataDir, sockDir, token string, mut ...func(*node.Params)) *runningNode {
	t.Helper()
	sock := filepath.Join(sockDir, "wl.sock")
	p := node.Params{
		DataDir: dataDir, SocketPath: sock, ServerURL: ls.url, NodeAPIAddr: ls.nodeAddr, JoinToken: token,
		MaxBackoff: time.Second, Logger: testLogger(t, "node "+dataDir), Clock: time.Now,
	}
	for _, m := range mut {
		m(&p)
	}
	n, err := node.New(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &runningNode{socket: sock, addr: "unix://" + sock, cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- n.Run(ctx) }()
	t.Cleanup(func() { _ = rn.stop(t) })
	return rn
}

// wait waits up to d for Run to return and returns its error.
func (rn *runningNode) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	if rn.ended {
		return rn.err
	}
	select {
	case rn.err = <-rn.done:
		rn.ended = true
		return rn.err
	case <-time.After(d):
		t.Fatalf("the node did not stop within %s", d)
		return nil
	}
}

// stop stops the node and returns Run's error.
func (rn *runningNode) stop(t *testing.T) error {
	t.Helper()
	rn.cancel()
	return rn.wait(t, 20*time.Second)
}

// eventually polls f every 20 ms until it returns nil, for at most d.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fetchX509 polls the node until it answers an X.509 context.
func fetchX509(t *testing.T, addr string) *swl.X509Context {
	t.Helper()
	var xc *swl.X509Context
	eventually(t, 15*time.Second, "X.509 context", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		var err error
		xc, err = swl.FetchX509Context(ctx, swl.WithAddr(addr))
		return err
	})
	return xc
}
