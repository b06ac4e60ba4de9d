package ssf

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
)

// fakeSigner "signs" a SET as its jti.
type fakeSigner struct{}

func (fakeSigner) IssueSET(p credential.SETParams) (string, error) { return p.JTI, nil }

// fakeSealer seals nothing.
type fakeSealer struct{}

func (fakeSealer) Seal(p, _ []byte) ([]byte, error) { return p, nil }
func (fakeSealer) Open(s, _ []byte) ([]byte, error) { return s, nil }

var _ SETSigner = fakeSigner{}
var _ Sealer = fakeSealer{}

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// pushEnv is a Service on a SQLite store with one push stream to a
// receiver that answers each request with the next of its statuses (202
// once they run out).
type pushEnv struct {
	st  store.Store
	rec *audit.Recorder
	svc *Service
	clk *testClock

	mu       sync.Mutex
	statuses []int
	got      []string // jtis received, in order
}

func newPushEnv(t *testing.T, reg prometheus.Registerer) *pushEnv {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, sqlite.Params{Path: filepath.Join(t.TempDir(), "agentid.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &pushEnv{st: st, clk: &testClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.got = append(e.got, string(body))
		status := http.StatusAccepted
		if len(e.statuses) > 0 {
			status, e.statuses = e.statuses[0], e.statuses[1:]
		}
		e.mu.Unlock()
		if status == http.StatusBadRequest {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"err":"invalid_request","description":"not for us"}`)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	const issuer = "https://agentid.example.org"
	if e.rec, err = audit.NewRecorder(audit.RecorderParams{Store: st, Clock: e.clk.Now,
		OnAppend: NewOutbox(issuer).OnAppend}); err != nil {
		t.Fatal(err)
	}
	if e.svc, err = New(Params{Store: st, Recorder: e.rec, Signer: fakeSigner{}, Issuer: issuer, Clock: e.clk.Now,
		Sealer: fakeSealer{}, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	admin := audit.Origin{Actor: audit.Actor{Type: audit.ActorAdmin, ID: "adm_tester"}}
	if _, err := e.svc.CreateStream(ctx, admin, StreamRequest{
		EventsRequested: &[]string{EventAccountDisabled},
		Delivery:        &Delivery{Method: DeliveryPush, EndpointURL: srv.URL + "/events", AuthorizationHeader: "Bearer s3cret"},
		Aud:             &credential.Audience{"rs"},
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

// answer sets the statuses of the next requests.
func (e *pushEnv) answer(statuses ...int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.statuses = statuses
}

func (e *pushEnv) received() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.got)
}

// suspend records an agent suspension: one outbox event.
func (e *pushEnv) suspend(t *testing.T, name string) {
	t.Helper()
	if _, err := e.rec.Record(t.Context(), audit.Event{Family: audit.Admin, Type: auditAgentSuspended, Outcome: audit.Success,
		Agent: &audit.Agent{ID: "agt_" + name, SPIFFEID: "spiffe://example.org/agent/" + name}}); err != nil {
		t.Fatal(err)
	}
}

// push runs one round and checks how many streams it pushed to.
func (e *pushEnv) push(t *testing.T, want int) {
	t.Helper()
	n, err := e.svc.Push(t.Context(), "replica-1")
	if err != nil || n != want {
		t.Fatalf("Push = %d, %v; want %d streams", n, err, want)
	}
}

// TestPushMetrics: each push request counts once by outcome (accepted,
// refused, failed); accepted and refused SETs count once recorded; the
// gauges show a stream in backoff and how long its SET has waited, and
// go back to 0 when it is delivered; -1 when the store cannot be read.
func TestPushMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newPushEnv(t, reg)
	expect := func(requests [3]float64, events [2]float64, failing, oldest float64) {
		t.Helper()
		want := map[string]float64{
			"agentid_ssf_push_requests_total{outcome=accepted}": requests[0],
			"agentid_ssf_push_requests_total{outcome=refused}":  requests[1],
			"agentid_ssf_push_requests_total{outcome=failed}":   requests[2],
			"agentid_ssf_push_events_total{outcome=accepted}":   events[0],
			"agentid_ssf_push_events_total{outcome=refused}":    events[1],
			"agentid_ssf_push_streams_failing":                  failing,
			"agentid_ssf_push_oldest_pending_seconds":           oldest,
		}
		if diff := cmp.Diff(want, gather(t, reg)); diff != "" {
			t.Errorf("metrics (-want +got):\n%s", diff)
		}
	}

	// Nothing pushed yet: every outcome is there, at 0.
	expect([3]float64{}, [2]float64{}, 0, 0)

	// Three SETs: accepted, refused (400 with an RFC 8935 error), and a
	// 503 that holds the stream in backoff. The pending SET has waited
	// 30 s.
	e.suspend(t, "a")
	e.suspend(t, "b")
	e.suspend(t, "c")
	e.answer(http.StatusAccepted, http.StatusBadRequest, http.StatusServiceUnavailable)
	e.clk.Add(30 * time.Second)
	e.push(t, 1)
	expect([3]float64{1, 1, 1}, [2]float64{1, 1}, 1, 30)

	// In backoff (1 s): the next round pushes nothing.
	e.push(t, 0)
	expect([3]float64{1, 1, 1}, [2]float64{1, 1}, 1, 30)

	// A second failure, after the backoff.
	e.answer(http.StatusServiceUnavailable)
	e.clk.Add(time.Second)
	e.push(t, 1)
	expect([3]float64{1, 1, 2}, [2]float64{1, 1}, 1, 31)

	// The receiver recovers: the held SET is accepted, nothing waits.
	e.clk.Add(2 * time.Second)
	e.push(t, 1)
	expect([3]float64{2, 1, 2}, [2]float64{2, 1}, 0, 0)
	if n := e.received(); n != 5 {
		t.Errorf("the receiver got %d requests; want 5", n)
	}

	// A store that cannot be read: the gauges say -1.
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	expect([3]float64{2, 1, 2}, [2]float64{2, 1}, -1, -1)
}

// gather scrapes reg: each series as name{label=value…} → value. It
// fails the test when a metric is neither a counter nor a gauge, or
// carries a label other than outcome.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		typ := mf.GetType().String()
		if typ != "COUNTER" && typ != "GAUGE" || strings.HasSuffix(mf.GetName(), "_total") != (typ == "COUNTER") {
			t.Errorf("%s is a %s", mf.GetName(), typ)
		}
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() != "outcome" {
					t.Errorf("%s has the label %s", mf.GetName(), l.GetName())
				}
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			out[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

// TestPushWithoutMetrics: a Service without a Registerer pushes and
// counts nothing.
func TestPushWithoutMetrics(t *testing.T) {
	e := newPushEnv(t, nil)
	e.suspend(t, "a")
	e.answer(http.StatusServiceUnavailable)
	e.push(t, 1)
	e.clk.Add(time.Second)
	e.push(t, 1)
	if e.svc.m != nil || e.received() != 2 {
		t.Errorf("metrics %v, %d requests received; want none and 2", e.svc.m, e.received())
	}
}

// TestPushMetricsRegisterTwice: a second Service on the same registry is
// an error, not a panic.
func TestPushMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newPushEnv(t, reg)
	p := e.svc.p
	if _, err := New(p); err == nil || !strings.Contains(err.Error(), "ssf: register metrics") {
		t.Errorf("New on a registry that has the metrics = %v", err)
	}
}
