package httpapi

import (
	"container/list"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/scim"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// Limits on failed authentications per client address (ADR 0022). Every
// failed authentication costs a credential check and a durable audit
// event; a token bucket per client address bounds how many an address may
// cause. Successful requests neither take from the bucket nor are refused
// while it holds a token. When it is empty, the address's requests to the
// authenticated endpoints are answered 429 with Retry-After before any
// credential is looked at, and one auth.rate_limited event records that
// the address is limited. The state lives in this process's memory: each
// replica limits on its own.

// DefaultMaxAddresses bounds the addresses a limiter tracks unless
// FailedAuthLimits says otherwise.
const DefaultMaxAddresses = 100_000

// EventRateLimited is the type of the audit event recording that a client
// address is refused for failing to authenticate too often (family
// authentication, outcome failure, decision deny). It is written once per
// address and limited period: from the first refused request until the
// address's bucket is full again.
const EventRateLimited = "auth.rate_limited"

// FailedAuthLimits configures the limit on failed authentications per
// client address. The zero value turns it off.
type FailedAuthLimits struct {
	// Rate is how many failed authentications per second an address's
	// bucket regains; 0 turns the limit off.
	Rate float64
	// Burst is the bucket's size: the failures an address may make in a
	// row before it is refused. At least 1 when Rate is set.
	Burst int
	// MaxAddresses bounds the addresses tracked at once (0:
	// DefaultMaxAddresses); past it the least recently failing address
	// is forgotten.
	MaxAddresses int
}

// Recorder writes an audit event in its own transaction
// (*audit.Recorder).
type Recorder interface {
	Record(ctx context.Context, ev audit.Event) (store.AuditRecord, error)
}

var _ Recorder = (*audit.Recorder)(nil)

// eventTimeout bounds the writing of an auth.rate_limited event.
const eventTimeout = 5 * time.Second

// Endpoint groups, the label of the refused-requests metric and a detail
// of the audit event.
const (
	groupOAuth   = "oauth"
	groupAdmin   = "admin"
	groupAuthZEN = "authzen"
	groupNode    = "node_attest"
	groupSCIM    = "scim"
	groupSSF     = "ssf"
)

// endpointGroup returns the group of the endpoints that authenticate
// their caller, or "" for an unauthenticated endpoint that is never
// limited (health, metrics, discovery, JWKS, bundle, version).
func endpointGroup(path string) string {
	switch {
	case path == oauth.TokenPath, path == oauth.IntrospectPath, path == oauth.RevokePath:
		return groupOAuth
	case path == admin.NodeAttestPath:
		return groupNode
	case strings.HasPrefix(path, "/access/v1/"):
		return groupAuthZEN
	case path == scimRoot || strings.HasPrefix(path, scimRoot+"/"):
		return groupSCIM
	case strings.HasPrefix(path, "/ssf/"):
		return groupSSF
	case path == "/v1/version":
		return ""
	case strings.HasPrefix(path, "/v1/"):
		return groupAdmin
	}
	return ""
}

// addressKey is the limiter's key of a client address: an IPv4 address
// itself, an IPv6 address its /64 (one site's, or one host's, usual
// allocation). Anything else (not expected from remoteIP) is keyed by
// its first 64 bytes.
func addressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return truncate(ip, 64)
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// failureLimiter is a table of token buckets by address key, at most
// maxKeys of them, the least recently failing evicted first. Only
// failures create entries; an entry whose bucket has refilled is dropped
// when next seen. Safe for concurrent use.
type failureLimiter struct {
	rate    float64
	burst   float64
	maxKeys int

	mu      sync.Mutex
	entries map[string]*list.Element // of *bucket
	lru     list.List                // front: most recent failure
}

type bucket struct {
	key     string
	tokens  float64
	at      time.Time // of the last refill
	limited bool      // a refusal was announced since the bucket was last full
}

func newFailureLimiter(l FailedAuthLimits) (*failureLimiter, error) {
	switch {
	case math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) || l.Rate < 0:
		return nil, fmt.Errorf("httpapi: FailedAuth.Rate %v must be a finite number, 0 or more", l.Rate)
	case l.Rate == 0:
		return nil, nil
	case l.Burst < 1:
		return nil, fmt.Errorf("httpapi: FailedAuth.Burst %d must be at least 1", l.Burst)
	case l.MaxAddresses < 0:
		return nil, fmt.Errorf("httpapi: FailedAuth.MaxAddresses %d must not be negative", l.MaxAddresses)
	}
	if l.MaxAddresses == 0 {
		l.MaxAddresses = DefaultMaxAddresses
	}
	return &failureLimiter{rate: l.Rate, burst: float64(l.Burst), maxKeys: l.MaxAddresses,
		entries: map[string]*list.Element{}}, nil
}

// refill adds the tokens earned since b.at; a clock that went back earns
// none.
func (l *failureLimiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
	}
	b.at = now
}

// allow reports whether a request from key may be served. When it may
// not, wait is how long until the bucket holds a token again, and
// announce is true for the first refusal of the limited period.
func (l *failureLimiter) allow(key string, now time.Time) (ok bool, wait time.Duration, announce bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, found := l.entries[key]
	if !found {
		return true, 0, false
	}
	b := e.Value.(*bucket)
	l.refill(b, now)
	if b.tokens >= l.burst {
		// Full: nothing to remember, and the limited period is over.
		l.lru.Remove(e)
		delete(l.entries, key)
		return true, 0, false
	}
	if b.tokens >= 1 {
		return true, 0, false
	}
	wait = time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	announce = !b.limited
	b.limited = true
	return false, wait, announce
}

// fail takes a token from key's bucket (a new one starts full), evicting
// the least recently failing address when the table is full.
func (l *failureLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, found := l.entries[key]
	if !found {
		for l.lru.Len() >= l.maxKeys {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.entries, old.Value.(*bucket).key)
		}
		e = l.lru.PushFront(&bucket{key: key, tokens: l.burst, at: now})
		l.entries[key] = e
	} else {
		l.lru.MoveToFront(e)
	}
	b := e.Value.(*bucket)
	l.refill(b, now)
	b.tokens = max(0, b.tokens-1)
}

// len is the number of addresses tracked.
func (l *failureLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// authRecorder notes the status of an answer and whether the handler
// marked it a failed authentication (noteAuthFailure).
type authRecorder struct {
	http.ResponseWriter
	status int
	failed bool
}

func (a *authRecorder) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *authRecorder) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a.ResponseWriter.Write(b)
}

// Flush lets streaming handlers flush through the recorder.
func (a *authRecorder) Flush() {
	if f, ok := a.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (a *authRecorder) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// noteAuthFailure marks the answer being written on w as a failed
// authentication for the limiter, for failures that are not a 401 (an
// invalid_client answered 400, RFC 6749 §5.2). Without a limiter it does
// nothing.
func noteAuthFailure(w http.ResponseWriter) {
	for {
		if a, ok := w.(*authRecorder); ok {
			a.failed = true
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// limitFailures refuses, with 429, the requests to authenticated
// endpoints from an address whose bucket is empty, and takes a token for
// every answer that is a failed authentication: a 401, or an answer
// marked with noteAuthFailure. Without a limiter it returns next.
func (h *handler) limitFailures(next http.Handler) http.Handler {
	if h.limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		group := endpointGroup(r.URL.Path)
		if group == "" {
			next.ServeHTTP(w, r)
			return
		}
		key := addressKey(h.remoteIP(r))
		ok, wait, announce := h.limiter.allow(key, h.p.Clock())
		if !ok {
			h.refuse(w, r, group, key, wait, announce)
			return
		}
		rec := &authRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.failed || rec.status == http.StatusUnauthorized {
			h.limiter.fail(key, h.p.Clock())
		}
	})
}

// refuse answers 429 with Retry-After (whole seconds, rounded up) in the
// group's error format, and records the auth.rate_limited event when
// announce is set. A failure to record it is logged; the request is
// refused either way.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, group, key string, wait time.Duration, announce bool) {
	secs := max(1, int64(math.Ceil(wait.Seconds())))
	h.m.rateLimited.WithLabelValues(group).Inc()
	if _, pattern := h.mux.Handler(r); pattern != "" {
		r.Pattern = pattern // the route label of the request metrics
	}
	if announce {
		ev := h.origin(r).Event(audit.Authentication, EventRateLimited)
		ev.Time, ev.Outcome, ev.Decision = h.p.Clock(), audit.Failure, audit.DecisionDeny
		ev.Reason = "too many failed authentications from this address"
		ev.Details = map[string]any{"address": key, "endpoint_group": group,
			"rate": h.limiter.rate, "burst": int64(h.limiter.burst), "retry_after_s": secs}
		// Not cancelled with the request: a client that hangs up at once
		// must not erase the period's only event.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), eventTimeout)
		_, err := h.p.Recorder.Record(ctx, ev)
		cancel()
		if err != nil {
			h.p.Logger.ErrorContext(r.Context(), "record the rate limiting of an address", "err", err,
				"address", key, "group", group, "trace_id", traceOf(r.Context()).traceID)
		}
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	detail := fmt.Sprintf("too many failed authentications from this address; retry after %d seconds", secs)
	switch group {
	case groupOAuth:
		// RFC 6749 §5.2 has no code for this; temporarily_unavailable is
		// the registered one other servers answer with 429 (ADR 0022).
		h.reply(w, http.StatusTooManyRequests, struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}{oauth.CodeTemporarilyUnavailable, detail})
	case groupSCIM:
		h.scimError(w, r, &scim.Error{Status: http.StatusTooManyRequests, Detail: detail})
	default:
		if group == groupAuthZEN {
			echoRequestID(w, r)
		}
		h.problem(w, r, &requestError{status: http.StatusTooManyRequests, typ: admin.ProblemRateLimited,
			title: "Too many failed authentications", detail: detail})
	}
}
