package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/admin"
)

const fakeJoinToken = "aidjt_Zm9yIHRlc3RzIG9ubHksIG5vdCBhIHJlYWwgdG9rZW4uLg"

// nodeAPI is a fake of the node endpoints.
type nodeAPI struct {
	mu     sync.Mutex
	bodies map[string]string // last body per "METHOD /path"
	nodes  []admin.Node
}

func newNodeAPI() *nodeAPI {
	evicted := t0.Add(-time.Hour)
	return &nodeAPI{bodies: map[string]string{}, nodes: []admin.Node{
		{ID: "nod_01jx0000000000000000000001", SPIFFEID: "spiffe://example.org/node/nod_01jx0000000000000000000001",
			State: admin.NodeStateActive, AttestationMethod: "kubernetes", AttestedAt: t0.Add(-48 * time.Hour),
			Attestor: "prod-cluster", Facts: map[string]string{"k8s:ns": "agentid", "k8s:node": "worker-3"},
			LastSeenAt: t0.Add(-10 * time.Minute), SVIDSerial: "5f0c3a9e1d2b4c6a8e0f1a2b3c4d5e6f", SVIDKeyID: "sgk_ca1",
			SVIDExpiresAt: t0.Add(50 * time.Minute), Version: 7},
		{ID: "nod_01jx0000000000000000000002", SPIFFEID: "spiffe://example.org/node/nod_01jx0000000000000000000002",
			State: admin.NodeStateEvicted, AttestationMethod: "join_token", AttestedAt: t0.Add(-72 * time.Hour),
			LastSeenAt: t0.Add(-2 * time.Hour), SVIDSerial: "77aa", SVIDKeyID: "sgk_ca1",
			SVIDExpiresAt: t0.Add(-90 * time.Minute), SVIDExpired: true, EvictedAt: &evicted, EvictedBy: "adm_01jx00000000000000000000ab", Version: 3},
	}}
}

func (f *nodeAPI) serve(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	record := func(r *http.Request) string {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.bodies[r.Method+" "+r.URL.Path] = string(b)
		return string(b)
	}
	mux.HandleFunc("POST /v1/node-tokens", func(w http.ResponseWriter, r *http.Request) {
		var req admin.CreateJoinTokenRequest
		if err := json.Unmarshal([]byte(record(r)), &req); err != nil {
			writeProblem(w, admin.Problem{Type: admin.ProblemBadRequest, Title: "Bad request", Status: 400, Detail: err.Error()})
			return
		}
		if req.TTLSeconds > 86400 {
			writeProblem(w, admin.Problem{Type: admin.ProblemValidation, Title: "Invalid field", Status: 400,
				Detail: "invalid ttl_seconds: must be between 1m0s and 24h0m0s (default 10m0s)", Field: "ttl_seconds"})
			return
		}
		writeJSON(w, http.StatusCreated, admin.CreatedJoinToken{ID: "njt_01jx0000000000000000000000", Token: fakeJoinToken,
			ExpiresAt: t0.Add(time.Duration(req.TTLSeconds) * time.Second)})
	})
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.bodies["GET /v1/nodes"] = r.URL.RawQuery
		var items []admin.Node
		for _, n := range f.nodes {
			if s := r.URL.Query().Get("state"); s == "" || s == n.State {
				items = append(items, n)
			}
		}
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, paginate(r, items))
	})
	mux.HandleFunc("GET /v1/nodes/{id}", func(w http.ResponseWriter, r *http.Request) {
		for _, n := range f.nodes {
			if n.ID == r.PathValue("id") {
				writeJSON(w, http.StatusOK, n)
				return
			}
		}
		notFound(w, "node")
	})
	mux.HandleFunc("POST /v1/nodes/{id}/evict", func(w http.ResponseWriter, r *http.Request) {
		var req admin.EvictNodeRequest
		if err := json.Unmarshal([]byte(record(r)), &req); err != nil {
			writeProblem(w, admin.Problem{Type: admin.ProblemBadRequest, Title: "Bad request", Status: 400, Detail: err.Error()})
			return
		}
		for _, n := range f.nodes {
			if n.ID != r.PathValue("id") {
				continue
			}
			if n.State == admin.NodeStateEvicted {
				writeProblem(w, admin.Problem{Type: admin.ProblemIllegalTransition, Title: "Illegal state transition", Status: 409,
					Detail: "node " + n.ID + " was evicted at 2025-06-01T11:00:00Z: node is evicted"})
				return
			}
			at := t0
			n.State, n.EvictedAt, n.EvictedBy, n.Version = admin.NodeStateEvicted, &at, "adm_01jx00000000000000000000ab", n.Version+1
			writeJSON(w, http.StatusOK, n)
			return
		}
		notFound(w, "node")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestNodeTokenCreate(t *testing.T) {
	f := newNodeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "node", "token", "create")
	wantCode(t, r, ExitOK)
	golden(t, "node_token_create", r.stdout)
	if got := f.bodies["POST /v1/node-tokens"]; got != `{"ttl_seconds":600}` {
		t.Errorf("request %s, want the default 10m", got)
	}

	r = run(t, srv.URL, "-o", "json", "node", "token", "create", "--ttl", "1h")
	wantCode(t, r, ExitOK)
	var got admin.CreatedJoinToken
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	want := admin.CreatedJoinToken{ID: "njt_01jx0000000000000000000000", Token: fakeJoinToken, ExpiresAt: t0.Add(time.Hour)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("-o json (-want +got):\n%s", diff)
	}
	if strings.Contains(r.stdout, "Warning") {
		t.Error("-o json prints the warning")
	}

	for _, ttl := range []string{"0s", "1.5s", "-1m"} {
		r = run(t, srv.URL, "node", "token", "create", "--ttl", ttl)
		wantCode(t, r, ExitUsage)
	}
	r = run(t, srv.URL, "node", "token", "create", "--ttl", "48h")
	wantCode(t, r, ExitError)
	contains(t, "stderr", r.stderr, "invalid ttl_seconds", "(field ttl_seconds)")
}

func TestNodeList(t *testing.T) {
	f := newNodeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "node", "list")
	wantCode(t, r, ExitOK)
	golden(t, "node_list", r.stdout)

	r = run(t, srv.URL, "-o", "json", "node", "list", "--state", "evicted")
	wantCode(t, r, ExitOK)
	var l admin.List[admin.Node]
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l.Items) != 1 || l.Items[0].State != admin.NodeStateEvicted {
		t.Errorf("--state evicted: %+v, %v", l, err)
	}
	if q := f.bodies["GET /v1/nodes"]; q != "state=evicted" {
		t.Errorf("query %q, want state=evicted", q)
	}
	wantCode(t, run(t, srv.URL, "node", "list", "--state", "gone"), ExitUsage)
}

func TestNodeShow(t *testing.T) {
	srv := newNodeAPI().serve(t)
	for _, id := range []string{"nod_01jx0000000000000000000001", "nod_01jx0000000000000000000002"} {
		r := run(t, srv.URL, "node", "show", id)
		wantCode(t, r, ExitOK)
		golden(t, "node_show_"+id, r.stdout)
	}
	r := run(t, srv.URL, "node", "show", "nod_missing")
	wantCode(t, r, ExitError)
	contains(t, "stderr", r.stderr, "Not found")
}

func TestNodeEvict(t *testing.T) {
	f := newNodeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "node", "evict", "nod_01jx0000000000000000000001", "--reason", "host retired")
	wantCode(t, r, ExitOK)
	golden(t, "node_evict", r.stdout)
	if got := f.bodies["POST /v1/nodes/nod_01jx0000000000000000000001/evict"]; got != `{"reason":"host retired"}` {
		t.Errorf("request %s", got)
	}
	r = run(t, srv.URL, "node", "evict", "nod_01jx0000000000000000000002")
	wantCode(t, r, ExitError)
	if want := "agentid: Illegal state transition: node nod_01jx0000000000000000000002 was evicted at 2025-06-01T11:00:00Z: node is evicted\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	if got := f.bodies["POST /v1/nodes/nod_01jx0000000000000000000002/evict"]; got != `{}` {
		t.Errorf("request without --reason: %s", got)
	}
	wantCode(t, run(t, srv.URL, "node", "evict"), ExitUsage)
}
