package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeCPU returns 10 ms more on each call.
func fakeCPU() func() (time.Duration, error) {
	var n atomic.Int64
	return func() (time.Duration, error) { return time.Duration(n.Add(1)) * 10 * time.Millisecond, nil }
}

func loadAgainst(t *testing.T, h http.HandlerFunc) (loadResult, error) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var built atomic.Int64
	return runLoad(t.Context(), loadParams{
		Clients: 3, Warmup: 20 * time.Millisecond, Duration: 100 * time.Millisecond,
		Op: tokenOp(srv.Client(), func(ctx context.Context, _ int, _ uint64) (*http.Request, error) {
			built.Add(1)
			return http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+tokenPath, strings.NewReader("x=1"))
		}),
		ServerCPU: fakeCPU(), ClientCPU: fakeCPU(), Clock: time.Now,
	})
}

func TestRunLoad(t *testing.T) {
	res, err := loadAgainst(t, func(w http.ResponseWriter, _ *http.Request) {
		writeRaw(w, http.StatusOK, []byte(`{"access_token":"tok","token_type":"Bearer","expires_in":300}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Requests != len(res.Latencies) || !slices.IsSorted(res.Latencies) {
		t.Fatalf("requests %d, %d latencies, sorted %v", res.Requests, len(res.Latencies), slices.IsSorted(res.Latencies))
	}
	if res.Sample != "tok" {
		t.Errorf("sample %q", res.Sample)
	}
	// Each CPU reader was read once at each end of the window.
	if res.ServerCPU != 10*time.Millisecond || res.ClientCPU != 10*time.Millisecond {
		t.Errorf("server CPU %s, client CPU %s; want one 10ms step each", res.ServerCPU, res.ClientCPU)
	}
	if res.Elapsed <= 0 {
		t.Errorf("elapsed %s", res.Elapsed)
	}
}

func TestRunLoadFailsOnAnError(t *testing.T) {
	var n atomic.Int64
	for _, tt := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"an OAuth error", func(w http.ResponseWriter, _ *http.Request) {
			if n.Add(1) > 5 {
				oauthError(w, http.StatusBadRequest, "invalid_client", "no")
				return
			}
			writeRaw(w, http.StatusOK, []byte(`{"access_token":"tok","token_type":"Bearer"}`))
		}},
		{"a 200 without a token", func(w http.ResponseWriter, _ *http.Request) {
			writeRaw(w, http.StatusOK, []byte(`{}`))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadAgainst(t, tt.h)
			if !errors.Is(err, ErrFailedRequests) {
				t.Fatalf("runLoad = %v, want ErrFailedRequests", err)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tt := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"p50 of 1..4", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p50 of 1..5", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 of 1..100", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 1..5", ms(1, 2, 3, 4, 5), 99, 5 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Fatalf("percentile = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSummarise(t *testing.T) {
	m := func(target string, cpuUS, ratio, perCPU float64) Measurement {
		return Measurement{Target: target, Tokens: 1000, CPUPerTokenMicros: cpuUS, CeilingRatio: ratio,
			TokensPerCPUSecond: perCPU, Verified: true}
	}
	rep := Report{Runs: []Round{
		{Measurements: []Measurement{m(TargetCeiling, 100, 1, 10_000), m(PrivateKeyJWT, 150, 1.5, 6_667), m(ClientSecretBasic, 90, 0.9, 11_111)}},
		{Measurements: []Measurement{m(TargetCeiling, 110, 1, 9_091), m(PrivateKeyJWT, 140, 1.27, 7_143), m(ClientSecretBasic, 120, 1.09, 8_333)}},
		{Measurements: []Measurement{m(TargetCeiling, 90, 1, 11_111), m(PrivateKeyJWT, 130, 1.44, 7_692), m(ClientSecretBasic, 95, 1.06, 10_526)}},
	}}
	rep.summarise()
	want := []Measurement{m(TargetCeiling, 100, 1, 10_000), m(PrivateKeyJWT, 140, 1.44, 7_143), m(ClientSecretBasic, 95, 1.06, 10_526)}
	if diff := cmp.Diff(want, rep.Median); diff != "" {
		t.Errorf("medians (-want +got):\n%s", diff)
	}
	wantChecks := []Check{
		{Target: PrivateKeyJWT, Metric: "ceiling_ratio", Op: "<=", Limit: MaxCeilingRatio, Value: 1.44, Pass: true},
		{Target: ClientSecretBasic, Metric: "tokens_per_server_cpu_s", Op: ">=", Limit: MinBasicTokensPerCPUSecond, Value: 10_526, Pass: true},
	}
	if diff := cmp.Diff(wantChecks, rep.Checks); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}

	// Without the ceiling there is no ratio to check.
	rep = Report{Runs: []Round{{Measurements: []Measurement{m(PrivateKeyJWT, 150, 0, 6_667)}}}}
	rep.summarise()
	if len(rep.Checks) != 0 {
		t.Errorf("checks without a ceiling: %+v", rep.Checks)
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParamsCheck(t *testing.T) {
	ok := func() Params {
		return Params{Executable: "x", CeilingArgs: func(ChildArgs) []string { return nil },
			ServerArgs: func(ChildArgs) []string { return nil }, Clients: 1, Duration: time.Second,
			Clock: time.Now, Rand: strings.NewReader("")}
	}
	p := ok()
	err := p.check()
	if errors.Is(err, ErrUnsupported) {
		t.Skip("not Linux")
	}
	if err != nil || p.Runs != 1 || !slices.Equal(p.Methods, Methods()) {
		t.Fatalf("check: %v, runs %d, methods %v", err, p.Runs, p.Methods)
	}
	for name, mod := range map[string]func(*Params){
		"unknown method": func(p *Params) { p.Methods = []string{"client_secret_jwt"} },
		"no clients":     func(p *Params) { p.Clients = 0 },
		"no duration":    func(p *Params) { p.Duration = 0 },
		"no executable":  func(p *Params) { p.Executable = "" },
		"no clock":       func(p *Params) { p.Clock = nil },
	} {
		p := ok()
		mod(&p)
		if err := p.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
