package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// BenchmarkLimitFailures measures what the failed-authentication limit
// adds to a request that authenticates (ADR 0022): the address key, the
// limiter's lookup and the status recorder, around a handler that does
// nothing. `off` is the same chain without a limiter, measured in the same
// run; the difference is the limit's cost per request.
func BenchmarkLimitFailures(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	for _, tc := range []struct {
		name    string
		limits  FailedAuthLimits
		failing int // addresses with a partly empty bucket in the table
	}{
		{"off", FailedAuthLimits{}, 0},
		{"on/empty-table", FailedAuthLimits{Rate: 10, Burst: 100}, 0},
		{"on/10k-failing-addresses", FailedAuthLimits{Rate: 10, Burst: 100}, 10_000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l, err := newFailureLimiter(tc.limits)
			if err != nil {
				b.Fatal(err)
			}
			clock := func() time.Time { return time.Unix(1_700_000_000, 0) }
			h := &handler{p: Params{Clock: clock}, limiter: l}
			for i := range tc.failing {
				l.fail("10.1."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256), clock())
			}
			chain := h.limitFailures(ok)
			req := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
			req.RemoteAddr = "192.0.2.7:40000"
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				chain.ServeHTTP(w, req)
			}
		})
	}
}
