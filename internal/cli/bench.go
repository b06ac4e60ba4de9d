package cli

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/bench"
	"github.com/agentid/agentid/internal/server"
)

type benchCmd struct {
	Tokens benchTokensCmd `cmd:"" help:"Measure token issuance (tokens/s, latency, server CPU per token) against the machine's ceiling. Linux only."`
	Node   benchNodeCmd   `cmd:"" help:"Measure agentid node's Workload API with go-spiffe's client: cached X.509-SVID fetches, new-audience JWT-SVIDs, registration to first SVID. Linux only."`
	// The children bench tokens starts; not for people.
	ServeCeiling benchServeCeilingCmd `cmd:"" name:"serve-ceiling" hidden:"" help:"Serve the ceiling token endpoint (a child of bench tokens)."`
	ServeAgentid benchServeAgentidCmd `cmd:"" name:"serve-agentid" hidden:"" help:"Serve a dev control plane for bench tokens (a child of bench tokens)."`
	// The workload ceiling bench node starts.
	ServeWorkloadCeiling benchServeWorkloadCeilingCmd `cmd:"" name:"serve-workload-ceiling" hidden:"" help:"Serve the workload ceiling (a child of bench node)."`
}

// authBoth is the --auth value measuring every method.
const authBoth = "both"

type benchTokensCmd struct {
	Clients    int           `help:"Concurrent clients, each with one request in flight." default:"32" placeholder:"N"`
	Duration   time.Duration `help:"Measured window per target." default:"10s"`
	Warmup     time.Duration `help:"Warm-up before each measured window." default:"2s"`
	Auth       string        `help:"Client authentication to measure: private_key_jwt (with the ceiling), client_secret_basic, or both." enum:"private_key_jwt,client_secret_basic,both" default:"both"`
	Runs       int           `help:"Repeat the whole measurement K times and report medians." default:"1" placeholder:"K"`
	ProfileDir string        `name:"profile-dir" help:"Write each child server's CPU profile (pprof) into DIR. Profiling costs CPU: quote figures from runs without it." placeholder:"DIR" type:"path"`
}

// Run measures the ceiling and agentid one after the other, each in a
// child process of this binary, and prints per-run figures, medians and
// the targets with PASS or MISS. A missed target is reported, not
// an error; a failed request is.
func (c *benchTokensCmd) Run(rc *runContext) error {
	if c.Clients <= 0 || c.Runs <= 0 || c.Duration <= 0 || c.Warmup < 0 {
		return &exitError{code: ExitUsage, msg: "--clients, --runs and --duration must be positive, --warmup not negative"}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find this binary: %w", err)
	}
	methods := bench.Methods()
	if c.Auth != authBoth {
		methods = []string{c.Auth}
	}
	if c.ProfileDir != "" {
		if err := os.MkdirAll(c.ProfileDir, 0o750); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	rep, err := bench.Run(rc.ctx, bench.Params{
		Executable: exe, CeilingArgs: ceilingArgs, ServerArgs: serverArgs,
		Methods: methods, Clients: c.Clients, Warmup: c.Warmup, Duration: c.Duration, Runs: c.Runs,
		ProfileDir: c.ProfileDir, Progress: rc.env.Stderr, Clock: time.Now, Rand: rand.Reader,
	})
	if err != nil {
		return err
	}
	if rc.jsonOutput() {
		return rc.printJSON(rep)
	}
	return rc.printBenchReport(rep)
}

func ceilingArgs(a bench.ChildArgs) []string {
	args := []string{"bench", "serve-ceiling", "--listen", a.Listen, "--client-key", a.ClientKeyFile}
	if a.CPUProfile != "" {
		args = append(args, "--cpuprofile", a.CPUProfile)
	}
	return args
}

func serverArgs(a bench.ChildArgs) []string {
	args := []string{"--data", a.DataDir, "bench", "serve-agentid", "--listen", a.Listen}
	if a.NodeAPIListen != "" {
		args = append(args, "--node-api", a.NodeAPIListen)
	}
	if a.CPUProfile != "" {
		args = append(args, "--cpuprofile", a.CPUProfile)
	}
	return args
}

// printBenchReport prints one row per target and run, the medians, and the
// targets.
func (rc *runContext) printBenchReport(rep bench.Report) error {
	m := rep.Machine
	rc.printf("Token issuance: %d clients, %s warm-up + %s measured per target, %d run(s); %s/%s, %d CPUs, GOMAXPROCS %d, %s\n\n",
		rep.Clients, secs(rep.WarmupSeconds), secs(rep.DurationSeconds), len(rep.Runs), m.GOOS, m.GOARCH, m.NumCPU, m.GOMAXPROCS, m.GoVersion)
	t := rc.newTable("RUN", "TARGET", "TOKENS/S", "P50", "P99", "SERVER CPU/TOKEN", "TOKENS/CPU-S", "× CEILING", "CLIENT CPU-S")
	row := func(run string, x bench.Measurement) {
		ratio := ""
		if x.CeilingRatio > 0 {
			ratio = strconv.FormatFloat(x.CeilingRatio, 'f', 2, 64)
		}
		t.row(run, x.Target, thousands(x.TokensPerSecond), fmt.Sprintf("%.2f ms", x.P50Millis), fmt.Sprintf("%.2f ms", x.P99Millis),
			fmt.Sprintf("%.1f µs", x.CPUPerTokenMicros), thousands(x.TokensPerCPUSecond), ratio,
			strconv.FormatFloat(x.ClientCPUSeconds, 'f', 2, 64))
	}
	for i, r := range rep.Runs {
		for _, x := range r.Measurements {
			row(strconv.Itoa(i+1), x)
		}
	}
	if len(rep.Runs) > 1 {
		for _, x := range rep.Median {
			row("median", x)
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(rep.Checks) == 0 {
		return nil
	}
	rc.printf("\nTargets (medians):\n")
	t = rc.newTable("TARGET", "METRIC", "VALUE", "WANT", "RESULT")
	for _, ch := range rep.Checks {
		result := "MISS"
		if ch.Pass {
			result = "PASS"
		}
		value, want := strconv.FormatFloat(ch.Value, 'f', 2, 64), ch.Op+" "+strconv.FormatFloat(ch.Limit, 'f', 2, 64)
		if ch.Metric == "tokens_per_server_cpu_s" {
			value, want = thousands(ch.Value), ch.Op+" "+thousands(ch.Limit)
		}
		t.row(ch.Target, ch.Metric, value, want, result)
	}
	return t.flush()
}

// secs renders seconds as a duration.
func secs(s float64) string { return time.Duration(s * float64(time.Second)).String() }

// thousands renders a non-negative number rounded to an integer with comma
// separators: 12,345.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

type benchServeCeilingCmd struct {
	Listen     string `help:"Loopback address." default:"127.0.0.1:0"`
	ClientKey  string `name:"client-key" help:"The client's public key (PEM)." required:"" type:"existingfile" placeholder:"FILE"`
	CPUProfile string `name:"cpuprofile" help:"Write a CPU profile to FILE." placeholder:"FILE"`
}

// Run serves the ceiling until interrupted, after printing its hello line.
func (c *benchServeCeilingCmd) Run(rc *runContext) error {
	pem, err := os.ReadFile(c.ClientKey)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return withCPUProfile(c.CPUProfile, func() error {
		return bench.ServeCeiling(rc.ctx, bench.ServeCeilingParams{
			Listen: c.Listen, ClientKeyPEM: pem, Hello: rc.env.Stdout, Clock: time.Now, Rand: rand.Reader,
		})
	})
}

type benchServeAgentidCmd struct {
	Listen     string `help:"Loopback address (port 0 picks a free port)." default:"127.0.0.1:0"`
	NodeAPI    string `name:"node-api" help:"Also serve the node API on this loopback address (port 0 picks a free port); empty: off." placeholder:"ADDR"`
	CPUProfile string `name:"cpuprofile" help:"Write a CPU profile to FILE." placeholder:"FILE"`
}

// Run serves the development control plane (the configuration of `agentid
// dev`: SQLite in --data, durable audit) on a port it picks first, so that
// the issuer names the real port, and prints the bench's hello line with
// the URL and an admin token.
func (c *benchServeAgentidCmd) Run(rc *runContext) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(rc.ctx, "tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("bench: listen: %w", err)
	}
	defer ln.Close()
	cfg := server.DevConfig(rc.g.Data, ln.Addr().String())
	cfg.NodeAPI.Listen = c.NodeAPI
	if err := cfg.Validate(); err != nil {
		return err
	}
	return withCPUProfile(c.CPUProfile, func() error {
		srv, _, err := rc.openServer(cfg)
		if err != nil {
			return err
		}
		defer srv.Close()
		token, err := devToken(rc.ctx, srv, cfg.DataDir)
		if err != nil {
			return err
		}
		hello := bench.Hello{URL: "http://" + ln.Addr().String(), AdminToken: token}
		if srv.NodeAPIEnabled() {
			nln, err := srv.ListenNodeAPI()
			if err != nil {
				return err
			}
			hello.NodeAPI = nln.Addr().String()
		}
		if err := bench.WriteHello(rc.env.Stdout, hello); err != nil {
			return err
		}
		return srv.Serve(rc.ctx, ln)
	})
}

// withCPUProfile runs fn with a CPU profile written to path ("" for none).
func withCPUProfile(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	f, err := os.Create(path) //nolint:gosec // the operator's path
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("cpu profile: %w", err)
	}
	err = fn()
	pprof.StopCPUProfile()
	return errors.Join(err, f.Close())
}
