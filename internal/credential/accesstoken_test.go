package credential_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/golden"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
)

const issuer = "https://as.example.org"

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newIssuer(t testing.TB, alg string) (*credential.Issuer, *keys.Manager) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Params{Path: filepath.Join(t.TempDir(), "agentid.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	root, err := keys.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m, err := keys.NewManager(context.Background(), keys.ManagerParams{
		Store: st, Root: root, Purpose: "oauth", Algorithm: alg, MaxTokenTTL: time.Hour,
		Clock: func() time.Time { return epoch }, Rand: mrand.NewChaCha8([32]byte{7}),
	})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := credential.NewIssuer(issuer, m, mrand.NewChaCha8([32]byte{9}))
	if err != nil {
		t.Fatal(err)
	}
	return iss, m
}

var agent = store.Agent{ID: "agt_01hqz8k3m4n5p6q7r8s9t0v1w2", Name: "ticket-triage", SPIFFEID: "spiffe://example.org/agent/ticket-triage"}

// decode returns the header and claims of a compact JWS, pretty-printed.
func decode(t *testing.T, raw string) []byte {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	var out bytes.Buffer
	for _, p := range parts[:2] {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Indent(&out, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// TestAccessTokenGolden pins the claim set of docs/tokens.md.
func TestAccessTokenGolden(t *testing.T) {
	iss, m := newIssuer(t, keys.ES256)
	tests := []struct {
		name string
		p    credential.AccessTokenParams
	}{
		{"bearer", credential.AccessTokenParams{
			Agent: agent, Audience: []string{"https://api.example.org"}, Scopes: []string{"tickets:read", "tickets:write"},
			IssuedAt: epoch, TTL: 5 * time.Minute, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", ReasoningRef: "plan:42",
		}},
		{"dpop_two_audiences", credential.AccessTokenParams{
			Agent: agent, Audience: []string{"https://api.example.org", "https://db.example.org"},
			IssuedAt: epoch, TTL: time.Minute, Instance: "ins_01hqz8k3m4n5p6q7r8s9t0v1w2",
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := iss.IssueAccessToken(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			// The kid is random; the golden file pins everything else.
			golden.Check(t, "token_"+tc.name, bytes.Replace(decode(t, tok.Raw), []byte(tok.KeyID), []byte("<kid>"), 1))
			// An independent parser verifies the signature with the
			// published key.
			parsed, err := jwt.ParseSigned(tok.Raw, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			pub, _, ok := m.PublicKey(tok.KeyID)
			if !ok {
				t.Fatal("key not published")
			}
			var c jwt.Claims
			if err := parsed.Claims(pub, &c); err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(jwt.Expected{Issuer: issuer, AnyAudience: tc.p.Audience, Time: epoch}); err != nil {
				t.Error(err)
			}
			back, err := iss.ParseAccessToken(tok.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if back.JTI != tok.Claims.JTI || back.Expiry != tok.Claims.Expiry || len(back.Audience) != len(tc.p.Audience) {
				t.Errorf("parsed claims %+v, issued %+v", back, tok.Claims)
			}
		})
	}
}

func TestAccessTokenEdDSA(t *testing.T) {
	iss, m := newIssuer(t, keys.EdDSA)
	tok, err := iss.IssueAccessToken(credential.AccessTokenParams{Agent: agent, Audience: []string{"a"}, IssuedAt: epoch, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok.Raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := m.PublicKey(tok.KeyID)
	var c jwt.Claims
	if err := parsed.Claims(pub, &c); err != nil {
		t.Fatal(err)
	}
}

func TestParseAccessTokenRejects(t *testing.T) {
	iss, _ := newIssuer(t, keys.ES256)
	other, _ := newIssuer(t, keys.ES256)
	good, err := iss.IssueAccessToken(credential.AccessTokenParams{Agent: agent, Audience: []string{"a"}, IssuedAt: epoch, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.IssueAccessToken(credential.AccessTokenParams{Agent: agent, Audience: []string{"a"}, IssuedAt: epoch, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good.Raw, ".")
	enc := base64.RawURLEncoding
	reheader := func(h string) string { return enc.EncodeToString([]byte(h)) + "." + parts[1] + "." + parts[2] }
	tampered := parts[0] + "." + enc.EncodeToString([]byte(`{"iss":"`+issuer+`","sub":"x","client_id":"agt_x","jti":"j","exp":9999999999}`)) + "." + parts[2]
	for name, raw := range map[string]string{
		"garbage":     "abc",
		"foreign key": foreign.Raw,
		"tampered":    tampered,
		"alg none":    reheader(`{"alg":"none","kid":"`+good.KeyID+`","typ":"at+jwt"}`) + "",
		"wrong typ":   reheader(`{"alg":"ES256","kid":"` + good.KeyID + `","typ":"JWT"}`),
		"oversized":   strings.Repeat("a", credential.MaxTokenBytes+1),
	} {
		if _, err := iss.ParseAccessToken(raw); !errors.Is(err, credential.ErrInvalidToken) {
			t.Errorf("%s: err = %v, want ErrInvalidToken", name, err)
		}
	}
}

func FuzzParseAccessToken(f *testing.F) {
	iss, _ := newIssuer(f, keys.ES256)
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := iss.ParseAccessToken(raw); err != nil && !errors.Is(err, credential.ErrInvalidToken) {
			t.Errorf("error %v is not ErrInvalidToken", err)
		}
	})
}
