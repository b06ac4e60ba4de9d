package ssf

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentid/agentid/internal/store"
)

// Outcomes of push requests and SETs, the values of the outcome label of
// the push metrics (docs/ssf.md).
const (
	outcomeAccepted = "accepted" // 2xx
	outcomeRefused  = "refused"  // 400 with an RFC 8935 error: dropped for good
	outcomeFailed   = "failed"   // anything retried
)

// metricsTimeout bounds the store reads of one scrape of the push gauges.
const metricsTimeout = 5 * time.Second

// pushMetrics counts push deliveries. A nil *pushMetrics counts nothing.
// Labels never carry stream ids, endpoints or headers: only the outcome.
type pushMetrics struct {
	requests *prometheus.CounterVec // one per attempt to push a SET
	events   *prometheus.CounterVec // SETs accepted or refused, once recorded
}

// newPushMetrics registers the push metrics of s on reg: the counters,
// and a collector of the gauges that reads the store on each scrape.
func newPushMetrics(reg prometheus.Registerer, s *Service) (*pushMetrics, error) {
	m := &pushMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentid_ssf_push_requests_total",
			Help: "Shared Signals push requests (RFC 8935), by outcome: accepted (2xx), refused (400 with an RFC 8935 error: the SET is dropped) or failed (retried after a backoff).",
		}, []string{"outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentid_ssf_push_events_total",
			Help: "SETs done with by push delivery, by outcome: accepted by the receiver or refused by it (dropped).",
		}, []string{"outcome"}),
	}
	// Every outcome exists from the start, so rate() sees its first
	// increase.
	for _, o := range []string{outcomeAccepted, outcomeRefused, outcomeFailed} {
		m.requests.WithLabelValues(o)
	}
	m.events.WithLabelValues(outcomeAccepted)
	m.events.WithLabelValues(outcomeRefused)
	for _, c := range []prometheus.Collector{m.requests, m.events, newPushGauges(s)} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ssf: register metrics: %w", err)
		}
	}
	return m, nil
}

// request counts one attempt to push a SET and its outcome.
func (m *pushMetrics) request(r pushResult) {
	if m == nil {
		return
	}
	o := outcomeAccepted
	switch {
	case r.failed != "":
		o = outcomeFailed
	case r.refused != "":
		o = outcomeRefused
	}
	m.requests.WithLabelValues(o).Inc()
}

// settled counts SETs whose outcome the stream recorded: accepted and
// refused ones.
func (m *pushMetrics) settled(accepted, refused int) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(outcomeAccepted).Add(float64(accepted))
	m.events.WithLabelValues(outcomeRefused).Add(float64(refused))
}

// pushGauges reports the push backlog from the store at each scrape, so
// every replica reports the same values whichever holds the push lease.
type pushGauges struct {
	s              *Service
	failing, delay *prometheus.Desc
}

func newPushGauges(s *Service) *pushGauges {
	return &pushGauges{s: s,
		failing: prometheus.NewDesc("agentid_ssf_push_streams_failing",
			"Push streams (enabled or paused) whose last delivery attempt failed, now in backoff; -1 when the store cannot be read.",
			nil, nil),
		delay: prometheus.NewDesc("agentid_ssf_push_oldest_pending_seconds",
			"Age of the oldest event an enabled push stream has not yet delivered, 0 when none; -1 when the store cannot be read.",
			nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (g *pushGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.failing
	ch <- g.delay
}

// Collect implements prometheus.Collector.
func (g *pushGauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), metricsTimeout)
	defer cancel()
	failing, oldest, err := g.s.pushBacklog(ctx)
	f, d := float64(failing), oldest.Seconds()
	if err != nil {
		f, d = -1, -1
	}
	ch <- prometheus.MustNewConstMetric(g.failing, prometheus.GaugeValue, f)
	ch <- prometheus.MustNewConstMetric(g.delay, prometheus.GaugeValue, d)
}

// pushBacklog counts the push streams in backoff (enabled or paused,
// PushFailures > 0) and returns how long the oldest event an enabled push
// stream has yet to deliver has waited (0 when none). It reads the
// streams, the outbox head, and, for each enabled push stream behind the
// head, the first page of its pending events: what one push round reads.
func (s *Service) pushBacklog(ctx context.Context) (int, time.Duration, error) {
	sts, err := s.p.Store.ListSSFStreams(ctx, "")
	if err != nil {
		return 0, 0, fmt.Errorf("ssf: list streams: %w", err)
	}
	head, err := s.p.Store.SSFHead(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("ssf: outbox head: %w", err)
	}
	var (
		failing int
		oldest  time.Time
	)
	for _, st := range sts {
		if st.DeliveryMethod != DeliveryPush || st.Status == store.SSFStreamDisabled {
			continue
		}
		if st.PushFailures > 0 {
			failing++
		}
		if st.Status != store.SSFStreamEnabled || st.Cursor >= head {
			continue
		}
		evs, err := s.p.Store.ListSSFEvents(ctx, st.ID, st.Cursor, pushBatch)
		if err != nil {
			return 0, 0, fmt.Errorf("ssf: read outbox: %w", err)
		}
		// The first event the stream delivers and the receiver has not
		// acknowledged; others before it are stepped over by the next
		// round.
		i := slices.IndexFunc(evs, func(e store.SSFEvent) bool { return delivers(st, e) && !slices.Contains(st.Acked, e.Seq) })
		if i >= 0 && (oldest.IsZero() || evs[i].Time.Before(oldest)) {
			oldest = evs[i].Time
		}
	}
	if oldest.IsZero() {
		return failing, 0, nil
	}
	return failing, max(s.now().Sub(oldest), 0), nil
}
