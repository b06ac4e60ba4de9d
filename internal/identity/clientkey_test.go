package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	p256    *ecdsa.PrivateKey
	p384    *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	rsa2048 *rsa.PrivateKey
	rsa1024 *rsa.PrivateKey
}

var (
	keysOnce sync.Once
	keysVal  testKeys
)

func clientTestKeys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil && err == nil {
				err = e
			}
		}
		var e error
		keysVal.p256, e = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(e)
		keysVal.p384, e = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(e)
		_, keysVal.ed, e = ed25519.GenerateKey(rand.Reader)
		must(e)
		keysVal.rsa2048, e = rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		keysVal.rsa1024, e = rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // a too-small key, to be refused
		must(e)
		if err != nil {
			panic(err)
		}
	})
	return keysVal
}

func pkixPEM(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func jwkJSON(t testing.TB, key any, kid, alg string) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withMember returns the JSON object b with one more member.
func withMember(t testing.TB, b []byte, name string, v any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[name] = v
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func thumbprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	k := jose.JSONWebKey{Key: pub}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

func TestParseClientKey(t *testing.T) {
	k := clientTestKeys(t)
	cert := func() []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.p256.Public(), k.p256)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k.p256)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := x509.MarshalECPrivateKey(k.p256)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      []byte
		alg     string
		wantKID string // "" : the thumbprint
		wantAlg string
		wantKty string
		pub     crypto.PublicKey
		field   string // the ValidationError's field when refused
		reason  string // a substring of its reason
	}{
		{name: "P-256 PEM", in: pkixPEM(t, k.p256.Public()), wantAlg: AlgES256, wantKty: "EC", pub: k.p256.Public()},
		{name: "Ed25519 PEM", in: pkixPEM(t, k.ed.Public()), wantAlg: AlgEdDSA, wantKty: "OKP", pub: k.ed.Public()},
		{name: "RSA PEM", in: pkixPEM(t, k.rsa2048.Public()), wantAlg: AlgRS256, wantKty: "RSA", pub: k.rsa2048.Public()},
		{name: "RSA PEM PS256", in: pkixPEM(t, k.rsa2048.Public()), alg: AlgPS256, wantAlg: AlgPS256, wantKty: "RSA", pub: k.rsa2048.Public()},
		{name: "PKCS1 RSA PEM", in: pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa2048.PublicKey)}),
			wantAlg: AlgRS256, wantKty: "RSA", pub: k.rsa2048.Public()},
		{name: "PEM with surrounding space", in: append(append([]byte("\n  "), pkixPEM(t, k.p256.Public())...), "\n\n"...), wantAlg: AlgES256, wantKty: "EC", pub: k.p256.Public()},
		{name: "JWK without kid", in: jwkJSON(t, k.p256.Public(), "", ""), wantAlg: AlgES256, wantKty: "EC", pub: k.p256.Public()},
		{name: "JWK with kid and alg", in: jwkJSON(t, k.ed.Public(), "laptop-2025", "EdDSA"), wantKID: "laptop-2025", wantAlg: AlgEdDSA, wantKty: "OKP", pub: k.ed.Public()},
		{name: "JWK alg agrees", in: jwkJSON(t, k.rsa2048.Public(), "r1", "PS256"), alg: AlgPS256, wantKID: "r1", wantAlg: AlgPS256, wantKty: "RSA", pub: k.rsa2048.Public()},
		{name: "JWK use sig and x5u dropped", in: withMember(t, withMember(t, jwkJSON(t, k.p256.Public(), "a", ""), "use", "sig"), "x5u", "https://example.com/x"),
			wantKID: "a", wantAlg: AlgES256, wantKty: "EC", pub: k.p256.Public()},

		{name: "empty", in: []byte("  \n"), field: "public_key", reason: "required"},
		{name: "garbage", in: []byte("ssh-ed25519 AAAAC3Nza"), field: "public_key", reason: "JWK"},
		{name: "too long", in: []byte("{" + strings.Repeat(" ", MaxPublicKeyLen) + "}"), field: "public_key", reason: "at most"},
		{name: "PKCS8 private PEM", in: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), field: "public_key", reason: errPrivateKey},
		{name: "EC private PEM", in: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecPriv}), field: "public_key", reason: errPrivateKey},
		{name: "RSA private PEM", in: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.rsa2048)}), field: "public_key", reason: errPrivateKey},
		{name: "private JWK", in: jwkJSON(t, k.p256, "", ""), field: "public_key", reason: errPrivateKey},
		{name: "private Ed25519 JWK", in: jwkJSON(t, k.ed, "", ""), field: "public_key", reason: errPrivateKey},
		{name: "private RSA JWK", in: jwkJSON(t, k.rsa2048, "", ""), field: "public_key", reason: errPrivateKey},
		{name: "symmetric JWK", in: []byte(`{"kty":"oct","k":"c2VjcmV0"}`), field: "public_key", reason: "symmetric"},
		{name: "public then private PEM", in: append(pkixPEM(t, k.p256.Public()), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...), field: "public_key", reason: "one PEM block"},
		{name: "certificate", in: cert, field: "public_key", reason: "certificate"},
		{name: "P-384 PEM", in: pkixPEM(t, k.p384.Public()), field: "public_key", reason: "P-256"},
		{name: "P-384 JWK", in: jwkJSON(t, k.p384.Public(), "", ""), field: "public_key", reason: "P-256"},
		{name: "X25519 JWK", in: []byte(`{"kty":"OKP","crv":"X25519","x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08"}`), field: "public_key", reason: "Ed25519"},
		{name: "small RSA", in: pkixPEM(t, k.rsa1024.Public()), field: "public_key", reason: "at least 2048"},
		{name: "wrong algorithm for EC", in: pkixPEM(t, k.p256.Public()), alg: AlgRS256, field: "algorithm", reason: "ES256"},
		{name: "HMAC algorithm", in: pkixPEM(t, k.rsa2048.Public()), alg: "HS256", field: "algorithm", reason: "RS256 or PS256"},
		{name: "none algorithm", in: pkixPEM(t, k.ed.Public()), alg: "none", field: "algorithm", reason: "EdDSA"},
		{name: "JWK alg disagrees", in: jwkJSON(t, k.rsa2048.Public(), "", "RS256"), alg: AlgPS256, field: "algorithm", reason: "JWK says"},
		{name: "JWK alg wrong for key", in: jwkJSON(t, k.p256.Public(), "", "ES384"), field: "algorithm", reason: "ES256"},
		{name: "JWK Set", in: []byte(`{"keys":[]}`), field: "public_key", reason: "JWK Set"},
		{name: "two JWKs", in: append(jwkJSON(t, k.p256.Public(), "", ""), jwkJSON(t, k.p256.Public(), "", "")...), field: "public_key", reason: "exactly one"},
		{name: "JWK for encryption", in: withMember(t, jwkJSON(t, k.p256.Public(), "", ""), "use", "enc"), field: "public_key", reason: "sig"},
		{name: "JWK with empty kid", in: withMember(t, jwkJSON(t, k.p256.Public(), "", ""), "kid", ""), field: "public_key", reason: "kid"},
		{name: "JWK with spaced kid", in: jwkJSON(t, k.p256.Public(), "my key", ""), field: "public_key", reason: "kid"},
		{name: "JWK with numeric kid", in: withMember(t, jwkJSON(t, k.p256.Public(), "", ""), "kid", 7), field: "public_key", reason: "string"},
		{name: "JWK without kty", in: []byte(`{"crv":"P-256"}`), field: "public_key", reason: "kty"},
		{name: "JWK point off the curve", in: []byte(`{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`), field: "public_key", reason: "curve"},
		{name: "not JSON", in: []byte(`{"kty":`), field: "public_key", reason: "JSON"},
		{name: "bad PEM", in: []byte("-----BEGIN PUBLIC KEY-----\n!!!\n"), field: "public_key", reason: "PEM"},
		{name: "bad DER", in: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), field: "public_key", reason: "public key"},
		{name: "encrypted PEM header", in: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}), field: "public_key", reason: "headers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClientKey(tt.in, tt.alg)
			if tt.field != "" {
				checkValidation(t, err, tt.field)
				if err != nil && !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("error %q does not say %q", err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tp := thumbprint(t, tt.pub)
			wantKID := tt.wantKID
			if wantKID == "" {
				wantKID = tp
			}
			if got.KeyID != wantKID || got.Algorithm != tt.wantAlg || got.KeyType != tt.wantKty || got.Thumbprint != tp {
				t.Errorf("got kid %q alg %q kty %q thumbprint %q; want %q %q %q %q",
					got.KeyID, got.Algorithm, got.KeyType, got.Thumbprint, wantKID, tt.wantAlg, tt.wantKty, tp)
			}
			var m map[string]any
			if err := json.Unmarshal(got.JWK, &m); err != nil {
				t.Fatal(err)
			}
			for _, member := range []string{"d", "p", "q", "x5u", "x5c"} {
				if _, ok := m[member]; ok {
					t.Errorf("stored JWK has %q: %s", member, got.JWK)
				}
			}
			if m["kid"] != wantKID || m["alg"] != tt.wantAlg || m["use"] != "sig" || m["kty"] != tt.wantKty {
				t.Errorf("stored JWK %s lacks kid, alg or use", got.JWK)
			}
			// The stored JWK parses back to the same key, and parsing it
			// again is the identity.
			again, err := ParseClientKey(got.JWK, "")
			if err != nil {
				t.Fatalf("the stored JWK does not parse: %v", err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("re-parse (-first +again):\n%s", diff)
			}
			if th := ClientKeyThumbprint(store.ClientKey{JWK: got.JWK}); th != tp {
				t.Errorf("ClientKeyThumbprint = %q, want %q", th, tp)
			}
		})
	}
	if got := ClientKeyThumbprint(store.ClientKey{JWK: []byte("{")}); got != "" {
		t.Errorf("ClientKeyThumbprint of a broken JWK = %q", got)
	}
}

func TestValidateKeyID(t *testing.T) {
	for kid, ok := range map[string]bool{
		"a": true, "laptop-2025/01:x+y=": true, strings.Repeat("k", MaxKeyIDLen): true,
		"": false, strings.Repeat("k", MaxKeyIDLen+1): false, "a b": false, "é": false, "a\x00": false,
	} {
		err := ValidateKeyID(kid)
		if (err == nil) != ok {
			t.Errorf("ValidateKeyID(%q) = %v, want ok=%v", kid, err, ok)
		}
		if err != nil {
			checkValidation(t, err, "kid")
		}
	}
}

// FuzzParseClientKey drives the client key parser with untrusted input:
// it never panics, refuses with a *ValidationError, and whatever it
// accepts is a public key of an allowed algorithm that round-trips.
func FuzzParseClientKey(f *testing.F) {
	k := clientTestKeys(f)
	for _, seed := range [][]byte{
		pkixPEM(f, k.p256.Public()), pkixPEM(f, k.ed.Public()), pkixPEM(f, k.rsa2048.Public()),
		jwkJSON(f, k.p256.Public(), "kid-1", "ES256"), jwkJSON(f, k.ed.Public(), "", ""), jwkJSON(f, k.p256, "", ""),
		[]byte(`{"kty":"oct","k":"AA"}`), []byte(`{"kty":"EC","crv":"P-256","x":1}`), []byte(`{}`), []byte(`-----BEGIN `),
		[]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`), []byte(`{"keys":[{}]}`),
	} {
		f.Add(seed, "")
		f.Add(seed, "PS256")
	}
	f.Fuzz(func(t *testing.T, in []byte, alg string) {
		got, err := ParseClientKey(in, alg)
		if err != nil {
			if _, ok := errors.AsType[*ValidationError](err); !ok {
				t.Fatalf("error %T %v is not a *ValidationError", err, err)
			}
			return
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(got.JWK); err != nil || !jwk.IsPublic() {
			t.Fatalf("accepted key's JWK %s: public=%v, %v", got.JWK, jwk.IsPublic(), err)
		}
		ok := false
		for _, a := range ClientKeyAlgorithms() {
			ok = ok || a == got.Algorithm
		}
		if !ok || jwk.Algorithm != got.Algorithm || jwk.KeyID != got.KeyID || ValidateKeyID(got.KeyID) != nil {
			t.Fatalf("accepted %+v", got)
		}
		again, err := ParseClientKey(got.JWK, "")
		if err != nil || !cmp.Equal(got, again) {
			t.Fatalf("round trip: %+v, %v; first %+v", again, err, got)
		}
	})
}
