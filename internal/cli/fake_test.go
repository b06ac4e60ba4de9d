package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goldenfile "github.com/agentid/agentid/internal/golden"

	"github.com/agentid/agentid/sdk/admin"
)

const testToken = "test-admin-token"

// t0 is the fixed time of every fake record, so that output is stable.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeAPI is a small in-memory admin API speaking the sdk/admin wire types,
// enough for the commands under test. The real API is internal/httpapi.
type fakeAPI struct {
	mu           sync.Mutex
	agents       []admin.Agent
	owners       []admin.Owner
	tokens       []admin.AdminToken
	events       []admin.AuditEvent
	export       []string // raw JSON lines of /v1/audit/export; nil: encode events
	cps          []admin.AuditCheckpoint
	keys         []admin.AuditKey
	requests     []string                        // "METHOD /path?query" of every request
	outage       int                             // answer this many more requests with outageStatus
	outageStatus int                             // 0: 503
	bodies       map[string][]byte               // last body per "METHOD /path"
	clientKeys   map[string][]admin.ClientKey    // by agent id
	secrets      map[string][]admin.ClientSecret // by agent id
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{bodies: map[string][]byte{}, clientKeys: map[string][]admin.ClientKey{}, secrets: map[string][]admin.ClientSecret{}}
}

// serve starts the fake on an httptest.Server closed at the end of the test.
func (f *fakeAPI) serve(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, admin.Version{Version: "1.2.3", TrustDomain: "example.org"})
	})
	mux.HandleFunc("POST /v1/agents", func(w http.ResponseWriter, r *http.Request) {
		var req admin.CreateAgentRequest
		if !decode(w, r, &req) {
			return
		}
		if req.Name == "Bad_Name" {
			writeProblem(w, admin.Problem{Type: admin.ProblemValidation, Title: "Invalid request", Status: 400,
				Detail: "name must be a lowercase DNS label", Field: "name"})
			return
		}
		a := admin.Agent{ID: "agt_" + req.Name, ClientID: "agt_" + req.Name, Name: req.Name, SPIFFEID: "spiffe://example.org/agent/" + req.Name,
			Owners: req.Owners, Purpose: req.Purpose, ActionClasses: req.ActionClasses, Audiences: req.Audiences,
			Scopes: req.Scopes, Permissions: req.Permissions, RequireDPoP: req.RequireDPoP, FederatesWith: req.FederatesWith, Selectors: req.Selectors,
			MaxTTLSeconds: req.MaxTTLSeconds, Labels: req.Labels, ExpiresAt: req.ExpiresAt, State: "active",
			CreatedBy: "adt_test", CreatedAt: t0, UpdatedAt: t0, Version: 1}
		if a.MaxTTLSeconds == 0 {
			a.MaxTTLSeconds = 900
		}
		f.mu.Lock()
		f.agents = append(f.agents, a)
		f.mu.Unlock()
		writeJSON(w, http.StatusCreated, a)
	})
	mux.HandleFunc("GET /v1/agents", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, paginate(r, f.agents))
	})
	mux.HandleFunc("GET /v1/agents/{ref}", func(w http.ResponseWriter, r *http.Request) {
		if a, ok := f.agent(r.PathValue("ref")); ok {
			writeJSON(w, http.StatusOK, a)
			return
		}
		notFound(w, "agent")
	})
	mux.HandleFunc("PATCH /v1/agents/{ref}", func(w http.ResponseWriter, r *http.Request) {
		var req admin.UpdateAgentRequest
		if !decode(w, r, &req) {
			return
		}
		a, ok := f.agent(r.PathValue("ref"))
		if !ok {
			notFound(w, "agent")
			return
		}
		if req.Version != 0 && req.Version != a.Version {
			writeProblem(w, admin.Problem{Type: admin.ProblemVersionMismatch, Title: "Version mismatch", Status: 409,
				Detail: fmt.Sprintf("the agent is at version %d, not %d", a.Version, req.Version)})
			return
		}
		if req.Purpose != nil {
			a.Purpose = *req.Purpose
		}
		if req.FederatesWith != nil {
			a.FederatesWith = *req.FederatesWith
		}
		if req.Selectors != nil {
			a.Selectors = *req.Selectors
		}
		a.Version++
		writeJSON(w, http.StatusOK, a)
	})
	mux.HandleFunc("POST /v1/agents/{ref}/{action}", func(w http.ResponseWriter, r *http.Request) {
		var req admin.TransitionRequest
		if !decode(w, r, &req) {
			return
		}
		a, ok := f.agent(r.PathValue("ref"))
		if !ok {
			notFound(w, "agent")
			return
		}
		a.State = map[string]string{"suspend": "suspended", "resume": "active", "deprovision": "deprovisioned"}[r.PathValue("action")]
		a.Version++
		writeJSON(w, http.StatusOK, a)
	})
	f.serveClientCredentials(mux)
	mux.HandleFunc("GET /v1/owners", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, paginate(r, f.owners))
	})
	mux.HandleFunc("POST /v1/owners", func(w http.ResponseWriter, r *http.Request) {
		var req admin.CreateOwnerRequest
		if !decode(w, r, &req) {
			return
		}
		writeJSON(w, http.StatusCreated, admin.Owner{ID: "own_new", Kind: req.Kind, Email: req.Email,
			Subject: req.Subject, DisplayName: req.DisplayName, State: "active", CreatedAt: t0, UpdatedAt: t0, Version: 1})
	})
	mux.HandleFunc("GET /v1/admin-tokens", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, paginate(r, f.tokens))
	})
	mux.HandleFunc("POST /v1/admin-tokens", func(w http.ResponseWriter, r *http.Request) {
		var req admin.CreateAdminTokenRequest
		if !decode(w, r, &req) {
			return
		}
		tok := admin.AdminToken{ID: "adt_new", Name: req.Name, Role: req.Role, CreatedBy: "adt_test", CreatedAt: t0, Version: 1}
		if req.TTLSeconds > 0 {
			exp := t0.Add(time.Duration(req.TTLSeconds) * time.Second)
			tok.ExpiresAt = &exp
		}
		writeJSON(w, http.StatusCreated, admin.CreatedAdminToken{AdminToken: tok, Token: "aid_secret_value"})
	})
	mux.HandleFunc("GET /v1/audit/events", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		after, _ := strconv.ParseInt(r.URL.Query().Get("after_seq"), 10, 64)
		var evs []admin.AuditEvent
		for _, e := range f.events {
			if e.Seq > after {
				evs = append(evs, e)
			}
		}
		writeJSON(w, http.StatusOK, paginate(r, evs))
	})
	mux.HandleFunc("GET /v1/audit/export", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/jsonl")
		if f.export != nil {
			for _, l := range f.export {
				fmt.Fprintln(w, l)
			}
			return
		}
		for _, e := range f.events {
			b, _ := json.Marshal(e)
			fmt.Fprintln(w, string(b))
		}
	})
	mux.HandleFunc("GET /v1/audit/checkpoints", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, admin.List[admin.AuditCheckpoint]{Items: f.cps})
	})
	mux.HandleFunc("GET /v1/audit/keys", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, admin.List[admin.AuditKey]{Items: f.keys})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
		down := f.outage > 0 && r.URL.Path == "/v1/audit/events"
		if down {
			f.outage--
		}
		f.mu.Unlock()
		if down {
			status := f.outageStatus
			if status == 0 {
				status = http.StatusServiceUnavailable
			}
			writeProblem(w, admin.Problem{Type: admin.ProblemUnavailable, Title: http.StatusText(status), Status: status})
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			writeProblem(w, admin.Problem{Type: admin.ProblemUnauthenticated, Title: "Unauthenticated", Status: 401,
				Detail: "missing or invalid admin token"})
			return
		}
		if r.Body != nil && r.Method != http.MethodGet {
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(r.Body)
			f.mu.Lock()
			f.bodies[r.Method+" "+r.URL.Path] = buf.Bytes()
			f.mu.Unlock()
			r.Body = io.NopCloser(&buf)
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeAPI) agent(ref string) (admin.Agent, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.agents {
		if a.ID == ref || a.Name == ref {
			return a, true
		}
	}
	return admin.Agent{}, false
}

// body returns the JSON body of the last request to "METHOD /path".
func (f *fakeAPI) body(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.bodies[key])
}

// paginate serves items in pages of page_size (default 100); the page token
// is the offset.
func paginate[T any](r *http.Request, items []T) admin.List[T] {
	size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
	if size <= 0 {
		size = 100
	}
	off, _ := strconv.Atoi(r.URL.Query().Get("page_token"))
	if off > len(items) {
		off = len(items)
	}
	end := min(off+size, len(items))
	l := admin.List[T]{Items: append([]T{}, items[off:end]...)}
	if end < len(items) {
		l.NextPageToken = strconv.Itoa(end)
	}
	return l
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeProblem(w, admin.Problem{Type: admin.ProblemBadRequest, Title: "Bad request", Status: 400, Detail: err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, p admin.Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func notFound(w http.ResponseWriter, what string) {
	writeProblem(w, admin.Problem{Type: admin.ProblemNotFound, Title: "Not found", Status: 404, Detail: "no such " + what})
}

// result is what one in-process run of the CLI produced.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the CLI in-process against the server at url with the test
// token; the environment is empty and the data directory a fresh one.
func run(t *testing.T, url string, args ...string) result {
	t.Helper()
	return runCtx(t, context.Background(), url, args...)
}

func runCtx(t *testing.T, ctx context.Context, url string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	all := append([]string{"--server", url, "--token", testToken, "--data", t.TempDir()}, args...)
	code := Run(ctx, all, env)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// golden compares got with testdata/<name>.golden, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.Check(t, name, []byte(got))
}

// wantCode fails the test when r did not exit with code.
func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}
