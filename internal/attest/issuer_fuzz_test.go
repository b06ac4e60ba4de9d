package attest

import (
	"encoding/base64"
	"testing"
)

// FuzzUnverifiedIssuer feeds arbitrary tokens to the router: it never
// panics, and returns "" for anything but a compact JWS with a string iss.
func FuzzUnverifiedIssuer(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	f.Add(enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(`{"iss":"https://k8s.example"}`)) + "." + enc([]byte("sig")))
	f.Add(enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(`{"iss":"x"}`)) + ".")
	f.Add(enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(`{"iss":7}`)) + "." + enc([]byte("s")))
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, raw string) {
		iss := UnverifiedIssuer(raw)
		if len(raw) > MaxTokenBytes && iss != "" {
			t.Fatalf("an oversized token routed to %q", iss)
		}
		if _, ok := (*Set)(nil).ForToken(raw); ok {
			t.Fatal("a nil Set routed a token")
		}
	})
}
