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
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

// runNode runs `agentid node run` in-process with the environment env.
func runNode(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code := Run(context.Background(), append([]string{"--data", t.TempDir(), "node", "run"}, args...), e)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func TestNodeRunUsage(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(fakeJoinToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no node API", nil, "--node-api is required"},
		{"two tokens", []string{"--node-api", "127.0.0.1:1", "--join-token", fakeJoinToken, "--join-token-file", tokenFile}, "not both"},
		{"bad socket mode", []string{"--node-api", "127.0.0.1:1", "--socket-mode", "rw"}, "--socket-mode"},
		{"short backoff", []string{"--node-api", "127.0.0.1:1", "--max-backoff", "1ms"}, "--max-backoff"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runNode(t, nil, tt.args...)
			wantCode(t, r, ExitUsage)
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q, want %q", r.stderr, tt.want)
			}
		})
	}
}

// TestNodeRunRefusedToken: a join token the admin API refuses ends the
// node with exit 1 and a message that says what to do, without the token.
func TestNodeRunRefusedToken(t *testing.T) {
	var got admin.AttestNodeRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != admin.NodeAttestPath || r.Header.Get("Authorization") != "" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		writeProblem(w, admin.Problem{Type: admin.ProblemUnauthenticated, Title: "Unauthenticated", Status: 401, Detail: "join token refused"})
	}))
	defer srv.Close()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(fakeJoinToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runNode(t, nil, "--server", srv.URL, "--node-api", "127.0.0.1:1", "--join-token-file", tokenFile,
		"--data-dir", filepath.Join(dir, "data"), "--socket", filepath.Join(dir, "wl.sock"))
	wantCode(t, r, ExitError)
	if !strings.Contains(r.stderr, "already used") || strings.Contains(r.stderr, fakeJoinToken) {
		t.Errorf("stderr %q: want the refusal explained, without the token", r.stderr)
	}
	if got.JoinToken != fakeJoinToken || !strings.Contains(got.CSR, "CERTIFICATE REQUEST") {
		t.Errorf("attest request %+v", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "wl.sock")); err == nil {
		t.Error("the socket is left behind")
	}
}

// TestNodeRunNothingToStartFrom: no token, no cache: exit 1 saying so.
func TestNodeRunNothingToStartFrom(t *testing.T) {
	dir := t.TempDir()
	r := runNode(t, map[string]string{"AGENTID_NODE_API": "127.0.0.1:1"},
		"--data-dir", filepath.Join(dir, "data"), "--socket", filepath.Join(dir, "wl.sock"))
	wantCode(t, r, ExitError)
	if !strings.Contains(r.stderr, "no join token") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestNodeRunJoinTokenSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rc := &runContext{env: Env{Getenv: func(k string) string {
		if k == JoinTokenEnv {
			return "from-env"
		}
		return ""
	}}}
	for _, tt := range []struct {
		cmd  nodeRunCmd
		want string
	}{
		{nodeRunCmd{JoinToken: "from-flag"}, "from-flag"},
		{nodeRunCmd{JoinTokenFile: file}, "from-file"},
		{nodeRunCmd{}, "from-env"},
	} {
		if got, err := tt.cmd.joinToken(rc); err != nil || got != tt.want {
			t.Errorf("joinToken(%+v) = %q, %v; want %q", tt.cmd, got, err, tt.want)
		}
	}
}
