package dpop_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
)

// These helpers build proofs by hand, with the standard library only, so
// that the tests do not trust the code under test (nor go-jose) to build
// the JWS they feed it.

var b64 = base64.RawURLEncoding

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEd25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newRSA(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publicJWK returns the public JWK of key as a JSON object.
func publicJWK(t testing.TB, key crypto.Signer) map[string]any {
	t.Helper()
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		ek, err := pub.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		raw := ek.Bytes() // 0x04 || X || Y
		return map[string]any{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(raw[1:33]), "y": b64.EncodeToString(raw[33:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(pub)}
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "n": b64.EncodeToString(pub.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
	}
	t.Fatalf("no JWK for %T", key)
	return nil
}

// thumbprint computes the RFC 7638 SHA-256 thumbprint of a public JWK.
func thumbprint(t testing.TB, jwk map[string]any) string {
	t.Helper()
	var members []string
	switch jwk["kty"] {
	case "EC":
		members = []string{"crv", "kty", "x", "y"}
	case "OKP":
		members = []string{"crv", "kty", "x"}
	case "RSA":
		members = []string{"e", "kty", "n"}
	}
	s := "{"
	for i, m := range members {
		if i > 0 {
			s += ","
		}
		s += `"` + m + `":"` + jwk[m].(string) + `"`
	}
	h := sha256.Sum256([]byte(s + "}"))
	return b64.EncodeToString(h[:])
}

// signInput signs the JWS signing input with alg. For HS256 key is the
// MAC key (a []byte).
func signInput(t testing.TB, alg string, key any, input []byte) []byte {
	t.Helper()
	h := sha256.Sum256(input)
	switch alg {
	case "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), h[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	case "EdDSA":
		return ed25519.Sign(key.(ed25519.PrivateKey), input)
	case "RS256":
		out, err := rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, h[:])
		if err != nil {
			t.Fatal(err)
		}
		return out
	case "PS256":
		out, err := rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, h[:], nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	case "HS256":
		m := hmac.New(sha256.New, key.([]byte))
		m.Write(input)
		return m.Sum(nil)
	case "none":
		return nil
	}
	t.Fatalf("cannot sign with %s", alg)
	return nil
}

// compact builds a JWS in compact serialization from a header and claims,
// signed with alg and key.
func compact(t testing.TB, header, claims map[string]any, alg string, key any) string {
	t.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	return input + "." + b64.EncodeToString(signInput(t, alg, key, []byte(input)))
}

// athOf is the ath of an access token, computed independently.
func athOf(token string) string {
	h := sha256.Sum256([]byte(token))
	return b64.EncodeToString(h[:])
}
