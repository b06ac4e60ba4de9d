package cli

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/agentid/agentid/internal/bench"
)

type benchNodeCmd struct {
	Clients    int           `help:"Concurrent workloads, each with its own Workload API connection." default:"32" placeholder:"N"`
	Duration   time.Duration `help:"Measured window per figure." default:"5s"`
	Warmup     time.Duration `help:"Warm-up before each measured window." default:"1s"`
	Trials     int           `help:"Registrations timed per run." default:"10" placeholder:"N"`
	Runs       int           `help:"Repeat the whole measurement K times and report medians." default:"1" placeholder:"K"`
	ProfileDir string        `name:"profile-dir" help:"Write the server's and the node's CPU profiles (pprof) into DIR. Profiling costs CPU: quote figures from runs without it." placeholder:"DIR" type:"path"`
}

// Run measures agentid node with go-spiffe's Workload API client: cached
// FetchX509SVID against the workload ceiling, JWT-SVIDs for new audiences
// against one ES256 signature, and registration to first SVID. A missed
// target is reported, not an error; a failed call is.
func (c *benchNodeCmd) Run(rc *runContext) error {
	if c.Clients <= 0 || c.Runs <= 0 || c.Duration <= 0 || c.Warmup < 0 || c.Trials <= 0 {
		return &exitError{code: ExitUsage, msg: "--clients, --runs, --trials and --duration must be positive, --warmup not negative"}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find this binary: %w", err)
	}
	if c.ProfileDir != "" {
		if err := os.MkdirAll(c.ProfileDir, 0o750); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	rep, err := bench.RunNode(rc.ctx, bench.NodeParams{
		Executable: exe, ServerArgs: serverArgs, NodeArgs: nodeArgs, CeilingArgs: workloadCeilingArgs,
		Clients: c.Clients, Warmup: c.Warmup, Duration: c.Duration, Trials: c.Trials, Runs: c.Runs,
		ProfileDir: c.ProfileDir, Progress: rc.env.Stderr, Clock: time.Now,
	})
	if err != nil {
		return err
	}
	if rc.jsonOutput() {
		return rc.printJSON(rep)
	}
	return rc.printNodeBenchReport(rep)
}

func nodeArgs(a bench.NodeChildArgs) []string {
	args := []string{"node", "run", "--data-dir", a.DataDir, "--socket", a.Socket, "--server", a.ServerURL,
		"--node-api", a.NodeAPI, "--join-token", a.JoinToken}
	if a.CPUProfile != "" {
		args = append(args, "--cpuprofile", a.CPUProfile)
	}
	return args
}

func workloadCeilingArgs(socket string) []string {
	return []string{"bench", "serve-workload-ceiling", "--socket", socket}
}

// printNodeBenchReport prints one row per figure and run, the medians and
// the targets.
func (rc *runContext) printNodeBenchReport(rep bench.NodeReport) error {
	m := rep.Machine
	rc.printf("agentid node: %d workloads, %s warm-up + %s measured per figure, %d registration trials, %d run(s); %s/%s, %d CPUs, %s\n\n",
		rep.Clients, secs(rep.WarmupSeconds), secs(rep.DurationSeconds), rep.Trials, len(rep.Runs), m.GOOS, m.GOARCH, m.NumCPU, m.GoVersion)
	t := rc.newTable("RUN", "FIGURE", "CALLS/S", "P50", "P99", "CPU/CALL", "REFERENCE", "×")
	row := func(run string, x bench.OpMeasurement) {
		ref, ratio := "", ""
		if x.ReferenceMicros > 0 {
			ref, ratio = fmt.Sprintf("%.1f µs", x.ReferenceMicros), strconv.FormatFloat(x.Ratio, 'f', 2, 64)
		}
		t.row(run, x.Target, thousands(x.OpsPerSecond), fmt.Sprintf("%.3f ms", x.P50Millis), fmt.Sprintf("%.3f ms", x.P99Millis),
			fmt.Sprintf("%.1f µs", x.CPUPerOpMicros), ref, ratio)
	}
	for i, r := range rep.Runs {
		for _, x := range r.Measurements {
			row(strconv.Itoa(i+1), x)
		}
	}
	if len(rep.Runs) > 1 {
		for _, x := range rep.Median.Measurements {
			row("median", x)
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	rc.printf("\nRegistration → first SVID (ms), per run: ")
	for i, r := range rep.Runs {
		rc.printf("run %d p50 %.1f max %.1f; ", i+1, r.RegistrationP50Millis, r.RegistrationMaxMillis)
	}
	rc.printf("\nES256 signature (this process): %.1f µs\n", rep.Median.ES256SignMicros)
	rc.printf("\nTargets (medians):\n")
	for _, ck := range rep.Checks {
		verdict := "PASS"
		if !ck.Pass {
			verdict = "MISS"
		}
		rc.printf("  %-18s %s = %.1f %s %.0f  %s\n", ck.Target, ck.Metric, ck.Value, ck.Op, ck.Limit, verdict)
	}
	return nil
}

type benchServeWorkloadCeilingCmd struct {
	Socket string `help:"Unix socket to serve on." required:"" type:"path"`
}

// Run serves the workload ceiling (bench.ServeWorkloadCeiling) on the
// socket and prints the bench's hello line.
func (c *benchServeWorkloadCeilingCmd) Run(rc *runContext) error {
	resp, err := bench.WorkloadCeilingResponse(rand.Reader)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(rc.ctx, "unix", c.Socket)
	if err != nil {
		return fmt.Errorf("bench: listen: %w", err)
	}
	if err := bench.WriteHello(rc.env.Stdout, bench.Hello{URL: "unix://" + c.Socket}); err != nil {
		_ = ln.Close()
		return err
	}
	return bench.ServeWorkloadCeiling(rc.ctx, ln, resp)
}
