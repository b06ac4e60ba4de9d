package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/agentid/agentid/sdk/admin"
)

// The node bench (`agentid bench node`, issue 4's Bench) measures what a
// workload sees of `agentid node`, with go-spiffe's Workload API client as
// the workload:
//
//   - cached FetchX509SVID: the node's CPU per call, against the workload
//     ceiling (ServeWorkloadCeiling) measured in the same run;
//   - FetchJWTSVID for an audience never asked before: the CPU of the node
//     and the server together per call (the node asks the server, which
//     signs and records it durably), against one raw ES256 signature
//     measured in this process in the same run;
//   - registration to first SVID: from just before the admin API call that
//     registers an agent until a workload's FetchX509Context first returns
//     that agent's SVID.

// The node targets.
const (
	// MaxX509FetchNodeCPUMicros bounds the node's CPU per cached
	// FetchX509SVID.
	MaxX509FetchNodeCPUMicros = 150
	// MaxJWTNewAudienceCPUMicros bounds node + server CPU per JWT-SVID for
	// a new audience.
	MaxJWTNewAudienceCPUMicros = 250
	// MaxRegistrationMillis bounds registration to first SVID.
	MaxRegistrationMillis = 1000
)

// Node bench targets, the Target of its OpMeasurements.
const (
	TargetWorkloadCeiling = "workload_ceiling"
	TargetX509Fetch       = "x509_fetch"
	TargetJWTNewAudience  = "jwt_new_audience"
)

// NodeChildArgs describe the `agentid node run` child.
type NodeChildArgs struct {
	// DataDir is the node's empty data directory, Socket its Workload API
	// socket.
	DataDir, Socket string
	// ServerURL is the admin API's URL (attestation), NodeAPI the node
	// API's host:port.
	ServerURL, NodeAPI string
	// JoinToken attests the node.
	JoinToken string //nolint:gosec // a throwaway token of a temporary server
	// CPUProfile, when set, is where the node writes its CPU profile.
	CPUProfile string
}

// NodeParams configure RunNode.
type NodeParams struct {
	// Executable is the binary whose subcommands are the children.
	Executable string
	// ServerArgs run the agentid server child (ChildArgs.NodeAPIListen set);
	// its Hello names the node API.
	ServerArgs func(ChildArgs) []string
	// NodeArgs run `agentid node run`.
	NodeArgs func(NodeChildArgs) []string
	// CeilingArgs run the workload ceiling on a socket; it prints a Hello.
	CeilingArgs func(socket string) []string
	// Clients is the number of concurrent workloads in each window (each
	// its own go-spiffe client and connection).
	Clients int
	// Warmup precedes, and Duration is, each measured window.
	Warmup, Duration time.Duration
	// Trials is the number of registrations timed per run.
	Trials int
	// Runs repeats the whole measurement; the report gives medians.
	Runs int
	// TempDir is where per-run directories are made ("": os.TempDir()).
	TempDir string
	// ProfileDir, when set, receives the server's and the node's CPU
	// profiles.
	ProfileDir string
	// Progress receives a line per measurement; nil discards them.
	Progress io.Writer
	// Clock is required.
	Clock func() time.Time
}

// OpMeasurement is one measured window of Workload API calls.
type OpMeasurement struct {
	Target       string  `json:"target"`
	Ops          int     `json:"ops"`
	Seconds      float64 `json:"seconds"`
	OpsPerSecond float64 `json:"ops_per_s"`
	P50Millis    float64 `json:"p50_ms"`
	P99Millis    float64 `json:"p99_ms"`
	// CPUSeconds is the CPU time of the measured processes in the window:
	// the node (x509_fetch), node and server (jwt_new_audience), the
	// ceiling's server (workload_ceiling).
	CPUSeconds     float64 `json:"cpu_s"`
	CPUPerOpMicros float64 `json:"cpu_per_op_us"`
	// NodeCPUPerOpMicros and ServerCPUPerOpMicros split CPUPerOpMicros
	// between the node and the server (jwt_new_audience).
	NodeCPUPerOpMicros   float64 `json:"node_cpu_per_op_us,omitempty"`
	ServerCPUPerOpMicros float64 `json:"server_cpu_per_op_us,omitempty"`
	// Reference is what the figure is compared to in the same run (the
	// ceiling's CPU per call, or one ES256 signature), and Ratio the
	// figure over it.
	ReferenceMicros float64 `json:"reference_us,omitempty"`
	Ratio           float64 `json:"ratio,omitempty"`
}

// NodeRound is one repetition of the node bench.
type NodeRound struct {
	// ES256SignMicros is one ES256 signature's CPU, in this process.
	ES256SignMicros float64         `json:"es256_sign_cpu_us"`
	Measurements    []OpMeasurement `json:"measurements"`
	// RegistrationMillis are the registration-to-first-SVID times of the
	// trials; RegistrationP50Millis and RegistrationMaxMillis their
	// median and maximum.
	RegistrationMillis    []float64 `json:"registration_ms"`
	RegistrationP50Millis float64   `json:"registration_p50_ms"`
	RegistrationMaxMillis float64   `json:"registration_max_ms"`
}

// NodeReport is the node bench's result.
type NodeReport struct {
	Machine         Machine     `json:"machine"`
	Clients         int         `json:"clients"`
	WarmupSeconds   float64     `json:"warmup_s"`
	DurationSeconds float64     `json:"duration_s"`
	Trials          int         `json:"trials"`
	Runs            []NodeRound `json:"runs"`
	// Median holds the median of each figure over the runs.
	Median NodeRound `json:"median"`
	Checks []Check   `json:"checks"`
}

func (p *NodeParams) check() error {
	if err := supported(); err != nil {
		return err
	}
	if p.Runs <= 0 {
		p.Runs = 1
	}
	if p.Progress == nil {
		p.Progress = io.Discard
	}
	switch {
	case p.Executable == "" || p.ServerArgs == nil || p.NodeArgs == nil || p.CeilingArgs == nil:
		return errors.New("bench: Executable, ServerArgs, NodeArgs and CeilingArgs are required")
	case p.Clock == nil:
		return errors.New("bench: Clock is required")
	case p.Clients <= 0 || p.Duration <= 0 || p.Warmup < 0 || p.Trials <= 0:
		return errors.New("bench: Clients, Duration and Trials must be positive, Warmup not negative")
	}
	return nil
}

// RunNode runs the node bench Runs times and returns the report.
func RunNode(ctx context.Context, p NodeParams) (NodeReport, error) {
	if err := p.check(); err != nil {
		return NodeReport{}, err
	}
	rep := NodeReport{
		Machine: machine(), Clients: p.Clients, WarmupSeconds: p.Warmup.Seconds(), DurationSeconds: p.Duration.Seconds(),
		Trials: p.Trials,
	}
	for i := range p.Runs {
		r, err := runNodeOnce(ctx, p, i)
		if err != nil {
			return NodeReport{}, fmt.Errorf("run %d of %d: %w", i+1, p.Runs, err)
		}
		rep.Runs = append(rep.Runs, r)
	}
	rep.summarise()
	return rep, nil
}

func runNodeOnce(ctx context.Context, p NodeParams, run int) (_ NodeRound, err error) {
	dir, err := os.MkdirTemp(p.TempDir, "agentid-bench-node-")
	if err != nil {
		return NodeRound{}, fmt.Errorf("bench: %w", err)
	}
	defer removeUnlessFailed(dir, &err)
	var r NodeRound
	if r.ES256SignMicros, err = es256SignCPU(); err != nil {
		return NodeRound{}, err
	}
	ceiling, err := measureWorkloadCeiling(ctx, p, dir)
	if err != nil {
		return NodeRound{}, err
	}
	fmt.Fprintf(p.Progress, "run %d/%d %-17s %8.0f calls/s  p50 %6.3f ms  CPU %6.1f µs/call\n",
		run+1, p.Runs, ceiling.Target, ceiling.OpsPerSecond, ceiling.P50Millis, ceiling.CPUPerOpMicros)

	sa := ChildArgs{Listen: "127.0.0.1:0", NodeAPIListen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data")}
	if p.ProfileDir != "" {
		sa.CPUProfile = filepath.Join(p.ProfileDir, fmt.Sprintf("agentid-node-run%d.pprof", run+1))
	}
	srv, err := startChild(ctx, "agentid", p.Executable, p.ServerArgs(sa), filepath.Join(dir, "agentid.log"))
	if err != nil {
		return NodeRound{}, err
	}
	defer func() { _ = srv.stop() }()
	if srv.hello.NodeAPI == "" {
		return NodeRound{}, fmt.Errorf("%w: the server child does not serve the node API", ErrChild)
	}
	ac, err := admin.New(srv.hello.URL, srv.hello.AdminToken, admin.WithUserAgent("agentid-bench"))
	if err != nil {
		return NodeRound{}, fmt.Errorf("bench: %w", err)
	}
	jt, err := ac.CreateJoinToken(ctx, admin.CreateJoinTokenRequest{})
	if err != nil {
		return NodeRound{}, fmt.Errorf("bench: join token: %w", err)
	}
	sock := filepath.Join(dir, "workload.sock")
	na := NodeChildArgs{
		DataDir: filepath.Join(dir, "node"), Socket: sock, ServerURL: srv.hello.URL, NodeAPI: srv.hello.NodeAPI, JoinToken: jt.Token,
	}
	if p.ProfileDir != "" {
		na.CPUProfile = filepath.Join(p.ProfileDir, fmt.Sprintf("node-run%d.pprof", run+1))
	}
	node, err := startDaemon(ctx, "node", p.Executable, p.NodeArgs(na), filepath.Join(dir, "node.log"), func() error { return dialUnix(sock) })
	if err != nil {
		return NodeRound{}, err
	}
	defer func() { _ = node.stop() }()
	if _, err := ac.CreateOwner(ctx, admin.CreateOwnerRequest{Email: benchOwner, DisplayName: "Benchmark"}); err != nil {
		return NodeRound{}, fmt.Errorf("bench: create owner: %w", err)
	}

	if r.RegistrationMillis, err = measureRegistrations(ctx, p, ac, sock); err != nil {
		return NodeRound{}, err
	}
	sorted := slices.Sorted(slices.Values(r.RegistrationMillis))
	r.RegistrationP50Millis, r.RegistrationMaxMillis = medianFloat(sorted), sorted[len(sorted)-1]
	fmt.Fprintf(p.Progress, "run %d/%d registration → first SVID: p50 %.1f ms, max %.1f ms (%d trials)\n",
		run+1, p.Runs, r.RegistrationP50Millis, r.RegistrationMaxMillis, len(sorted))

	a, err := ac.CreateAgent(ctx, admin.CreateAgentRequest{
		Name: "bench-workload", Purpose: "Workload API benchmark", Owners: []string{benchOwner},
		Selectors: []string{uidSelector()},
	})
	if err != nil {
		return NodeRound{}, fmt.Errorf("bench: create agent: %w", err)
	}
	if err := awaitAgent(ctx, sock, a.SPIFFEID, p.Clock); err != nil {
		return NodeRound{}, err
	}
	x509m, err := measureX509Fetch(ctx, p, sock, a.SPIFFEID, node)
	if err != nil {
		return NodeRound{}, err
	}
	x509m.ReferenceMicros = ceiling.CPUPerOpMicros
	x509m.Ratio = ratio(x509m.CPUPerOpMicros, ceiling.CPUPerOpMicros)
	jwtm, err := measureJWTNewAudience(ctx, p, sock, a.SPIFFEID, node, srv)
	if err != nil {
		return NodeRound{}, err
	}
	jwtm.ReferenceMicros = r.ES256SignMicros
	jwtm.Ratio = ratio(jwtm.CPUPerOpMicros, r.ES256SignMicros)
	for _, m := range []OpMeasurement{x509m, jwtm} {
		fmt.Fprintf(p.Progress, "run %d/%d %-17s %8.0f calls/s  p50 %6.3f ms  CPU %6.1f µs/call (%.2f × %.1f µs)",
			run+1, p.Runs, m.Target, m.OpsPerSecond, m.P50Millis, m.CPUPerOpMicros, m.Ratio, m.ReferenceMicros)
		if m.ServerCPUPerOpMicros > 0 {
			fmt.Fprintf(p.Progress, "  node %.1f + server %.1f µs", m.NodeCPUPerOpMicros, m.ServerCPUPerOpMicros)
		}
		fmt.Fprintln(p.Progress)
	}
	r.Measurements = []OpMeasurement{ceiling, x509m, jwtm}
	if err := node.stop(); err != nil {
		return NodeRound{}, err
	}
	if err := srv.stop(); err != nil {
		return NodeRound{}, err
	}
	return r, nil
}

// measureWorkloadCeiling measures the workload ceiling child: cached
// FetchX509SVID calls, its CPU per call.
func measureWorkloadCeiling(ctx context.Context, p NodeParams, dir string) (OpMeasurement, error) {
	sock := filepath.Join(dir, "ceiling.sock")
	c, err := startChild(ctx, TargetWorkloadCeiling, p.Executable, p.CeilingArgs(sock), filepath.Join(dir, "ceiling.log"))
	if err != nil {
		return OpMeasurement{}, err
	}
	defer func() { _ = c.stop() }()
	m, err := fetchLoad(ctx, p, TargetWorkloadCeiling, sock, c.cpu, func(ctx context.Context, wc *workloadapi.Client, _ int, _ uint64) (string, error) {
		sv, err := wc.FetchX509SVID(ctx)
		if err != nil {
			return "", fmt.Errorf("bench: FetchX509SVID: %w", err)
		}
		return sv.ID.String(), nil
	})
	if err != nil {
		return OpMeasurement{}, err
	}
	return m, c.stop()
}

// measureX509Fetch measures cached FetchX509SVID calls against the node,
// and verifies one answer against the bundle sent with it.
func measureX509Fetch(ctx context.Context, p NodeParams, sock, spiffeID string, node *child) (OpMeasurement, error) {
	m, err := fetchLoad(ctx, p, TargetX509Fetch, sock, node.cpu, func(ctx context.Context, wc *workloadapi.Client, _ int, _ uint64) (string, error) {
		sv, err := wc.FetchX509SVID(ctx)
		if err != nil {
			return "", fmt.Errorf("bench: FetchX509SVID: %w", err)
		}
		if sv.ID.String() != spiffeID {
			return "", fmt.Errorf("%w: FetchX509SVID returned %s, not %s", ErrFailedRequests, sv.ID, spiffeID)
		}
		return sv.ID.String(), nil
	})
	if err != nil {
		return OpMeasurement{}, err
	}
	wc, err := workloadClient(ctx, sock)
	if err != nil {
		return OpMeasurement{}, err
	}
	defer wc.Close()
	xc, err := wc.FetchX509Context(ctx)
	if err != nil {
		return OpMeasurement{}, fmt.Errorf("bench: FetchX509Context: %w", err)
	}
	sv := xc.DefaultSVID()
	if _, _, err := x509svid.Verify(sv.Certificates, xc.Bundles); err != nil {
		return OpMeasurement{}, fmt.Errorf("%w: the X.509-SVID does not verify against its bundle: %w", ErrToken, err)
	}
	return m, nil
}

// measureJWTNewAudience measures FetchJWTSVID calls each for a new
// audience, against the node and the server together, and validates one
// against the JWT bundles.
func measureJWTNewAudience(ctx context.Context, p NodeParams, sock, spiffeID string, node, srv *child) (OpMeasurement, error) {
	prefix := strconv.FormatInt(p.Clock().UnixNano(), 36)
	audience := func(w int, seq uint64) string {
		return "spiffe://bench.example/audience/" + prefix + "-" + strconv.Itoa(w) + "-" + strconv.FormatUint(seq, 10)
	}
	// cpu reads both processes and keeps the server's share of the
	// window (the first and last reading are the window's ends).
	var srvCPU []time.Duration
	cpu := func() (time.Duration, error) {
		a, err := node.cpu()
		if err != nil {
			return 0, err
		}
		b, err := srv.cpu()
		srvCPU = append(srvCPU, b)
		return a + b, err
	}
	var sampleAud string
	m, err := fetchLoad(ctx, p, TargetJWTNewAudience, sock, cpu, func(ctx context.Context, wc *workloadapi.Client, w int, seq uint64) (string, error) {
		aud := audience(w, seq)
		sv, err := wc.FetchJWTSVID(ctx, jwtsvid.Params{Audience: aud})
		if err != nil {
			return "", fmt.Errorf("bench: FetchJWTSVID: %w", err)
		}
		if sv.ID.String() != spiffeID {
			return "", fmt.Errorf("%w: FetchJWTSVID returned %s, not %s", ErrFailedRequests, sv.ID, spiffeID)
		}
		if w == 0 {
			sampleAud = aud
		}
		return sv.Marshal(), nil
	})
	if err != nil {
		return OpMeasurement{}, err
	}
	if n := len(srvCPU); n >= 2 {
		m.ServerCPUPerOpMicros = float64(srvCPU[n-1]-srvCPU[n-2]) / float64(time.Microsecond) / float64(m.Ops)
		m.NodeCPUPerOpMicros = m.CPUPerOpMicros - m.ServerCPUPerOpMicros
	}
	wc, err := workloadClient(ctx, sock)
	if err != nil {
		return OpMeasurement{}, err
	}
	defer wc.Close()
	bundles, err := wc.FetchJWTBundles(ctx)
	if err != nil {
		return OpMeasurement{}, fmt.Errorf("bench: FetchJWTBundles: %w", err)
	}
	sv, err := wc.FetchJWTSVID(ctx, jwtsvid.Params{Audience: sampleAud})
	if err != nil {
		return OpMeasurement{}, fmt.Errorf("bench: FetchJWTSVID: %w", err)
	}
	if _, err := jwtsvid.ParseAndValidate(sv.Marshal(), bundles, []string{sampleAud}); err != nil {
		return OpMeasurement{}, fmt.Errorf("%w: the JWT-SVID does not validate: %w", ErrToken, err)
	}
	return m, nil
}

// fetchLoad runs op in a closed loop from p.Clients workloads, each with
// its own go-spiffe client.
func fetchLoad(ctx context.Context, p NodeParams, target, sock string, cpu func() (time.Duration, error),
	op func(context.Context, *workloadapi.Client, int, uint64) (string, error),
) (OpMeasurement, error) {
	clients := make([]*workloadapi.Client, p.Clients)
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	for i := range clients {
		c, err := workloadClient(ctx, sock)
		if err != nil {
			return OpMeasurement{}, err
		}
		clients[i] = c
	}
	self := os.Getpid()
	res, err := runLoad(ctx, loadParams{
		Clients: p.Clients, Warmup: p.Warmup, Duration: p.Duration,
		Op: func(ctx context.Context, w int, seq uint64) (string, error) {
			return op(ctx, clients[w], w, seq)
		},
		ServerCPU: cpu, ClientCPU: func() (time.Duration, error) { return ProcessCPU(self) }, Clock: p.Clock,
	})
	if err != nil {
		return OpMeasurement{}, fmt.Errorf("%s: %w", target, err)
	}
	if res.Requests == 0 {
		return OpMeasurement{}, fmt.Errorf("%w: %s: no call completed in the %s window", ErrFailedRequests, target, p.Duration)
	}
	m := OpMeasurement{
		Target: target, Ops: res.Requests, Seconds: res.Elapsed.Seconds(),
		P50Millis: millis(percentile(res.Latencies, 50)), P99Millis: millis(percentile(res.Latencies, 99)),
		CPUSeconds: res.ServerCPU.Seconds(),
	}
	m.OpsPerSecond = float64(m.Ops) / m.Seconds
	m.CPUPerOpMicros = m.CPUSeconds * 1e6 / float64(m.Ops)
	return m, nil
}

// measureRegistrations times p.Trials registrations: each registers an
// agent for this process's uid and polls FetchX509Context every 2 ms
// until the agent's SVID is in it; then it deprovisions the agent, so
// that the next trial starts from the same state.
func measureRegistrations(ctx context.Context, p NodeParams, ac *admin.Client, sock string) ([]float64, error) {
	wc, err := workloadClient(ctx, sock)
	if err != nil {
		return nil, err
	}
	defer wc.Close()
	out := make([]float64, 0, p.Trials)
	for i := range p.Trials {
		start := p.Clock()
		a, err := ac.CreateAgent(ctx, admin.CreateAgentRequest{
			Name: "bench-registration-" + strconv.Itoa(i), Purpose: "Registration benchmark", Owners: []string{benchOwner},
			Selectors: []string{uidSelector()},
		})
		if err != nil {
			return nil, fmt.Errorf("bench: create agent: %w", err)
		}
		id, err := spiffeid.FromString(a.SPIFFEID)
		if err != nil {
			return nil, fmt.Errorf("bench: agent SPIFFE ID: %w", err)
		}
		if err := waitForSVID(ctx, wc, id, start.Add(30*time.Second), p.Clock); err != nil {
			return nil, err
		}
		out = append(out, millis(p.Clock().Sub(start)))
		if _, err := ac.DeprovisionAgent(ctx, a.ID, admin.TransitionRequest{Reason: "benchmark trial done"}); err != nil {
			return nil, fmt.Errorf("bench: deprovision agent: %w", err)
		}
	}
	return out, nil
}

// waitForSVID polls until the workload is sent an X.509-SVID of id.
func waitForSVID(ctx context.Context, wc *workloadapi.Client, id spiffeid.ID, deadline time.Time, clock func() time.Time) error {
	for {
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		xc, err := wc.FetchX509Context(fctx)
		cancel()
		if err == nil && slices.ContainsFunc(xc.SVIDs, func(s *x509svid.SVID) bool { return s.ID == id }) {
			return nil
		}
		if clock().After(deadline) {
			return fmt.Errorf("%w: no X.509-SVID of %s reached the workload within 30s (last error: %w)", ErrFailedRequests, id, err)
		}
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return err
		}
	}
}

// awaitAgent waits until the node serves the agent's X.509-SVID to this
// process.
func awaitAgent(ctx context.Context, sock, spiffeID string, clock func() time.Time) error {
	id, err := spiffeid.FromString(spiffeID)
	if err != nil {
		return fmt.Errorf("bench: agent SPIFFE ID: %w", err)
	}
	wc, err := workloadClient(ctx, sock)
	if err != nil {
		return err
	}
	defer wc.Close()
	return waitForSVID(ctx, wc, id, clock().Add(30*time.Second), clock)
}

func workloadClient(ctx context.Context, sock string) (*workloadapi.Client, error) {
	c, err := workloadapi.New(ctx, workloadapi.WithAddr("unix://"+sock))
	if err != nil {
		return nil, fmt.Errorf("bench: workload API client: %w", err)
	}
	return c, nil
}

// dialUnix reports whether something accepts connections on sock.
func dialUnix(sock string) error {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return c.Close()
}

// uidSelector selects this process's user: the workloads are this process.
func uidSelector() string { return "unix:uid:" + strconv.Itoa(os.Getuid()) }

// es256SignCPU returns this process's CPU per ES256 signature over a
// 32-byte digest, measured over at least 200 ms of signing.
func es256SignCPU() (float64, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), nil)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	digest := sha256.Sum256([]byte("agentid bench"))
	self := os.Getpid()
	c0, err := ProcessCPU(self)
	if err != nil {
		return 0, err
	}
	n := 0
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; n++ {
		if _, err := ecdsa.SignASN1(nil, key, digest[:]); err != nil {
			return 0, fmt.Errorf("bench: %w", err)
		}
	}
	c1, err := ProcessCPU(self)
	if err != nil {
		return 0, err
	}
	return float64(c1-c0) / float64(time.Microsecond) / float64(n), nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// medianFloat is the median of sorted values (the mean of the middle two
// for an even count).
func medianFloat(sorted []float64) float64 {
	n := len(sorted)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return sorted[n/2]
	default:
		return (sorted[n/2-1] + sorted[n/2]) / 2
	}
}

// summarise computes the medians over the runs and the checks.
func (r *NodeReport) summarise() {
	med := func(f func(NodeRound) float64) float64 {
		v := make([]float64, len(r.Runs))
		for i, run := range r.Runs {
			v[i] = f(run)
		}
		slices.Sort(v)
		return medianFloat(v)
	}
	r.Median.ES256SignMicros = med(func(n NodeRound) float64 { return n.ES256SignMicros })
	r.Median.RegistrationP50Millis = med(func(n NodeRound) float64 { return n.RegistrationP50Millis })
	r.Median.RegistrationMaxMillis = med(func(n NodeRound) float64 { return n.RegistrationMaxMillis })
	for i, m := range r.Runs[0].Measurements {
		at := func(f func(OpMeasurement) float64) float64 {
			return med(func(n NodeRound) float64 { return f(n.Measurements[i]) })
		}
		r.Median.Measurements = append(r.Median.Measurements, OpMeasurement{
			Target:               m.Target,
			Ops:                  int(at(func(o OpMeasurement) float64 { return float64(o.Ops) })),
			Seconds:              at(func(o OpMeasurement) float64 { return o.Seconds }),
			OpsPerSecond:         at(func(o OpMeasurement) float64 { return o.OpsPerSecond }),
			P50Millis:            at(func(o OpMeasurement) float64 { return o.P50Millis }),
			P99Millis:            at(func(o OpMeasurement) float64 { return o.P99Millis }),
			CPUSeconds:           at(func(o OpMeasurement) float64 { return o.CPUSeconds }),
			CPUPerOpMicros:       at(func(o OpMeasurement) float64 { return o.CPUPerOpMicros }),
			NodeCPUPerOpMicros:   at(func(o OpMeasurement) float64 { return o.NodeCPUPerOpMicros }),
			ServerCPUPerOpMicros: at(func(o OpMeasurement) float64 { return o.ServerCPUPerOpMicros }),
			ReferenceMicros:      at(func(o OpMeasurement) float64 { return o.ReferenceMicros }),
			Ratio:                at(func(o OpMeasurement) float64 { return o.Ratio }),
		})
	}
	for _, m := range r.Median.Measurements {
		switch m.Target {
		case TargetX509Fetch:
			r.Checks = append(r.Checks, newCheck(m.Target, "cpu_per_op_us", "<=", MaxX509FetchNodeCPUMicros, m.CPUPerOpMicros))
		case TargetJWTNewAudience:
			r.Checks = append(r.Checks, newCheck(m.Target, "cpu_per_op_us", "<=", MaxJWTNewAudienceCPUMicros, m.CPUPerOpMicros))
		}
	}
	r.Checks = append(r.Checks, newCheck("registration", "registration_p50_ms", "<=", MaxRegistrationMillis, r.Median.RegistrationP50Millis))
}

func newCheck(target, metric, op string, limit, value float64) Check {
	pass := value <= limit
	if op == ">=" {
		pass = value >= limit
	}
	return Check{Target: target, Metric: metric, Op: op, Limit: limit, Value: value, Pass: pass}
}
