package httpapi

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestRemoteIP(t *testing.T) {
	h := &handler{p: Params{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
	}}}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy configured for the peer: header ignored", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer, one hop", "10.0.0.5:443", []string{"198.51.100.1"}, "198.51.100.1"},
		{"chain through two trusted proxies", "10.0.0.5:443", []string{"198.51.100.1, 192.0.2.7"}, "198.51.100.1"},
		{"client-supplied prefix is not believed", "10.0.0.5:443", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
		{"several header lines", "10.0.0.5:443", []string{"6.6.6.6", "198.51.100.1"}, "198.51.100.1"},
		{"malformed hop stops the walk at the last trusted", "10.0.0.5:443", []string{"198.51.100.1, not-an-ip"}, "10.0.0.5"},
		{"no header", "10.0.0.5:443", nil, "10.0.0.5"},
		{"all hops trusted", "10.0.0.5:443", []string{"10.9.9.9"}, "10.9.9.9"},
		{"IPv6 client", "10.0.0.5:443", []string{"2001:db8::1"}, "2001:db8::1"},
		{"IPv4-mapped peer", "[::ffff:10.0.0.5]:443", []string{"198.51.100.1"}, "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/version", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := h.remoteIP(r); got != tt.want {
				t.Fatalf("remoteIP = %q, want %q", got, tt.want)
			}
		})
	}
}
