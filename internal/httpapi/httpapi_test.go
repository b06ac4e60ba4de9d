package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/httpapi"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/sdk/admin"
)

// env is a real admin API over a real SQLite store on a real socket.
type env struct {
	url     string
	store   store.Store
	admin   *admin.Client
	token   string // the admin secret
	auditor string // an auditor secret
}

func newEnv(t *testing.T) *env { t.Helper(); return newEnvAged(t, 0) }

// core is what an admin API test serves: a registry, admin auth and an
// audit trail over a fresh SQLite store, their records stamped by clock,
// a checkpoint signed every `every` events.
type core struct {
	store *sqlite.Store
	rec   *audit.Recorder
	reg   *identity.Service
	auth  *adminauth.Service
}

func newCore(t *testing.T, clock func() time.Time, every int) core {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, sqlite.Params{Path: filepath.Join(dir, "agentid.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	root, err := keys.LoadOrCreateRootKey(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := audit.NewCheckpointer(ctx, audit.CheckpointerParams{Store: st, Root: root, Every: every, Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Checkpoints: cp, Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := identity.New(identity.Params{Store: st, Recorder: rec, TrustDomain: "example.org",
		DefaultTTL: 15 * time.Minute, MaxTTLCap: time.Hour, Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := adminauth.New(adminauth.Params{Store: st, Recorder: rec, Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	return core{store: st, rec: rec, reg: reg, auth: auth}
}

// newEnvAged is newEnv whose trail is written age ago: the registry, the
// admin tokens and the audit trail run on a clock that far behind the
// HTTP layer's.
func newEnvAged(t *testing.T, age time.Duration) *env {
	t.Helper()
	ctx := context.Background()
	clock := func() time.Time { return time.Now().UTC().Add(-age) }
	co := newCore(t, clock, 3)
	st, rec, reg, auth := co.store, co.rec, co.reg, co.auth
	promReg := prometheus.NewRegistry()
	h, err := httpapi.New(httpapi.Params{
		Identity: reg, Auth: auth, Audit: st, PruneAudit: rec.Prune, Ready: st.Ping, Registerer: promReg, Gatherer: promReg,
		Logger: slog.New(slog.DiscardHandler), Clock: func() time.Time { return time.Now().UTC() }, Rand: rand.Reader,
		TrustDomain: "example.org", Version: "test",
		MaxBodyBytes: 64 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	secret, created, err := auth.Bootstrap(ctx)
	if err != nil || !created {
		t.Fatalf("Bootstrap = %v, %v", created, err)
	}
	c, err := admin.New(srv.URL, secret)
	if err != nil {
		t.Fatal(err)
	}
	aud, err := c.CreateAdminToken(ctx, admin.CreateAdminTokenRequest{Name: "auditor", Role: "auditor"})
	if err != nil {
		t.Fatal(err)
	}
	return &env{url: srv.URL, store: st, admin: c, token: secret, auditor: aud.Token}
}

// snapshot is everything a bad request must leave alone.
type snapshot struct {
	Agents  []store.Agent
	Owners  []store.Owner
	Tokens  []store.AdminToken
	HeadSeq int64
}

func (e *env) snapshot(t *testing.T) snapshot {
	t.Helper()
	ctx := context.Background()
	var s snapshot
	var err error
	if s.Agents, _, err = e.store.ListAgents(ctx, store.AgentFilter{}, store.Page{PageSize: store.MaxPageSize}); err != nil {
		t.Fatal(err)
	}
	if s.Owners, _, err = e.store.ListOwners(ctx, store.OwnerFilter{}, store.Page{PageSize: store.MaxPageSize}); err != nil {
		t.Fatal(err)
	}
	if s.Tokens, _, err = e.store.ListAdminTokens(ctx, store.Page{PageSize: store.MaxPageSize}); err != nil {
		t.Fatal(err)
	}
	if s.HeadSeq, _, err = e.store.AuditHead(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) seed(t *testing.T) (admin.Owner, admin.Agent) {
	t.Helper()
	ctx := context.Background()
	o, err := e.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Email: "alice@example.com", DisplayName: "Alice"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.admin.CreateAgent(ctx, admin.CreateAgentRequest{
		Name: "invoice-bot", Purpose: "Reconciles invoices", Owners: []string{"alice@example.com"},
		ActionClasses: []string{"read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return o, a
}

// raw sends one request and returns the status, headers and problem.
func (e *env) raw(t *testing.T, method, path, token, contentType string, body io.Reader, hdr map[string]string) (int, http.Header, admin.Problem) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p admin.Problem
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("%s %s: status %d with Content-Type %q, want application/problem+json; body %s", method, path, resp.StatusCode, ct, b)
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("problem body: %v: %s", err, b)
		}
	}
	return resp.StatusCode, resp.Header, p
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	_, agent := e.seed(t)
	ctx := context.Background()
	if _, err := e.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "gone-bot", Purpose: "p", Owners: []string{"alice@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.DeprovisionAgent(ctx, "gone-bot", admin.TransitionRequest{}); err != nil {
		t.Fatal(err)
	}
	big := `{"name":"x","purpose":"` + strings.Repeat("a", 70<<10) + `","owners":["alice@example.com"]}`
	valid := func(name string) string {
		return `{"name":"` + name + `","purpose":"p","owners":["alice@example.com"]}`
	}
	tests := []struct {
		name        string
		method      string
		path        string
		token       string // "admin", "auditor", "bad", ""
		contentType string
		body        string
		hdr         map[string]string
		wantStatus  int
		wantType    string
		wantField   string
		authFailure string // the family of the failure event the request itself records, if any
	}{
		{name: "malformed JSON", method: "POST", path: "/v1/agents", token: "admin", body: `{"name":`, wantStatus: 400, wantType: admin.ProblemBadRequest},
		{name: "syntax error", method: "POST", path: "/v1/agents", token: "admin", body: `{"name" "x"}`, wantStatus: 400, wantType: admin.ProblemBadRequest},
		{name: "empty body", method: "POST", path: "/v1/agents", token: "admin", body: ``, wantStatus: 400, wantType: admin.ProblemBadRequest},
		{name: "two objects", method: "POST", path: "/v1/agents", token: "admin", body: valid("two-bot") + `{}`, wantStatus: 400, wantType: admin.ProblemBadRequest},
		{name: "unknown field", method: "POST", path: "/v1/agents", token: "admin", body: `{"name":"x-bot","purpose":"p","owners":["alice@example.com"],"colour":"red"}`, wantStatus: 400, wantType: admin.ProblemBadRequest, wantField: "colour"},
		{name: "wrong type", method: "POST", path: "/v1/agents", token: "admin", body: `{"name":42}`, wantStatus: 400, wantType: admin.ProblemBadRequest, wantField: "name"},
		{name: "oversized body", method: "POST", path: "/v1/agents", token: "admin", body: big, wantStatus: 413, wantType: admin.ProblemBodyTooLarge},
		{name: "wrong media type", method: "POST", path: "/v1/agents", token: "admin", contentType: "text/plain", body: valid("text-bot"), wantStatus: 415, wantType: admin.ProblemUnsupportedMediaType},
		{name: "invalid name", method: "POST", path: "/v1/agents", token: "admin", body: valid("Invoice_Bot"), wantStatus: 400, wantType: admin.ProblemValidation, wantField: "name"},
		{name: "name that is no SPIFFE path", method: "POST", path: "/v1/agents", token: "admin", body: valid("a/../b"), wantStatus: 400, wantType: admin.ProblemValidation, wantField: "name"},
		{name: "missing purpose", method: "POST", path: "/v1/agents", token: "admin", body: `{"name":"p-bot","owners":["alice@example.com"]}`, wantStatus: 400, wantType: admin.ProblemValidation, wantField: "purpose"},
		{name: "unknown owner", method: "POST", path: "/v1/agents", token: "admin", body: `{"name":"o-bot","purpose":"p","owners":["bob@example.com"]}`, wantStatus: 400, wantType: admin.ProblemValidation, wantField: "owners[0]"},
		{name: "ttl over the cap", method: "POST", path: "/v1/agents", token: "admin", body: `{"name":"t-bot","purpose":"p","owners":["alice@example.com"],"max_ttl_seconds":86400}`, wantStatus: 400, wantType: admin.ProblemValidation, wantField: "max_ttl_seconds"},
		{name: "duplicate name", method: "POST", path: "/v1/agents", token: "admin", body: valid("invoice-bot"), wantStatus: 409, wantType: admin.ProblemAlreadyExists},
		{name: "deprovisioned name stays reserved", method: "POST", path: "/v1/agents", token: "admin", body: valid("gone-bot"), wantStatus: 409, wantType: admin.ProblemAlreadyExists},
		{name: "resume an active agent", method: "POST", path: "/v1/agents/invoice-bot/resume", token: "admin", wantStatus: 409, wantType: admin.ProblemIllegalTransition},
		{name: "update a deprovisioned agent", method: "PATCH", path: "/v1/agents/gone-bot", token: "admin", body: `{"purpose":"again"}`, wantStatus: 409, wantType: admin.ProblemIllegalTransition},
		{name: "resume a deprovisioned agent", method: "POST", path: "/v1/agents/gone-bot/resume", token: "admin", wantStatus: 409, wantType: admin.ProblemIllegalTransition},
		{name: "stale version in If-Match", method: "PATCH", path: "/v1/agents/invoice-bot", token: "admin", body: `{"purpose":"new"}`, hdr: map[string]string{"If-Match": `"99"`}, wantStatus: 409, wantType: admin.ProblemVersionMismatch},
		{name: "stale version in body", method: "POST", path: "/v1/agents/invoice-bot/suspend", token: "admin", body: `{"version":99}`, wantStatus: 409, wantType: admin.ProblemVersionMismatch},
		{name: "bad If-Match", method: "PATCH", path: "/v1/agents/invoice-bot", token: "admin", body: `{"purpose":"new"}`, hdr: map[string]string{"If-Match": "*x"}, wantStatus: 400, wantType: admin.ProblemBadRequest, wantField: "If-Match"},
		{name: "unknown agent", method: "GET", path: "/v1/agents/nobody", token: "admin", wantStatus: 404, wantType: admin.ProblemNotFound},
		{name: "unknown endpoint", method: "GET", path: "/v1/nothing", token: "admin", wantStatus: 404, wantType: admin.ProblemNotFound},
		{name: "wrong method on a known path", method: "DELETE", path: "/v1/agents", token: "admin", wantStatus: 405, wantType: admin.ProblemMethodNotAllowed},
		{name: "wrong method on a path with a parameter", method: "PUT", path: "/v1/agents/invoice-bot", token: "admin", body: `{}`, wantStatus: 405, wantType: admin.ProblemMethodNotAllowed},
		{name: "bad page size", method: "GET", path: "/v1/agents?page_size=0", token: "admin", wantStatus: 400, wantType: admin.ProblemBadRequest, wantField: "page_size"},
		{name: "forged page token", method: "GET", path: "/v1/agents?page_token=bm9wZQ", token: "admin", wantStatus: 400, wantType: admin.ProblemValidation, wantField: "page_token"},
		{name: "bad state filter", method: "GET", path: "/v1/agents?state=sleeping", token: "admin", wantStatus: 400, wantType: admin.ProblemBadRequest, wantField: "state"},
		{name: "bad audit time", method: "GET", path: "/v1/audit/events?since=yesterday", token: "admin", wantStatus: 400, wantType: admin.ProblemBadRequest, wantField: "since"},
		{name: "missing token", method: "POST", path: "/v1/agents", body: valid("anon-bot"), wantStatus: 401, wantType: admin.ProblemUnauthenticated},
		{name: "bad token", method: "POST", path: "/v1/agents", token: "bad", body: valid("anon-bot"), wantStatus: 401, wantType: admin.ProblemUnauthenticated, authFailure: "authentication"},
		{name: "auditor may not write", method: "POST", path: "/v1/agents", token: "auditor", body: valid("aud-bot"), wantStatus: 403, wantType: admin.ProblemForbidden, authFailure: "authorization"},
		{name: "auditor may not list agents", method: "GET", path: "/v1/agents", token: "auditor", wantStatus: 403, wantType: admin.ProblemForbidden, authFailure: "authorization"},
		{name: "auditor may not mint tokens", method: "POST", path: "/v1/admin-tokens", token: "auditor", body: `{"name":"x","role":"admin"}`, wantStatus: 403, wantType: admin.ProblemForbidden, authFailure: "authorization"},
		{name: "bad role", method: "POST", path: "/v1/admin-tokens", token: "admin", body: `{"name":"x","role":"root"}`, wantStatus: 400, wantType: admin.ProblemValidation, wantField: "role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.snapshot(t)
			tok := map[string]string{"admin": e.token, "auditor": e.auditor, "bad": "aida_" + strings.Repeat("A", 43)}[tt.token]
			var body io.Reader
			ct := tt.contentType
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				if ct == "" {
					ct = "application/json"
				}
			}
			status, _, p := e.raw(t, tt.method, tt.path, tok, ct, body, tt.hdr)
			if status != tt.wantStatus || p.Type != tt.wantType || p.Field != tt.wantField {
				t.Fatalf("got %d %s field %q (%s), want %d %s field %q", status, p.Type, p.Field, p.Detail, tt.wantStatus, tt.wantType, tt.wantField)
			}
			if p.Status != status || p.Title == "" || p.TraceID == "" {
				t.Errorf("problem %+v lacks status, title or trace id", p)
			}
			after := e.snapshot(t)
			if tt.authFailure != "" {
				if after.HeadSeq != before.HeadSeq+1 {
					t.Fatalf("failed %s: audit head %d → %d, want one event", tt.authFailure, before.HeadSeq, after.HeadSeq)
				}
				evs, err := e.admin.ListAuditEvents(context.Background(), admin.AuditQuery{AfterSeq: before.HeadSeq})
				if err != nil {
					t.Fatal(err)
				}
				if len(evs.Items) != 1 || evs.Items[0].Family != tt.authFailure || evs.Items[0].Outcome != "failure" {
					t.Fatalf("failure event = %+v, want one %s failure", evs.Items, tt.authFailure)
				}
				if tt.authFailure == "authorization" && (evs.Items[0].Decision != "deny" || evs.Items[0].Actor == nil) {
					t.Fatalf("denial event = %+v, want decision deny with the token as actor", evs.Items[0])
				}
				if strings.Contains(string(mustJSON(t, evs.Items[0])), strings.Repeat("A", 43)) {
					t.Fatal("the audit event contains the presented secret")
				}
				after.HeadSeq = before.HeadSeq
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Fatalf("bad request changed state (-before +after):\n%s", diff)
			}
		})
	}
	if agent.Version != 1 {
		t.Fatalf("seeded agent version %d", agent.Version)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAgentLifecycleThroughSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	owner, a := e.seed(t)
	if a.SPIFFEID != "spiffe://example.org/agent/invoice-bot" || a.State != "active" || a.MaxTTLSeconds != 900 ||
		!cmp.Equal(a.Owners, []string{owner.ID}) || a.Orphaned {
		t.Fatalf("created agent = %+v", a)
	}
	purpose := "Reconciles invoices and credit notes"
	u, err := e.admin.UpdateAgent(ctx, "invoice-bot", admin.UpdateAgentRequest{Version: 1, Purpose: &purpose})
	if err != nil || u.Version != 2 || u.Purpose != purpose {
		t.Fatalf("UpdateAgent = %+v, %v", u, err)
	}
	s, err := e.admin.SuspendAgent(ctx, a.ID, admin.TransitionRequest{Reason: "drill"})
	if err != nil || s.State != "suspended" {
		t.Fatalf("SuspendAgent = %+v, %v", s, err)
	}
	r, err := e.admin.ResumeAgent(ctx, "invoice-bot", admin.TransitionRequest{})
	if err != nil || r.State != "active" {
		t.Fatalf("ResumeAgent = %+v, %v", r, err)
	}
	// Deactivating the only owner orphans the agent.
	if _, err := e.admin.DeactivateOwner(ctx, owner.Email, admin.TransitionRequest{Reason: "left"}); err != nil {
		t.Fatal(err)
	}
	orphans, err := e.admin.ListAgents(ctx, admin.ListAgentsParams{Orphaned: true})
	if err != nil || len(orphans.Items) != 1 || !orphans.Items[0].Orphaned {
		t.Fatalf("orphaned list = %+v, %v", orphans, err)
	}
	d, err := e.admin.DeprovisionAgent(ctx, "invoice-bot", admin.TransitionRequest{})
	if err != nil || d.State != "deprovisioned" {
		t.Fatalf("DeprovisionAgent = %+v, %v", d, err)
	}
	evs, err := e.admin.ListAuditEvents(ctx, admin.AuditQuery{Agent: "invoice-bot"})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs.Items {
		types = append(types, ev.Type)
		if ev.Actor == nil || ev.Agent == nil || ev.Agent.ID != a.ID || ev.Task == nil || len(ev.Task.TraceID) != 32 {
			t.Errorf("event %s lacks actor, agent axis or trace id: %+v", ev.Type, ev)
		}
	}
	want := []string{"agent.created", "agent.updated", "agent.suspended", "agent.resumed", "agent.orphaned", "agent.deprovisioned"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Fatalf("agent events (-want +got):\n%s", diff)
	}
}

func TestTraceparentAcceptedAndEchoed(t *testing.T) {
	e := newEnv(t)
	e.seed(t)
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	body := `{"name":"traced-bot","purpose":"p","owners":["alice@example.com"]}`
	status, hdr, _ := e.raw(t, "POST", "/v1/agents", e.token, "application/json", strings.NewReader(body),
		map[string]string{"traceparent": "00-" + tid + "-00f067aa0ba902b7-01"})
	if status != http.StatusCreated {
		t.Fatalf("status %d", status)
	}
	if got := hdr.Get("traceparent"); !strings.HasPrefix(got, "00-"+tid+"-") || len(got) != 55 {
		t.Fatalf("echoed traceparent %q", got)
	}
	evs, err := e.admin.ListAuditEvents(context.Background(), admin.AuditQuery{TraceID: tid})
	if err != nil || len(evs.Items) != 1 || evs.Items[0].Type != "agent.created" {
		t.Fatalf("events of the trace = %+v, %v", evs, err)
	}
	// A malformed traceparent is replaced by a new trace.
	_, hdr, _ = e.raw(t, "GET", "/v1/version", "", "", nil, map[string]string{"traceparent": "00-zz-00-01"})
	if got := hdr.Get("traceparent"); len(got) != 55 || strings.Contains(got, "zz") {
		t.Fatalf("traceparent for a malformed one = %q", got)
	}
}

func TestPaginationWalksEveryAgent(t *testing.T) {
	e := newEnv(t)
	e.seed(t)
	ctx := context.Background()
	want := map[string]bool{"invoice-bot": true}
	for _, n := range []string{"a-bot", "b-bot", "c-bot", "d-bot", "e-bot"} {
		if _, err := e.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: n, Purpose: "p", Owners: []string{"alice@example.com"}}); err != nil {
			t.Fatal(err)
		}
		want[n] = true
	}
	got := map[string]bool{}
	p := admin.ListAgentsParams{PageSize: 2}
	for pages := 0; ; pages++ {
		l, err := e.admin.ListAgents(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range l.Items {
			if got[a.Name] {
				t.Fatalf("%s listed twice", a.Name)
			}
			got[a.Name] = true
		}
		if l.NextPageToken == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		p.PageToken = l.NextPageToken
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("walked agents (-want +got):\n%s", diff)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		if path == "/metrics" && !bytes.Contains(b, []byte("agentid_http_requests_total")) {
			t.Fatalf("/metrics lacks the request counter:\n%s", b)
		}
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	status, _, p := e.raw(t, "GET", "/readyz", "", "", nil, nil)
	if status != http.StatusServiceUnavailable || p.Type != admin.ProblemUnavailable {
		t.Fatalf("/readyz with a closed store = %d %s", status, p.Type)
	}
}

func TestAuditorReadsAudit(t *testing.T) {
	e := newEnv(t)
	e.seed(t)
	ctx := context.Background()
	c, err := admin.New(e.url, e.auditor)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := c.ListAuditEvents(ctx, admin.AuditQuery{})
	if err != nil || len(evs.Items) == 0 {
		t.Fatalf("auditor list = %v, %v", evs, err)
	}
	var lines int
	if err := c.ExportAudit(ctx, admin.AuditQuery{}, func([]byte) error { lines++; return nil }); err != nil {
		t.Fatal(err)
	}
	if lines != len(evs.Items) {
		t.Fatalf("export has %d lines, list %d events", lines, len(evs.Items))
	}
	cps, err := c.AuditCheckpoints(ctx, 0)
	if err != nil || len(cps) == 0 {
		t.Fatalf("checkpoints = %v, %v (checkpoint every 3 events)", cps, err)
	}
	ks, err := c.AuditKeys(ctx)
	if err != nil || len(ks) != 1 || len(ks[0].PublicKey) != 64 {
		t.Fatalf("keys = %+v, %v", ks, err)
	}
}

func TestWrongMethodListsAllowed(t *testing.T) {
	e := newEnv(t)
	for path, want := range map[string]string{
		"/v1/agents":                    "POST, GET",
		"/v1/agents/invoice-bot":        "GET, PATCH",
		"/v1/agents/invoice-bot/resume": "POST",
		"/v1/audit/export":              "GET",
	} {
		status, hdr, p := e.raw(t, "DELETE", path, e.token, "", nil, nil)
		if status != http.StatusMethodNotAllowed || p.Type != admin.ProblemMethodNotAllowed || hdr.Get("Allow") != want {
			t.Errorf("DELETE %s = %d %s, Allow %q; want 405, Allow %q", path, status, p.Type, hdr.Get("Allow"), want)
		}
	}
}
