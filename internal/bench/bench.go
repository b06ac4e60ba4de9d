// Package bench measures agentid's token endpoint under load against the
// machine's ceiling for the same work (`agentid bench tokens`,
// docs/benchmarks.md).
//
// Run starts two child processes of this binary one after the other, each
// alone on a loopback port: the ceiling (a minimal http.Handler that
// verifies an ES256 client assertion, mints an ES256 token and answers: see
// Ceiling), then a real agentid server (SQLite in a temporary directory,
// durable audit), set up through the admin API (sdk/admin). A closed-loop
// load generator in this process drives each with N concurrent clients
// doing client_credentials with private_key_jwt (a fresh assertion per
// request) or client_secret_basic: a warm-up, then a measured window in
// which it keeps every latency and reads the child's CPU time (user +
// system, every thread) from /proc/<pid>/stat at both ends. The load
// generator's own CPU (assertion signing) is therefore not counted
// against the server. Any answer other than a 200 token response fails the
// run, and one token per window is verified against the server's JWKS.
//
// Server CPU is read from /proc, so Run works on Linux only; elsewhere it
// returns ErrUnsupported. The package depends on sdk/ and go-jose, not on
// the server: the children are whatever commands Params names.
package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors.
var (
	// ErrUnsupported: server CPU time can only be read on Linux.
	ErrUnsupported = errors.New("bench: server CPU is read from /proc/<pid>/stat, which only Linux has")
	// ErrProcStat: a /proc/<pid>/stat file could not be parsed.
	ErrProcStat = errors.New("bench: malformed /proc/<pid>/stat")
	// ErrFailedRequests: a server answered a token request with anything
	// but a 200 token response.
	ErrFailedRequests = errors.New("bench: a token request failed")
	// ErrChild: a child server did not start or did not stop cleanly.
	ErrChild = errors.New("bench: child server")
	// ErrAssertion: the ceiling rejected a client assertion.
	ErrAssertion = errors.New("bench: bad client assertion")
	// ErrToken: a sample access token did not verify.
	ErrToken = errors.New("bench: access token does not verify")
)

// Targets of a Report: the ceiling and the client authentication methods.
const (
	TargetCeiling     = "ceiling"
	PrivateKeyJWT     = "private_key_jwt"
	ClientSecretBasic = "client_secret_basic"
)

// Methods are the client authentication methods Run can measure.
func Methods() []string { return []string{PrivateKeyJWT, ClientSecretBasic} }

// The targets (issue 3 §7).
const (
	// MaxCeilingRatio bounds private_key_jwt's server CPU per token as a
	// multiple of the ceiling's.
	MaxCeilingRatio = 1.45
	// MinBasicTokensPerCPUSecond is client_secret_basic's floor in tokens
	// per second of server CPU (per core equivalent).
	MinBasicTokensPerCPUSecond = 10_000
)

// ChildArgs describe a child server to start.
type ChildArgs struct {
	// Listen is the loopback address, "127.0.0.1:0".
	Listen string
	// NodeAPIListen, when set, is the node API's loopback address (the
	// node bench).
	NodeAPIListen string
	// DataDir is an empty directory for the agentid server's state.
	DataDir string
	// ClientKeyFile holds the client's public key (PEM), for the ceiling.
	ClientKeyFile string
	// CPUProfile, when set, is where the child writes its CPU profile.
	CPUProfile string
}

// Params configure Run.
type Params struct {
	// Executable is the binary whose subcommands are the children.
	Executable string
	// CeilingArgs and ServerArgs are the arguments of Executable that run
	// the ceiling and the agentid server. Each child prints a Hello line on
	// stdout once it listens, serves until SIGINT, then exits 0.
	CeilingArgs, ServerArgs func(ChildArgs) []string
	// Methods to measure against agentid (default: both); the ceiling is
	// measured when PrivateKeyJWT is among them.
	Methods []string
	// Clients is the number of concurrent clients, each with one request
	// in flight.
	Clients int
	// Warmup precedes, and Duration is, each measured window.
	Warmup, Duration time.Duration
	// Runs repeats the whole measurement (default 1); the report gives
	// per-run figures and their medians.
	Runs int
	// TempDir is where per-run directories are made ("": os.TempDir()).
	TempDir string
	// ProfileDir, when set, receives each child's CPU profile.
	ProfileDir string
	// Progress receives one line per measured window; nil discards them.
	Progress io.Writer
	// Clock and Rand are required.
	Clock func() time.Time
	Rand  io.Reader
}

// supported reports ErrUnsupported off Linux: CPU times are read from
// /proc.
func supported() error {
	if runtime.GOOS != "linux" {
		return ErrUnsupported
	}
	return nil
}

func (p *Params) check() error {
	if err := supported(); err != nil {
		return err
	}
	if len(p.Methods) == 0 {
		p.Methods = Methods()
	}
	for _, m := range p.Methods {
		if !slices.Contains(Methods(), m) {
			return fmt.Errorf("bench: unknown method %q (want %s)", m, strings.Join(Methods(), " or "))
		}
	}
	if p.Runs <= 0 {
		p.Runs = 1
	}
	if p.Progress == nil {
		p.Progress = io.Discard
	}
	switch {
	case p.Executable == "" || p.CeilingArgs == nil || p.ServerArgs == nil:
		return errors.New("bench: Executable, CeilingArgs and ServerArgs are required")
	case p.Clock == nil || p.Rand == nil:
		return errors.New("bench: Clock and Rand are required")
	case p.Clients <= 0 || p.Duration <= 0 || p.Warmup < 0:
		return errors.New("bench: Clients and Duration must be positive, Warmup not negative")
	}
	return nil
}

// Run measures, Runs times, the ceiling and agentid with each method, and
// returns the report. It fails on the first failed request or child.
func Run(ctx context.Context, p Params) (Report, error) {
	if err := p.check(); err != nil {
		return Report{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), p.Rand)
	if err != nil {
		return Report{}, fmt.Errorf("bench: client key: %w", err)
	}
	rep := newReport(p)
	for i := range p.Runs {
		run, err := runOnce(ctx, p, key, i)
		if err != nil {
			return Report{}, fmt.Errorf("run %d of %d: %w", i+1, p.Runs, err)
		}
		rep.Runs = append(rep.Runs, run)
	}
	rep.summarise()
	return rep, nil
}

// runOnce measures the ceiling (for private_key_jwt) and then agentid, in
// a fresh temporary directory.
func runOnce(ctx context.Context, p Params, key *ecdsa.PrivateKey, i int) (_ Round, err error) {
	dir, err := os.MkdirTemp(p.TempDir, "agentid-bench-")
	if err != nil {
		return Round{}, fmt.Errorf("bench: %w", err)
	}
	defer removeUnlessFailed(dir, &err)
	pubPEM, err := encodePublicKey(&key.PublicKey)
	if err != nil {
		return Round{}, err
	}
	args := func(name string) ChildArgs {
		a := ChildArgs{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), ClientKeyFile: filepath.Join(dir, "client.pub")}
		if p.ProfileDir != "" {
			a.CPUProfile = filepath.Join(p.ProfileDir, fmt.Sprintf("%s-run%d.pprof", name, i+1))
		}
		return a
	}
	if err := os.WriteFile(filepath.Join(dir, "client.pub"), pubPEM, 0o600); err != nil {
		return Round{}, fmt.Errorf("bench: %w", err)
	}
	var run Round
	ceilingCPU := 0.0 // µs per token
	if slices.Contains(p.Methods, PrivateKeyJWT) {
		c, err := startChild(ctx, TargetCeiling, p.Executable, p.CeilingArgs(args(TargetCeiling)), filepath.Join(dir, "ceiling.log"))
		if err != nil {
			return Round{}, err
		}
		m, err := measure(ctx, p, c, TargetCeiling, client{ID: "agt_bench_ceiling", KeyID: ceilingKeyID, Key: key}, i)
		if serr := c.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return Round{}, err
		}
		run.Measurements = append(run.Measurements, m)
		ceilingCPU = m.CPUPerTokenMicros
	}

	s, err := startChild(ctx, "agentid", p.Executable, p.ServerArgs(args("agentid")), filepath.Join(dir, "agentid.log"))
	if err != nil {
		return Round{}, err
	}
	err = func() error {
		creds, err := register(ctx, s.hello, pubPEM)
		if err != nil {
			return err
		}
		for _, method := range p.Methods {
			m, err := measure(ctx, p, s, method, client{ID: creds.ClientID, KeyID: creds.KeyID, Key: key, Secret: creds.Secret}, i)
			if err != nil {
				return err
			}
			run.Measurements = append(run.Measurements, m)
		}
		return nil
	}()
	if serr := s.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return Round{}, err
	}
	if ceilingCPU > 0 {
		for j := range run.Measurements {
			run.Measurements[j].CeilingRatio = run.Measurements[j].CPUPerTokenMicros / ceilingCPU
		}
	}
	return run, nil
}

// client is who the load generator authenticates as.
type client struct {
	ID, KeyID string
	Key       *ecdsa.PrivateKey
	Secret    string
}

// measure runs one load window against a child: target is TargetCeiling
// (private_key_jwt against the ceiling) or a method against agentid.
func measure(ctx context.Context, p Params, c *child, target string, cl client, run int) (Measurement, error) {
	tr := &http.Transport{
		MaxIdleConns: 2 * p.Clients, MaxIdleConnsPerHost: 2 * p.Clients,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	md, err := discover(ctx, hc, c.hello.URL)
	if err != nil {
		return Measurement{}, err
	}
	newReq, err := requestBuilder(p, md, target, cl)
	if err != nil {
		return Measurement{}, err
	}
	self := os.Getpid()
	res, err := runLoad(ctx, loadParams{
		Clients: p.Clients, Warmup: p.Warmup, Duration: p.Duration, Op: tokenOp(hc, newReq),
		ServerCPU: c.cpu, ClientCPU: func() (time.Duration, error) { return ProcessCPU(self) }, Clock: p.Clock,
	})
	if err != nil {
		return Measurement{}, fmt.Errorf("%s: %w", target, err)
	}
	if res.Requests == 0 {
		return Measurement{}, fmt.Errorf("%w: %s: no answer completed in the %s window", ErrFailedRequests, target, p.Duration)
	}
	if err := verifyToken(ctx, hc, md, res.Sample, cl.ID); err != nil {
		return Measurement{}, fmt.Errorf("%s: %w", target, err)
	}
	m := newMeasurement(target, res)
	fmt.Fprintf(p.Progress, "run %d/%d %-19s %8.0f tokens/s  p50 %6.2f ms  p99 %6.2f ms  server CPU %6.1f µs/token\n",
		run+1, p.Runs, target, m.TokensPerSecond, m.P50Millis, m.P99Millis, m.CPUPerTokenMicros)
	return m, nil
}

// requestBuilder returns the function that builds token requests for the
// target: a fresh client assertion per request, or HTTP Basic.
func requestBuilder(p Params, md Metadata, target string, cl client) (func(context.Context, int, uint64) (*http.Request, error), error) {
	var rnd [8]byte
	if _, err := io.ReadFull(p.Rand, rnd[:]); err != nil {
		return nil, fmt.Errorf("bench: read random: %w", err)
	}
	jtiPrefix := hex.EncodeToString(rnd[:]) + "-"
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {benchScope}}
	post := func(ctx context.Context, body, authz string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, md.TokenEndpoint, strings.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", "agentid-bench")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		return req, nil
	}
	if target == ClientSecretBasic {
		body := form.Encode()
		// RFC 6749 §2.3.1: id and secret are form-encoded, then Basic.
		authz := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(cl.ID)+":"+url.QueryEscape(cl.Secret)))
		return func(ctx context.Context, _ int, _ uint64) (*http.Request, error) {
			return post(ctx, body, authz)
		}, nil
	}
	signer, err := newAssertionSigner(cl.Key, cl.KeyID, cl.ID, md.Issuer, p.Rand)
	if err != nil {
		return nil, err
	}
	form.Set("client_assertion_type", AssertionType)
	prefix := form.Encode() + "&client_assertion="
	return func(ctx context.Context, w int, seq uint64) (*http.Request, error) {
		jti := jtiPrefix + strconv.Itoa(w) + "-" + strconv.FormatUint(seq, 10)
		a, err := signer.sign(p.Clock(), jti)
		if err != nil {
			return nil, err
		}
		return post(ctx, prefix+a, "") // a JWS is base64url and dots: nothing to escape
	}, nil
}

// removeUnlessFailed removes a run's temporary directory, or, when the run
// failed, keeps it (the children's logs are there) and says where.
func removeUnlessFailed(dir string, err *error) {
	if *err != nil {
		*err = fmt.Errorf("%w (logs kept in %s)", *err, dir)
		return
	}
	_ = os.RemoveAll(dir)
}
