package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

// These tests build the real binary and drive it as a user would.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func agentidBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "agentid-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "agentid")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// devServer is a running `agentid dev` in a working directory.
type devServer struct {
	cmd    *exec.Cmd
	url    string
	token  string
	stderr *bytes.Buffer
}

// startDev starts `agentid dev` in dir (data in dir/agentid-data) on a free
// loopback port and waits until it is ready.
func startDev(t *testing.T, dir string) *devServer {
	t.Helper()
	data := filepath.Join(dir, "agentid-data")
	_ = os.Remove(filepath.Join(data, "server-url"))
	cmd := exec.Command(agentidBinary(t), "dev", "--listen", "127.0.0.1:0")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout = &bytes.Buffer{}
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &devServer{cmd: cmd, stderr: &stderr}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(data, "server-url")); err == nil {
			d.url = strings.TrimSpace(string(b))
			if resp, err := http.Get(d.url + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					tok, err := os.ReadFile(filepath.Join(data, "admin-token"))
					if err != nil {
						t.Fatal(err)
					}
					d.token = strings.TrimSpace(string(tok))
					return d
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("agentid dev did not become ready; stderr:\n%s", stderr.String())
	return nil
}

// run runs the binary in dir and returns its exit code and output.
func run(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(agentidBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AGENTID_SERVER=", "AGENTID_TOKEN=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// splitWords splits a shell command line with double-quoted words.
func splitWords(line string) []string {
	var words []string
	var cur strings.Builder
	inQuote, inWord := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote = !inQuote
			inWord = true
		case r == ' ' && !inQuote:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// tourCommands returns the commands of the README tour.
func tourCommands(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- tour:begin -->")
	tour, _, ok2 := strings.Cut(rest, "<!-- tour:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no tour markers")
	}
	var cmds [][]string
	sc := bufio.NewScanner(strings.NewReader(tour))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if args, ok := strings.CutPrefix(line, "go run ./cmd/agentid "); ok {
			cmds = append(cmds, splitWords(args))
		} else if line != "" && !strings.HasPrefix(line, "```") {
			t.Fatalf("tour line %q is not an agentid command", line)
		}
	}
	if len(cmds) < 5 {
		t.Fatalf("tour has %d commands", len(cmds))
	}
	return cmds
}

// TestREADMETour runs the README's tour verbatim against `agentid dev`.
func TestREADMETour(t *testing.T) {
	dir := t.TempDir()
	startDev(t, dir)
	outputs := map[string]string{}
	for _, args := range tourCommands(t) {
		code, stdout, stderr := run(t, dir, args...)
		if code != 0 {
			t.Fatalf("agentid %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
		}
		outputs[args[0]+" "+args[1]] = stdout
	}
	for cmd, want := range map[string]string{
		"agent list":   "invoice-bot",
		"agent show":   "suspended",
		"audit query":  "agent.suspended",
		"audit verify": "intact",
	} {
		if !strings.Contains(outputs[cmd], want) {
			t.Errorf("agentid %s: output lacks %q:\n%s", cmd, want, outputs[cmd])
		}
	}
}

// TestSIGKILLLosesNothingAcknowledged kills the server while 8 clients
// create agents; after a restart every agent that got a 201 exists with
// its audit event, and the trail verifies.
func TestSIGKILLLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server")
	}
	dir := t.TempDir()
	d := startDev(t, dir)
	ctx := context.Background()
	c, err := admin.New(d.url, d.token, admin.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateOwner(ctx, admin.CreateOwnerRequest{Email: "owner@example.com"}); err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("kill-%d-%d", w, i)
				_, err := c.CreateAgent(ctx, admin.CreateAgentRequest{Name: name, Purpose: "crash test", Owners: []string{"owner@example.com"}})
				if err != nil {
					return // the server died under us
				}
				mu.Lock()
				acked = append(acked, name)
				n := len(acked)
				mu.Unlock()
				if n >= 400 {
					return
				}
			}
		}()
	}
	// Kill mid-stream: once a good number of creates were acknowledged.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 100 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Wait()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no create was acknowledged before the kill; stderr:\n%s", d.stderr.String())
	}
	t.Logf("%d creates acknowledged before SIGKILL", len(acked))

	d2 := startDev(t, dir)
	c2, err := admin.New(d2.url, d2.token)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range acked {
		a, err := c2.GetAgent(ctx, name)
		if err != nil {
			t.Fatalf("acknowledged agent %s is lost: %v", name, err)
		}
		evs, err := c2.ListAuditEvents(ctx, admin.AuditQuery{Agent: a.ID})
		if err != nil || len(evs.Items) == 0 || evs.Items[0].Type != "agent.created" {
			t.Fatalf("acknowledged agent %s has no agent.created event: %+v, %v", name, evs.Items, err)
		}
	}
	code, stdout, stderr := run(t, dir, "audit", "verify")
	if code != 0 {
		t.Fatalf("audit verify after SIGKILL: exit %d\n%s%s", code, stdout, stderr)
	}
}
