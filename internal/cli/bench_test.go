package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/agentid/agentid/internal/bench"
)

// childEnv makes the test binary act as agentid: `bench tokens` re-executes
// os.Executable() for its child servers, which in a test is this binary.
const childEnv = "AGENTID_CLI_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Run(ctx, os.Args[1:], Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestBenchTokensShortRun runs the whole command briefly: a ceiling child
// and an agentid child (SQLite, durable audit), both methods. It checks
// the report's shape and that tokens were issued and verified, never a
// speed.
func TestBenchTokensShortRun(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("bench tokens reads server CPU from /proc")
	}
	if testing.Short() {
		t.Skip("starts two servers")
	}
	t.Setenv(childEnv, "1")
	r := run(t, "http://127.0.0.1:1", "-o", "json", "bench", "tokens",
		"--clients", "2", "--duration", "300ms", "--warmup", "100ms")
	wantCode(t, r, ExitOK)
	var rep bench.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("output is not a report: %v\n%s", err, r.stdout)
	}
	if rep.Clients != 2 || len(rep.Runs) != 1 || len(rep.Median) != 3 {
		t.Fatalf("report: %d clients, %d runs, %d medians\n%s", rep.Clients, len(rep.Runs), len(rep.Median), r.stdout)
	}
	var targets []string
	for _, m := range rep.Runs[0].Measurements {
		targets = append(targets, m.Target)
		if m.Tokens <= 0 || !m.Verified || m.TokensPerSecond <= 0 || m.P50Millis <= 0 || m.P99Millis < m.P50Millis {
			t.Errorf("%s: %+v", m.Target, m)
		}
		if m.ServerCPUSeconds > 0 && m.CPUPerTokenMicros <= 0 {
			t.Errorf("%s: CPU %v s but %v µs per token", m.Target, m.ServerCPUSeconds, m.CPUPerTokenMicros)
		}
	}
	if want := []string{bench.TargetCeiling, bench.PrivateKeyJWT, bench.ClientSecretBasic}; !slices.Equal(targets, want) {
		t.Errorf("targets %v, want %v", targets, want)
	}
	if len(rep.Checks) != 1 && len(rep.Checks) != 2 { // the ratio needs ceiling CPU, 10 ms ticks
		t.Errorf("checks %+v", rep.Checks)
	}
	contains(t, "progress on stderr", r.stderr, "run 1/1 ceiling", "run 1/1 private_key_jwt", "run 1/1 client_secret_basic")
}

func TestBenchTokensUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "tokens", "--clients", "0"},
		{"bench", "tokens", "--runs", "0"},
		{"bench", "tokens", "--auth", "client_secret_post"},
	} {
		r := run(t, "http://127.0.0.1:1", args...)
		wantCode(t, r, ExitUsage)
	}
}

// TestBenchReportTable pins the table layout.
func TestBenchReportTable(t *testing.T) {
	m := func(target string, tps, cpu, ratio float64) bench.Measurement {
		return bench.Measurement{Target: target, Tokens: int(tps * 10), Seconds: 10, TokensPerSecond: tps,
			P50Millis: 3.2, P99Millis: 12.5, ServerCPUSeconds: cpu * tps * 10 / 1e6, ClientCPUSeconds: 6.4,
			CPUPerTokenMicros: cpu, TokensPerCPUSecond: 1e6 / cpu, CeilingRatio: ratio, Verified: true}
	}
	rep := bench.Report{Clients: 32, WarmupSeconds: 2, DurationSeconds: 10,
		Machine: bench.Machine{GOOS: "linux", GOARCH: "amd64", NumCPU: 2, GOMAXPROCS: 2, GoVersion: "go1.26"},
		Runs: []bench.Round{
			{Measurements: []bench.Measurement{m("ceiling", 10_000, 100, 1), m("private_key_jwt", 2_500, 380, 3.8), m("client_secret_basic", 4_000, 250, 2.5)}},
			{Measurements: []bench.Measurement{m("ceiling", 9_000, 110, 1), m("private_key_jwt", 2_400, 390, 3.55), m("client_secret_basic", 4_100, 240, 2.18)}},
		},
		Median: []bench.Measurement{m("ceiling", 9_500, 105, 1), m("private_key_jwt", 2_450, 385, 3.67), m("client_secret_basic", 4_050, 245, 2.34)},
		Checks: []bench.Check{
			{Target: "private_key_jwt", Metric: "ceiling_ratio", Op: "<=", Limit: 1.45, Value: 3.67},
			{Target: "client_secret_basic", Metric: "tokens_per_server_cpu_s", Op: ">=", Limit: 10_000, Value: 4_082},
		},
	}
	var out, errb strings.Builder
	rc := &runContext{ctx: t.Context(), env: Env{Stdout: &out, Stderr: &errb}, g: &Globals{}}
	if err := rc.printBenchReport(rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "bench_tokens", out.String())
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.4: "999", 999.5: "1,000", 12345: "12,345", 1234567: "1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}
