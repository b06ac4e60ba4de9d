package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// benchServer starts a control plane on loopback with authzenPolicies and
// an agent "bot" holding the read class; it returns the URL, the admin
// token and a keep-alive client sized for parallel callers.
func benchServer(b *testing.B) (string, string, *http.Client) {
	b.Helper()
	ctx, cancel := context.WithCancel(b.Context())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cfg := server.DevConfig(b.TempDir(), ln.Addr().String())
	cfg.Issuer = "http://" + ln.Addr().String()
	srv, err := server.New(ctx, cfg, server.Params{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := srv.Bootstrap(ctx)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Serve: %v", err)
		}
		_ = srv.Close()
	})
	ac, err := admin.New(cfg.Issuer, tok)
	if err != nil {
		b.Fatal(err)
	}
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
	return cfg.Issuer, tok, hc
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

// BenchmarkAuthZENHTTP measures AuthZEN decisions over loopback HTTP with
// an admin token, every decision durable in the audit trail (SQLite) before
// its answer: one evaluation per op (callers=N concurrent keep-alive
// clients), and a batch of 100 evaluations per op (one transaction, 100
// events). It reports decisions/s.
func BenchmarkAuthZENHTTP(b *testing.B) {
	eval := `{"subject":{"type":"agent","id":"bot"},"action":{"name":"read"},"resource":{"type":"ticket","id":"1"}}`
	for _, callers := range []int{1, 32} {
		b.Run("evaluation/callers="+strconv.Itoa(callers), func(b *testing.B) {
			base, tok, hc := benchServer(b)
			url := base + "/access/v1/evaluation"
			start := time.Now()
			b.ResetTimer()
			parallel(b, callers, func() { post(b, hc, url, tok, eval) })
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
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
			start := time.Now()
			b.ResetTimer()
			parallel(b, callers, func() { post(b, hc, url, tok, batch) })
			b.ReportMetric(float64(b.N*100)/time.Since(start).Seconds(), "decisions/s")
		})
	}
}
