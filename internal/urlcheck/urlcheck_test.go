package urlcheck

import (
	"net/url"
	"strings"
	"testing"
)

func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true,
		"": false, "0.0.0.0": false, "example.org": false, "localhost.example.org": false, "10.0.0.1": false,
	} {
		if got := Loopback(host); got != want {
			t.Errorf("Loopback(%q) = %v; want %v", host, got, want)
		}
	}
}

func TestHTTPS(t *testing.T) {
	for _, tc := range []struct {
		s      string
		issuer bool
		ok     bool
	}{
		{"https://idp.example.org", true, true},
		{"https://idp.example.org/tenant/v2.0", true, true},
		{"http://127.0.0.1:8080", true, true},
		{"http://localhost/x", true, true},
		{"http://[::1]:9/", true, true},
		{"https://idp.example.org/jwks?x=1", false, true},
		{"https://idp.example.org/?x=1", true, false},
		{"https://idp.example.org#frag", true, false},
		{"https://idp.example.org/#", true, false},
		{"https://idp.example.org/?", true, false},
		{"http://idp.example.org", true, false},
		{"http://idp.example.org", false, false},
		{"https://user:pw@idp.example.org", false, false},
		{"ftp://idp.example.org", false, false},
		{"idp.example.org", false, false},
		{"/relative", false, false},
		{"https:opaque", false, false},
		{"", false, false},
		{"https://%zz", false, false},
	} {
		err := HTTPS(tc.s, tc.issuer)
		if (err == nil) != tc.ok {
			t.Errorf("HTTPS(%q, issuer=%v) = %v; want ok=%v", tc.s, tc.issuer, err, tc.ok)
		}
	}
}

// FuzzHTTPS checks that the rule never panics and that what it accepts is
// an absolute https URL, or http on a loopback host, with no user
// information (and, for an issuer, no query or fragment).
func FuzzHTTPS(f *testing.F) {
	for _, s := range []string{"https://idp.example.org", "http://127.0.0.1:1/x", "http://localhost#", "https://a@b", "https://[::1"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, issuer bool) {
		if HTTPS(s, issuer) != nil {
			return
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.User != nil {
			t.Fatalf("accepted %q: %v", s, err)
		}
		if u.Scheme != "https" && (u.Scheme != "http" || !Loopback(u.Hostname())) {
			t.Fatalf("accepted %q with scheme %q on host %q", s, u.Scheme, u.Hostname())
		}
		if issuer && strings.ContainsAny(s, "?#") {
			t.Fatalf("accepted issuer %q with a query or fragment", s)
		}
	})
}
