package bench

import (
	"runtime"
	"slices"
	"time"
)

// Measurement is what one measured window found for one target.
type Measurement struct {
	// Target is TargetCeiling, PrivateKeyJWT or ClientSecretBasic.
	Target string `json:"target"`
	// Tokens is the number of 200 token responses completed in the
	// window, Seconds its length.
	Tokens  int     `json:"tokens"`
	Seconds float64 `json:"seconds"`
	// TokensPerSecond is Tokens / Seconds.
	TokensPerSecond float64 `json:"tokens_per_s"`
	// P50Millis and P99Millis are latency percentiles (nearest rank) of
	// those responses, from sending the request to reading the body.
	P50Millis float64 `json:"p50_ms"`
	P99Millis float64 `json:"p99_ms"`
	// ServerCPUSeconds is the server process's CPU time in the window
	// (user + system, 10 ms resolution); ClientCPUSeconds the load
	// generator's, for context.
	ServerCPUSeconds float64 `json:"server_cpu_s"`
	ClientCPUSeconds float64 `json:"client_cpu_s"`
	// CPUPerTokenMicros is ServerCPUSeconds / Tokens in µs.
	CPUPerTokenMicros float64 `json:"server_cpu_per_token_us"`
	// TokensPerCPUSecond is Tokens / ServerCPUSeconds: tokens per second
	// per core equivalent. Zero when no CPU time was measured.
	TokensPerCPUSecond float64 `json:"tokens_per_server_cpu_s"`
	// CeilingRatio is CPUPerTokenMicros ÷ the ceiling's in the same run
	// (1 for the ceiling); zero when the ceiling was not measured.
	CeilingRatio float64 `json:"ceiling_ratio,omitempty"`
	// Verified: a token from the window verified against the JWKS.
	Verified bool `json:"verified"`
}

func newMeasurement(target string, r loadResult) Measurement {
	m := Measurement{
		Target: target, Tokens: r.Requests, Seconds: r.Elapsed.Seconds(),
		P50Millis: millis(percentile(r.Latencies, 50)), P99Millis: millis(percentile(r.Latencies, 99)),
		ServerCPUSeconds: r.ServerCPU.Seconds(), ClientCPUSeconds: r.ClientCPU.Seconds(),
		Verified: true,
	}
	if m.Seconds > 0 {
		m.TokensPerSecond = float64(m.Tokens) / m.Seconds
	}
	if m.Tokens > 0 {
		m.CPUPerTokenMicros = m.ServerCPUSeconds * 1e6 / float64(m.Tokens)
	}
	if m.ServerCPUSeconds > 0 {
		m.TokensPerCPUSecond = float64(m.Tokens) / m.ServerCPUSeconds
	}
	return m
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Round is one repetition: the ceiling (when measured), then each method.
type Round struct {
	Measurements []Measurement `json:"measurements"`
}

// Check is one of the targets against the median of the runs.
type Check struct {
	Target string `json:"target"`
	// Metric is the JSON name of the Measurement field checked.
	Metric string  `json:"metric"`
	Op     string  `json:"op"` // "<=" or ">="
	Limit  float64 `json:"limit"`
	Value  float64 `json:"value"`
	Pass   bool    `json:"pass"`
}

// Machine describes where the report was made.
type Machine struct {
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
}

// Report is the result of Run.
type Report struct {
	Clients         int     `json:"clients"`
	WarmupSeconds   float64 `json:"warmup_s"`
	DurationSeconds float64 `json:"duration_s"`
	Machine         Machine `json:"machine"`
	Runs            []Round `json:"runs"`
	// Median has, per target, the median of each field over the runs
	// (CeilingRatio: the median of the per-run ratios).
	Median []Measurement `json:"median"`
	Checks []Check       `json:"checks"`
}

func newReport(p Params) Report {
	return Report{
		Clients: p.Clients, WarmupSeconds: p.Warmup.Seconds(), DurationSeconds: p.Duration.Seconds(),
		Machine: machine(),
	}
}

// machine describes this machine.
func machine() Machine {
	return Machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
}

// summarise computes the medians and the checks.
func (r *Report) summarise() {
	var targets []string
	byTarget := map[string][]Measurement{}
	for _, run := range r.Runs {
		for _, m := range run.Measurements {
			if _, ok := byTarget[m.Target]; !ok {
				targets = append(targets, m.Target)
			}
			byTarget[m.Target] = append(byTarget[m.Target], m)
		}
	}
	r.Median = nil
	for _, t := range targets {
		r.Median = append(r.Median, medianOf(byTarget[t]))
	}
	r.Checks = nil
	for _, m := range r.Median {
		switch {
		case m.Target == PrivateKeyJWT && m.CeilingRatio > 0:
			r.Checks = append(r.Checks, Check{Target: m.Target, Metric: "ceiling_ratio", Op: "<=",
				Limit: MaxCeilingRatio, Value: m.CeilingRatio, Pass: m.CeilingRatio <= MaxCeilingRatio})
		case m.Target == ClientSecretBasic:
			r.Checks = append(r.Checks, Check{Target: m.Target, Metric: "tokens_per_server_cpu_s", Op: ">=",
				Limit: MinBasicTokensPerCPUSecond, Value: m.TokensPerCPUSecond,
				Pass: m.TokensPerCPUSecond >= MinBasicTokensPerCPUSecond})
		}
	}
}

// medianOf returns, field by field, the median of ms (all of one target).
func medianOf(ms []Measurement) Measurement {
	med := func(f func(Measurement) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		return median(v)
	}
	out := Measurement{
		Target:             ms[0].Target,
		Tokens:             int(med(func(m Measurement) float64 { return float64(m.Tokens) })),
		Seconds:            med(func(m Measurement) float64 { return m.Seconds }),
		TokensPerSecond:    med(func(m Measurement) float64 { return m.TokensPerSecond }),
		P50Millis:          med(func(m Measurement) float64 { return m.P50Millis }),
		P99Millis:          med(func(m Measurement) float64 { return m.P99Millis }),
		ServerCPUSeconds:   med(func(m Measurement) float64 { return m.ServerCPUSeconds }),
		ClientCPUSeconds:   med(func(m Measurement) float64 { return m.ClientCPUSeconds }),
		CPUPerTokenMicros:  med(func(m Measurement) float64 { return m.CPUPerTokenMicros }),
		TokensPerCPUSecond: med(func(m Measurement) float64 { return m.TokensPerCPUSecond }),
		CeilingRatio:       med(func(m Measurement) float64 { return m.CeilingRatio }),
		Verified:           true,
	}
	for _, m := range ms {
		out.Verified = out.Verified && m.Verified
	}
	return out
}

// median of v (the mean of the middle two when len(v) is even); v is
// reordered.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
