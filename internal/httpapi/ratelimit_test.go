package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/httpapi"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// fakeClock is the HTTP layer's clock, moved by the test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// limitedEnv is the admin API with the failed-authentication limit l on a
// fake clock, behind a trusted proxy (the loopback peer) so that
// X-Forwarded-For chooses each request's client address.
type limitedEnv struct {
	url   string
	store store.Store
	token string // the bootstrap admin secret
	clock *fakeClock
	reg   *prometheus.Registry
}

func newLimitedEnv(t *testing.T, l httpapi.FailedAuthLimits, rec func(httpapi.Recorder) httpapi.Recorder) *limitedEnv {
	t.Helper()
	ctx := context.Background()
	co := newCore(t, func() time.Time { return time.Now().UTC() }, 1000)
	st, recorder, reg, auth := co.store, co.rec, co.reg, co.auth
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var r httpapi.Recorder = recorder
	if rec != nil {
		r = rec(recorder)
	}
	promReg := prometheus.NewRegistry()
	h, err := httpapi.New(httpapi.Params{
		Identity: reg, Auth: auth, Audit: st, Ready: st.Ping, Registerer: promReg, Gatherer: promReg,
		Logger: slog.New(slog.DiscardHandler), Clock: clock.Now, Rand: rand.Reader,
		TrustDomain: "example.org", Version: "test",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
		FailedAuth:     l, Recorder: r,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	secret, _, err := auth.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &limitedEnv{url: srv.URL, store: st, token: secret, clock: clock, reg: promReg}
}

// get sends GET path from the client address from with the bearer token.
func (e *limitedEnv) get(t *testing.T, path, from, token string) (int, http.Header, admin.Problem) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", from)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var p admin.Problem
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("GET %s: %d with Content-Type %q: %s", path, resp.StatusCode, ct, b)
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("problem: %v: %s", err, b)
		}
	}
	return resp.StatusCode, resp.Header, p
}

// events counts the trail's events by type.
func (e *limitedEnv) events(t *testing.T) (map[string]int, []store.AuditRecord) {
	t.Helper()
	got := map[string]int{}
	var limited []store.AuditRecord
	err := e.store.ScanAudit(context.Background(), store.AuditQuery{}, func(r store.AuditRecord) error {
		got[r.Type]++
		if r.Type == httpapi.EventRateLimited {
			limited = append(limited, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, limited
}

// refusedMetric is the refused-requests counter of group.
func (e *limitedEnv) refusedMetric(t *testing.T, group string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "agentid_http_auth_rate_limited_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "group" && lp.GetValue() == group {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

const badAdminToken = "aid_admin_notarealtoken"

// TestAdminBadBearerLimited: an address that sends bad admin tokens past
// the burst gets 429 problem+json with Retry-After, before its tokens are
// checked; one auth.rate_limited event records it; a good token from
// another address is served meanwhile; after the refill time the address
// is served again.
func TestAdminBadBearerLimited(t *testing.T) {
	const burst = 5
	e := newLimitedEnv(t, httpapi.FailedAuthLimits{Rate: 0.5, Burst: burst}, nil)
	const attacker, other = "198.51.100.7", "203.0.113.9"
	for i := range burst {
		if status, _, _ := e.get(t, "/v1/agents", attacker, badAdminToken); status != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, status)
		}
	}
	before, _ := e.events(t)
	for i := range 3 {
		status, hdr, p := e.get(t, "/v1/agents", attacker, badAdminToken)
		if status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "2" ||
			p.Type != admin.ProblemRateLimited || p.Status != http.StatusTooManyRequests || p.Instance != "/v1/agents" {
			t.Fatalf("refusal %d: %d Retry-After %q %+v", i+1, status, hdr.Get("Retry-After"), p)
		}
		if hdr.Get("WWW-Authenticate") != "" {
			t.Errorf("a 429 carries WWW-Authenticate %q", hdr.Get("WWW-Authenticate"))
		}
	}
	// Even a good token from the limited address is refused: the check
	// comes before any credential is looked at.
	if status, _, _ := e.get(t, "/v1/agents", attacker, e.token); status != http.StatusTooManyRequests {
		t.Errorf("good token from the limited address: %d, want 429", status)
	}
	// Another address is served.
	if status, _, p := e.get(t, "/v1/agents", other, e.token); status != http.StatusOK {
		t.Fatalf("other address: %d %+v", status, p)
	}
	after, limited := e.events(t)
	if got := after[adminauth.EventAuthenticated] - before[adminauth.EventAuthenticated]; got != 0 {
		t.Errorf("%d admin.authenticated events written while limited", got)
	}
	if len(limited) != 1 {
		t.Fatalf("%d auth.rate_limited events, want 1", len(limited))
	}
	var ev audit.Event
	if err := json.Unmarshal(limited[0].Body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Family != audit.Authentication || ev.Outcome != audit.Failure || ev.Decision != audit.DecisionDeny ||
		ev.Source == nil || ev.Source.IP != attacker || ev.Details["address"] != attacker ||
		ev.Details["endpoint_group"] != "admin" || ev.Details["burst"] != float64(burst) || ev.Details["rate"] != 0.5 ||
		ev.Task == nil || ev.Task.TraceID == "" {
		t.Errorf("event = %+v", ev)
	}
	if got := e.refusedMetric(t, "admin"); got != 4 {
		t.Errorf("refused metric = %v, want 4", got)
	}

	// After Retry-After the address gets one more attempt.
	e.clock.Add(2 * time.Second)
	if status, _, p := e.get(t, "/v1/agents", attacker, e.token); status != http.StatusOK {
		t.Fatalf("after the refill: %d %+v", status, p)
	}
	if status, _, _ := e.get(t, "/v1/agents", attacker, badAdminToken); status != http.StatusUnauthorized {
		t.Fatalf("failure after the refill: %d, want 401", status)
	}
	if status, _, _ := e.get(t, "/v1/agents", attacker, badAdminToken); status != http.StatusTooManyRequests {
		t.Fatalf("after spending it again: %d, want 429", status)
	}
	if _, limited := e.events(t); len(limited) != 1 {
		t.Errorf("%d auth.rate_limited events in one limited period, want 1", len(limited))
	}
	// A full refill ends the period; the next one is recorded again.
	e.clock.Add(time.Hour)
	for range burst {
		e.get(t, "/v1/agents", attacker, badAdminToken)
	}
	if status, _, _ := e.get(t, "/v1/agents", attacker, badAdminToken); status != http.StatusTooManyRequests {
		t.Fatalf("second period: %d, want 429", status)
	}
	if _, limited := e.events(t); len(limited) != 2 {
		t.Errorf("%d auth.rate_limited events after two periods, want 2", len(limited))
	}
	// Unauthenticated endpoints are never limited.
	for _, path := range []string{"/healthz", "/v1/version"} {
		if status, _, _ := e.get(t, path, attacker, ""); status != http.StatusOK {
			t.Errorf("%s from the limited address: %d", path, status)
		}
	}
}

// TestSCIMBadBearerLimited: the SCIM endpoints count failed logins
// toward the same limit, and their refusal is a SCIM error (RFC 7644
// §3.12), not problem details.
func TestSCIMBadBearerLimited(t *testing.T) {
	const burst = 3
	e := newLimitedEnv(t, httpapi.FailedAuthLimits{Rate: 0.5, Burst: burst}, nil)
	const attacker = "198.51.100.8"
	scimGet := func(token string) (int, http.Header, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/scim/v2/Users", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", attacker)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/scim+json" {
			t.Fatalf("%d with Content-Type %q", resp.StatusCode, ct)
		}
		return resp.StatusCode, resp.Header, body
	}
	for i := range burst {
		if status, _, _ := scimGet(badAdminToken); status != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, status)
		}
	}
	status, hdr, body := scimGet(e.token)
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "2" || body["status"] != "429" ||
		!strings.Contains(body["detail"].(string), "too many failed authentications") {
		t.Fatalf("refusal: %d Retry-After %q %v", status, hdr.Get("Retry-After"), body)
	}
	if got := e.refusedMetric(t, "scim"); got != 1 {
		t.Errorf("refused metric = %v, want 1", got)
	}
	if _, limited := e.events(t); len(limited) != 1 {
		t.Errorf("%d auth.rate_limited events, want 1", len(limited))
	}
}

// TestSuccessIsNotCounted: any number of authenticated requests from one
// address leave its bucket alone.
func TestSuccessIsNotCounted(t *testing.T) {
	e := newLimitedEnv(t, httpapi.FailedAuthLimits{Rate: 1, Burst: 2}, nil)
	for i := range 10 {
		if status, _, p := e.get(t, "/v1/agents", "192.0.2.1", e.token); status != http.StatusOK {
			t.Fatalf("request %d: %d %+v", i+1, status, p)
		}
	}
	// A 404 is not a failed authentication; a 401, even for a missing
	// token, is.
	if status, _, _ := e.get(t, "/v1/agents/nobody", "192.0.2.1", e.token); status != http.StatusNotFound {
		t.Fatalf("unknown agent: %d", status)
	}
	for range 2 {
		e.get(t, "/v1/agents", "192.0.2.1", "")
	}
	if status, _, _ := e.get(t, "/v1/agents", "192.0.2.1", e.token); status != http.StatusTooManyRequests {
		t.Errorf("after two 401s: %d, want 429", status)
	}
}

// TestIPv6KeyedBySlash64: the addresses of one /64 share a bucket; the
// next /64 has its own.
func TestIPv6KeyedBySlash64(t *testing.T) {
	e := newLimitedEnv(t, httpapi.FailedAuthLimits{Rate: 1, Burst: 2}, nil)
	e.get(t, "/v1/agents", "2001:db8:0:1::1", badAdminToken)
	e.get(t, "/v1/agents", "2001:db8:0:1:ffff:ffff:ffff:ffff", badAdminToken)
	if status, _, _ := e.get(t, "/v1/agents", "2001:db8:0:1::abcd", e.token); status != http.StatusTooManyRequests {
		t.Errorf("same /64: %d, want 429", status)
	}
	if status, _, _ := e.get(t, "/v1/agents", "2001:db8:0:2::1", e.token); status != http.StatusOK {
		t.Errorf("next /64: %d, want 200", status)
	}
	_, limited := e.events(t)
	if len(limited) != 1 {
		t.Fatalf("%d auth.rate_limited events", len(limited))
	}
	var ev audit.Event
	if err := json.Unmarshal(limited[0].Body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Details["address"] != "2001:db8:0:1::/64" || ev.Source.IP != "2001:db8:0:1::abcd" {
		t.Errorf("event details %v, source %+v", ev.Details, ev.Source)
	}
}

// TestFailedAuthLimitOff: with rate 0 nothing is ever refused.
func TestFailedAuthLimitOff(t *testing.T) {
	e := newLimitedEnv(t, httpapi.FailedAuthLimits{Rate: 0, Burst: 1}, nil)
	for i := range 20 {
		if status, _, _ := e.get(t, "/v1/agents", "192.0.2.1", badAdminToken); status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, status)
		}
	}
	if _, limited := e.events(t); len(limited) != 0 {
		t.Errorf("%d auth.rate_limited events with the limit off", len(limited))
	}
}

// failingRecorder refuses every auth.rate_limited event.
type failingRecorder struct{ httpapi.Recorder }

func (f failingRecorder) Record(ctx context.Context, ev audit.Event) (store.AuditRecord, error) {
	if ev.Type == httpapi.EventRateLimited {
		return store.AuditRecord{}, context.DeadlineExceeded
	}
	return f.Recorder.Record(ctx, ev)
}

// TestRateLimitedEventUnwritable: the request is refused even when its
// event cannot be written.
func TestRateLimitedEventUnwritable(t *testing.T) {
	e := newLimitedEnv(t, httpapi.FailedAuthLimits{Rate: 1, Burst: 1},
		func(r httpapi.Recorder) httpapi.Recorder { return failingRecorder{r} })
	e.get(t, "/v1/agents", "192.0.2.1", badAdminToken)
	status, hdr, p := e.get(t, "/v1/agents", "192.0.2.1", e.token)
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "1" || !strings.Contains(p.Detail, "retry after 1 seconds") {
		t.Errorf("%d %q %+v", status, hdr.Get("Retry-After"), p)
	}
}

func TestNewRequiresRecorderWithLimit(t *testing.T) {
	promReg := prometheus.NewRegistry()
	_, err := httpapi.New(httpapi.Params{
		Identity: &identity.Service{}, Auth: &adminauth.Service{}, Audit: nopAudit{}, Ready: func(context.Context) error { return nil },
		Registerer: promReg, Gatherer: promReg, Logger: slog.New(slog.DiscardHandler), Clock: time.Now, Rand: rand.Reader,
		FailedAuth: httpapi.FailedAuthLimits{Rate: 1, Burst: 1},
	})
	if err == nil {
		t.Fatal("New without Recorder accepted")
	}
}

type nopAudit struct{ store.AuditReader }
