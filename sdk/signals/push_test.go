package signals_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/resource"
	"github.com/agentid/agentid/sdk/signals"
	"github.com/google/go-cmp/cmp"
)

const pushSecret = "Bearer push-secret"

// pushReceiver is a push Receiver of tr whose PushHandler is served by an
// httptest server at /ssf/events.
func pushReceiver(t *testing.T, tr *transmitter, clock *fakeClock, mod func(c *signals.Config)) (*signals.Receiver, string) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	endpoint := srv.URL + "/ssf/events"
	r := newReceiver(t, tr, clock, func(c *signals.Config) {
		c.PushEndpoint, c.PushAuthorization = endpoint, pushSecret
		if mod != nil {
			mod(c)
		}
	})
	mux.Handle("/ssf/events", r.PushHandler())
	return r, endpoint
}

// streamConfig returns a stream of tr as stored (without the header).
func (tr *transmitter) streamConfig(id string) map[string]any {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.streams[id]
}

func (tr *transmitter) authHeader(id string) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.pushAuth[id]
}

func TestPushStreamCreated(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	tr.addStream("ssf_poll", nil) // a poll stream: ignored by a push receiver
	r, endpoint := pushReceiver(t, tr, &fakeClock{now: t0}, func(c *signals.Config) { c.Description = "api" })
	st, err := r.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "ssf_1" || st.DeliveryMethod != signals.DeliveryPush || st.EndpointURL != endpoint || st.Description != "api" {
		t.Fatalf("Stream = %+v", st)
	}
	want := map[string]any{"method": signals.DeliveryPush, "endpoint_url": endpoint}
	if diff := cmp.Diff(want, tr.streamConfig(st.ID)["delivery"]); diff != "" {
		t.Fatalf("delivery (-want +got):\n%s", diff)
	}
	if got := tr.authHeader(st.ID); got != pushSecret {
		t.Fatalf("authorization_header %q, want the configured one", got)
	}
	if p := tr.patchCalls(); len(p) != 0 {
		t.Fatalf("a created stream was patched: %v", p)
	}
	if st, err := newReceiver(t, tr, &fakeClock{now: t0}, nil).Stream(context.Background()); err != nil || st.ID != "ssf_poll" || st.DeliveryMethod != signals.DeliveryPoll {
		t.Fatalf("poll receiver: Stream = %+v, %v", st, err)
	}
}

func TestPushAuthorizationGenerated(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	var headers []string
	for i := range 2 {
		endpoint := fmt.Sprintf("https://rcv%d.example.com/ssf/events", i)
		r := newReceiver(t, tr, &fakeClock{now: t0}, func(c *signals.Config) { c.PushEndpoint = endpoint })
		st, err := r.Stream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		h := tr.authHeader(st.ID)
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(h, "Bearer "))
		if !strings.HasPrefix(h, "Bearer ") || err != nil || len(b) != 32 {
			t.Fatalf("generated header %q", h)
		}
		headers = append(headers, h)
	}
	if headers[0] == headers[1] {
		t.Fatal("two receivers generated the same header")
	}
}

func TestPushStreamReused(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	r, endpoint := pushReceiver(t, tr, &fakeClock{now: t0}, nil)
	tr.addStream("ssf_poll", nil)
	tr.addStream("ssf_elsewhere", func(s map[string]any) {
		s["delivery"] = map[string]any{"method": signals.DeliveryPush, "endpoint_url": "https://other.example.com/events"}
	})
	tr.addStream("ssf_mine", func(s map[string]any) {
		s["delivery"] = map[string]any{"method": signals.DeliveryPush, "endpoint_url": endpoint}
	})
	tr.mu.Lock()
	tr.pushAuth["ssf_mine"] = "Bearer from-before-the-restart"
	tr.mu.Unlock()
	st, err := r.Stream(context.Background())
	if err != nil || st.ID != "ssf_mine" || tr.creates != 0 {
		t.Fatalf("Stream = %+v, %v; creates %d", st, err, tr.creates)
	}
	want := []map[string]any{{
		"stream_id": "ssf_mine",
		"delivery":  map[string]any{"method": signals.DeliveryPush, "endpoint_url": endpoint, "authorization_header": pushSecret},
	}}
	if diff := cmp.Diff(want, tr.patchCalls()); diff != "" {
		t.Fatalf("PATCH (-want +got):\n%s", diff)
	}
	if got := tr.authHeader("ssf_mine"); got != pushSecret {
		t.Fatalf("authorization_header %q after the PATCH", got)
	}
	// A poll receiver ignores the push streams.
	if st, err := newReceiver(t, tr, &fakeClock{now: t0}, nil).Stream(context.Background()); err != nil || st.ID != "ssf_poll" {
		t.Fatalf("poll receiver: Stream = %+v, %v", st, err)
	}
}

func TestPushStreamConfigured(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	tr.addStream("ssf_poll", nil)
	tr.addStream("ssf_push", func(s map[string]any) {
		s["delivery"] = map[string]any{"method": signals.DeliveryPush, "endpoint_url": "https://old.example.com/events"}
	})
	// A configured push stream is pointed at PushEndpoint.
	r, endpoint := pushReceiver(t, tr, &fakeClock{now: t0}, func(c *signals.Config) { c.StreamID = "ssf_push" })
	st, err := r.Stream(context.Background())
	if err != nil || st.ID != "ssf_push" || st.EndpointURL != endpoint || tr.authHeader("ssf_push") != pushSecret {
		t.Fatalf("Stream = %+v, %v", st, err)
	}
	// A configured poll stream is refused, not switched.
	r, _ = pushReceiver(t, tr, &fakeClock{now: t0}, func(c *signals.Config) { c.StreamID = "ssf_poll" })
	if _, err := r.Stream(context.Background()); !errors.Is(err, signals.ErrStream) {
		t.Fatalf("push receiver on a poll stream: %v, want ErrStream", err)
	}
	if got := len(tr.patchCalls()); got != 1 {
		t.Fatalf("%d PATCHes, want 1", got)
	}
	// Another receiver's stream is not touched.
	tr.addStream("ssf_theirs", func(s map[string]any) {
		s["aud"] = "agt_other"
		s["delivery"] = map[string]any{"method": signals.DeliveryPush, "endpoint_url": endpoint}
	})
	r, _ = pushReceiver(t, tr, &fakeClock{now: t0}, func(c *signals.Config) { c.StreamID = "ssf_theirs" })
	if _, err := r.Stream(context.Background()); !errors.Is(err, signals.ErrStream) || len(tr.patchCalls()) != 1 {
		t.Fatalf("push receiver on another's stream: %v", err)
	}
	// A transmitter without push delivery.
	tr.methods = []string{signals.DeliveryPoll}
	r, _ = pushReceiver(t, tr, &fakeClock{now: t0}, nil)
	if _, err := r.Stream(context.Background()); !errors.Is(err, signals.ErrMetadata) {
		t.Fatalf("Stream = %v, want ErrMetadata", err)
	}
}

func TestPushPollOnceAndRun(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	tr.down["metadata"] = true // Run retries until it finds the stream
	r, endpoint := pushReceiver(t, tr, &fakeClock{now: t0}, nil)
	if _, err := r.PollOnce(context.Background()); !errors.Is(err, signals.ErrStream) {
		t.Fatalf("PollOnce = %v, want ErrStream", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	time.Sleep(30 * time.Millisecond)
	tr.mu.Lock()
	tr.down["metadata"] = false
	tr.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for r.Status().StreamID == "" {
		if time.Now().After(deadline) {
			t.Fatal("no stream")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before ctx ended", err)
	case <-time.After(20 * time.Millisecond):
	}
	if d := tr.streamConfig("ssf_1")["delivery"].(map[string]any); d["endpoint_url"] != endpoint {
		t.Fatalf("delivery %v", d)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if len(tr.pollCalls()) != 0 {
		t.Fatal("a push receiver polled")
	}
}

func TestPushNewRejects(t *testing.T) {
	hc := &http.Client{}
	base := signals.Config{Issuer: "https://i.example.com", Client: hc, Audience: audience}
	for name, mod := range map[string]func(c *signals.Config){
		"relative endpoint":           func(c *signals.Config) { c.PushEndpoint = "/ssf/events" },
		"ftp endpoint":                func(c *signals.Config) { c.PushEndpoint = "ftp://rcv.example.com/x" },
		"no host":                     func(c *signals.Config) { c.PushEndpoint = "https:///x" },
		"authorization, no endpoint":  func(c *signals.Config) { c.PushAuthorization = pushSecret },
		"authorization with newline":  func(c *signals.Config) { c.PushEndpoint, c.PushAuthorization = "https://r/", "Bearer a\r\nX-Evil: 1" },
		"authorization with a margin": func(c *signals.Config) { c.PushEndpoint, c.PushAuthorization = "https://r/", " Bearer a" },
	} {
		cfg := base
		mod(&cfg)
		_, err := signals.New(cfg)
		if err == nil {
			t.Errorf("%s: New succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), "Bearer") {
			t.Errorf("%s: the error shows the header: %v", name, err)
		}
	}
}

// pushEnv is a push receiver with its stream, ready to receive.
type pushEnv struct {
	tr     *transmitter
	r      *signals.Receiver
	clock  *fakeClock
	stream string
}

func newPushEnv(t *testing.T) *pushEnv {
	t.Helper()
	tr := newTransmitter(t, newES256(t, "k1"))
	clock := &fakeClock{now: t0}
	r, _ := pushReceiver(t, tr, clock, nil)
	st, err := r.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &pushEnv{tr: tr, r: r, clock: clock, stream: st.ID}
}

// revocation returns a signed SET revoking token tokJTI, and the claims of
// that token.
func (e *pushEnv) revocation(t *testing.T, tokJTI string, mod func(c map[string]any)) (string, *resource.Claims) {
	c := e.tr.set(jwtID(e.tr.srv.URL, tokJTI), signals.EventSessionRevoked, nil)
	if mod != nil {
		mod(c)
	}
	return sign(t, e.tr.keys[0], c, nil), tokenClaims(e.tr.srv.URL, func(c *resource.Claims) { c.JTI = tokJTI })
}

func (e *pushEnv) revoked(c *resource.Claims) bool {
	ok, _ := e.r.Revoked(c)
	return ok
}

// wantErr checks a JSON error answer.
func wantErr(t *testing.T, name string, status int, h http.Header, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d (%s)", name, status, wantStatus, body)
		return
	}
	var e struct {
		Err         string `json:"err"`
		Description string `json:"description"`
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", name, ct)
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Err != wantCode || e.Description == "" {
		t.Errorf("%s: body %s, want err %q with a description", name, body, wantCode)
	}
	if strings.Contains(string(body), pushSecret) {
		t.Errorf("%s: the answer shows the header", name)
	}
}

func TestPushHandler(t *testing.T) {
	e := newPushEnv(t)
	set, tok := e.revocation(t, "tok_1", nil)
	e.clock.Advance(time.Minute)
	status, _, body := e.tr.deliver(e.stream, set, nil)
	if status != http.StatusAccepted || len(body) != 0 {
		t.Fatalf("valid SET: %d %s, want 202 with no body", status, body)
	}
	if !e.revoked(tok) {
		t.Fatal("not revoked after a 202")
	}
	if got := e.r.Status().LastPush; !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("LastPush %v", got)
	}
	entries := e.r.Status().Entries
	// At least once: the same SET again is accepted, not applied twice.
	if status, _, body := e.tr.deliver(e.stream, set, nil); status != http.StatusAccepted || len(body) != 0 {
		t.Fatalf("the same SET again: %d %s", status, body)
	}
	if got := e.r.Status().Entries; got != entries {
		t.Fatalf("entries %d after a redelivery, want %d", got, entries)
	}
	// Media type parameters and case are ignored.
	set2, tok2 := e.revocation(t, "tok_2", nil)
	status, _, body = e.tr.deliver(e.stream, set2+"\n", func(r *http.Request) {
		r.Header.Set("Content-Type", "Application/SecEvent+JWT; charset=utf-8")
	})
	if status != http.StatusAccepted || !e.revoked(tok2) {
		t.Fatalf("Content-Type with parameters: %d %s", status, body)
	}
	// A stream-updated event of the stream is reported.
	c := e.tr.set(opaque(e.stream), signals.EventStreamUpdated, map[string]any{"status": "paused", "reason": "maintenance"})
	if status, _, _ := e.tr.deliver(e.stream, sign(t, e.tr.keys[0], c, nil), nil); status != http.StatusAccepted {
		t.Fatalf("stream-updated: %d", status)
	}
	if st := e.r.Status(); st.StreamStatus != "paused" || st.StreamReason != "maintenance" {
		t.Fatalf("Status = %+v", st)
	}
}

func TestPushHandlerRefuses(t *testing.T) {
	e := newPushEnv(t)
	impostor := e.tr.keys[0]
	impostor.key = newES256(t, "x").key
	type tc struct {
		name   string
		set    string
		mod    func(r *http.Request)
		status int
		code   string
		tok    *resource.Claims
	}
	var cases []tc
	add := func(name string, mod func(c map[string]any), reqMod func(r *http.Request), status int, code string) {
		set, tok := e.revocation(t, "tok_"+name, mod)
		cases = append(cases, tc{name: name, set: set, mod: reqMod, status: status, code: code, tok: tok})
	}
	add("wrong Authorization", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer wrong") }, http.StatusUnauthorized, "authentication_failed")
	add("no Authorization", nil, func(r *http.Request) { r.Header.Del("Authorization") }, http.StatusUnauthorized, "authentication_failed")
	add("header prefix", nil, func(r *http.Request) { r.Header.Set("Authorization", pushSecret[:len(pushSecret)-1]) }, http.StatusUnauthorized, "authentication_failed")
	add("two Authorization headers", nil, func(r *http.Request) { r.Header.Add("Authorization", pushSecret) }, http.StatusUnauthorized, "authentication_failed")
	add("JSON content type", nil, func(r *http.Request) { r.Header.Set("Content-Type", "application/json") }, http.StatusBadRequest, "invalid_request")
	add("no content type", nil, func(r *http.Request) { r.Header.Del("Content-Type") }, http.StatusBadRequest, "invalid_request")
	add("wrong aud", func(c map[string]any) { c["aud"] = "agt_other" }, nil, http.StatusBadRequest, "invalid_audience")
	add("wrong iss", func(c map[string]any) { c["iss"] = "https://evil.example.com" }, nil, http.StatusBadRequest, "invalid_issuer")
	c := e.tr.set(jwtID(e.tr.srv.URL, "tok_forged"), signals.EventSessionRevoked, nil)
	cases = append(cases, tc{
		name: "bad signature", set: sign(t, impostor, c, nil), status: http.StatusBadRequest, code: "invalid_key",
		tok: tokenClaims(e.tr.srv.URL, func(c *resource.Claims) { c.JTI = "tok_forged" }),
	})
	cases = append(cases,
		tc{name: "garbage", set: "not-a-set", status: http.StatusBadRequest, code: "invalid_request"},
		tc{name: "oversized", set: strings.Repeat("a", 64<<10+1), status: http.StatusBadRequest, code: "invalid_request"},
	)
	for _, tc := range cases {
		entries := e.r.Status().Entries
		status, h, body := e.tr.deliver(e.stream, tc.set, tc.mod)
		wantErr(t, tc.name, status, h, body, tc.status, tc.code)
		if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, h.Get("WWW-Authenticate"))
		}
		if tc.tok != nil && e.revoked(tc.tok) {
			t.Errorf("%s: the token was revoked", tc.name)
		}
		if got := e.r.Status().Entries; got != entries {
			t.Errorf("%s: entries %d, want %d", tc.name, got, entries)
		}
	}
	if !e.r.Status().LastPush.IsZero() {
		t.Fatal("LastPush set by refused pushes")
	}

	// GET is not allowed.
	set, _ := e.revocation(t, "tok_get", nil)
	status, h, _ := e.tr.deliver(e.stream, set, func(r *http.Request) { r.Method = http.MethodGet })
	if status != http.StatusMethodNotAllowed || h.Get("Allow") != http.MethodPost {
		t.Fatalf("GET: %d, Allow %q", status, h.Get("Allow"))
	}
}

func TestPushHandlerUnavailable(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	clock := &fakeClock{now: t0}
	r, _ := pushReceiver(t, tr, clock, nil)
	if _, err := r.Stream(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := &pushEnv{tr: tr, r: r, clock: clock, stream: "ssf_1"}
	set, tok := e.revocation(t, "tok_1", nil)
	tr.mu.Lock()
	tr.down["jwks"] = true
	tr.mu.Unlock()
	status, h, body := tr.deliver(e.stream, set, nil)
	wantErr(t, "JWKS down", status, h, body, http.StatusServiceUnavailable, "temporarily_unavailable")
	if got := h.Get("Retry-After"); got != "30" {
		t.Fatalf("Retry-After %q, want 30 (MinRefetchInterval)", got)
	}
	if e.revoked(tok) {
		t.Fatal("revoked without verification")
	}
	tr.mu.Lock()
	tr.down["jwks"] = false
	tr.mu.Unlock()
	clock.Advance(signals.DefaultMinRefetchInterval)
	if status, _, body := tr.deliver(e.stream, set, nil); status != http.StatusAccepted || !e.revoked(tok) {
		t.Fatalf("after the JWKS is back: %d %s", status, body)
	}
}

// TestPushHandlerDiscovers: a push arriving before the Receiver looked
// for its stream discovers the transmitter itself.
func TestPushHandlerDiscovers(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	tr.down["metadata"] = true
	clock := &fakeClock{now: t0}
	r, endpoint := pushReceiver(t, tr, clock, nil)
	tr.addStream("ssf_old", func(s map[string]any) {
		s["delivery"] = map[string]any{"method": signals.DeliveryPush, "endpoint_url": endpoint}
	})
	tr.pushAuth["ssf_old"] = pushSecret // as configured before a restart
	e := &pushEnv{tr: tr, r: r, clock: clock, stream: "ssf_old"}
	set, tok := e.revocation(t, "tok_1", nil)
	status, h, body := tr.deliver(e.stream, set, nil)
	wantErr(t, "metadata down", status, h, body, http.StatusServiceUnavailable, "temporarily_unavailable")
	tr.mu.Lock()
	tr.down["metadata"] = false
	tr.mu.Unlock()
	if status, _, body := tr.deliver(e.stream, set, nil); status != http.StatusAccepted || !e.revoked(tok) {
		t.Fatalf("%d %s", status, body)
	}
	if r.Status().StreamID != "" {
		t.Fatal("the handler looked for the stream")
	}
}

func TestPushHandlerConcurrent(t *testing.T) {
	e := newPushEnv(t)
	const n = 20
	sets := make([]string, n)
	toks := make([]*resource.Claims, n)
	for i := range n {
		sets[i], toks[i] = e.revocation(t, fmt.Sprintf("tok_%d", i), nil)
	}
	var wg sync.WaitGroup
	statuses := make([]int, 2*n)
	for i := range 2 * n { // every SET twice, at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, _ = e.tr.deliver(e.stream, sets[i%n], nil)
			_, _ = e.r.Revoked(toks[i%n])
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusAccepted {
			t.Errorf("push %d: %d", i, s)
		}
	}
	for i, tok := range toks {
		if !e.revoked(tok) {
			t.Errorf("token %d not revoked", i)
		}
	}
	if got := e.r.Status().Entries; got != 2*n {
		t.Fatalf("%d entries, want %d (a seen jti and a revoked token per SET)", got, 2*n)
	}
}

// TestPushPollHandlerRefuses: a poll Receiver's PushHandler refuses
// every push.
func TestPushPollHandlerRefuses(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	r := newReceiver(t, tr, &fakeClock{now: t0}, nil)
	for _, auth := range []string{"", "Bearer ", pushSecret} {
		req := httptest.NewRequest(http.MethodPost, "/ssf/events", strings.NewReader("a.b.c"))
		req.Header.Set("Content-Type", "application/secevent+jwt")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		r.PushHandler().ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", auth, w.Code)
		}
	}
}
