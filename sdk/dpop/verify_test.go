package dpop_test

import (
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/dpop"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

var testNow = time.Unix(1_700_000_000, 0)

const (
	testURL   = "https://server.example.com/token"
	testToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
)

func baseParams() dpop.VerifyParams {
	return dpop.VerifyParams{Method: "POST", URL: testURL + "?q=1#f", Now: testNow}
}

func TestVerifyRejects(t *testing.T) {
	ec, ed, rsaKey, other := newP256(t), newEd25519(t), newRSA(t, 2048), newP256(t)
	small := newRSA(t, 1024)
	longJTI := strings.Repeat("j", 257)
	tests := []struct {
		name   string
		alg    string // default ES256
		key    any    // signing key, default ec
		header func(h map[string]any)
		claims func(c map[string]any)
		proof  func(p string) string
		params func(p *dpop.VerifyParams)
		want   error
	}{
		{name: "too large", params: func(p *dpop.VerifyParams) { p.MaxBytes = 100 }, want: dpop.ErrInvalidProof},
		{name: "empty", proof: func(string) string { return "" }, want: dpop.ErrInvalidProof},
		{name: "two parts", proof: func(p string) string { return p[:strings.LastIndex(p, ".")] }, want: dpop.ErrInvalidProof},
		{name: "four parts", proof: func(p string) string { return p + ".x" }, want: dpop.ErrInvalidProof},
		{name: "JSON serialization", proof: func(string) string { return `{"payload":"e30","protected":"e30","signature":"e30"}` }, want: dpop.ErrInvalidProof},
		{name: "header not base64", proof: func(p string) string { return "!!" + p[strings.Index(p, "."):] }, want: dpop.ErrInvalidProof},
		{name: "header not JSON", proof: func(p string) string { return b64.EncodeToString([]byte("[1]")) + p[strings.Index(p, "."):] }, want: dpop.ErrInvalidProof},
		{name: "no typ", header: func(h map[string]any) { delete(h, "typ") }, want: dpop.ErrInvalidProof},
		{name: "typ jwt", header: func(h map[string]any) { h["typ"] = "JWT" }, want: dpop.ErrInvalidProof},
		{name: "typ at+jwt", header: func(h map[string]any) { h["typ"] = "at+jwt" }, want: dpop.ErrInvalidProof},
		{name: "alg none", alg: "none", header: func(h map[string]any) { h["alg"] = "none" }, want: dpop.ErrInvalidProof},
		{name: "alg none with a signature", alg: "ES256", header: func(h map[string]any) { h["alg"] = "none" }, want: dpop.ErrInvalidProof},
		{name: "alg HS256 keyed with the jwk", alg: "HS256", key: []byte(`{"kty":"EC"}`), header: func(h map[string]any) { h["alg"] = "HS256" }, want: dpop.ErrInvalidProof},
		{name: "alg HS256 even when listed", alg: "HS256", key: []byte("0123456789abcdef0123456789abcdef"),
			header: func(h map[string]any) {
				h["alg"] = "HS256"
				h["jwk"] = map[string]any{"kty": "oct", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}
			},
			params: func(p *dpop.VerifyParams) { p.Algorithms = []string{"HS256", "ES256"} }, want: dpop.ErrInvalidProof},
		{name: "alg not in the list", params: func(p *dpop.VerifyParams) { p.Algorithms = []string{"EdDSA"} }, want: dpop.ErrInvalidProof},
		{name: "alg ES384 not a default", header: func(h map[string]any) { h["alg"] = "ES384" }, want: dpop.ErrInvalidProof},
		{name: "no jwk", header: func(h map[string]any) { delete(h, "jwk") }, want: dpop.ErrInvalidProof},
		{name: "jwk not an object", header: func(h map[string]any) { h["jwk"] = "key" }, want: dpop.ErrInvalidProof},
		{name: "jwk is the private key", header: func(h map[string]any) {
			j := publicJWK(t, ec)
			d, err := ec.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			j["d"] = b64.EncodeToString(d)
			h["jwk"] = j
		}, want: dpop.ErrInvalidProof},
		{name: "jwk symmetric", header: func(h map[string]any) { h["jwk"] = map[string]any{"kty": "oct", "k": "c2VjcmV0"} }, want: dpop.ErrInvalidProof},
		{name: "jwk of another key", header: func(h map[string]any) { h["jwk"] = publicJWK(t, other) }, want: dpop.ErrInvalidProof},
		{name: "jwk type does not fit alg", header: func(h map[string]any) { h["jwk"] = publicJWK(t, ed) }, want: dpop.ErrInvalidProof},
		{name: "jwk garbage", header: func(h map[string]any) { h["jwk"] = map[string]any{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"} }, want: dpop.ErrInvalidProof},
		{name: "RSA key too small", alg: "RS256", key: small, header: func(h map[string]any) { h["alg"] = "RS256"; h["jwk"] = publicJWK(t, small) }, want: dpop.ErrInvalidProof},
		{name: "signature tampered", proof: func(p string) string {
			i := strings.LastIndex(p, ".")
			sig, _ := b64.DecodeString(p[i+1:])
			sig[0] ^= 1
			return p[:i+1] + b64.EncodeToString(sig)
		}, want: dpop.ErrInvalidProof},
		{name: "payload swapped", proof: func(p string) string {
			parts := strings.Split(p, ".")
			parts[1] = b64.EncodeToString([]byte(`{"jti":"x","htm":"POST","htu":"` + testURL + `","iat":1700000000}`))
			return strings.Join(parts, ".")
		}, want: dpop.ErrInvalidProof},
		{name: "unsupported crit", header: func(h map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 }, want: dpop.ErrInvalidProof},
		{name: "claims not an object", proof: func(string) string {
			return compact(t, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": publicJWK(t, ec)}, nil, "ES256", ec)
		}, want: dpop.ErrInvalidProof},
		{name: "htm not a string", claims: func(c map[string]any) { c["htm"] = 1 }, want: dpop.ErrInvalidProof},
		{name: "htm other method", claims: func(c map[string]any) { c["htm"] = "GET" }, want: dpop.ErrInvalidProof},
		{name: "htm lower case", claims: func(c map[string]any) { c["htm"] = "post" }, want: dpop.ErrInvalidProof},
		{name: "htm missing", claims: func(c map[string]any) { delete(c, "htm") }, want: dpop.ErrInvalidProof},
		{name: "htu missing", claims: func(c map[string]any) { delete(c, "htu") }, want: dpop.ErrInvalidProof},
		{name: "htu other host", claims: func(c map[string]any) { c["htu"] = "https://evil.example.com/token" }, want: dpop.ErrInvalidProof},
		{name: "htu other path", claims: func(c map[string]any) { c["htu"] = "https://server.example.com/token/x" }, want: dpop.ErrInvalidProof},
		{name: "htu other scheme", claims: func(c map[string]any) { c["htu"] = "http://server.example.com/token" }, want: dpop.ErrInvalidProof},
		{name: "htu other port", claims: func(c map[string]any) { c["htu"] = "https://server.example.com:8443/token" }, want: dpop.ErrInvalidProof},
		{name: "htu path case", claims: func(c map[string]any) { c["htu"] = "https://server.example.com/Token" }, want: dpop.ErrInvalidProof},
		{name: "htu with userinfo", claims: func(c map[string]any) { c["htu"] = "https://u:p@server.example.com/token" }, want: dpop.ErrInvalidProof},
		{name: "htu relative", claims: func(c map[string]any) { c["htu"] = "/token" }, want: dpop.ErrInvalidProof},
		{name: "htu not http", claims: func(c map[string]any) { c["htu"] = "ftp://server.example.com/token" }, want: dpop.ErrInvalidProof},
		{name: "iat missing", claims: func(c map[string]any) { delete(c, "iat") }, want: dpop.ErrInvalidProof},
		{name: "iat a string", claims: func(c map[string]any) { c["iat"] = "1700000000" }, want: dpop.ErrInvalidProof},
		{name: "iat null", claims: func(c map[string]any) { c["iat"] = nil }, want: dpop.ErrInvalidProof},
		{name: "iat huge", claims: func(c map[string]any) { c["iat"] = 1e300 }, want: dpop.ErrInvalidProof},
		{name: "iat too old", claims: func(c map[string]any) { c["iat"] = testNow.Add(-5*time.Minute - time.Second).Unix() }, want: dpop.ErrInvalidProof},
		{name: "iat older than MaxAge", claims: func(c map[string]any) { c["iat"] = testNow.Add(-31 * time.Second).Unix() },
			params: func(p *dpop.VerifyParams) { p.MaxAge = 30 * time.Second }, want: dpop.ErrInvalidProof},
		{name: "iat in the future", claims: func(c map[string]any) { c["iat"] = testNow.Add(61 * time.Second).Unix() }, want: dpop.ErrInvalidProof},
		{name: "iat beyond leeway", claims: func(c map[string]any) { c["iat"] = testNow.Add(6 * time.Second).Unix() },
			params: func(p *dpop.VerifyParams) { p.Leeway = 5 * time.Second }, want: dpop.ErrInvalidProof},
		{name: "jti missing", claims: func(c map[string]any) { delete(c, "jti") }, want: dpop.ErrInvalidProof},
		{name: "jti empty", claims: func(c map[string]any) { c["jti"] = "" }, want: dpop.ErrInvalidProof},
		{name: "jti too long", claims: func(c map[string]any) { c["jti"] = longJTI }, want: dpop.ErrInvalidProof},
		{name: "ath missing", params: func(p *dpop.VerifyParams) { p.AccessToken = testToken }, want: dpop.ErrInvalidProof},
		{name: "ath of another token", claims: func(c map[string]any) { c["ath"] = athOf("other") },
			params: func(p *dpop.VerifyParams) { p.AccessToken = testToken }, want: dpop.ErrInvalidProof},
		{name: "ath is the token itself", claims: func(c map[string]any) { c["ath"] = testToken },
			params: func(p *dpop.VerifyParams) { p.AccessToken = testToken }, want: dpop.ErrInvalidProof},
		{name: "nonce missing", params: func(p *dpop.VerifyParams) { p.Nonce = "n-1" }, want: dpop.ErrUseNonce},
		{name: "nonce stale", claims: func(c map[string]any) { c["nonce"] = "n-0" },
			params: func(p *dpop.VerifyParams) { p.Nonce = "n-1" }, want: dpop.ErrUseNonce},
		{name: "RS256 not listed", alg: "RS256", key: rsaKey, header: func(h map[string]any) { h["alg"] = "RS256"; h["jwk"] = publicJWK(t, rsaKey) },
			params: func(p *dpop.VerifyParams) { p.Algorithms = []string{"ES256"} }, want: dpop.ErrInvalidProof},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alg, key := tt.alg, tt.key
			if alg == "" {
				alg = "ES256"
			}
			if key == nil {
				key = ec
			}
			h := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": publicJWK(t, ec)}
			c := map[string]any{"jti": "j-1", "htm": "POST", "htu": testURL, "iat": testNow.Unix()}
			if tt.header != nil {
				tt.header(h)
			}
			if tt.claims != nil {
				tt.claims(c)
			}
			proof := compact(t, h, c, alg, key)
			if tt.proof != nil {
				proof = tt.proof(proof)
			}
			p := baseParams()
			if tt.params != nil {
				tt.params(&p)
			}
			_, err := dpop.Verify(proof, p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if errors.Is(err, dpop.ErrUseNonce) == errors.Is(err, dpop.ErrInvalidProof) {
				t.Fatalf("Verify = %v: want exactly one of ErrInvalidProof and ErrUseNonce", err)
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "eyJ") {
				t.Fatalf("the error %q carries a token or the proof", err)
			}
		})
	}
}

// TestVerifyAccepts covers the normalisations of RFC 9449 §4.3 and every
// default algorithm, with proofs built by hand.
func TestVerifyAccepts(t *testing.T) {
	ec, ed, rs := newP256(t), newEd25519(t), newRSA(t, 2048)
	tests := []struct {
		name, alg string
		key       crypto.Signer
		htu, url  string
		claims    func(c map[string]any)
		params    func(p *dpop.VerifyParams)
	}{
		{name: "ES256", alg: "ES256", key: ec},
		{name: "EdDSA", alg: "EdDSA", key: ed},
		{name: "RS256", alg: "RS256", key: rs},
		{name: "PS256", alg: "PS256", key: rs},
		{name: "query and fragment ignored", alg: "ES256", key: ec, htu: testURL + "?a=b#c"},
		{name: "scheme and host case", alg: "ES256", key: ec, htu: "HTTPS://Server.EXAMPLE.com/token"},
		{name: "default https port", alg: "ES256", key: ec, htu: "https://server.example.com:443/token"},
		{name: "default http port", alg: "ES256", key: ec, htu: "http://server.example.com/token", url: "http://server.example.com:80/token"},
		{name: "explicit port", alg: "ES256", key: ec, htu: "http://127.0.0.1:8080/token", url: "http://127.0.0.1:8080/token"},
		{name: "IPv6", alg: "ES256", key: ec, htu: "https://[::1]/token", url: "https://[::1]:443/token"},
		{name: "empty path", alg: "ES256", key: ec, htu: "https://server.example.com", url: "https://server.example.com/"},
		{name: "percent-encoding", alg: "ES256", key: ec, htu: "https://server.example.com/a%7Eb/%2f", url: "https://server.example.com/a~b/%2F"},
		{name: "fractional iat", alg: "ES256", key: ec, claims: func(c map[string]any) { c["iat"] = float64(testNow.Unix()) + 0.5 }},
		{name: "iat at the leeway", alg: "ES256", key: ec, claims: func(c map[string]any) { c["iat"] = testNow.Add(60 * time.Second).Unix() }},
		{name: "iat at MaxAge", alg: "ES256", key: ec, claims: func(c map[string]any) { c["iat"] = testNow.Add(-5 * time.Minute).Unix() }},
		{name: "ath and nonce", alg: "ES256", key: ec, claims: func(c map[string]any) { c["ath"] = athOf(testToken); c["nonce"] = "n-1" },
			params: func(p *dpop.VerifyParams) { p.AccessToken = testToken; p.Nonce = "n-1" }},
		{name: "jti of 256", alg: "ES256", key: ec, claims: func(c map[string]any) { c["jti"] = strings.Repeat("j", 256) }},
		{name: "typ case", alg: "ES256", key: ec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			htu := tt.htu
			if htu == "" {
				htu = testURL
			}
			jwk := publicJWK(t, tt.key)
			typ := "dpop+jwt"
			if tt.name == "typ case" {
				typ = "application/DPoP+JWT"
			}
			c := map[string]any{"jti": "j-1", "htm": "POST", "htu": htu, "iat": testNow.Unix()}
			if tt.claims != nil {
				tt.claims(c)
			}
			proof := compact(t, map[string]any{"typ": typ, "alg": tt.alg, "jwk": jwk}, c, tt.alg, tt.key)
			p := baseParams()
			if tt.url != "" {
				p.URL = tt.url
			}
			if tt.params != nil {
				tt.params(&p)
			}
			got, err := dpop.Verify(proof, p)
			if err != nil {
				t.Fatal(err)
			}
			want := dpop.Proof{JTI: c["jti"].(string), Thumbprint: thumbprint(t, jwk), Algorithm: tt.alg, IssuedAt: got.IssuedAt}
			if n, ok := c["nonce"].(string); ok {
				want.Nonce = n
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("Verify (-want +got):\n%s", diff)
			}
			if d := got.IssuedAt.Sub(testNow); d < -5*time.Minute || d > time.Minute {
				t.Fatalf("IssuedAt = %v", got.IssuedAt)
			}
		})
	}
}

func TestVerifyBadRequestURL(t *testing.T) {
	s, err := dpop.NewSigner(newP256(t))
	if err != nil {
		t.Fatal(err)
	}
	proof, err := s.Proof("GET", testURL, dpop.ProofParams{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dpop.Verify(proof, dpop.VerifyParams{Method: "GET", URL: "/token", Now: testNow})
	if err == nil || errors.Is(err, dpop.ErrInvalidProof) {
		t.Fatalf("Verify with a relative request URL = %v, want a caller error", err)
	}
}

// TestVerifyGoJoseProofs: proofs that go-jose builds on its own verify.
func TestVerifyGoJoseProofs(t *testing.T) {
	for _, tc := range []struct {
		alg jose.SignatureAlgorithm
		key crypto.Signer
	}{{jose.ES256, newP256(t)}, {jose.EdDSA, newEd25519(t)}, {jose.RS256, newRSA(t, 2048)}, {jose.PS256, newRSA(t, 2048)}} {
		t.Run(string(tc.alg), func(t *testing.T) {
			opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
			js, err := jose.NewSigner(jose.SigningKey{Algorithm: tc.alg, Key: tc.key}, opts)
			if err != nil {
				t.Fatal(err)
			}
			payload := `{"jti":"go-jose-1","htm":"GET","htu":"https://rs.example.com/api/x","iat":1700000000,"ath":"` + athOf(testToken) + `"}`
			obj, err := js.Sign([]byte(payload))
			if err != nil {
				t.Fatal(err)
			}
			proof, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			got, err := dpop.Verify(proof, dpop.VerifyParams{Method: "GET", URL: "https://rs.example.com/api/x?page=2", AccessToken: testToken, Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			if got.JTI != "go-jose-1" || got.Thumbprint != thumbprint(t, publicJWK(t, tc.key)) || got.Algorithm != string(tc.alg) || !got.IssuedAt.Equal(testNow) {
				t.Fatalf("Verify = %+v", got)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	key := newP256(f)
	s, err := dpop.NewSigner(key)
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.Proof("POST", testURL, dpop.ProofParams{Now: testNow, AccessToken: testToken, Nonce: "n"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(compact(f, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": publicJWK(f, key)}, map[string]any{"iat": "x"}, "ES256", key))
	f.Add(compact(f, map[string]any{"typ": "dpop+jwt", "alg": "none"}, map[string]any{}, "none", nil))
	f.Fuzz(func(t *testing.T, proof string) {
		got, err := dpop.Verify(proof, dpop.VerifyParams{Method: "POST", URL: testURL, AccessToken: testToken, Now: testNow})
		if err != nil {
			if !errors.Is(err, dpop.ErrInvalidProof) && !errors.Is(err, dpop.ErrUseNonce) {
				t.Fatalf("Verify = %v: want a wrapped sentinel", err)
			}
			return
		}
		if got.JTI == "" || got.Thumbprint == "" || got.Algorithm == "" {
			t.Fatalf("Verify accepted %q with %+v", proof, got)
		}
	})
}
