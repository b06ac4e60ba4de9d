package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/agentid/agentid/internal/store"
)

// Bounds of client public keys (private_key_jwt, RFC 7523 §2.2).
const (
	// MaxPublicKeyLen is the largest public key document (JWK or PEM)
	// AddClientKey reads.
	MaxPublicKeyLen = 16 << 10
	// MaxKeyIDLen is the longest key id ("kid").
	MaxKeyIDLen = 128
	// MinRSAKeyBits is the smallest RSA modulus accepted.
	MinRSAKeyBits = 2048
	// MaxRSAKeyBits is the largest RSA modulus accepted (go-jose parses no
	// larger one, so a verifier could not use it).
	MaxRSAKeyBits = 4096
)

// Client key signature algorithms (RFC 7518 §3.1, RFC 8037 §3.1).
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
	AlgPS256 = "PS256"
)

// ClientKeyAlgorithms returns every algorithm a client key may sign
// with, in order of preference.
func ClientKeyAlgorithms() []string { return []string{AlgES256, AlgEdDSA, AlgRS256, AlgPS256} }

// ParsedClientKey is a client public key checked and normalised by
// ParseClientKey.
type ParsedClientKey struct {
	// KeyID is the JWK's "kid" when it had one, else Thumbprint.
	KeyID string
	// Algorithm is the JWS "alg" the key signs with.
	Algorithm string
	// Thumbprint is the RFC 7638 JWK thumbprint: base64url (no padding)
	// of the SHA-256 of the key's required members.
	Thumbprint string
	// KeyType is the JWK "kty": "EC", "OKP" or "RSA".
	KeyType string
	// JWK is the public key as a JWK JSON object with "kid", "alg" and
	// "use": "sig", and nothing else beyond the key's public members.
	JWK []byte
}

// errPrivateKey is the reason given for input holding private key
// material.
const errPrivateKey = "this is a private key; give the public key"

// ParseClientKey reads a client's public key from untrusted input: a JWK
// (a JSON object; RFC 7517) or a PEM block "PUBLIC KEY" (PKIX) or "RSA
// PUBLIC KEY" (PKCS #1). Accepted keys are EC P-256 (ES256), Ed25519
// (EdDSA) and RSA of MinRSAKeyBits to MaxRSAKeyBits bits (RS256 or
// PS256). alg, when not empty, names the algorithm; otherwise the JWK's
// "alg" does, or the key type's first algorithm. Input holding private key
// material, a symmetric key, a certificate or anything else is refused.
// The JWK's other members ("x5c", "x5u", "key_ops", …) are dropped.
//
// Errors: a *ValidationError for field "public_key" or "algorithm". Safe
// on any input.
func ParseClientKey(data []byte, alg string) (ParsedClientKey, error) {
	if len(data) > MaxPublicKeyLen {
		return ParsedClientKey{}, invalid("public_key", "must be at most %d bytes", MaxPublicKeyLen)
	}
	in := bytes.TrimSpace(data)
	var (
		pub     crypto.PublicKey
		kid     string
		jwkAlg  string
		err     error
		fromJWK bool
	)
	switch {
	case len(in) == 0:
		return ParsedClientKey{}, invalid("public_key", "is required: a JWK or a PEM public key")
	case in[0] == '{':
		fromJWK = true
		pub, kid, jwkAlg, err = parseJWK(in)
	case bytes.HasPrefix(in, []byte("-----BEGIN ")):
		pub, err = parsePEMPublicKey(in)
	default:
		return ParsedClientKey{}, invalid("public_key", "must be a JWK (a JSON object) or a PEM public key (-----BEGIN PUBLIC KEY-----)")
	}
	if err != nil {
		return ParsedClientKey{}, err
	}
	switch {
	case alg != "" && jwkAlg != "" && alg != jwkAlg:
		return ParsedClientKey{}, invalid("algorithm", "is %s but the JWK says %s", quote(alg), quote(jwkAlg))
	case alg == "" && fromJWK:
		alg = jwkAlg
	}
	kty, alg, err := keyAlgorithm(pub, alg)
	if err != nil {
		return ParsedClientKey{}, err
	}
	jwk := jose.JSONWebKey{Key: pub, Algorithm: alg, Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return ParsedClientKey{}, invalid("public_key", "is not a usable key: %s", joseReason(err))
	}
	thumb := base64.RawURLEncoding.EncodeToString(tp)
	if kid == "" {
		kid = thumb
	}
	jwk.KeyID = kid
	out, err := jwk.MarshalJSON()
	if err != nil {
		return ParsedClientKey{}, invalid("public_key", "is not a usable key: %s", joseReason(err))
	}
	return ParsedClientKey{KeyID: kid, Algorithm: alg, Thumbprint: thumb, KeyType: kty, JWK: out}, nil
}

// parseJWK reads one JWK object. It returns the public key, the "kid" and
// the "alg" (either may be empty).
func parseJWK(b []byte) (crypto.PublicKey, string, string, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, "", "", invalid("public_key", "is not a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, "", "", invalid("public_key", "must hold exactly one JWK (a JWK Set is not accepted)")
	}
	if _, ok := raw["keys"]; ok {
		return nil, "", "", invalid("public_key", "is a JWK Set; give one key of it")
	}
	str := func(name string) (string, error) {
		v, ok := raw[name]
		if !ok {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", invalid("public_key", "member %q must be a string", name)
		}
		return s, nil
	}
	kty, err := str("kty")
	if err != nil {
		return nil, "", "", err
	}
	switch kty {
	case "EC", "RSA", "OKP":
	case "oct":
		return nil, "", "", invalid("public_key", "is a symmetric key; give a public key (EC P-256, Ed25519 or RSA)")
	case "":
		return nil, "", "", invalid("public_key", "is not a JWK: it has no \"kty\"")
	default:
		return nil, "", "", invalid("public_key", "has key type %s; give an EC P-256, Ed25519 or RSA public key", quote(kty))
	}
	// Members carrying private or symmetric key material (RFC 7518
	// §6.2.2, §6.3.2, §6.4; RFC 8037 §2; RFC 9964).
	for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"} {
		if _, ok := raw[m]; ok {
			return nil, "", "", invalid("public_key", errPrivateKey)
		}
	}
	var kid, alg, use, crv string
	for _, m := range []struct {
		name string
		dst  *string
	}{{"kid", &kid}, {"alg", &alg}, {"use", &use}, {"crv", &crv}} {
		if *m.dst, err = str(m.name); err != nil {
			return nil, "", "", err
		}
	}
	if use != "" && use != "sig" {
		return nil, "", "", invalid("public_key", "has \"use\": %s; a client key signs (\"sig\")", quote(use))
	}
	if _, ok := raw["kid"]; ok {
		if err := ValidateKeyID(kid); err != nil {
			return nil, "", "", invalid("public_key", "kid %s", reasonOf(err))
		}
	}
	switch {
	case kty == "EC" && crv != "P-256":
		return nil, "", "", invalid("public_key", "EC keys must be on curve P-256 (ES256), not %s", quote(crv))
	case kty == "OKP" && crv != "Ed25519":
		return nil, "", "", invalid("public_key", "OKP keys must be Ed25519 (EdDSA), not %s", quote(crv))
	}
	// Only the public members reach go-jose; "x5c", "x5u" and the rest
	// are dropped unparsed.
	pubOnly := map[string]json.RawMessage{}
	for _, m := range []string{"kty", "crv", "x", "y", "n", "e"} {
		if v, ok := raw[m]; ok {
			pubOnly[m] = v
		}
	}
	pb, err := json.Marshal(pubOnly)
	if err != nil {
		return nil, "", "", invalid("public_key", "is not a valid JWK")
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(pb); err != nil {
		return nil, "", "", invalid("public_key", "is not a valid JWK: %s", joseReason(err))
	}
	if !k.IsPublic() {
		return nil, "", "", invalid("public_key", errPrivateKey)
	}
	return k.Key, kid, alg, nil
}

// parsePEMPublicKey reads exactly one PEM public key block.
func parsePEMPublicKey(b []byte) (crypto.PublicKey, error) {
	block, rest := pem.Decode(b)
	switch {
	case block == nil:
		return nil, invalid("public_key", "is not valid PEM")
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return nil, invalid("public_key", errPrivateKey)
	case len(bytes.TrimSpace(rest)) != 0:
		return nil, invalid("public_key", "must hold exactly one PEM block")
	case len(block.Headers) != 0:
		return nil, invalid("public_key", "must be a PEM block without headers")
	}
	var (
		pub crypto.PublicKey
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		return nil, invalid("public_key", "is a certificate; give its public key (openssl x509 -pubkey -noout)")
	default:
		return nil, invalid("public_key", "is a PEM %s block; give a PUBLIC KEY block", quote(block.Type))
	}
	if err != nil {
		return nil, invalid("public_key", "is not a valid %s", strings.ToLower(block.Type))
	}
	return pub, nil
}

// keyAlgorithm checks that pub is an accepted key and alg (or the key's
// default when empty) an algorithm it signs with. It returns the JWK key
// type and the algorithm.
func keyAlgorithm(pub crypto.PublicKey, alg string) (string, string, error) {
	var (
		kty     string
		allowed []string
	)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", "", invalid("public_key", "EC keys must be on curve P-256 (ES256), not %s", k.Curve.Params().Name)
		}
		kty, allowed = "EC", []string{AlgES256}
	case ed25519.PublicKey:
		kty, allowed = "OKP", []string{AlgEdDSA}
	case *rsa.PublicKey:
		switch bits := k.N.BitLen(); {
		case bits < MinRSAKeyBits:
			return "", "", invalid("public_key", "RSA keys must have at least %d bits; this one has %d", MinRSAKeyBits, bits)
		case bits > MaxRSAKeyBits:
			return "", "", invalid("public_key", "RSA keys must have at most %d bits; this one has %d", MaxRSAKeyBits, bits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return "", "", invalid("public_key", "RSA public exponent must be odd and at least 3")
		}
		kty, allowed = "RSA", []string{AlgRS256, AlgPS256}
	default:
		return "", "", invalid("public_key", "must be an EC P-256, Ed25519 or RSA public key")
	}
	if alg == "" {
		return kty, allowed[0], nil
	}
	if !slices.Contains(allowed, alg) {
		return "", "", invalid("algorithm", "must be %s for this %s key, not %s", strings.Join(allowed, " or "), kty, quote(alg))
	}
	return kty, alg, nil
}

// ValidateKeyID checks a client key id: 1 to MaxKeyIDLen bytes of
// printable ASCII without space. It returns a *ValidationError for field
// "kid". Safe on any input.
func ValidateKeyID(kid string) error {
	if kid == "" {
		return invalid("kid", "must not be empty")
	}
	if len(kid) > MaxKeyIDLen {
		return invalid("kid", "must be at most %d bytes", MaxKeyIDLen)
	}
	for i := 0; i < len(kid); i++ {
		if kid[i] < 0x21 || kid[i] > 0x7E {
			return invalid("kid", "must be printable ASCII without space")
		}
	}
	return nil
}

// ClientKeyThumbprint returns the RFC 7638 thumbprint (base64url SHA-256)
// of a stored client key, or "" when its JWK does not parse (which a key
// stored by AddClientKey always does).
func ClientKeyThumbprint(k store.ClientKey) string {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(k.JWK); err != nil || !jwk.IsPublic() {
		return ""
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// joseReason is a go-jose error's message without its package prefix,
// bounded. It describes public key input only, so it is safe to show.
func joseReason(err error) string {
	msg := strings.TrimPrefix(err.Error(), "go-jose/go-jose: ")
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return msg
}
