package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

// keysAPI is a fake of the signing-key endpoints.
type keysAPI struct {
	mu       sync.Mutex
	keys     []admin.SigningKey
	requests []string
}

func (f *keysAPI) serve(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		out := []admin.SigningKey{}
		for _, k := range f.keys {
			if k.State != admin.SigningKeyRemoved || r.URL.Query().Get("include_removed") == "true" {
				out = append(out, k)
			}
		}
		writeJSON(w, http.StatusOK, admin.List[admin.SigningKey]{Items: out})
	})
	mux.HandleFunc("POST /v1/keys/rotate", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, admin.SigningKey{ID: "sgk_new", Algorithm: "ES256", Purpose: "oauth",
			State: admin.SigningKeyPending, PublishAt: t0, ActivateAt: t0.Add(6 * time.Minute), CreatedAt: t0})
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

func TestKeysList(t *testing.T) {
	ts := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	f := &keysAPI{keys: []admin.SigningKey{
		{ID: "sgk_old", Algorithm: "ES256", Purpose: "oauth", State: admin.SigningKeyRemoved, PublishAt: t0.Add(-48 * time.Hour),
			ActivateAt: t0.Add(-48 * time.Hour), RetireAt: ts(-24 * time.Hour), RemoveAt: ts(-23 * time.Hour), CreatedAt: t0.Add(-48 * time.Hour)},
		{ID: "sgk_retired", Algorithm: "ES256", Purpose: "oauth", State: admin.SigningKeyRetired, PublishAt: t0.Add(-24*time.Hour - 6*time.Minute),
			ActivateAt: t0.Add(-24 * time.Hour), RetireAt: ts(-5 * time.Minute), RemoveAt: ts(time.Hour), CreatedAt: t0.Add(-24*time.Hour - 6*time.Minute)},
		{ID: "sgk_active", Algorithm: "EdDSA", Purpose: "oauth", State: admin.SigningKeyActive, PublishAt: t0.Add(-11 * time.Minute),
			ActivateAt: t0.Add(-5 * time.Minute), CreatedAt: t0.Add(-11 * time.Minute)},
	}}
	srv := f.serve(t)
	r := run(t, srv.URL, "keys", "list")
	wantCode(t, r, ExitOK)
	golden(t, "keys_list", r.stdout)

	r = run(t, srv.URL, "keys", "list", "--all")
	wantCode(t, r, ExitOK)
	golden(t, "keys_list_all", r.stdout)

	r = run(t, srv.URL, "-o", "json", "keys", "list")
	wantCode(t, r, ExitOK)
	var got []admin.SigningKey
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 2 || got[1].ID != "sgk_active" {
		t.Fatalf("json output %q: %v", r.stdout, err)
	}
	want := []string{"GET /v1/keys", "GET /v1/keys?include_removed=true", "GET /v1/keys"}
	if strings.Join(f.requests, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests %q, want %q", f.requests, want)
	}
}

func TestKeysRotate(t *testing.T) {
	f := &keysAPI{}
	srv := f.serve(t)
	r := run(t, srv.URL, "keys", "rotate")
	wantCode(t, r, ExitOK)
	golden(t, "keys_rotate", r.stdout)
	r = run(t, srv.URL, "-o", "json", "keys", "rotate")
	wantCode(t, r, ExitOK)
	var k admin.SigningKey
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || k.ID != "sgk_new" || k.State != "pending" {
		t.Fatalf("json output %q: %v", r.stdout, err)
	}
	if f.requests[0] != "POST /v1/keys/rotate" {
		t.Errorf("request %s", f.requests[0])
	}
}

// TestDevServerKeys starts `agentid dev` on a free port and checks, end to
// end, that the issuer names the port picked and that keys list and rotate
// work against the real API.
func TestDevServerKeys(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"--data", data, "dev", "--listen", "127.0.0.1:0"},
			Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	}()
	var url string
	for deadline := time.Now().Add(20 * time.Second); url == ""; {
		if b, err := os.ReadFile(filepath.Join(data, ServerURLFile)); err == nil {
			url = strings.TrimSpace(string(b))
			break
		}
		select {
		case code := <-done:
			t.Fatalf("dev exited with %d", code)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("dev did not start")
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/.well-known/openid-configuration", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	err = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if err != nil || meta.Issuer != url || meta.JWKSURI != url+"/oauth2/jwks" || strings.HasSuffix(url, ":0") {
		t.Fatalf("discovery at %s: %+v %v", url, meta, err)
	}

	runDev := func(args ...string) result {
		var o, e bytes.Buffer
		code := Run(ctx, append([]string{"--data", data}, args...), Env{Stdout: &o, Stderr: &e, Getenv: func(string) string { return "" }})
		return result{code: code, stdout: o.String(), stderr: e.String()}
	}
	r := runDev("-o", "json", "keys", "list")
	wantCode(t, r, ExitOK)
	var ks []admin.SigningKey
	if err := json.Unmarshal([]byte(r.stdout), &ks); err != nil || len(ks) != 1 || ks[0].State != "active" {
		t.Fatalf("keys list: %q %v", r.stdout, err)
	}
	r = runDev("keys", "rotate")
	wantCode(t, r, ExitOK)
	contains(t, "rotate output", r.stdout, "created and published")
	r = runDev("keys", "list")
	wantCode(t, r, ExitOK)
	contains(t, "keys list", r.stdout, ks[0].ID, "active", "pending")

	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("dev exited with %d: %s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dev did not stop")
	}
}
