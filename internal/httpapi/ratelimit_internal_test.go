package httpapi

import (
	"math"
	"strconv"
	"testing"
	"time"
)

func TestAddressKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"pipe", "pipe"},
	} {
		if got := addressKey(tc.in); got != tc.want {
			t.Errorf("addressKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEndpointGroup(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/oauth2/token", groupOAuth},
		{"/oauth2/introspect", groupOAuth},
		{"/oauth2/revoke", groupOAuth},
		{"/v1/agents", groupAdmin},
		{"/v1/me/grants", groupAdmin},
		{"/v1/node/attest", groupNode},
		{"/access/v1/evaluation", groupAuthZEN},
		{"/access/v1/search/subject", groupAuthZEN},
		{"/scim/v2/Users", groupSCIM},
		{"/scim/v2", groupSCIM},
		{"/scim/v2x", ""},
		{"/ssf/stream", groupSSF},
		{"/ssf/poll/ssf_01", groupSSF},
		{"/v1/version", ""},
		{"/healthz", ""},
		{"/metrics", ""},
		{"/.well-known/openid-configuration", ""},
		{"/spiffe/bundle", ""},
	} {
		if got := endpointGroup(tc.path); got != tc.want {
			t.Errorf("endpointGroup(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestNewFailureLimiterChecksLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		l       FailedAuthLimits
		wantErr bool
		wantNil bool
	}{
		{"zero value is off", FailedAuthLimits{}, false, true},
		{"rate 0 is off whatever the burst", FailedAuthLimits{Burst: 5}, false, true},
		{"negative rate", FailedAuthLimits{Rate: -1, Burst: 5}, true, false},
		{"NaN rate", FailedAuthLimits{Rate: math.NaN(), Burst: 5}, true, false},
		{"infinite rate", FailedAuthLimits{Rate: math.Inf(1), Burst: 5}, true, false},
		{"no burst", FailedAuthLimits{Rate: 1}, true, false},
		{"negative max", FailedAuthLimits{Rate: 1, Burst: 1, MaxAddresses: -1}, true, false},
		{"fractional rate", FailedAuthLimits{Rate: 0.5, Burst: 1}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := newFailureLimiter(tc.l)
			if (err != nil) != tc.wantErr || (l == nil) != (tc.wantNil || tc.wantErr) {
				t.Errorf("newFailureLimiter(%+v) = %v, %v", tc.l, l, err)
			}
		})
	}
	l, err := newFailureLimiter(FailedAuthLimits{Rate: 1, Burst: 1})
	if err != nil || l.maxKeys != DefaultMaxAddresses {
		t.Errorf("default MaxAddresses: %v, %v", l, err)
	}
}

// TestFailureLimiterBucket walks one address through a limited period on
// a fake clock.
func TestFailureLimiterBucket(t *testing.T) {
	l, err := newFailureLimiter(FailedAuthLimits{Rate: 2, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	allow := func(wantOK bool, wantWait time.Duration, wantAnnounce bool) {
		t.Helper()
		ok, wait, announce := l.allow("192.0.2.1", now)
		if ok != wantOK || wait != wantWait || announce != wantAnnounce {
			t.Fatalf("allow = %v, %v, %v; want %v, %v, %v", ok, wait, announce, wantOK, wantWait, wantAnnounce)
		}
	}
	allow(true, 0, false) // unknown address
	if l.len() != 0 {
		t.Fatal("allow created an entry")
	}
	for range 3 {
		allow(true, 0, false)
		l.fail("192.0.2.1", now)
	}
	allow(false, 500*time.Millisecond, true) // empty: the first refusal is announced
	allow(false, 500*time.Millisecond, false)
	if ok, _, _ := l.allow("192.0.2.2", now); !ok {
		t.Fatal("another address is refused")
	}
	now = now.Add(250 * time.Millisecond)
	allow(false, 250*time.Millisecond, false)
	now = now.Add(250 * time.Millisecond)
	allow(true, 0, false) // one token back
	l.fail("192.0.2.1", now)
	allow(false, 500*time.Millisecond, false) // same limited period: not announced again
	now = now.Add(time.Hour)
	allow(true, 0, false) // full again: forgotten, the period is over
	if l.len() != 0 {
		t.Fatalf("a full bucket is kept: %d entries", l.len())
	}
	for range 3 {
		l.fail("192.0.2.1", now)
	}
	allow(false, 500*time.Millisecond, true) // a new period is announced
	// A clock that goes back earns nothing and breaks nothing.
	now = now.Add(-time.Minute)
	allow(false, 500*time.Millisecond, false)
}

// TestFailureLimiterBounded fails from many more addresses than the table
// holds: it keeps the most recent ones and never grows past its bound.
func TestFailureLimiterBounded(t *testing.T) {
	const maxKeys = 64
	l, err := newFailureLimiter(FailedAuthLimits{Rate: 1, Burst: 1, MaxAddresses: maxKeys})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	for i := range 10_000 {
		l.fail("10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256), now)
		if n := l.len(); n > maxKeys {
			t.Fatalf("after %d addresses the table holds %d", i+1, n)
		}
	}
	if len(l.entries) != maxKeys || l.len() != maxKeys {
		t.Fatalf("table %d, list %d; want %d", len(l.entries), l.len(), maxKeys)
	}
	if ok, _, _ := l.allow("10.0.39.15", now); ok { // the last address (9999)
		t.Error("the most recent address was evicted")
	}
	if ok, _, _ := l.allow("10.0.0.0", now); !ok {
		t.Error("the oldest address was kept")
	}
}
