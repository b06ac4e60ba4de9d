package agent_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agentid/agentid/sdk/agent"
	"github.com/agentid/agentid/sdk/dpop"
)

// seen is what a fake resource server received.
type seen struct {
	auth, traceparent, dpop, body string
}

// fakeRS is a resource server that records requests and, with a nonce,
// checks DPoP proofs the way RFC 9449 §7 says.
type fakeRS struct {
	srv   *httptest.Server
	clock *fakeClock
	nonce string

	mu   sync.Mutex
	reqs []seen
}

func newFakeRS(t *testing.T, clock *fakeClock, nonce string) *fakeRS {
	rs := &fakeRS{clock: clock, nonce: nonce}
	rs.srv = httptest.NewServer(http.HandlerFunc(rs.serve))
	t.Cleanup(rs.srv.Close)
	return rs
}

func (rs *fakeRS) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rs.mu.Lock()
	rs.reqs = append(rs.reqs, seen{r.Header.Get("Authorization"), r.Header.Get("Traceparent"), r.Header.Get("DPoP"), string(b)})
	rs.mu.Unlock()
	tok, isDPoP := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
	if !isDPoP {
		return
	}
	p, err := dpop.Verify(r.Header.Get("DPoP"), dpop.VerifyParams{
		Method: r.Method, URL: "http://" + r.Host + r.URL.RequestURI(), AccessToken: tok, Nonce: rs.nonce, Now: rs.clock.Now(),
	})
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
		w.Header().Set("DPoP-Nonce", rs.nonce)
		w.WriteHeader(http.StatusUnauthorized)
	case err != nil:
		w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof"`)
		w.WriteHeader(http.StatusUnauthorized)
	case !strings.HasSuffix(tok, "."+p.Thumbprint):
		w.WriteHeader(http.StatusUnauthorized)
	}
}

func (rs *fakeRS) seen() []seen {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]seen(nil), rs.reqs...)
}

// do sends req and returns the answer's status.
func do(t *testing.T, c *http.Client, req *http.Request) int {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestTransportBearerAndTraceparent(t *testing.T) {
	key := newKey(t)
	clock := newClock()
	as := newFakeAS(t, &key.PublicKey, clock)
	rs := newFakeRS(t, clock, "")
	c := &http.Client{Transport: agent.NewTransport(newSource(t, as, key, nil), nil)}

	const ctxTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const hdrTP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ctx := agent.WithTraceparent(context.Background(), ctxTP)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rs.srv.URL+"/a", nil)
	req.Header.Set("Traceparent", hdrTP)
	do(t, c, req)
	if req.Header.Get("Authorization") != "" {
		t.Fatal("RoundTrip modified the caller's request")
	}
	req, _ = http.NewRequest(http.MethodGet, rs.srv.URL+"/b", nil)
	req.Header.Set("Traceparent", hdrTP)
	do(t, c, req)
	req, _ = http.NewRequest(http.MethodGet, rs.srv.URL+"/c", nil)
	req.Header.Set("Traceparent", "00-00000000000000000000000000000000-b7ad6b7169203331-01")
	do(t, c, req)
	req, _ = http.NewRequest(http.MethodGet, rs.srv.URL+"/d", nil)
	do(t, c, req)

	got := rs.seen()
	for _, s := range got {
		if s.auth != "Bearer tok-1." || s.dpop != "" {
			t.Fatalf("request = %+v, want the bearer token and no DPoP proof", s)
		}
	}
	if got[0].traceparent != ctxTP || got[1].traceparent != hdrTP {
		t.Fatalf("traceparents %q, %q: want the context's, then the request's", got[0].traceparent, got[1].traceparent)
	}
	for _, s := range got[2:] {
		if !agent.ValidTraceparent(s.traceparent) {
			t.Fatalf("generated traceparent %q", s.traceparent)
		}
	}
	if got[2].traceparent == got[3].traceparent {
		t.Fatal("two requests got the same new trace id")
	}
	if as.traceparents[0] != ctxTP {
		t.Fatalf("token request traceparent = %q, want the task's", as.traceparents[0])
	}
}

func TestTransportDPoP(t *testing.T) {
	key := newKey(t)
	clock := newClock()
	as := newFakeAS(t, &key.PublicKey, clock)
	as.nonce = "as-nonce-1"
	rs := newFakeRS(t, clock, "rs-nonce-1")
	signer, err := dpop.NewSigner(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	src := newSource(t, as, key, func(p *agent.TokenSourceParams) { p.DPoP = signer })
	c := &http.Client{Transport: agent.NewTransport(src, nil)}

	// The token endpoint asks for a nonce, then issues a bound token.
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" || tok.AccessToken != "tok-1."+signer.Thumbprint() || len(as.forms) != 2 {
		t.Fatalf("token = %+v after %d requests", tok, len(as.forms))
	}

	// The resource server asks for its nonce: the request is replayed once,
	// body included.
	req, _ := http.NewRequest(http.MethodPost, rs.srv.URL+"/tickets?x=1", bytes.NewReader([]byte("hello")))
	if status := do(t, c, req); status != http.StatusOK {
		t.Fatalf("status = %d", status)
	}
	// The nonce is remembered: one request.
	req, _ = http.NewRequest(http.MethodPost, rs.srv.URL+"/tickets", strings.NewReader("again"))
	if status := do(t, c, req); status != http.StatusOK {
		t.Fatalf("status = %d", status)
	}
	got := rs.seen()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, want := range []string{"hello", "hello", "again"} {
		if got[i].body != want || got[i].auth != "DPoP "+tok.AccessToken || got[i].dpop == "" {
			t.Fatalf("request %d = %+v", i, got[i])
		}
	}
	if got[0].dpop == got[1].dpop {
		t.Fatal("the retry reused the proof")
	}

	// A body that cannot be replayed: the 401 stands.
	rs2 := newFakeRS(t, clock, "rs-nonce-2")
	req, _ = http.NewRequest(http.MethodPost, rs2.srv.URL+"/x", io.NopCloser(strings.NewReader("once")))
	if status := do(t, c, req); status != http.StatusUnauthorized || len(rs2.seen()) != 1 {
		t.Fatalf("status = %d after %d requests, want the 401", status, len(rs2.seen()))
	}
}

// closeRecorder records whether it was closed.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestTransportTokenError(t *testing.T) {
	key := newKey(t)
	as := newFakeAS(t, &key.PublicKey, newClock())
	as.fail = func(w http.ResponseWriter) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "agent suspended")
	}
	rs := newFakeRS(t, as.clock, "")
	c := &http.Client{Transport: agent.NewTransport(newSource(t, as, key, nil), nil)}
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest(http.MethodPost, rs.srv.URL, body)
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	var e *agent.Error
	if !errors.As(err, &e) || e.Code != "invalid_client" {
		t.Fatalf("Do = %v, want the token endpoint's error", err)
	}
	if !body.closed || len(rs.seen()) != 0 {
		t.Fatalf("body closed %v, %d requests sent", body.closed, len(rs.seen()))
	}
}

func TestValidTraceparent(t *testing.T) {
	for tp, want := range map[string]bool{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":     true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00":     true,
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz": true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz": false,
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01xyz":  false,
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":     false,
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01":     false,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":     false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01":     false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7":        false,
		"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01":     false,
		"": false,
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01": false,
	} {
		if got := agent.ValidTraceparent(tp); got != want {
			t.Errorf("ValidTraceparent(%q) = %v, want %v", tp, got, want)
		}
	}
	ctx := agent.WithTraceparent(context.Background(), "bogus")
	if _, ok := agent.TraceparentFromContext(ctx); ok {
		t.Error("WithTraceparent kept an invalid traceparent")
	}
}

func FuzzValidTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if !agent.ValidTraceparent(s) {
			return
		}
		if len(s) < 55 || s[:2] == "ff" || strings.ToLower(s[:55]) != s[:55] {
			t.Fatalf("ValidTraceparent(%q) = true", s)
		}
	})
}
