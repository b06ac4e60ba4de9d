package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

var tokenRE = regexp.MustCompile(`aida_[A-Za-z0-9_-]{43}`)

func TestInitThenServe(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agentid.yaml")

	code, out, errOut := run(t, dir, "init", "--config", cfg)
	if code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	token := tokenRE.FindString(out)
	if token == "" || !strings.Contains(out, "wrote "+cfg) {
		t.Fatalf("init did not write the config and print a token:\n%s", out)
	}
	if fi, err := os.Stat(cfg); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config %v, mode %v", err, fi.Mode())
	}
	code, out, _ = run(t, dir, "init", "--config", cfg)
	if code != 0 || !strings.Contains(out, "already initialised") || tokenRE.MatchString(out) {
		t.Fatalf("second init: exit %d, printed:\n%s", code, out)
	}
	code, out, _ = run(t, dir, "init", "--config", cfg, "-o", "json")
	if code != 0 || !strings.Contains(out, `"created": false`) || tokenRE.MatchString(out) {
		t.Fatalf("init -o json on an initialised deployment: exit %d\n%s", code, out)
	}

	// Serve on a free loopback port from the same config.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, bytes.Replace(b, []byte("listen: 127.0.0.1:8080"), []byte("listen: "+addr), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(agentidBinary(t), "serve", "--config", cfg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c, err := admin.New("http://"+addr, token)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := c.Version(t.Context())
		if err == nil {
			if v.TrustDomain != "example.org" {
				t.Fatalf("version %+v", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.CreateOwner(t.Context(), admin.CreateOwnerRequest{Email: "ops@example.com"}); err != nil {
		t.Fatalf("the token init printed does not work: %v", err)
	}
	// SIGTERM shuts down gracefully with exit 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, stderr.String())
	}
	if tokenRE.MatchString(stderr.String()) {
		t.Fatal("serve printed a token although init had created the bootstrap token")
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, yaml, want string }{
		{"plain HTTP on a network address", "listen: 0.0.0.0:8080\ndata_dir: d\n", "not a loopback address"},
		{"unknown key", "listen: 127.0.0.1:8080\nlisen: 127.0.0.1:9\n", "lisen"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			if err := os.WriteFile(cfg, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := run(t, dir, "serve", "--config", cfg)
			if code != 1 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("serve: exit %d, stderr %q, want exit 1 naming %q", code, errOut, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "d")); err == nil {
		t.Fatal("a refused serve created its data directory")
	}
}

func TestDevTokenFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	d := startDev(t, dir)
	fi, err := os.Stat(filepath.Join(dir, "agentid-data", "admin-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-token: %v, mode %v", err, fi.Mode())
	}
	resp, err := http.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
}
