package server_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

// benchServer starts a control plane on loopback with authzenPolicies and
// an agent "bot" holding the read class; it returns the URL, the admin
// token and a keep-alive client sized for parallel callers.
func benchServer(b *testing.B) (string, string, *http.Client) {
	b.Helper()
	cp := startDev(b, nil)
	ctx, ac, tok := b.Context(), cp.admin, cp.token
	owner, err := ac.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: "bench@example.org"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ac.CreateAgent(ctx, admin.CreateAgentRequest{Name: "bot", Owners: []string{owner.ID}, Purpose: "bench",
		ActionClasses: []string{"read"}}); err != nil {
		b.Fatal(err)
	}
	if _, err := ac.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: authzenPolicies}); err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 30 * time.Second}
	return cp.url, tok, hc
}

// parallel runs op b.N times from exactly callers goroutines.
func parallel(b *testing.B, callers int, op func()) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range callers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				op()
			}
		})
	}
	wg.Wait()
}

func post(b *testing.B, hc *http.Client, url, token, body string) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("%s: %d", url, resp.StatusCode)
	}
}

// cpuTime is the CPU time (user and system) the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs op b.N times from callers goroutines and reports
// decisions/s (wall) and decisions per CPU-second of the whole process
// (client and server together: a lower bound of the server's figure),
// perOp decisions per op.
func measure(b *testing.B, callers, perOp int, op func()) {
	cpu0, start := cpuTime(b), time.Now()
	b.ResetTimer()
	parallel(b, callers, op)
	wall, cpu := time.Since(start), cpuTime(b)-cpu0
	n := float64(b.N * perOp)
	b.ReportMetric(n/wall.Seconds(), "decisions/s")
	b.ReportMetric(n/cpu.Seconds(), "decisions/cpu-s")
}

// ceilingServer serves the least any AuthZEN evaluation endpoint does over
// HTTP: check the bearer token, decode the request JSON, encode the answer
// — no store, no policy, no audit. It returns its URL.
func ceilingServer(b *testing.B, token string) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	type entity struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var req struct {
			Subject  entity                `json:"subject"`
			Action   struct{ Name string } `json:"action"`
			Resource entity                `json:"resource"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Subject.ID == "" || req.Action.Name == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Decision bool `json:"decision"`
		}{true})
	})}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// BenchmarkAuthZENHTTP measures AuthZEN decisions over loopback HTTP with
// an admin token, every decision durable in the audit trail (SQLite) before
// its answer: one evaluation per op (callers=N concurrent keep-alive
// clients), and a batch of 100 evaluations per op (one transaction, 100
// events). It reports decisions/s and decisions per process CPU-second.
// ceiling/callers=32 is the same client against ceilingServer, measured in
// the same run: what HTTP and JSON alone allow per CPU-second.
func BenchmarkAuthZENHTTP(b *testing.B) {
	eval := `{"subject":{"type":"agent","id":"bot"},"action":{"name":"read"},"resource":{"type":"ticket","id":"1"}}`
	b.Run("ceiling/callers=32", func(b *testing.B) {
		const tok = "bench-ceiling-token"
		url := ceilingServer(b, tok) + "/access/v1/evaluation"
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 30 * time.Second}
		measure(b, 32, 1, func() { post(b, hc, url, tok, eval) })
	})
	for _, callers := range []int{1, 32} {
		b.Run("evaluation/callers="+strconv.Itoa(callers), func(b *testing.B) {
			base, tok, hc := benchServer(b)
			url := base + "/access/v1/evaluation"
			measure(b, callers, 1, func() { post(b, hc, url, tok, eval) })
		})
	}
	var items []string
	for i := range 100 {
		items = append(items, `{"resource":{"type":"ticket","id":"`+strconv.Itoa(i)+`"}}`)
	}
	batch := `{"subject":{"type":"agent","id":"bot"},"action":{"name":"read"},"evaluations":[` + strings.Join(items, ",") + `]}`
	for _, callers := range []int{1, 8} {
		b.Run("batch100/callers="+strconv.Itoa(callers), func(b *testing.B) {
			base, tok, hc := benchServer(b)
			url := base + "/access/v1/evaluations"
			measure(b, callers, 100, func() { post(b, hc, url, tok, batch) })
		})
	}
}
