package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadParams configure one load run against one server.
type loadParams struct {
	// Clients is the number of workers, each with one operation in
	// flight.
	Clients int
	// Warmup is run and discarded before the measured window.
	Warmup, Duration time.Duration
	// Op performs the seq-th operation of worker (in the worker's
	// goroutine) and returns a sample of its result (an access token,
	// an SVID) or an error, which fails the run.
	Op func(ctx context.Context, worker int, seq uint64) (string, error)
	// ServerCPU reads the CPU time of the process(es) measured; ClientCPU
	// this process's.
	ServerCPU, ClientCPU func() (time.Duration, error)
	// Clock reads the time (monotonic readings are used for intervals).
	Clock func() time.Time
}

// loadResult is what one load run measured in its window.
type loadResult struct {
	Requests  int             // operations completed in the window
	Elapsed   time.Duration   // the window
	ServerCPU time.Duration   // server CPU used in the window
	ClientCPU time.Duration   // load generator CPU used in the window
	Latencies []time.Duration // of the Requests, sorted
	Sample    string          // one operation's sample, for verification
}

// Phases of a load run.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseDone
)

// workerResult is one worker's share.
type workerResult struct {
	lat    []time.Duration
	sample string
	err    error
}

// runLoad runs operations from p.Clients goroutines, each waiting for its
// operation to complete before starting the next (a closed loop):
// p.Warmup, then the measured window of p.Duration. A failed operation
// fails the run.
func runLoad(ctx context.Context, p loadParams) (loadResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var phase atomic.Int32
	results := make([]workerResult, p.Clients)
	// firstErr is the first worker failure: it cancels the others, whose
	// own errors (context canceled) are consequences, not the cause.
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := range p.Clients {
		wg.Go(func() {
			results[w] = worker(ctx, p, w, &phase)
			if err := results[w].err; err != nil {
				firstErr.CompareAndSwap(nil, &err)
				cancel()
			}
		})
	}

	var res loadResult
	err := func() error {
		if err := sleep(ctx, p.Warmup); err != nil {
			return err
		}
		s0, err := p.ServerCPU()
		if err != nil {
			return err
		}
		c0, err := p.ClientCPU()
		if err != nil {
			return err
		}
		t0 := p.Clock()
		phase.Store(phaseMeasure)
		if err := sleep(ctx, p.Duration); err != nil {
			return err
		}
		phase.Store(phaseDone)
		res.Elapsed = p.Clock().Sub(t0)
		s1, err := p.ServerCPU()
		if err != nil {
			return err
		}
		c1, err := p.ClientCPU()
		if err != nil {
			return err
		}
		res.ServerCPU, res.ClientCPU = s1-s0, c1-c0
		return nil
	}()
	phase.Store(phaseDone)
	if err != nil {
		cancel()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return loadResult{}, *e
	}
	if err != nil {
		return loadResult{}, err
	}
	for _, r := range results {
		res.Latencies = append(res.Latencies, r.lat...)
		if res.Sample == "" {
			res.Sample = r.sample
		}
	}
	slices.Sort(res.Latencies)
	res.Requests = len(res.Latencies)
	return res, nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bench: %w", ctx.Err())
	}
}

// worker runs operations until the run is done and keeps the latencies
// of those completed in the measured window.
func worker(ctx context.Context, p loadParams, w int, phase *atomic.Int32) workerResult {
	var r workerResult
	for seq := uint64(0); phase.Load() != phaseDone; seq++ {
		start := p.Clock()
		tok, err := p.Op(ctx, w, seq)
		lat := p.Clock().Sub(start)
		if err != nil {
			if ctx.Err() != nil && phase.Load() == phaseDone {
				return r // stopped while a request was in flight
			}
			r.err = err
			return r
		}
		if phase.Load() == phaseMeasure {
			r.lat = append(r.lat, lat)
			r.sample = tok
		}
	}
	return r
}

// tokenOp is the load operation of a token request: newReq builds it,
// roundTrip sends it on c.
func tokenOp(c *http.Client, newReq func(context.Context, int, uint64) (*http.Request, error)) func(context.Context, int, uint64) (string, error) {
	return func(ctx context.Context, w int, seq uint64) (string, error) {
		req, err := newReq(ctx, w, seq)
		if err != nil {
			return "", err
		}
		return roundTrip(c, req)
	}
}

// roundTrip sends a token request and returns the access token of a 200
// token response; any other answer is an ErrFailedRequests error.
func roundTrip(c *http.Client, req *http.Request) (string, error) {
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("bench: %s: %w", req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("bench: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		if len(body) > 300 {
			body = body[:300]
		}
		return "", fmt.Errorf("%w: HTTP %d: %s", ErrFailedRequests, resp.StatusCode, body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" || tr.TokenType == "" {
		return "", fmt.Errorf("%w: HTTP 200 without a token response", ErrFailedRequests)
	}
	return tr.AccessToken, nil
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted values; zero when there are none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := min(max(int(math.Ceil(p/100*float64(len(sorted)))), 1), len(sorted))
	return sorted[rank-1]
}
