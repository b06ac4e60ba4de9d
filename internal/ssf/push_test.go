package ssf

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/urlcheck"
)

func TestCheckEndpoint(t *testing.T) {
	s := &Service{p: Params{PushAllowedHosts: []string{"rs.example.org", "*.signals.example.com"}}}
	for _, tt := range []struct {
		url            string
		admin, agentOK bool
	}{
		{"https://rs.example.org/events", true, true},
		{"https://RS.example.org:8443/events?x=1", true, true},
		{"https://a.signals.example.com/e", true, true},
		{"https://signals.example.com/e", true, false}, // *.domain is subdomains only
		{"https://evil-signals.example.com/e", true, false},
		{"https://other.example.org/e", true, false},
		{"http://127.0.0.1:9000/e", true, false},
		{"http://localhost/e", true, false},
		{"http://rs.example.org/e", false, false}, // http off loopback
		{"https://user:pw@rs.example.org/e", false, false},
		{"https://rs.example.org/e#frag", false, false},
		{"ftp://rs.example.org/e", false, false},
		{"/relative", false, false},
		{"", false, false},
		{"https://rs.example.org/" + strings.Repeat("a", MaxEndpointURL), false, false},
	} {
		if err := s.checkEndpoint(tt.url, true); (err == nil) != tt.admin {
			t.Errorf("checkEndpoint(%q, admin) = %v; want ok %v", tt.url, err, tt.admin)
		}
		err := s.checkEndpoint(tt.url, false)
		if (err == nil) != tt.agentOK {
			t.Errorf("checkEndpoint(%q, receiver) = %v; want ok %v", tt.url, err, tt.agentOK)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("checkEndpoint(%q) error %v is not ErrInvalid", tt.url, err)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		code                  int
		retryAfter, body      string
		refused, failed       bool
		wantRetry             time.Duration
		reasonHas, reasonLack string
	}{
		{code: 202},
		{code: 200},
		{code: 400, body: `{"err":"invalid_key","description":"unknown kid"}`, refused: true, reasonHas: "invalid_key: unknown kid"},
		{code: 400, body: `{"err":"invalid_audience"}`, refused: true, reasonHas: "SET ssf_a.7 refused: invalid_audience"},
		{code: 400, body: `{"err":"authentication_failed"}`, failed: true, reasonHas: "refused the transmitter"},
		{code: 400, body: `{"err":"access_denied"}`, failed: true},
		{code: 400, body: `not json`, failed: true, reasonHas: "without an RFC 8935 error"},
		{code: 400, body: `{"err":"invalid_request","description":"a\nb\u0000c"}`, refused: true, reasonHas: "a b c"},
		{code: 401, failed: true, reasonHas: "authorization header"},
		{code: 403, failed: true},
		{code: 404, failed: true, reasonHas: "HTTP 404"},
		{code: 302, failed: true},
		{code: 429, retryAfter: "30", failed: true, wantRetry: 30 * time.Second},
		{code: 503, retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT", failed: true},
		{code: 500, retryAfter: "-5", failed: true},
	} {
		r := classify(tt.code, tt.retryAfter, []byte(tt.body), "ssf_a.7")
		reason := r.refused + r.failed
		if (r.refused != "") != tt.refused || (r.failed != "") != tt.failed || r.retryAfter != tt.wantRetry {
			t.Errorf("classify(%d, %q, %q) = %+v", tt.code, tt.retryAfter, tt.body, r)
		}
		if !strings.Contains(reason, tt.reasonHas) {
			t.Errorf("classify(%d, %q) reason %q lacks %q", tt.code, tt.body, reason, tt.reasonHas)
		}
	}
}

func TestBackoffAndRecord(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second,
		9: 256 * time.Second, 10: MaxPushBackoff, 50: MaxPushBackoff} {
		if got := backoff(n, 0); got != want {
			t.Errorf("backoff(%d) = %v; want %v", n, got, want)
		}
	}
	if got := backoff(1, time.Minute); got != time.Minute {
		t.Errorf("backoff with Retry-After 60 s = %v", got)
	}
	if got := backoff(1, time.Hour); got != MaxPushBackoff {
		t.Errorf("backoff with Retry-After 1 h = %v; want the cap", got)
	}

	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s := &Service{p: Params{Clock: func() time.Time { return now }}}
	var st store.SSFStream
	if s.record(&st, pushOutcome{}) {
		t.Error("record of no outcome changed the stream")
	}
	s.record(&st, pushOutcome{failed: "HTTP 503"})
	s.record(&st, pushOutcome{failed: "HTTP 503", retryAfter: 10 * time.Second})
	if st.PushFailures != 2 || st.LastPushError != "HTTP 503" || !st.NextPushAt.Equal(now.Add(10*time.Second)) {
		t.Errorf("after two failures: %+v", st)
	}
	s.record(&st, pushOutcome{delivered: true, refused: "SET x refused: invalid_key"})
	if st.PushFailures != 0 || !st.NextPushAt.IsZero() || st.LastPushError != "SET x refused: invalid_key" || !st.LastPushAt.Equal(now) {
		t.Errorf("after a delivery and a refusal: %+v", st)
	}
	s.record(&st, pushOutcome{delivered: true})
	if st.LastPushError != "" {
		t.Errorf("after a clean delivery LastPushError = %q", st.LastPushError)
	}
}

// FuzzCheckEndpoint: an endpoint_url a receiver sends is accepted only
// as an absolute https URL (http on loopback) without user information
// or fragment, on an allowed host; never a panic.
func FuzzCheckEndpoint(f *testing.F) {
	for _, u := range []string{"https://rs.example.org/e", "http://127.0.0.1:1/e", "https://a.b.example.org",
		"https://[::1]:80/", "http://[::1]/", "https://rs.example.org#x", "https://u@rs.example.org/", "%zz", ""} {
		f.Add(u, false)
	}
	s := &Service{p: Params{PushAllowedHosts: []string{"rs.example.org", "*.example.org"}}}
	f.Fuzz(func(t *testing.T, raw string, admin bool) {
		if s.checkEndpoint(raw, admin) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.User != nil || u.Fragment != "" || len(raw) > MaxEndpointURL {
			t.Fatalf("accepted %q", raw)
		}
		if u.Scheme != "https" && (u.Scheme != "http" || !urlcheck.Loopback(u.Hostname())) {
			t.Fatalf("accepted %q with scheme %q", raw, u.Scheme)
		}
		if !admin && !s.pushAllowed(u.Hostname()) {
			t.Fatalf("accepted %q for a receiver", raw)
		}
		if _, err := http.NewRequest(http.MethodPost, raw, nil); err != nil {
			t.Fatalf("accepted %q, which net/http refuses: %v", raw, err)
		}
	})
}

// FuzzClassify: a receiver's answer is never mistaken for a success
// unless its status is 2xx, and the kept reason stays printable and
// bounded; never a panic.
func FuzzClassify(f *testing.F) {
	f.Add(400, "", []byte(`{"err":"invalid_key","description":"x"}`))
	f.Add(503, "120", []byte(""))
	f.Add(202, "", []byte("{}"))
	f.Fuzz(func(t *testing.T, code int, retryAfter string, body []byte) {
		r := classify(code, retryAfter, body, "ssf_a.1")
		ok := r.failed == "" && r.refused == ""
		if ok != (code >= 200 && code < 300) {
			t.Fatalf("classify(%d) = %+v", code, r)
		}
		reason := r.failed + r.refused
		if len(reason) > 3*maxPushReason+64 || strings.ContainsFunc(reason, func(r rune) bool { return r < 0x20 }) ||
			!utf8.ValidString(reason) && utf8.ValidString(string(body)) {
			t.Fatalf("reason %q", reason)
		}
		if r.retryAfter < 0 || r.retryAfter > (1<<20)*time.Second {
			t.Fatalf("retryAfter %v", r.retryAfter)
		}
	})
}
