package dpop_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/dpop"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

func TestNewSigner(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]crypto.Signer{"nil": nil, "P-384": p384, "RSA": newRSA(t, 2048)} {
		if _, err := dpop.NewSigner(key); err == nil {
			t.Errorf("NewSigner(%s) succeeded", name)
		}
	}
	for _, tc := range []struct {
		key crypto.Signer
		alg string
	}{{newP256(t), "ES256"}, {newEd25519(t), "EdDSA"}} {
		s, err := dpop.NewSigner(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		if s.Algorithm() != tc.alg {
			t.Errorf("Algorithm = %q, want %q", s.Algorithm(), tc.alg)
		}
		if want := thumbprint(t, publicJWK(t, tc.key)); s.Thumbprint() != want {
			t.Errorf("Thumbprint = %q, want %q", s.Thumbprint(), want)
		}
	}
}

// publicOnly is a crypto.Signer that only knows a public key: enough to
// compute a thumbprint.
type publicOnly struct{ pub crypto.PublicKey }

func (p publicOnly) Public() crypto.PublicKey { return p.pub }
func (publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	panic("not a signing key")
}

// TestThumbprintRFC9449: the key and jkt of the examples of RFC 9449 §4.1
// and §6.1.
func TestThumbprintRFC9449(t *testing.T) {
	x, _ := b64.DecodeString("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs")
	y, _ := b64.DecodeString("9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA")
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(publicOnly{pub})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Thumbprint(), "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"; got != want {
		t.Fatalf("Thumbprint = %q, want %q", got, want)
	}
}

// TestProofVerifiedByGoJose checks the Signer's proofs with go-jose alone.
func TestProofVerifiedByGoJose(t *testing.T) {
	for _, key := range []crypto.Signer{newP256(t), newEd25519(t)} {
		s, err := dpop.NewSigner(key)
		if err != nil {
			t.Fatal(err)
		}
		proof, err := s.Proof("GET", "https://rs.example.com/api/tickets?page=2#top",
			dpop.ProofParams{AccessToken: testToken, Nonce: "n-1", Now: testNow, JTI: "j-1"})
		if err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(s.Algorithm())})
		if err != nil {
			t.Fatal(err)
		}
		h := jws.Signatures[0].Protected
		if h.ExtraHeaders["typ"] != "dpop+jwt" || h.Algorithm != s.Algorithm() || h.KeyID != "" {
			t.Fatalf("header = %+v", h)
		}
		if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
			t.Fatal("no public jwk header")
		}
		payload, err := jws.Verify(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(payload, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"jti": "j-1", "htm": "GET", "htu": "https://rs.example.com/api/tickets",
			"iat": float64(testNow.Unix()), "ath": athOf(testToken), "nonce": "n-1",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("claims (-want +got):\n%s", diff)
		}
		var raw map[string]json.RawMessage
		head, _, _ := strings.Cut(proof, ".")
		hb, _ := b64.DecodeString(head)
		if err := json.Unmarshal(hb, &raw); err != nil {
			t.Fatal(err)
		}
		var jwk map[string]any
		if err := json.Unmarshal(raw["jwk"], &jwk); err != nil {
			t.Fatal(err)
		}
		if _, private := jwk["d"]; private {
			t.Fatal("the jwk header holds the private key")
		}
		if diff := cmp.Diff(publicJWK(t, key), jwk); diff != "" {
			t.Fatalf("jwk (-want +got):\n%s", diff)
		}
	}
}

func TestProofDefaults(t *testing.T) {
	s, err := dpop.NewSigner(newEd25519(t))
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	a, err := s.Proof("POST", testURL, dpop.ProofParams{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Proof("POST", testURL, dpop.ProofParams{})
	if err != nil {
		t.Fatal(err)
	}
	pa, err := dpop.Verify(a, dpop.VerifyParams{Method: "POST", URL: testURL})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := dpop.Verify(b, dpop.VerifyParams{Method: "POST", URL: testURL})
	if err != nil {
		t.Fatal(err)
	}
	if pa.JTI == pb.JTI || len(pa.JTI) < 20 {
		t.Fatalf("jti %q and %q: want distinct random ids", pa.JTI, pb.JTI)
	}
	if pa.IssuedAt.Before(before) || pa.Thumbprint != s.Thumbprint() {
		t.Fatalf("proof = %+v", pa)
	}
}

func TestProofRejectsBadInput(t *testing.T) {
	s, err := dpop.NewSigner(newP256(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ method, url string }{
		{"", testURL}, {"GET", "/relative"}, {"GET", "ftp://x/y"}, {"GET", "http://%zz"}, {"GET", "https://"},
	} {
		if _, err := s.Proof(tc.method, tc.url, dpop.ProofParams{}); err == nil {
			t.Errorf("Proof(%q, %q) succeeded", tc.method, tc.url)
		}
	}
}

func TestReplayCache(t *testing.T) {
	c := dpop.NewReplayCache(2)
	exp := testNow.Add(time.Minute)
	steps := []struct {
		jti  string
		exp  time.Time
		now  time.Time
		want bool
	}{
		{"a", exp, testNow, true},
		{"a", exp, testNow.Add(time.Second), false},
		{"b", exp.Add(time.Second), testNow, true},
		{"c", exp, testNow, false}, // full: fail closed
		{"d", testNow, testNow, true},
		{"a", exp, exp, true}, // a expired: usable again, b still held
		{"b", exp, exp, false},
		{"c", exp.Add(time.Hour), exp.Add(2 * time.Second), true},
	}
	for i, s := range steps {
		if got := c.Use(s.jti, s.exp, s.now); got != s.want {
			t.Fatalf("step %d: Use(%q) = %v, want %v", i, s.jti, got, s.want)
		}
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d, want 1 (a and b expired)", c.Len())
	}
}

func TestReplayCacheConcurrent(t *testing.T) {
	c := dpop.NewReplayCache(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := map[string]int{}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				jti := string(rune('a' + (i+g)%26))
				if c.Use(jti, testNow.Add(time.Minute), testNow) {
					mu.Lock()
					firsts[jti]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for jti, n := range firsts {
		if n != 1 {
			t.Errorf("jti %q accepted %d times", jti, n)
		}
	}
	if len(firsts) != 26 {
		t.Errorf("%d ids accepted, want 26", len(firsts))
	}
}
