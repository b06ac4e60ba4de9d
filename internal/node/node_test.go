package node

import (
	"context"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	swl "github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/sdk/admin"
)

const goodToken = "aidjt_good"

// fakeAttestor attests once per token, as the admin API does.
type fakeAttestor struct {
	up     *fakeUpstream
	bundle []byte
	mu     sync.Mutex
	used   map[string]bool
}

func (a *fakeAttestor) AttestNode(_ context.Context, r admin.AttestNodeRequest) (admin.AttestedNode, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.JoinToken != goodToken || a.used[r.JoinToken] {
		return admin.AttestedNode{}, &admin.Problem{Status: 401, Title: "Unauthorized", Detail: "join token refused"}
	}
	if a.used == nil {
		a.used = map[string]bool{}
	}
	a.used[r.JoinToken] = true
	blk, _ := pem.Decode([]byte(r.CSR))
	if blk == nil {
		return admin.AttestedNode{}, &admin.Problem{Status: 400, Title: "Bad Request"}
	}
	sv, err := a.up.mint("spiffe://"+trustDomain+"/node/nod_test", blk.Bytes)
	if err != nil {
		return admin.AttestedNode{}, err
	}
	var chain []byte
	for _, c := range sv.CertChain {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	return admin.AttestedNode{NodeID: "nod_test", SPIFFEID: sv.SPIFFEID, CertChainPEM: string(chain), ExpiresAt: sv.ExpiresAt, Bundle: a.bundle}, nil
}

// runningNode is a Node running in the background.
type runningNode struct {
	*Node
	socket string
	cancel context.CancelFunc
	done   chan error
}

// startNode runs a node with the fakes on dir and a socket in a new
// temporary directory.
func startNode(t *testing.T, dir string, up *fakeUpstream, att Attestor, token string) *runningNode {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "wl.sock")
	n, err := New(Params{
		DataDir: dir, SocketPath: sock, Clock: up.clock.Now, Upstream: up, Attestor: att, JoinToken: token,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &runningNode{Node: n, socket: sock, cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- n.Run(ctx) }()
	t.Cleanup(func() { _ = rn.stop(t) })
	return rn
}

// stop stops the node and returns Run's error.
func (rn *runningNode) stop(t *testing.T) error {
	t.Helper()
	rn.cancel()
	select {
	case err := <-rn.done:
		rn.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// wait waits for Run to return by itself.
func (rn *runningNode) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-rn.done:
		rn.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// fetchX509 polls the node's Workload API with go-spiffe's client until
// it answers an X.509 context.
func fetchX509(t *testing.T, socket string) *swl.X509Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		xc, err := swl.FetchX509Context(ctx, swl.WithAddr("unix://"+socket))
		if err == nil {
			return xc
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no X.509 context from the node: %v", last)
	return nil
}

// TestRunAttestsThenServes: a node attests with its join token, serves its
// workload an X.509-SVID that verifies against the bundle it serves,
// writes its cache 0600, and removes its socket when stopped.
func TestRunAttestsThenServes(t *testing.T) {
	clock := newFakeClock()
	ca := newTestCA(t, 1)
	up := newFakeUpstream(clock, ca)
	bundle := bundleDoc(t, trustDomain, nil, ca)
	dir := filepath.Join(t.TempDir(), "data")
	rn := startNode(t, dir, up, &fakeAttestor{up: up, bundle: bundle}, goodToken)
	up.snaps <- snapshot("r1", os.Getuid(), bundle, nil, "triage")

	xc := fetchX509(t, rn.socket)
	sv := xc.DefaultSVID()
	if sv.ID.String() != spiffeIDOf(agentID("triage")) || sv.Hint != "triage" {
		t.Fatalf("SVID %s (hint %q)", sv.ID, sv.Hint)
	}
	if _, _, err := x509svid.Verify(sv.Certificates, xc.Bundles, x509svid.WithTime(clock.Now())); err != nil {
		t.Fatalf("x509svid.Verify: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, CacheFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory: %v", err)
	}
	if fi, err := os.Stat(rn.socket); err != nil || fi.Mode().Perm() != DefaultSocketMode {
		t.Fatalf("socket: %v", err)
	}
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	if _, err := os.Lstat(rn.socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after Run: %v", err)
	}
}

// TestRunRestartWithoutServer: a node restarted while the server is
// unreachable serves the SVIDs of its cache, without a join token.
func TestRunRestartWithoutServer(t *testing.T) {
	clock := newFakeClock()
	ca := newTestCA(t, 1)
	up := newFakeUpstream(clock, ca)
	bundle := bundleDoc(t, trustDomain, nil, ca)
	dir := t.TempDir()
	rn := startNode(t, dir, up, &fakeAttestor{up: up, bundle: bundle}, goodToken)
	up.snaps <- snapshot("r1", os.Getuid(), bundle, nil, "triage")
	first := fetchX509(t, rn.socket).DefaultSVID()
	if err := rn.stop(t); err != nil {
		t.Fatal(err)
	}

	down := newFakeUpstream(clock, ca)
	down.err = errFakeDown
	rn2 := startNode(t, dir, down, &fakeAttestor{up: down}, "")
	got := fetchX509(t, rn2.socket).DefaultSVID()
	if got.Certificates[0].SerialNumber.Cmp(first.Certificates[0].SerialNumber) != 0 {
		t.Fatal("the restarted node serves another SVID than the one it cached")
	}
	if n := down.calls(agentID("triage")); n != 0 {
		t.Errorf("the restarted node asked the server %d times", n)
	}
}

// TestRunNoJoinToken: without a token and a usable cache Run says so.
func TestRunNoJoinToken(t *testing.T) {
	clock := newFakeClock()
	up := newFakeUpstream(clock, newTestCA(t, 1))
	rn := startNode(t, t.TempDir(), up, &fakeAttestor{up: up}, "")
	if err := rn.wait(t); !errors.Is(err, ErrNoJoinToken) {
		t.Fatalf("Run = %v, want ErrNoJoinToken", err)
	}
	if _, err := os.Lstat(rn.socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after Run: %v", err)
	}
}

// TestRunRefusedJoinToken: a join token the server refuses (replayed,
// expired, unknown) ends Run with a clear error.
func TestRunRefusedJoinToken(t *testing.T) {
	clock := newFakeClock()
	ca := newTestCA(t, 1)
	up := newFakeUpstream(clock, ca)
	att := &fakeAttestor{up: up, bundle: bundleDoc(t, trustDomain, nil, ca), used: map[string]bool{goodToken: true}}
	rn := startNode(t, t.TempDir(), up, att, goodToken)
	err := rn.wait(t)
	if !errors.Is(err, ErrAttestation) || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("Run = %v, want ErrAttestation saying the token may be used", err)
	}
	if strings.Contains(err.Error(), goodToken) {
		t.Errorf("the error shows the token: %v", err)
	}
}

// TestRunEvicted: when the server refuses the node, Run returns ErrEvicted,
// the cache file is gone and the socket serves nothing.
func TestRunEvicted(t *testing.T) {
	clock := newFakeClock()
	ca := newTestCA(t, 1)
	up := newFakeUpstream(clock, ca)
	bundle := bundleDoc(t, trustDomain, nil, ca)
	dir := t.TempDir()
	evict := make(chan struct{})
	up.watch = func(ctx context.Context, fn func(nodeapi.Snapshot) error) error {
		if err := fn(snapshot("r1", os.Getuid(), bundle, nil, "triage")); err != nil {
			return err
		}
		select {
		case <-evict:
			return nodeapi.ErrEvicted
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	rn := startNode(t, dir, up, &fakeAttestor{up: up, bundle: bundle}, goodToken)
	fetchX509(t, rn.socket)
	close(evict)
	if err := rn.wait(t); !errors.Is(err, ErrEvicted) {
		t.Fatalf("Run = %v, want ErrEvicted", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CacheFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cache file after eviction: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := swl.FetchX509SVID(ctx, swl.WithAddr("unix://"+rn.socket)); err == nil {
		t.Error("the socket of an evicted node still serves")
	}
}

// TestListenSocket: a stale socket is replaced; a file that is not a
// socket, a live socket and a missing directory are refused.
func TestListenSocket(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = l.Close()
	lis, err := listenSocket(stale, 0o770)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	if fi, err := os.Stat(stale); err != nil || fi.Mode().Perm() != 0o770 {
		t.Errorf("mode: %v", err)
	}
	if _, err := listenSocket(stale, 0o770); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("live socket: %v", err)
	}
	_ = lis.Close()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenSocket(file, 0o770); err == nil {
		t.Error("a regular file was replaced")
	}
	if _, err := listenSocket(filepath.Join(dir, "missing", "wl.sock"), 0o770); err == nil {
		t.Error("a socket in a missing directory")
	}
}
