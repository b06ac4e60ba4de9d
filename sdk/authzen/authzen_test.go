package authzen_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
	"github.com/agentid/agentid/sdk/authzen"
)

const policies = `@id("readers")
permit (principal, action in Action::"read", resource)
when { principal.action_classes.contains("read") };

@id("ticket-7-writes")
permit (principal, action == Action::"write", resource == Resource::"ticket/7");

@id("deletes-need-approval")
@decision("conditional")
@obligation("approval")
permit (principal, action in Action::"delete", resource);
`

// realServer starts agentid on a loopback socket with the policies above
// and an agent "bot" holding the read class; it returns the issuer URL,
// the admin token and the admin client.
func realServer(t *testing.T) (string, string, *admin.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.DevConfig(t.TempDir(), ln.Addr().String())
	cfg.Issuer = "http://" + ln.Addr().String()
	srv, err := server.New(ctx, cfg, server.Params{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := srv.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		_ = srv.Close()
	})
	ac, err := admin.New(cfg.Issuer, tok)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := ac.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: "alice@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.CreateAgent(ctx, admin.CreateAgentRequest{Name: "bot", Owners: []string{owner.ID}, Purpose: "tests",
		ActionClasses: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: policies}); err != nil {
		t.Fatal(err)
	}
	return cfg.Issuer, tok, ac
}

func ask(action, rid string) authzen.Request {
	return authzen.Request{Subject: authzen.Subject{Type: "agent", ID: "bot"}, Action: authzen.Action{Name: action},
		Resource: authzen.Resource{Type: "ticket", ID: rid}}
}

func TestClientAgainstServer(t *testing.T) {
	url, tok, _ := realServer(t)
	ctx := t.Context()
	c, err := authzen.New(url, authzen.WithStaticToken(tok))
	if err != nil {
		t.Fatal(err)
	}

	d, err := c.Evaluate(authzen.WithRequestID(ctx, "r-1"), ask("read", "1"))
	if err != nil || !d.Decision || d.EventID() == "" || d.Conditional() {
		t.Fatalf("Evaluate(read) = %+v, %v", d, err)
	}
	d, err = c.Evaluate(ctx, ask("delete", "1"))
	if err != nil || d.Decision || !d.Conditional() || !slices.Equal(d.Obligations(), []string{"approval"}) {
		t.Errorf("Evaluate(delete) = %+v, %v; want conditional on approval", d, err)
	}
	_, err = c.Evaluate(ctx, ask("launch", "1"))
	var e *authzen.Error
	if !errors.As(err, &e) || e.Status != 400 || e.Detail == "" || !authzen.IsStatus(err, 400) {
		t.Errorf("Evaluate(unknown action) = %v, want a 400 *Error", err)
	}

	sub := authzen.Subject{Type: "agent", ID: "bot"}
	read := authzen.Action{Name: "read"}
	ds, err := c.Evaluations(ctx, authzen.EvaluationsRequest{Subject: &sub, Action: &read, Semantic: authzen.DenyOnFirstDeny,
		Evaluations: []authzen.Evaluation{
			{Resource: &authzen.Resource{Type: "ticket", ID: "1"}},
			{Action: &authzen.Action{Name: "write"}, Resource: &authzen.Resource{Type: "ticket", ID: "2"}},
			{Resource: &authzen.Resource{Type: "ticket", ID: "3"}},
		}})
	if err != nil || len(ds) != 2 || !ds[0].Decision || ds[1].Decision {
		t.Errorf("Evaluations(deny_on_first_deny) = %+v, %v; want allow, deny", ds, err)
	}

	p, err := c.SearchActions(ctx, authzen.SearchRequest{Subject: sub, Resource: authzen.Resource{Type: "ticket", ID: "7"}})
	var names []string
	for _, r := range p.Results {
		names = append(names, r.Name)
	}
	if err != nil || !slices.Equal(names, []string{"read", "write"}) || p.NextToken != "" {
		t.Errorf("SearchActions = %+v, %v", p, err)
	}
	p, err = c.SearchResources(ctx, authzen.SearchRequest{Subject: sub, Action: authzen.Action{Name: "write"}, Resource: authzen.Resource{Type: "ticket"}})
	if err != nil || len(p.Results) != 1 || p.Results[0] != (authzen.Entity{Type: "ticket", ID: "7"}) {
		t.Errorf("SearchResources = %+v, %v", p, err)
	}
	var subjects []string
	req := authzen.SearchRequest{Subject: authzen.Subject{Type: "agent"}, Action: read, Resource: authzen.Resource{Type: "ticket", ID: "1"}, Limit: 1}
	for range 3 {
		p, err = c.SearchSubjects(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Results {
			subjects = append(subjects, r.ID)
		}
		if req.Token = p.NextToken; req.Token == "" {
			break
		}
	}
	if !slices.Equal(subjects, []string{"bot"}) {
		t.Errorf("SearchSubjects = %v", subjects)
	}

	m, err := c.Metadata(ctx)
	if err != nil || m.AccessEvaluationEndpoint != url+authzen.EvaluationPath || m.SearchActionEndpoint != url+authzen.SearchActionPath {
		t.Errorf("Metadata = %+v, %v", m, err)
	}

	noToken, _ := authzen.New(url)
	if _, err := noToken.Evaluate(ctx, ask("read", "1")); !authzen.IsStatus(err, 401) {
		t.Errorf("Evaluate without a token = %v, want 401", err)
	}
	if _, err := authzen.New("ftp://x"); err == nil {
		t.Error("New(ftp://x) succeeded")
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// decisionEvents counts the decision.made events agentid recorded.
func decisionEvents(t *testing.T, ac *admin.Client) int {
	t.Helper()
	evs, err := ac.ListAuditEvents(t.Context(), admin.AuditQuery{Family: "authorization", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs.Items {
		if ev.Type == "decision.made" {
			n++
		}
	}
	return n
}

func TestMiddlewareAgainstServer(t *testing.T) {
	url, tok, ac := realServer(t)
	c, err := authzen.New(url, authzen.WithStaticToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Now()}
	cache, err := authzen.NewCache(authzen.CacheParams{Size: 2, TTL: time.Minute, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// The action is the query's "do", the resource the path.
	mw := authzen.Middleware(authzen.MiddlewareParams{Client: c, Cache: cache, Request: func(r *http.Request) (authzen.Request, error) {
		if r.URL.Query().Get("do") == "" {
			return authzen.Request{}, errors.New("say what to do")
		}
		return ask(r.URL.Query().Get("do"), r.URL.Path[1:]), nil
	}})
	api := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := authzen.DecisionFromContext(r.Context())
		if !ok || !d.Decision {
			t.Error("handler reached without an allow in its context")
		}
		_, _ = w.Write([]byte("ok"))
	})))
	defer api.Close()
	get := func(path string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(api.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}

	before := decisionEvents(t, ac)
	for range 3 {
		if status, _ := get("/1?do=read"); status != 200 {
			t.Fatalf("allowed read = %d", status)
		}
	}
	if n := decisionEvents(t, ac) - before; n != 1 {
		t.Errorf("3 identical reads with a cache reached the PDP %d times, want 1", n)
	}
	if status, body := get("/1?do=write"); status != 403 || body["type"] != "urn:agentid:problem:forbidden" {
		t.Errorf("denied write = %d %v", status, body)
	}
	// Conditional: 403 with the obligations and the approval, never cached.
	for range 2 {
		status, body := get("/1?do=delete")
		if status != 403 || body["type"] != authzen.ProblemConditional || body["approval_id"] == nil {
			t.Errorf("conditional delete = %d %v", status, body)
		}
	}
	if cache.Len() != 2 {
		t.Errorf("cache holds %d decisions, want 2 (read, write; never the conditional)", cache.Len())
	}
	// Bounded: a third cached question pushes the least recently used out.
	before = decisionEvents(t, ac)
	get("/2?do=read")
	get("/1?do=read") // pushed out by /2 and the write: asked again
	if n := decisionEvents(t, ac) - before; n != 2 || cache.Len() != 2 {
		t.Errorf("after eviction: %d PDP calls, %d cached; want 2, 2", n, cache.Len())
	}
	// Expired entries are asked again.
	clock.Advance(time.Minute)
	before = decisionEvents(t, ac)
	get("/1?do=read")
	if n := decisionEvents(t, ac) - before; n != 1 {
		t.Errorf("after the TTL: %d PDP calls, want 1", n)
	}
	if status, _ := get("/1"); status != 400 {
		t.Errorf("no action = %d, want 400", status)
	}

	// The PDP unreachable: 503, fail closed.
	down, _ := authzen.New("http://127.0.0.1:1", authzen.WithStaticToken(tok))
	api2 := httptest.NewServer(authzen.Middleware(authzen.MiddlewareParams{Client: down,
		Request: func(*http.Request) (authzen.Request, error) { return ask("read", "1"), nil }})(http.NotFoundHandler()))
	defer api2.Close()
	resp, err := http.Get(api2.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("PDP down = %d, want 503", resp.StatusCode)
	}
}

func TestNewCacheBounds(t *testing.T) {
	for _, p := range []authzen.CacheParams{{Size: 0, TTL: time.Second}, {Size: 1, TTL: 0}, {Size: 1, TTL: time.Hour},
		{Size: authzen.MaxCacheSize + 1, TTL: time.Second}} {
		if _, err := authzen.NewCache(p); err == nil {
			t.Errorf("NewCache(%+v) succeeded", p)
		}
	}
}
