package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// Signing algorithms (JWS "alg", RFC 7518 §3.4 and RFC 8037 §3.1).
const (
	// ES256 is ECDSA on P-256 with SHA-256, the default.
	ES256 = "ES256"
	// EdDSA is Ed25519.
	EdDSA = "EdDSA"
)

// ValidAlgorithm reports whether alg is a signing algorithm a Manager can
// generate keys for.
func ValidAlgorithm(alg string) bool { return alg == ES256 || alg == EdDSA }

// ActiveKey is the key that signs now. It is immutable and safe for
// concurrent use; Manager.Current hands out the same value to every caller
// until the key changes.
type ActiveKey struct {
	// ID is the JWS "kid".
	ID string
	// Algorithm is the JWS "alg": ES256 or EdDSA.
	Algorithm string
	// Chain is the key's certificate first, then any intermediates up to,
	// not including, the trust anchor; nil for keys without a certificate
	// (ManagerParams.Certifier). Callers must not modify it.
	Chain  []*x509.Certificate
	signer crypto.Signer
}

// Signer returns the private key: an *ecdsa.PrivateKey (ES256) or an
// ed25519.PrivateKey (EdDSA), usable with go-jose's SigningKey. Callers
// must not modify it.
func (k *ActiveKey) Signer() crypto.Signer { return k.signer }

// Public returns the public key.
func (k *ActiveKey) Public() crypto.PublicKey { return k.signer.Public() }

// Sign returns the JWS signature of signingInput (the ASCII of
// BASE64URL(header) "." BASE64URL(payload), RFC 7515 §5.1): for ES256 the
// 64-byte R ‖ S of RFC 7518 §3.4, for EdDSA the 64-byte Ed25519 signature
// of RFC 8037 §3.1.
func (k *ActiveKey) Sign(signingInput []byte) ([]byte, error) {
	switch priv := k.signer.(type) {
	case *ecdsa.PrivateKey:
		digest := sha256.Sum256(signingInput)
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		if err != nil {
			return nil, fmt.Errorf("keys: sign with %s: %w", k.ID, err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig, nil
	case ed25519.PrivateKey:
		return ed25519.Sign(priv, signingInput), nil
	default:
		return nil, fmt.Errorf("keys: key %s has an unsupported type %T", k.ID, k.signer)
	}
}

// String names the key without revealing it.
func (k *ActiveKey) String() string { return k.Algorithm + " key " + k.ID }

// GoString names the key without revealing it.
func (k *ActiveKey) GoString() string { return k.String() }

// LogValue names the key without revealing it, so slog never logs it.
func (k *ActiveKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Format writes String for every verb, so no verb (%d, %#v…) reaches the
// private key.
func (k *ActiveKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// generateSigner makes a new private key for alg. ES256 keys come from a
// secure source whatever rnd is (Go ≥ 1.26 ignores the reader;
// testing/cryptotest.SetGlobalRandom makes them deterministic in tests);
// Ed25519 keys read their seed from rnd.
func generateSigner(alg string, rnd io.Reader) (crypto.Signer, error) {
	switch alg {
	case ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
		if err != nil {
			return nil, fmt.Errorf("keys: generate ES256 key: %w", err)
		}
		return k, nil
	case EdDSA:
		_, k, err := ed25519.GenerateKey(rnd)
		if err != nil {
			return nil, fmt.Errorf("keys: generate EdDSA key: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("keys: unsupported signing algorithm %q", alg)
	}
}

// signingKeyAD is the additional data that binds a sealed signing key to
// its purpose, id and algorithm, so a sealed value cannot be moved to
// another record.
func signingKeyAD(purpose, id, alg string) []byte {
	return []byte("agentid-signing-key-v1\n" + purpose + "\n" + id + "\n" + alg)
}

// sealSigner encodes the private key as PKCS #8 and seals it under root.
func sealSigner(root *RootKey, priv crypto.Signer, purpose, id, alg string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keys: encode private key: %w", err)
	}
	defer clear(der)
	sealed, err := root.Seal(der, signingKeyAD(purpose, id, alg))
	if err != nil {
		return nil, err
	}
	return sealed, nil
}

// openSigner unseals a stored key's private half and checks that it
// matches the stored public key and algorithm.
func openSigner(root *RootKey, purpose, id, alg string, sealed []byte, pub crypto.PublicKey) (crypto.Signer, error) {
	der, err := root.Open(sealed, signingKeyAD(purpose, id, alg))
	if err != nil {
		return nil, fmt.Errorf("keys: unseal signing key %s (is the root key the one it was created with?): %w", id, err)
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s: malformed private key", id)
	}
	priv, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: signing key %s: not a signing key", id)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := priv.Public().(equaler); !ok || !e.Equal(pub) {
		return nil, fmt.Errorf("keys: signing key %s: private key does not match its public key", id)
	}
	return priv, nil
}

// x509MarshalPublic encodes the public half of priv as PKIX DER.
func x509MarshalPublic(priv crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("keys: encode public key: %w", err)
	}
	return der, nil
}

// errBadPublicKey means a stored public key does not fit its algorithm.
var errBadPublicKey = errors.New("keys: stored public key does not match its algorithm")

// parsePublic parses a stored PKIX public key and checks it fits alg.
func parsePublic(alg string, der []byte) (crypto.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadPublicKey, err)
	}
	switch pub := k.(type) {
	case *ecdsa.PublicKey:
		if alg == ES256 && pub.Curve == elliptic.P256() {
			return pub, nil
		}
	case ed25519.PublicKey:
		if alg == EdDSA {
			return pub, nil
		}
	}
	return nil, fmt.Errorf("%w: %T for %s", errBadPublicKey, k, alg)
}

// JWK is a public signing key as RFC 7517 §4 and RFC 7518 §6.2 (EC) or
// RFC 8037 §2 (OKP) encode it in a JWK Set. It never holds private
// members.
type JWK struct {
	KeyType   string `json:"kty"`
	Use       string `json:"use"`
	Algorithm string `json:"alg"`
	KeyID     string `json:"kid"`
	Curve     string `json:"crv"`
	X         string `json:"x"`
	Y         string `json:"y,omitempty"`
}

// publicJWK encodes a public key as a JWK.
func publicJWK(id, alg string, pub crypto.PublicKey) (JWK, error) {
	j := JWK{Use: "sig", Algorithm: alg, KeyID: id}
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		pt, err := k.Bytes() // 0x04 ‖ X ‖ Y, each 32 bytes for P-256
		if err != nil || len(pt) != 65 {
			return JWK{}, fmt.Errorf("keys: encode public key %s: %w", id, errBadPublicKey)
		}
		j.KeyType, j.Curve, j.X, j.Y = "EC", "P-256", b64(pt[1:33]), b64(pt[33:])
	case ed25519.PublicKey:
		j.KeyType, j.Curve, j.X = "OKP", "Ed25519", b64(k)
	default:
		return JWK{}, fmt.Errorf("keys: encode public key %s: %w", id, errBadPublicKey)
	}
	return j, nil
}
