package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// realServer starts a control plane on a loopback socket with the dev
// configuration, changed by mutate when it is not nil, and returns its URL
// and the bootstrap admin token. It serves until the end of the test.
func realServer(t *testing.T, mutate func(*server.Config)) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.DevConfig(t.TempDir(), ln.Addr().String())
	cfg.Issuer = "http://" + ln.Addr().String()
	if mutate != nil {
		mutate(&cfg)
	}
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
	return cfg.Issuer, tok
}

// newOwner returns an admin client for url with token and the ID of a new
// person owner with email.
func newOwner(t *testing.T, url, token, email string) (*admin.Client, string) {
	t.Helper()
	cl, err := admin.New(url, token)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := cl.CreateOwner(t.Context(), admin.CreateOwnerRequest{Kind: "person", Email: email})
	if err != nil {
		t.Fatal(err)
	}
	return cl, owner.ID
}

// runAs runs the CLI against url with the admin token.
func runAs(t *testing.T, url, token string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := Run(t.Context(), append([]string{"--server", url, "--token", token, "--data", t.TempDir()}, args...), env)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// evaluate posts an AuthZEN evaluation request body to the server at url
// with the admin token and returns the decoded 200 response.
func evaluate(t *testing.T, url, token, body string) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/access/v1/evaluation", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("evaluation: %s", resp.Status)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}
