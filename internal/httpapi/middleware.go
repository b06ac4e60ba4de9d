package httpapi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

type ctxKey int

const traceKey ctxKey = 0

// trace is the W3C trace context of one request.
type trace struct {
	traceID string // 32 lowercase hex
	spanID  string // 16 lowercase hex, this server's span
}

// traceOf returns the request's trace (set by traced).
func traceOf(ctx context.Context) trace {
	t, _ := ctx.Value(traceKey).(trace)
	return t
}

// parseTraceparent parses a W3C Trace Context `traceparent` header
// (version 00) and returns its trace id. Any other version is parsed by its
// version-00 prefix, as the spec asks of forward-compatible parsers.
func parseTraceparent(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if len(v) < 55 {
		return "", false
	}
	ver, tid, pid, flags := v[0:2], v[3:35], v[36:52], v[53:55]
	if v[2] != '-' || v[35] != '-' || v[52] != '-' || !isLowerHex(ver) || ver == "ff" ||
		!isLowerHex(tid) || !isLowerHex(pid) || !isLowerHex(flags) {
		return "", false
	}
	if ver == "00" && len(v) != 55 {
		return "", false
	}
	if ver != "00" && len(v) > 55 && v[55] != '-' {
		return "", false
	}
	if tid == strings.Repeat("0", 32) || pid == strings.Repeat("0", 16) {
		return "", false
	}
	return tid, true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// traced accepts the caller's traceparent or starts a trace, echoes the
// traceparent of this server's span, and logs the request.
func (h *handler) traced(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rnd [24]byte
		if _, err := io.ReadFull(h.p.Rand, rnd[:]); err != nil {
			h.p.Logger.ErrorContext(r.Context(), "read random for trace id", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		t := trace{spanID: hex.EncodeToString(rnd[16:])}
		if tid, ok := parseTraceparent(r.Header.Get("traceparent")); ok {
			t.traceID = tid
		} else {
			t.traceID = hex.EncodeToString(rnd[:16])
		}
		w.Header().Set("traceparent", "00-"+t.traceID+"-"+t.spanID+"-01")
		ctx := context.WithValue(r.Context(), traceKey, t)
		start := h.p.Clock()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(ctx))
		h.p.Logger.InfoContext(ctx, "request",
			"method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration", h.p.Clock().Sub(start), "trace_id", t.traceID, "remote", h.remoteIP(r))
	})
}

// measured records request counts and latencies per route pattern.
func (h *handler) measured(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		h.m.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		h.m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// recoverer turns a panic into a 500 problem and a log line; the panic of
// http.ErrAbortHandler (an aborted stream) passes through.
func (h *handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				h.p.Logger.ErrorContext(r.Context(), "panic serving request", "panic", fmt.Sprint(v), "path", r.URL.Path)
				err := fmt.Errorf("httpapi: panic: %v", v)
				if endpointGroup(r.URL.Path) == groupSCIM {
					h.scimError(w, r, err) // SCIM clients read SCIM errors only
					return
				}
				h.problem(w, r, err)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers flush through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// principal is the authenticated caller of an admin request.
type principal struct {
	token  store.AdminToken
	origin audit.Origin
}

// origin returns the audit origin of an unauthenticated request.
func (h *handler) origin(r *http.Request) audit.Origin {
	return audit.Origin{
		Source:  audit.Source{IP: h.remoteIP(r), UserAgent: truncate(r.UserAgent(), 256)},
		TraceID: traceOf(r.Context()).traceID,
	}
}

// authenticated checks the bearer admin token and its role, then calls fn.
// Auditors may only use routes that need RoleAuditor.
func (h *handler) authenticated(need store.Role, fn func(http.ResponseWriter, *http.Request, *principal)) http.Handler {
	return h.authenticatedWith(need, h.problem, fn)
}

// authenticatedWith is authenticated answering refusals with fail, so
// that an endpoint family with its own error format (SCIM) shares the
// one token check.
func (h *handler) authenticatedWith(need store.Role, fail func(http.ResponseWriter, *http.Request, error),
	fn func(http.ResponseWriter, *http.Request, *principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := h.origin(r)
		bearer, ok := bearerToken(r)
		if !ok {
			fail(w, r, adminauth.ErrUnauthenticated)
			return
		}
		tok, err := h.p.Auth.Authenticate(r.Context(), o, bearer)
		if err != nil {
			fail(w, r, err)
			return
		}
		o.Actor = audit.Actor{Type: audit.ActorAdmin, ID: tok.ID}
		if err := h.p.Auth.Check(r.Context(), o, tok, need == store.RoleAdmin); err != nil {
			fail(w, r, err)
			return
		}
		fn(w, r, &principal{token: tok, origin: o})
	})
}

// bearerToken returns the credentials of an `Authorization: Bearer …`
// header (RFC 6750 §2.1).
func bearerToken(r *http.Request) (string, bool) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

// remoteIP is the client's address: the TCP peer, or — when the peer is
// one of Params.TrustedProxies — the right-most address of the
// X-Forwarded-For chain that is not itself a trusted proxy. A client
// cannot spoof it by sending the header: entries are only believed as far
// as trusted proxies vouch for them, and a malformed entry stops the walk.
func (h *handler) remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !h.trusted(peer) {
		return host
	}
	client := peer
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0 && h.trusted(client); i-- {
		addr, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = addr
	}
	return client.Unmap().String()
}

// trusted reports whether addr is a configured trusted proxy.
func (h *handler) trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range h.p.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentid_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agentid_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentid_http_auth_rate_limited_total",
			Help: "Requests refused with 429 because their client address failed to authenticate too often (ADR 0022), by endpoint group.",
		}, []string{"group"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.rateLimited} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("httpapi: register metrics: %w", err)
		}
	}
	return m, nil
}
