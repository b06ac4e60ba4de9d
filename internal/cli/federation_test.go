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

// federationAPI is a fake of the federation endpoints with two foreign
// trust domains: one fetched, one whose endpoint fails.
type federationAPI struct {
	mu       sync.Mutex
	items    []admin.FederatedTrustDomain
	bundle   []byte
	requests []string
}

func newFederationAPI(t *testing.T) *federationAPI {
	fetched, next, failedAt := t0, t0.Add(5*time.Minute), t0.Add(90*time.Second)
	return &federationAPI{bundle: testBundle(t), items: []admin.FederatedTrustDomain{
		{TrustDomain: "acme.example", BundleEndpointURL: "https://spire.acme.example/bundle", BundleEndpointProfile: "https_web",
			RefreshAt: &failedAt, LastError: "Get \"https://spire.acme.example/bundle\": dial tcp: connection refused", Failures: 3},
		{TrustDomain: "partner.example", BundleEndpointURL: "https://partner.example/spiffe/bundle", BundleEndpointProfile: "https_web",
			HasBundle: true, Sequence: 1748779200, RefreshHintSeconds: 300, X509Authorities: 1, JWTAuthorities: 1,
			FetchedAt: &fetched, RefreshAt: &next},
	}}
}

func (f *federationAPI) serve(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/federation", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, admin.List[admin.FederatedTrustDomain]{Items: f.items})
	})
	mux.HandleFunc("POST /v1/federation/{td}/refresh", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("td") {
		case "partner.example":
			writeJSON(w, http.StatusOK, f.items[1])
		case "acme.example":
			writeProblem(w, admin.Problem{Type: admin.ProblemBundleFetchFailed, Title: "Bundle fetch failed", Status: http.StatusBadGateway,
				Detail: "fetch the bundle of acme.example: connection refused; the last good bundle stays in use"})
		default:
			writeProblem(w, admin.Problem{Type: admin.ProblemNotFound, Title: "Not found", Status: http.StatusNotFound,
				Detail: `trust domain not configured for federation: "` + r.PathValue("td") + `"`})
		}
	})
	mux.HandleFunc("GET /v1/federation/{td}/bundle", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("td") != "partner.example" {
			writeProblem(w, admin.Problem{Type: admin.ProblemNotFound, Title: "Not found", Status: http.StatusNotFound,
				Detail: "no bundle of this trust domain yet: " + r.PathValue("td")})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.bundle)
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

func TestFederationList(t *testing.T) {
	f := newFederationAPI(t)
	srv := f.serve(t)
	r := run(t, srv.URL, "federation", "list")
	wantCode(t, r, ExitOK)
	golden(t, "federation_list", r.stdout)

	r = run(t, srv.URL, "-o", "json", "federation", "list")
	wantCode(t, r, ExitOK)
	var got admin.List[admin.FederatedTrustDomain]
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.Items) != 2 || got.Items[1].Sequence != 1748779200 {
		t.Fatalf("json output %q: %v", r.stdout, err)
	}

	f.items = nil
	r = run(t, srv.URL, "federation", "list")
	wantCode(t, r, ExitOK)
	contains(t, "stdout", r.stdout, "No foreign trust domain is configured")
}

func TestFederationRefresh(t *testing.T) {
	f := newFederationAPI(t)
	srv := f.serve(t)
	r := run(t, srv.URL, "federation", "refresh", "partner.example")
	wantCode(t, r, ExitOK)
	golden(t, "federation_refresh", r.stdout)

	r = run(t, srv.URL, "federation", "refresh", "acme.example")
	wantCode(t, r, ExitError)
	want := "agentid: Bundle fetch failed: fetch the bundle of acme.example: connection refused; " +
		"the last good bundle stays in use\n"
	if r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	r = run(t, srv.URL, "federation", "refresh")
	wantCode(t, r, ExitUsage)
	if got := strings.Join(f.requests, "\n"); got != "POST /v1/federation/partner.example/refresh\nPOST /v1/federation/acme.example/refresh" {
		t.Errorf("requests:\n%s", got)
	}
}

func TestBundleShowFederated(t *testing.T) {
	f := newFederationAPI(t)
	srv := f.serve(t)
	r := run(t, srv.URL, "bundle", "show", "--trust-domain", "partner.example")
	wantCode(t, r, ExitOK)
	golden(t, "bundle_show_federated", r.stdout)

	r = run(t, srv.URL, "-o", "json", "bundle", "show", "--trust-domain", "partner.example")
	wantCode(t, r, ExitOK)
	if !json.Valid([]byte(r.stdout)) || !strings.Contains(r.stdout, `"spiffe_sequence": 1748779200`) {
		t.Errorf("-o json: %s", r.stdout)
	}
	r = run(t, srv.URL, "bundle", "show", "--trust-domain", "acme.example")
	wantCode(t, r, ExitError)
	contains(t, "stderr", r.stderr, "Not found: no bundle of this trust domain yet: acme.example")
}
