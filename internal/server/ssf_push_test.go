package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
	"github.com/agentid/agentid/sdk/resource"
	"github.com/agentid/agentid/sdk/signals"
)

// pushPeer is an RFC 8935 receiver written for the test: it checks each
// request's method, media type and Authorization header, verifies the SET
// with go-jose (ssfPeer.verify), and answers what respond says.
type pushPeer struct {
	peer *ssfPeer
	srv  *httptest.Server
	auth string

	mu      sync.Mutex
	respond func(s set) (int, string) // status and JSON body; nil: 202
	got     []set                     // every SET received, in order, repeats included
	arrived chan struct{}
}

func newPushPeer(t *testing.T, peer *ssfPeer, auth string) *pushPeer {
	pp := &pushPeer{peer: peer, auth: auth, arrived: make(chan struct{}, 100)}
	pp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method != http.MethodPost || mt != "application/secevent+jwt" || r.Header.Get("Accept") != "application/json":
			t.Errorf("push request %s %q accept %q", r.Method, mt, r.Header.Get("Accept"))
			w.WriteHeader(http.StatusBadRequest)
			return
		case r.Header.Get("Authorization") != pp.authorization():
			w.WriteHeader(http.StatusUnauthorized)
			pp.arrived <- struct{}{}
			return
		}
		s := peer.verify(string(body))
		pp.mu.Lock()
		pp.got = append(pp.got, s)
		respond := pp.respond
		pp.mu.Unlock()
		status, reply := http.StatusAccepted, ""
		if respond != nil {
			status, reply = respond(s)
		}
		if reply != "" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, reply)
		pp.arrived <- struct{}{}
	}))
	t.Cleanup(pp.srv.Close)
	return pp
}

func (pp *pushPeer) authorization() string {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.auth
}

func (pp *pushPeer) setRespond(f func(s set) (int, string)) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.respond = f
}

// waitFor waits until a SET of type typ has been received n times in all.
func (pp *pushPeer) waitFor(t *testing.T, typ string, n int) []set {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		pp.mu.Lock()
		var of []set
		for _, s := range pp.got {
			if s.typ == typ {
				of = append(of, s)
			}
		}
		pp.mu.Unlock()
		if len(of) >= n {
			return of
		}
		select {
		case <-pp.arrived:
		case <-deadline:
			t.Fatalf("no %d pushes of %s; got %d", n, typ, len(of))
		}
	}
}

// TestSSFPushDelivery: a receiver agent makes a push stream (RFC 8935) to
// an allowed host with an authorization header; revocations reach its
// endpoint as signed SETs with that header, in order; a failing endpoint
// gets the same SET again after a backoff, a refused SET (400) is not
// sent again, the delivery state is shown on the stream, the header is
// never shown or recorded, and receivers may not push to other hosts.
func TestSSFPushDelivery(t *testing.T) {
	ls := startLive(t, func(c *server.Config) { c.SSF.PushAllowedHosts = []string{"127.0.0.1"} }, nil)
	ctx := t.Context()
	rcv, _ := newSSFPeer(t, ls, "rs", []string{"subscribe"})
	const secret = "Bearer push-s3cret-value"
	pp := newPushPeer(t, rcv, secret)
	if methods, _ := rcv.meta["delivery_methods_supported"].([]any); len(methods) != 2 || methods[1] != "urn:ietf:rfc:8935" {
		t.Fatalf("delivery_methods_supported = %v", rcv.meta["delivery_methods_supported"])
	}
	cfgURL := rcv.meta["configuration_endpoint"].(string)

	// Receivers may push only to the hosts the operator lists.
	status, prob := rcv.call(http.MethodPost, cfgURL,
		`{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"https://elsewhere.example.org/events"}}`)
	if status != http.StatusBadRequest || !strings.Contains(prob["detail"].(string), "push_allowed_hosts") {
		t.Fatalf("push stream to another host = %d %v", status, prob)
	}
	status, prob = rcv.call(http.MethodPost, cfgURL,
		`{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"`+pp.srv.URL+`/e","authorization_header":"a\nb"}}`)
	if status != http.StatusBadRequest {
		t.Fatalf("authorization header with a newline = %d %v", status, prob)
	}

	events := `["` + sessionRevoked + `","` + accountDisabled + `","` + accountEnabled + `"]`
	status, st := rcv.call(http.MethodPost, cfgURL, `{"events_requested":`+events+
		`,"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"`+pp.srv.URL+`/events","authorization_header":"`+secret+`"}}`)
	if status != http.StatusCreated {
		t.Fatalf("create push stream = %d %v", status, st)
	}
	id := st["stream_id"].(string)
	delivery := st["delivery"].(map[string]any)
	ps, _ := st["push_state"].(map[string]any)
	if delivery["method"] != "urn:ietf:rfc:8935" || delivery["endpoint_url"] != pp.srv.URL+"/events" ||
		delivery["authorization_header"] != nil || ps["authorization_header"] != true || ps["failures"] != 0.0 {
		t.Fatalf("push stream = %v", st)
	}

	victim, _, _, _ := ls.newAgent(ctx, "victim", nil)
	if _, err := ls.admin.RevokeTokens(ctx, admin.RevokeTokensRequest{Agent: victim.Name}); err != nil {
		t.Fatal(err)
	}
	got := pp.waitFor(t, sessionRevoked, 1)
	if !strings.HasPrefix(got[0].jti, id+".") || got[0].subID["format"] != "iss_sub" || got[0].claims["aud"] != rcvAgentClientID(t, ls, "rs") {
		t.Errorf("pushed SET = %+v", got[0])
	}

	// The verification event goes by push too.
	status, _ = rcv.call(http.MethodPost, rcv.meta["verification_endpoint"].(string), `{"stream_id":"`+id+`","state":"ping-1"}`)
	if status != http.StatusNoContent {
		t.Fatalf("verify = %d", status)
	}
	if v := pp.waitFor(t, verification, 1); v[0].event["state"] != "ping-1" {
		t.Errorf("verification SET = %v", v[0].event)
	}

	// A failing endpoint: the same SET again, after a backoff.
	pp.setRespond(func(set) (int, string) { return http.StatusServiceUnavailable, "" })
	if _, err := ls.admin.SuspendAgent(ctx, victim.Name, admin.TransitionRequest{Reason: "leak"}); err != nil {
		t.Fatal(err)
	}
	first := pp.waitFor(t, accountDisabled, 1)[0]
	waitPushState(t, rcv, cfgURL, id, func(ps map[string]any) bool {
		return ps["failures"].(float64) >= 1 && ps["last_error"] == "HTTP 503" && ps["next_attempt_at"] != nil
	})
	pp.setRespond(nil)
	again := pp.waitFor(t, accountDisabled, 2)
	if again[len(again)-1].jti != first.jti {
		t.Errorf("redelivered jti %s, first %s", again[len(again)-1].jti, first.jti)
	}
	waitPushState(t, rcv, cfgURL, id, func(ps map[string]any) bool {
		return ps["failures"] == 0.0 && ps["last_error"] == nil && ps["last_delivered_at"] != nil
	})

	// A refused SET (400 with an RFC 8935 error) is not sent again; the
	// next one follows.
	pp.setRespond(func(s set) (int, string) {
		if s.typ == accountEnabled {
			return http.StatusBadRequest, `{"err":"invalid_key","description":"kid not trusted"}`
		}
		return http.StatusAccepted, ""
	})
	if _, err := ls.admin.ResumeAgent(ctx, victim.Name, admin.TransitionRequest{Reason: "fixed"}); err != nil {
		t.Fatal(err)
	}
	pp.waitFor(t, accountEnabled, 1)
	if _, err := ls.admin.RevokeTokens(ctx, admin.RevokeTokensRequest{Agent: victim.Name}); err != nil {
		t.Fatal(err)
	}
	pp.waitFor(t, sessionRevoked, 2)
	if n := len(pp.waitFor(t, accountEnabled, 1)); n != 1 {
		t.Errorf("the refused SET was pushed %d times", n)
	}
	waitPushState(t, rcv, cfgURL, id, func(ps map[string]any) bool {
		e, _ := ps["last_error"].(string)
		return e == "" // the later delivery clears it
	})

	// An endpoint refusing the header: retried, shown on the stream.
	pp.mu.Lock()
	pp.auth = "Bearer other"
	pp.mu.Unlock()
	if _, err := ls.admin.SuspendAgent(ctx, victim.Name, admin.TransitionRequest{Reason: "again"}); err != nil {
		t.Fatal(err)
	}
	waitPushState(t, rcv, cfgURL, id, func(ps map[string]any) bool {
		e, _ := ps["last_error"].(string)
		return strings.Contains(e, "HTTP 401")
	})

	// Giving the header the endpoint wants ends the backoff at once, and
	// the held SET goes through.
	status, st = rcv.call(http.MethodPatch, cfgURL, `{"stream_id":"`+id+`","delivery":{"method":"urn:ietf:rfc:8935",`+
		`"endpoint_url":"`+pp.srv.URL+`/events","authorization_header":"Bearer other"}}`)
	if ps, _ := st["push_state"].(map[string]any); status != http.StatusOK || ps["next_attempt_at"] != nil || ps["failures"].(float64) < 1 {
		t.Fatalf("PATCH of the header = %d %v; want no pending attempt time, failures kept", status, st)
	}
	waitPushState(t, rcv, cfgURL, id, func(ps map[string]any) bool { return ps["failures"] == 0.0 && ps["last_error"] == nil })

	// /metrics counts the pushes by outcome, and names no stream,
	// endpoint or header.
	m, page := pushMetrics(t, ls)
	for _, c := range []struct {
		series string
		min    float64
	}{
		{`agentid_ssf_push_requests_total{outcome="accepted"}`, 5},
		{`agentid_ssf_push_requests_total{outcome="refused"}`, 1},
		{`agentid_ssf_push_requests_total{outcome="failed"}`, 2}, // 503, 401
		{`agentid_ssf_push_events_total{outcome="accepted"}`, 5},
		{`agentid_ssf_push_events_total{outcome="refused"}`, 1},
		{`agentid_ssf_push_oldest_pending_seconds`, 0},
	} {
		if v, ok := m[c.series]; !ok || v < c.min {
			t.Errorf("/metrics %s = %v (present %v); want at least %v", c.series, v, ok, c.min)
		}
	}
	if v, ok := m["agentid_ssf_push_streams_failing"]; !ok || v != 0 {
		t.Errorf("/metrics agentid_ssf_push_streams_failing = %v (present %v); want 0", v, ok)
	}
	for _, leak := range []string{id, pp.srv.URL, "s3cret", "Bearer other"} {
		if strings.Contains(page, leak) {
			t.Errorf("/metrics shows %q", leak)
		}
	}

	// A push stream is not polled.
	status, prob = rcv.call(http.MethodPost, ls.url+"/ssf/poll/"+id, `{"returnImmediately":true}`)
	if status != http.StatusBadRequest {
		t.Errorf("poll of a push stream = %d %v", status, prob)
	}

	// Back to poll: the header and the push state go.
	status, st = rcv.call(http.MethodPatch, cfgURL, `{"stream_id":"`+id+`","delivery":{"method":"urn:ietf:rfc:8936"}}`)
	if status != http.StatusOK || st["push_state"] != nil || st["delivery"].(map[string]any)["method"] != "urn:ietf:rfc:8936" {
		t.Fatalf("PATCH to poll = %d %v", status, st)
	}

	// The header is never recorded; the stream events say one is set.
	raw, err := json.Marshal(mustAudit(ctx, t, ls))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "s3cret") {
		t.Error("the authorization header is in the audit trail")
	}
	if !strings.Contains(string(raw), `"authorization_header":true`) {
		t.Error("the stream events do not say an authorization header is set")
	}
}

func rcvAgentClientID(t *testing.T, ls *liveServer, name string) string {
	t.Helper()
	a, err := ls.admin.GetAgent(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return a.ClientID
}

func mustAudit(ctx context.Context, t *testing.T, ls *liveServer) []admin.AuditEvent {
	t.Helper()
	evs, err := ls.admin.ListAuditEvents(ctx, admin.AuditQuery{Family: "admin", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return evs.Items
}

// pushMetrics scrapes the server's /metrics and returns its
// agentid_ssf_push_* series (name{labels} → value) and the whole page.
func pushMetrics(t *testing.T, ls *liveServer) (map[string]float64, string) {
	t.Helper()
	page := metricsText(t, ls.url, ls.token)
	m := map[string]float64{}
	for line := range strings.SplitSeq(page, "\n") {
		if !strings.HasPrefix(line, "agentid_ssf_push_") {
			continue
		}
		series, v, _ := strings.Cut(line, " ")
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("metric line %q", line)
		}
		m[series] = f
	}
	return m, page
}

// waitPushState polls the stream until its push_state satisfies ok.
func waitPushState(t *testing.T, p *ssfPeer, cfgURL, id string, ok func(map[string]any) bool) {
	t.Helper()
	var last map[string]any
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		status, st := p.call(http.MethodGet, cfgURL+"?stream_id="+id, "")
		if status != http.StatusOK {
			t.Fatalf("get stream = %d %v", status, st)
		}
		last, _ = st["push_state"].(map[string]any)
		if last != nil && ok(last) {
			return
		}
	}
	t.Fatalf("push_state = %v", last)
}

// TestSSFPushReachesSDKVerifier: an sdk/signals receiver in push mode
// registers its endpoint with the real server (the agent's own token, a
// generated authorization header), and an sdk/resource verifier refuses a
// revoked token, then a suspended agent's, as soon as the pushes arrive,
// with no poll.
func TestSSFPushReachesSDKVerifier(t *testing.T) {
	ls := startLive(t, func(c *server.Config) { c.SSF.PushAllowedHosts = []string{"127.0.0.1"} }, nil)
	ctx := t.Context()
	var handler atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rcv, v, token := sdkReceiver(t, ls, func(c *signals.Config) { c.PushEndpoint = srv.URL + "/ssf/events" })
	h := rcv.PushHandler()
	handler.Store(&h)
	st, err := rcv.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.DeliveryMethod != signals.DeliveryPush || st.EndpointURL != srv.URL+"/ssf/events" {
		t.Fatalf("stream = %+v", st)
	}
	refusedSoon := func(tok string) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if _, err := v.Verify(ctx, tok); errors.Is(err, resource.ErrRevoked) {
				return
			}
		}
		t.Fatalf("token still accepted; receiver status %+v", rcv.Status())
	}
	first := token()
	c, err := v.Verify(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.admin.RevokeTokens(ctx, admin.RevokeTokensRequest{JTI: c.JTI}); err != nil {
		t.Fatal(err)
	}
	refusedSoon(first)
	second := token()
	if _, err := v.Verify(ctx, second); err != nil {
		t.Fatalf("another token of the bot: %v", err)
	}
	if _, err := ls.admin.SuspendAgent(ctx, "bot", admin.TransitionRequest{Reason: "leak"}); err != nil {
		t.Fatal(err)
	}
	refusedSoon(second)
	if rcv.Status().LastPush.IsZero() {
		t.Error("Status().LastPush is zero after pushes")
	}
	if _, err := rcv.PollOnce(ctx); !errors.Is(err, signals.ErrStream) {
		t.Errorf("PollOnce on a push receiver = %v; want ErrStream", err)
	}
}
