package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

// caAPI is a fake of the CA endpoints.
type caAPI struct {
	mu       sync.Mutex
	ca       admin.CA
	requests []string
}

const fakePEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

func caKey(id, state string, activate time.Duration) admin.CAKey {
	ts := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	k := admin.CAKey{
		ID: id, State: state, PublishAt: t0.Add(activate - 8*time.Hour), ActivateAt: t0.Add(activate),
		Subject: "CN=example.org CA " + id + ",O=agentid", Serial: "0a1b",
		NotBefore: t0.Add(activate - 8*time.Hour - time.Minute), NotAfter: t0.Add(activate + 16*time.Hour),
		Fingerprint: strings.Repeat("ab", 32), Certificate: fakePEM, CreatedAt: t0.Add(activate - 8*time.Hour),
	}
	if state == "retired" || state == "removed" {
		k.RetireAt, k.RemoveAt = ts(activate+12*time.Hour), ts(activate+13*time.Hour+5*time.Minute)
	}
	return k
}

func (f *caAPI) serve(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ca", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		out := f.ca
		out.Items = []admin.CAKey{}
		for _, k := range f.ca.Items {
			if k.State != "removed" || r.URL.Query().Get("include_removed") == "true" {
				out.Items = append(out.Items, k)
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /v1/ca/rotate", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, caKey("sgk_next", "pending", 8*time.Hour))
	})
	mux.HandleFunc("POST /v1/ca/{kid}/taint", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, k := range f.ca.Items {
			if k.ID == r.PathValue("kid") {
				now, remove := t0, t0.Add(65*time.Minute)
				k.Tainted, k.TaintedAt, k.State, k.RetireAt, k.RemoveAt = true, &now, "retired", &now, &remove
				f.ca.Items[i] = k
				f.ca.Items = append(f.ca.Items, caKey("sgk_successor", "active", 0))
				writeJSON(w, http.StatusOK, k)
				return
			}
		}
		writeProblem(w, admin.Problem{Type: admin.ProblemNotFound, Title: "Not found", Status: 404,
			Detail: `no CA key "` + r.PathValue("kid") + `"`})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			writeProblem(w, admin.Problem{Type: admin.ProblemUnauthenticated, Title: "Unauthenticated", Status: 401})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newCAAPI() *caAPI {
	return &caAPI{ca: admin.CA{TrustDomain: "example.org", Items: []admin.CAKey{
		caKey("sgk_old", "removed", -36*time.Hour),
		caKey("sgk_retired", "retired", -12*time.Hour),
		caKey("sgk_active", "active", -time.Hour),
		caKey("sgk_pending", "pending", 3*time.Hour),
	}}}
}

func TestCAShow(t *testing.T) {
	f := newCAAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "ca", "show")
	wantCode(t, r, ExitOK)
	golden(t, "ca_show", r.stdout)

	r = run(t, srv.URL, "ca", "show", "--all")
	wantCode(t, r, ExitOK)
	golden(t, "ca_show_all", r.stdout)

	r = run(t, srv.URL, "ca", "show", "--pem")
	wantCode(t, r, ExitOK)
	golden(t, "ca_show_pem", r.stdout)

	r = run(t, srv.URL, "-o", "json", "ca", "show")
	wantCode(t, r, ExitOK)
	var got admin.CA
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.Items) != 3 || got.Items[1].ID != "sgk_active" ||
		got.Items[1].Fingerprint != strings.Repeat("ab", 32) {
		t.Fatalf("json output %q: %v", r.stdout, err)
	}
	want := []string{"GET /v1/ca", "GET /v1/ca?include_removed=true", "GET /v1/ca", "GET /v1/ca"}
	if strings.Join(f.requests, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests %q, want %q", f.requests, want)
	}

	f.ca.Upstream = true
	r = run(t, srv.URL, "ca", "show")
	wantCode(t, r, ExitOK)
	contains(t, "upstream", r.stdout, "signed by the upstream CA")
}

func TestCARotate(t *testing.T) {
	f := newCAAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "ca", "rotate")
	wantCode(t, r, ExitOK)
	golden(t, "ca_rotate", r.stdout)
	r = run(t, srv.URL, "-o", "json", "ca", "rotate")
	wantCode(t, r, ExitOK)
	var k admin.CAKey
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || k.ID != "sgk_next" || k.State != "pending" {
		t.Fatalf("json output %q: %v", r.stdout, err)
	}
	if f.requests[0] != "POST /v1/ca/rotate" {
		t.Errorf("request %s", f.requests[0])
	}
}

func TestCATaint(t *testing.T) {
	f := newCAAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "ca", "taint", "sgk_active")
	wantCode(t, r, ExitOK)
	golden(t, "ca_taint", r.stdout)
	if f.requests[0] != "POST /v1/ca/sgk_active/taint" {
		t.Errorf("request %s", f.requests[0])
	}

	r = run(t, srv.URL, "ca", "taint", "sgk_nope")
	wantCode(t, r, ExitError)
	contains(t, "unknown key", r.stderr, `no CA key "sgk_nope"`, "Not found")

	// The tainted key shows in ca show.
	r = run(t, srv.URL, "ca", "show")
	wantCode(t, r, ExitOK)
	golden(t, "ca_show_tainted", r.stdout)

	r = run(t, srv.URL, "ca", "taint")
	wantCode(t, r, ExitUsage)
}
