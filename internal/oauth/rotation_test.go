package oauth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/sdk/resource"
)

// TestRotationWhileIssuing issues tokens minute by minute through a
// scheduled-overlap rotation and verifies each one, and every earlier one
// still alive, with the SDK's resource verifier, which caches the JWKS for
// its Cache-Control max-age: no token ever meets an unknown kid.
func TestRotationWhileIssuing(t *testing.T) {
	e := sqliteEnv(t)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b, _ := e.keys.JWKS()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(e.keys.MaxAge().Seconds())))
		_, _ = w.Write(b)
	}))
	t.Cleanup(jwks.Close)
	v, err := resource.NewVerifier(e.ctx, resource.VerifierParams{
		Issuer: testIssuer, Audience: resourceA, JWKSURL: jwks.URL, Clock: e.clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	type issued struct {
		raw string
		exp time.Time
	}
	var live []issued
	kids := map[string]bool{}
	for minute := range 40 {
		e.clk.Advance(time.Minute)
		if err := e.keys.Refresh(e.ctx); err != nil {
			t.Fatal(err)
		}
		if minute == 5 {
			if _, err := e.keys.Rotate(e.ctx, keys.Origin{ActorType: "admin", ActorID: "adm_tester"}); err != nil {
				t.Fatal(err)
			}
		}
		resp, oerr := e.srv.Token(e.ctx, e.basicRequest("resource", resourceA, "expires_in", "1800"))
		if oerr != nil {
			t.Fatalf("minute %d: %v", minute, oerr)
		}
		live = append(live, issued{resp.AccessToken, e.clk.Now().Add(30 * time.Minute)})
		parsed, err := jwt.ParseSigned(resp.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		kids[parsed.Headers[0].KeyID] = true
		kept := live[:0]
		for _, tok := range live {
			if !e.clk.Now().Before(tok.exp) {
				continue
			}
			c, err := v.Verify(e.ctx, tok.raw)
			if err != nil {
				t.Fatalf("minute %d: a live token does not verify: %v", minute, err)
			}
			_ = c
			kept = append(kept, tok)
		}
		live = kept
	}
	if len(kids) != 2 {
		t.Fatalf("tokens were signed by %d keys, want 2 (one rotation)", len(kids))
	}
}
