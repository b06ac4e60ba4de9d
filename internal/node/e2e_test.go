package node_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	swl "github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/agentid/agentid/internal/node"
	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/sdk/admin"
)

const audience = "https://api.example.org"

// watcher forwards a WatchX509Context stream's updates until ctx ends.
type watcher struct {
	ctx     context.Context
	updates chan *swl.X509Context
}

func (w watcher) OnX509ContextUpdate(xc *swl.X509Context) {
	select {
	case w.updates <- xc:
	case <-w.ctx.Done():
	}
}
func (w watcher) OnX509ContextWatchError(error) {}

// verifyAll checks that every SVID of an X.509 context verifies against
// the bundles that came with it.
func verifyAll(xc *swl.X509Context) error {
	for _, sv := range xc.SVIDs {
		if _, _, err := x509svid.Verify(sv.Certificates, xc.Bundles); err != nil {
			return fmt.Errorf("SVID %s (serial %s) does not verify against the bundle sent with it: %w",
				sv.ID, sv.Certificates[0].SerialNumber.Text(16), err)
		}
	}
	return nil
}

// svidOf returns the SVID of the SPIFFE ID in the context, or nil.
func svidOf(xc *swl.X509Context, id string) *x509svid.SVID {
	for _, sv := range xc.SVIDs {
		if sv.ID.String() == id {
			return sv
		}
	}
	return nil
}

// TestEndToEnd: a node attests with a join token and serves go-spiffe's
// client an X.509-SVID, a JWT-SVID and the bundles, all verified
// independently (x509svid.Verify, jwtsvid.ParseAndValidate, also against
// the bundle the server publishes); a short-lived SVID is rotated on an
// open stream; an agent registered later reaches the running workload; the
// consumed join token does not attest a second node.
func TestEndToEnd(t *testing.T) {
	ls := startServer(t, t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "")
	triage := ls.agent(t, "triage", 10*time.Second)
	token := ls.joinToken(t)
	rn := startNode(t, ls, filepath.Join(t.TempDir(), "data"), t.TempDir(), token)
	ctx := t.Context()

	xc := fetchX509(t, rn.addr)
	first := xc.DefaultSVID()
	if first.ID.String() != triage.SPIFFEID || first.Hint != "triage" {
		t.Fatalf("SVID %s (hint %q), want %s", first.ID, first.Hint, triage.SPIFFEID)
	}
	published := ls.bundle(t)
	for name, src := range map[string]x509bundle.Source{"served": xc.Bundles, "published": published} {
		if _, _, err := x509svid.Verify(first.Certificates, src); err != nil {
			t.Fatalf("x509svid.Verify against the %s bundle: %v", name, err)
		}
	}

	client, err := swl.New(ctx, swl.WithAddr(rn.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	x5b, err := client.FetchX509Bundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := x5b.Get(spiffeid.RequireTrustDomainFromString(td)); !ok || !b.Equal(published.X509Bundle()) {
		t.Errorf("FetchX509Bundles: %v, want the published X.509 authorities", ok)
	}
	jsv, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	jb, err := client.FetchJWTBundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]jwtbundle.Source{"served": jb, "published": published} {
		got, err := jwtsvid.ParseAndValidate(jsv.Marshal(), src, []string{audience})
		if err != nil || got.ID.String() != triage.SPIFFEID {
			t.Fatalf("jwtsvid.ParseAndValidate against the %s bundle: %v", name, err)
		}
	}
	if v, err := client.ValidateJWTSVID(ctx, jsv.Marshal(), audience); err != nil || v.ID.String() != triage.SPIFFEID {
		t.Errorf("ValidateJWTSVID: %v", err)
	}

	// An open stream sees a new agent arrive, and the 10 s SVID rotate.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	updates := make(chan *swl.X509Context, 64)
	go func() { _ = client.WatchX509Context(wctx, watcher{wctx, updates}) }()
	billing := ls.agent(t, "billing", time.Minute)
	sawBilling, rotated := false, false
	deadline := time.After(15 * time.Second)
	for !sawBilling || !rotated {
		select {
		case xc := <-updates:
			if err := verifyAll(xc); err != nil {
				t.Fatal(err)
			}
			sawBilling = sawBilling || svidOf(xc, billing.SPIFFEID) != nil
			if sv := svidOf(xc, triage.SPIFFEID); sv != nil && sv.Certificates[0].SerialNumber.Cmp(first.Certificates[0].SerialNumber) != 0 {
				rotated = true
			}
		case <-deadline:
			t.Fatalf("on the stream: new agent %v, rotation %v", sawBilling, rotated)
		}
	}

	// The join token is spent.
	rn2 := startNode(t, ls, t.TempDir(), t.TempDir(), token)
	if err := rn2.wait(t, 15*time.Second); !errors.Is(err, node.ErrAttestation) {
		t.Fatalf("a node with the spent join token: %v, want ErrAttestation", err)
	}
}

// TestEndToEndOutage: with the server down the node serves its cached
// SVID until it expires and not after, also once restarted; when the
// server comes back on the same ports the node renews without a restart.
func TestEndToEndOutage(t *testing.T) {
	ls := startServer(t, t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "")
	triage := ls.agent(t, "triage", 10*time.Second)
	data := t.TempDir()
	rn := startNode(t, ls, data, t.TempDir(), ls.joinToken(t))
	first := fetchX509(t, rn.addr).DefaultSVID()
	notAfter := first.Certificates[0].NotAfter

	ls.stop()
	if err := rn.stop(t); err != nil {
		t.Fatal(err)
	}
	rn = startNode(t, ls, data, t.TempDir(), "") // no token: the cache must do
	same := func(sv *x509svid.SVID) bool {
		return sv.Certificates[0].SerialNumber.Cmp(first.Certificates[0].SerialNumber) == 0
	}
	if got := fetchX509(t, rn.addr).DefaultSVID(); !same(got) {
		t.Fatal("the node restarted in the outage serves another SVID than the cached one")
	}
	for time.Until(notAfter) > 500*time.Millisecond {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		sv, err := swl.FetchX509SVID(ctx, swl.WithAddr(rn.addr))
		cancel()
		if time.Until(notAfter) <= 0 {
			break // the fetch took us past expiry
		}
		if err != nil || !same(sv) {
			t.Fatalf("before expiry, in the outage: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(time.Until(notAfter) + 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	sv, err := swl.FetchX509SVID(ctx, swl.WithAddr(rn.addr))
	cancel()
	if err == nil {
		t.Fatalf("after expiry the node served SVID %s expiring %s", sv.ID, sv.Certificates[0].NotAfter)
	}

	ls = ls.restart(t)
	var got *x509svid.SVID
	eventually(t, 15*time.Second, "a new SVID after the outage", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		var err error
		got, err = swl.FetchX509SVID(ctx, swl.WithAddr(rn.addr))
		return err
	})
	if same(got) || got.ID.String() != triage.SPIFFEID {
		t.Fatalf("after the outage: SVID %s", got.ID)
	}
	if _, _, err := x509svid.Verify(got.Certificates, ls.bundle(t)); err != nil {
		t.Fatalf("the SVID after the outage does not verify: %v", err)
	}
}

// TestEndToEndTaint: the CA is tainted while a workload fetches in a loop:
// the node re-issues at once, and every SVID the workload receives
// verifies against the bundle it receives with it.
func TestEndToEndTaint(t *testing.T) {
	ls := startServer(t, t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "")
	triage := ls.agent(t, "triage", 10*time.Minute)
	rn := startNode(t, ls, t.TempDir(), t.TempDir(), ls.joinToken(t))
	fetchX509(t, rn.addr)
	ca, err := ls.admin.GetCA(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ca.Items, func(k admin.CAKey) bool { return k.State == "active" })
	if i < 0 {
		t.Fatalf("no active CA key: %+v", ca.Items)
	}
	blk, _ := pem.Decode([]byte(ca.Items[i].Certificate))
	taintedCert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		fetches  int
		failures []error
		reissued bool
	)
	ctx, stop := context.WithCancel(t.Context())
	client, err := swl.New(ctx, swl.WithAddr(rn.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	check := func(xc *swl.X509Context) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		if err := verifyAll(xc); err != nil {
			failures = append(failures, err)
		}
		if sv := svidOf(xc, triage.SPIFFEID); sv != nil && sv.Certificates[0].CheckSignatureFrom(taintedCert) != nil {
			reissued = true
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { // a workload that fetches in a loop
		for ctx.Err() == nil {
			fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			xc, err := client.FetchX509Context(fctx)
			cancel()
			if err == nil {
				check(xc)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	updates := make(chan *swl.X509Context, 64)
	wg.Go(func() { _ = client.WatchX509Context(ctx, watcher{ctx, updates}) })
	wg.Go(func() { // and one that watches
		for {
			select {
			case <-ctx.Done():
				return
			case xc := <-updates:
				check(xc)
			}
		}
	})
	if _, err := ls.admin.TaintCA(t.Context(), ca.Items[i].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "an SVID of the successor CA", func() error {
		mu.Lock()
		defer mu.Unlock()
		if !reissued {
			return errors.New("still the tainted CA's")
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // a few fetches after the re-issue
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("%d of %d fetches failed verification, first: %v", len(failures), fetches, failures[0])
	}
	t.Logf("%d fetches, all verified", fetches)
}

// TestEndToEndEvicted: an evicted node's Run returns ErrEvicted, its cache
// file is gone and its socket serves nothing.
func TestEndToEndEvicted(t *testing.T) {
	ls := startServer(t, t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "")
	ls.agent(t, "triage", time.Minute)
	data := t.TempDir()
	rn := startNode(t, ls, data, t.TempDir(), ls.joinToken(t))
	fetchX509(t, rn.addr)
	nodes, err := ls.admin.ListNodes(t.Context(), admin.ListNodesParams{})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("ListNodes = %+v, %v", nodes, err)
	}
	if _, err := ls.admin.EvictNode(t.Context(), nodes.Items[0].ID, admin.EvictNodeRequest{Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	// The server ends an evicted node's watch stream at the latest with
	// its next heartbeat (15 s); the node's reconnection is refused.
	if err := rn.wait(t, nodeapi.HeartbeatInterval+10*time.Second); !errors.Is(err, node.ErrEvicted) {
		t.Fatalf("Run = %v, want ErrEvicted", err)
	}
	if _, err := os.Stat(filepath.Join(data, node.CacheFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cache file after eviction: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := swl.FetchX509SVID(ctx, swl.WithAddr(rn.addr)); err == nil {
		t.Error("the evicted node's socket still serves")
	}
}
