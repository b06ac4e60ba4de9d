package workloadapi_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	spiffewl "github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/workloadapi"
)

const audience = "spiffe://example.org/db"

func newClient(t *testing.T, addr string) *spiffewl.Client {
	t.Helper()
	c, err := spiffewl.New(context.Background(), spiffewl.WithAddr(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestFetchX509SVID has go-spiffe's client fetch the caller's X.509-SVIDs
// and verify them with x509svid.Verify against the bundles it was sent.
func TestFetchX509SVID(t *testing.T) {
	uid := uidSelector(os.Getuid())
	triage := agent("triage", uid, "unix:path:"+exePath)
	triage.FederatesWith = []string{partnerDomain}
	src := newFakeSource(t,
		agent("writer", uid, "unix:sha256:"+exeHash),
		triage,
		agent("stranger", uidSelector(os.Getuid()+1)),   // another user
		agent("elsewhere", uid, "unix:path:/usr/bin/x"), // another program
		agent("unselected"),                             // no selectors: no workload
	)
	c := newClient(t, serve(t, src))
	ctx := testContext(t)

	x5, err := c.FetchX509Context(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got, hints []string
	for _, sv := range x5.SVIDs {
		got, hints = append(got, sv.ID.String()), append(hints, sv.Hint)
		id, _, err := x509svid.Verify(sv.Certificates, x5.Bundles)
		if err != nil {
			t.Fatalf("x509svid.Verify(%s): %v", sv.ID, err)
		}
		if id != sv.ID {
			t.Errorf("verified %s, sent as %s", id, sv.ID)
		}
		pub, ok := sv.PrivateKey.Public().(*ecdsa.PublicKey)
		if !ok || !pub.Equal(sv.Certificates[0].PublicKey) {
			t.Errorf("%s: the private key is not the certificate's", sv.ID)
		}
	}
	want := []string{"spiffe://example.org/agent/triage", "spiffe://example.org/agent/writer"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SVIDs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"triage", "writer"}, hints); diff != "" {
		t.Errorf("hints (-want +got):\n%s", diff)
	}
	for _, td := range []string{trustDomain, partnerDomain} {
		if !x5.Bundles.Has(spiffeid.RequireTrustDomainFromString(td)) {
			t.Errorf("no bundle of %s", td)
		}
	}

	bundles, err := c.FetchX509Bundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bundles.Len() != 2 {
		t.Errorf("FetchX509Bundles: %d bundles, want 2", bundles.Len())
	}
	if _, _, err := x509svid.Verify(x5.SVIDs[0].Certificates, bundles); err != nil {
		t.Errorf("x509svid.Verify with FetchX509Bundles' bundles: %v", err)
	}
}

// TestFetchJWTSVID fetches a JWT-SVID and the JWT bundles, validates it
// with jwtsvid.ParseAndValidate, then with ValidateJWTSVID.
func TestFetchJWTSVID(t *testing.T) {
	uid := uidSelector(os.Getuid())
	src := newFakeSource(t, agent("triage", uid), agent("writer", uid))
	c := newClient(t, serve(t, src))
	ctx := testContext(t)

	svids, err := c.FetchJWTSVIDs(ctx, jwtsvid.Params{Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	if len(svids) != 2 {
		t.Fatalf("%d JWT-SVIDs, want 2", len(svids))
	}
	bundles, err := c.FetchJWTBundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := jwtsvid.ParseAndValidate(svids[0].Marshal(), bundles, []string{audience})
	if err != nil {
		t.Fatalf("jwtsvid.ParseAndValidate: %v", err)
	}
	if got.ID.String() != "spiffe://example.org/agent/triage" {
		t.Errorf("sub %s", got.ID)
	}

	one, err := c.FetchJWTSVID(ctx, jwtsvid.Params{Audience: audience, Subject: spiffeid.RequireFromString("spiffe://example.org/agent/writer")})
	if err != nil {
		t.Fatal(err)
	}
	if one.ID.String() != "spiffe://example.org/agent/writer" {
		t.Errorf("asked for writer, got %s", one.ID)
	}

	v, err := c.ValidateJWTSVID(ctx, one.Marshal(), audience)
	if err != nil {
		t.Fatalf("ValidateJWTSVID: %v", err)
	}
	if v.ID != one.ID || v.Claims["jti"] == nil {
		t.Errorf("ValidateJWTSVID: %s %v", v.ID, v.Claims)
	}
	if _, err := c.ValidateJWTSVID(ctx, one.Marshal(), "spiffe://example.org/other"); status.Code(err) != codes.InvalidArgument {
		t.Errorf("ValidateJWTSVID for another audience: %v, want InvalidArgument", err)
	}
	if _, err := c.ValidateJWTSVID(ctx, one.Marshal()+"x", audience); status.Code(err) != codes.InvalidArgument {
		t.Errorf("ValidateJWTSVID of a forged token: %v, want InvalidArgument", err)
	}

	_, err = c.FetchJWTSVID(ctx, jwtsvid.Params{Audience: audience, Subject: spiffeid.RequireFromString("spiffe://example.org/agent/other")})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("JWT-SVID of an agent the caller is not: %v, want PermissionDenied", err)
	}
}

// TestRefusals checks the Workload Endpoint's error codes (§6) with a raw
// gRPC client: no security header → InvalidArgument on every RPC; no
// audience → InvalidArgument; no agent for the caller → PermissionDenied;
// no valid SVID → Unavailable.
func TestRefusals(t *testing.T) {
	uid := uidSelector(os.Getuid())
	src := newFakeSource(t, agent("triage", uid))
	conn, err := grpc.NewClient(serve(t, src), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	wl := workload.NewSpiffeWorkloadAPIClient(conn)

	type call func(ctx context.Context) error
	stream := func(open func(ctx context.Context) (interface{ CloseSend() error }, func() error, error)) call {
		return func(ctx context.Context) error {
			_, recv, err := open(ctx)
			if err != nil {
				return err
			}
			return recv()
		}
	}
	rpcs := map[string]call{
		"FetchX509SVID": stream(func(ctx context.Context) (interface{ CloseSend() error }, func() error, error) {
			s, err := wl.FetchX509SVID(ctx, &workload.X509SVIDRequest{})
			return s, func() error { _, err := s.Recv(); return err }, err
		}),
		"FetchX509Bundles": stream(func(ctx context.Context) (interface{ CloseSend() error }, func() error, error) {
			s, err := wl.FetchX509Bundles(ctx, &workload.X509BundlesRequest{})
			return s, func() error { _, err := s.Recv(); return err }, err
		}),
		"FetchJWTBundles": stream(func(ctx context.Context) (interface{ CloseSend() error }, func() error, error) {
			s, err := wl.FetchJWTBundles(ctx, &workload.JWTBundlesRequest{})
			return s, func() error { _, err := s.Recv(); return err }, err
		}),
		"FetchJWTSVID": func(ctx context.Context) error {
			_, err := wl.FetchJWTSVID(ctx, &workload.JWTSVIDRequest{Audience: []string{audience}})
			return err
		},
		"ValidateJWTSVID": func(ctx context.Context) error {
			_, err := wl.ValidateJWTSVID(ctx, &workload.ValidateJWTSVIDRequest{Audience: audience, Svid: "x.y.z"})
			return err
		},
	}
	withHeader := func(ctx context.Context) context.Context {
		return metadata.AppendToOutgoingContext(ctx, workloadapi.SecurityHeader, "true")
	}
	for name, rpc := range rpcs {
		ctx := testContext(t)
		if err := rpc(ctx); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s without the security header: %v, want InvalidArgument", name, err)
		}
		bad := metadata.AppendToOutgoingContext(ctx, workloadapi.SecurityHeader, "TRUE")
		if err := rpc(bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s with header value TRUE: %v, want InvalidArgument", name, err)
		}
	}

	ctx := withHeader(testContext(t))
	if _, err := wl.FetchJWTSVID(ctx, &workload.JWTSVIDRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("FetchJWTSVID without audience: %v, want InvalidArgument", err)
	}
	for _, req := range []*workload.ValidateJWTSVIDRequest{{Svid: "x.y.z"}, {Audience: audience}} {
		if _, err := wl.ValidateJWTSVID(ctx, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ValidateJWTSVID(%v): %v, want InvalidArgument", req, err)
		}
	}

	if _, err := src.X509SVID(ctx, src.agents[0]); err != nil { // minted
		t.Fatal(err)
	}
	src.update(func() { // the node still holds the SVID after its expiry
		sv := src.svids["triage"]
		sv.ExpiresAt = time.Now().Add(-time.Second)
		src.svids["triage"] = sv
	})
	if err := rpcs["FetchX509SVID"](ctx); status.Code(err) != codes.Unavailable {
		t.Errorf("FetchX509SVID with an expired SVID: %v, want Unavailable", err)
	}
	src.update(func() { src.ttl, src.svids = -1, map[string]workloadapi.X509SVID{} }) // the node holds no SVID
	if err := rpcs["FetchX509SVID"](ctx); status.Code(err) != codes.Unavailable {
		t.Errorf("FetchX509SVID without an SVID: %v, want Unavailable", err)
	}

	src.update(func() { src.agents = []store.Agent{agent("triage", uidSelector(os.Getuid()+1))} })
	for name, rpc := range rpcs {
		if err := rpc(ctx); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s of a caller no agent matches: %v, want PermissionDenied", name, err)
		}
	}
	c := newClient(t, serve(t, src))
	if _, err := c.FetchX509SVID(ctx); status.Code(err) != codes.PermissionDenied {
		t.Errorf("go-spiffe FetchX509SVID of an unknown caller: %v, want PermissionDenied", err)
	}
}

// watcher records the X.509 contexts a go-spiffe watch receives.
type watcher struct{ updates chan *spiffewl.X509Context }

func (w watcher) OnX509ContextUpdate(c *spiffewl.X509Context) { w.updates <- c }
func (w watcher) OnX509ContextWatchError(error)               {}

// TestRotation watches the X.509 stream with go-spiffe's watcher: a new
// SVID in the Source arrives on it; an unchanged Source sends nothing.
func TestRotation(t *testing.T) {
	src := newFakeSource(t, agent("triage", uidSelector(os.Getuid())))
	c := newClient(t, serve(t, src))
	ctx, cancel := context.WithCancel(testContext(t))
	w := watcher{updates: make(chan *spiffewl.X509Context, 10)}
	done := make(chan error, 1)
	go func() { done <- c.WatchX509Context(ctx, w) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) && status.Code(err) != codes.Canceled {
			t.Errorf("WatchX509Context: %v", err)
		}
	})
	next := func() *spiffewl.X509Context {
		select {
		case x := <-w.updates:
			return x
		case <-time.After(10 * time.Second):
			t.Fatal("no update on the stream")
			return nil
		}
	}
	first := next().DefaultSVID()
	src.update(func() {}) // a change that changes nothing: no message
	src.rotate("triage")
	second := next()
	sv := second.DefaultSVID()
	if sv.Certificates[0].SerialNumber.Cmp(first.Certificates[0].SerialNumber) == 0 {
		t.Fatal("the stream sent the same SVID again")
	}
	if _, _, err := x509svid.Verify(sv.Certificates, second.Bundles); err != nil {
		t.Errorf("rotated SVID: %v", err)
	}
}
