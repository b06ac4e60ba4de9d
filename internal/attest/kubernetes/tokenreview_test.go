package kubernetes_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/kubernetes"
	"github.com/agentid/agentid/internal/delegation/idptest"
)

// fakeAPIServer is a TLS API server that answers TokenReviews: a token is
// authenticated unless its pod was deleted.
type fakeAPIServer struct {
	srv    *httptest.Server
	caFile string

	mu      sync.Mutex
	deleted map[string]bool // pod uids
	bearers []string
	down    bool
}

func newFakeAPIServer(t *testing.T) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{deleted: map[string]bool{}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
			http.NotFound(w, r)
			return
		}
		f.bearers = append(f.bearers, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		var in struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Spec       struct {
				Token     string   `json:"token"`
				Audiences []string `json:"audiences"`
			} `json:"spec"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Kind != "TokenReview" || in.APIVersion != "authentication.k8s.io/v1" {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		// The claims are not verified here: the attestor did that.
		var claims struct {
			Sub string `json:"sub"`
			K8s struct {
				Pod struct {
					UID string `json:"uid"`
				} `json:"pod"`
			} `json:"kubernetes.io"`
		}
		parts := strings.Split(in.Spec.Token, ".")
		if len(parts) == 3 {
			if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
				_ = json.Unmarshal(b, &claims)
			}
		}
		out := map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"}
		if f.deleted[claims.K8s.Pod.UID] {
			out["status"] = map[string]any{"authenticated": false, "error": "pod deleted"}
		} else {
			out["status"] = map[string]any{"authenticated": true, "audiences": in.Spec.Audiences,
				"user": map[string]any{"username": claims.Sub, "extra": map[string][]string{"authentication.kubernetes.io/pod-uid": {claims.K8s.Pod.UID}}}}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "apiserver-ca.pem")
	if err := os.WriteFile(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTokenReview(t *testing.T) {
	cluster := idptest.New(t)
	api := newFakeAPIServer(t)
	reviewerFile := filepath.Join(t.TempDir(), "reviewer")
	if err := os.WriteFile(reviewerFile, []byte("reviewer-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := cluster.Mint("es1", podClaims(cluster.URL))
	for _, tc := range []struct {
		name       string
		tokenFile  string
		wantBearer string
	}{
		{"the token as bearer", "", tok},
		{"a reviewer token", reviewerFile, "reviewer-token"},
	} {
		api.mu.Lock()
		api.deleted, api.bearers = map[string]bool{}, nil
		api.mu.Unlock()
		a := newAttestor(t, kubernetes.Config{Name: "prod", Issuer: cluster.URL, Audience: "agentid", TLSCAFile: cluster.CAFile,
			TokenReview: &kubernetes.TokenReview{APIServer: api.srv.URL, CAFile: api.caFile, ReviewerTokenFile: tc.tokenFile}})
		if _, err := a.Attest(context.Background(), tok); err != nil {
			t.Fatalf("%s: Attest of a live pod's token: %v", tc.name, err)
		}
		api.mu.Lock()
		api.deleted["pod-uid-1"] = true
		bearers := api.bearers
		api.mu.Unlock()
		if len(bearers) != 1 || bearers[0] != tc.wantBearer {
			t.Errorf("%s: review bearers %q, want %q", tc.name, bearers, tc.wantBearer)
		}
		_, err := a.Attest(context.Background(), tok)
		var ae *attest.Error
		if !errors.As(err, &ae) || !errors.Is(err, attest.ErrInvalid) || strings.Contains(ae.Reason, tok) {
			t.Errorf("%s: Attest of a deleted pod's token = %v, want ErrInvalid", tc.name, err)
		}
	}

	// The API server down: fail closed, ErrUnavailable.
	api.mu.Lock()
	api.down = true
	api.mu.Unlock()
	a := newAttestor(t, kubernetes.Config{Name: "prod", Issuer: cluster.URL, Audience: "agentid", TLSCAFile: cluster.CAFile,
		TokenReview: &kubernetes.TokenReview{APIServer: api.srv.URL, CAFile: api.caFile}})
	if _, err := a.Attest(context.Background(), tok); !errors.Is(err, attest.ErrUnavailable) || strings.Contains(err.Error(), tok) {
		t.Errorf("Attest with the API server down = %v, want ErrUnavailable", err)
	}
	// An API server not verified by the CA: unavailable too.
	a = newAttestor(t, kubernetes.Config{Name: "prod", Issuer: cluster.URL, Audience: "agentid", TLSCAFile: cluster.CAFile,
		TokenReview: &kubernetes.TokenReview{APIServer: api.srv.URL, CAFile: cluster.CAFile}})
	if _, err := a.Attest(context.Background(), tok); !errors.Is(err, attest.ErrUnavailable) {
		t.Errorf("Attest with an unverified API server = %v, want ErrUnavailable", err)
	}
}

func TestTokenReviewConfigRefused(t *testing.T) {
	for _, tr := range []kubernetes.TokenReview{
		{APIServer: "http://api.example.com"},
		{APIServer: "not a url"},
		{APIServer: "https://api.example.com", CAFile: "/nonexistent"},
		{APIServer: "https://api.example.com", ReviewerTokenFile: "/nonexistent"},
		{APIServer: "https://api.example.com", CacheTTL: -time.Second},
	} {
		if _, err := kubernetes.New(kubernetes.Config{Name: "prod", Issuer: "https://issuer.example.com", Audience: "agentid",
			JWKSURL: "https://issuer.example.com/keys", TokenReview: &tr}, now); err == nil {
			t.Errorf("New accepted token review %+v", tr)
		}
	}
}

// TestTokenReviewCache: with CacheTTL, the API server's acceptance of a
// token is reused for that long (a pod deleted meanwhile is noticed late,
// by at most the TTL); refusals are never cached.
func TestTokenReviewCache(t *testing.T) {
	cluster := idptest.New(t)
	api := newFakeAPIServer(t)
	var offset atomic.Int64
	clock := func() time.Time { return now().Add(time.Duration(offset.Load())) }
	a, err := kubernetes.New(kubernetes.Config{Name: "prod", Issuer: cluster.URL, Audience: "agentid", TLSCAFile: cluster.CAFile,
		TokenReview: &kubernetes.TokenReview{APIServer: api.srv.URL, CAFile: api.caFile, CacheTTL: 30 * time.Second}}, clock)
	if err != nil {
		t.Fatal(err)
	}
	reviews := func() int {
		api.mu.Lock()
		defer api.mu.Unlock()
		return len(api.bearers)
	}
	tok := cluster.Mint("es1", podClaims(cluster.URL))
	other := cluster.Mint("es1", func() map[string]any {
		c := podClaims(cluster.URL)
		c["jti"] = "another-token"
		return c
	}())
	for i := range 3 {
		if _, err := a.Attest(context.Background(), tok); err != nil {
			t.Fatalf("Attest %d: %v", i+1, err)
		}
	}
	if n := reviews(); n != 1 {
		t.Errorf("three attestations of one token within the TTL: %d reviews, want 1", n)
	}
	if _, err := a.Attest(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if n := reviews(); n != 2 {
		t.Errorf("another token: %d reviews in all, want 2 (the cache is per token)", n)
	}

	api.mu.Lock()
	api.deleted["pod-uid-1"] = true
	api.mu.Unlock()
	if _, err := a.Attest(context.Background(), tok); err != nil {
		t.Errorf("within the TTL the cached acceptance stands: %v", err)
	}
	offset.Store(int64(31 * time.Second))
	for i := range 2 {
		if _, err := a.Attest(context.Background(), tok); !errors.Is(err, attest.ErrInvalid) {
			t.Errorf("after the TTL, attempt %d: %v, want ErrInvalid (pod deleted)", i+1, err)
		}
	}
	if n := reviews(); n != 4 {
		t.Errorf("after the TTL: %d reviews in all, want 4 (refusals are not cached)", n)
	}
}
