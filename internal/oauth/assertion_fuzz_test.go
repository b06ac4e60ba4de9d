package oauth

import (
	"net/http"
	"testing"
	"time"
)

// FuzzClientAssertion parses arbitrary client assertions and applies the
// claim checks to whatever parses: a 4xx OAuth error or success, never a
// panic.
func FuzzClientAssertion(f *testing.F) {
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJhZ3RfMSIsInN1YiI6ImFndF8xIiwiYXVkIjoiaHR0cHM6Ly9hcy5leGFtcGxlLm9yZyIsImV4cCI6MTg5MzU1MzUwNSwianRpIjoieCJ9.AAAA")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.AAAA")
	f.Add("a.b.c.d.e")
	f.Add("")
	s := &Server{issuer: "https://as.example.org", tokenURL: "https://as.example.org/oauth2/token"}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		_, claims, e := parseAssertion(raw)
		if e == nil {
			e = s.checkAssertionClaims(claims, claims.Issuer, now)
		}
		if e != nil && (e.Code != CodeInvalidClient || e.Status != http.StatusBadRequest) {
			t.Fatalf("error %v", e)
		}
	})
}
