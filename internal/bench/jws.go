package bench

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"
)

// The minimal ES256 JWS (RFC 7515 compact serialisation, RFC 7518 §3.4
// signatures) the load generator and the ceiling server need, with
// crypto/ecdsa and base64 only, so that the ceiling is the cost of the
// cryptography and not of a JOSE library.

var b64 = base64.RawURLEncoding //nolint:gochecknoglobals // an immutable encoding

// AssertionType is the client_assertion_type of RFC 7523 §2.2.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// es256Size is the size of an ES256 signature: R ‖ S, 32 bytes each.
const es256Size = 64

// signES256 returns the JWS compact serialisation of the pre-encoded
// header and the payload, signed with key.
func signES256(rnd io.Reader, key *ecdsa.PrivateKey, header string, payload []byte) (string, error) {
	pl := b64.EncodedLen(len(payload))
	buf := make([]byte, 0, len(header)+1+pl+1+b64.EncodedLen(es256Size))
	buf = append(buf, header...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	r, s, err := ecdsa.Sign(rnd, key, digest[:])
	if err != nil {
		return "", fmt.Errorf("bench: sign: %w", err)
	}
	var sig [es256Size]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig[:])
	return string(buf), nil
}

// encodeHeader returns the base64url encoding of an ES256 JWS header.
func encodeHeader(kid, typ string) (string, error) {
	b, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid,omitempty"`
		Typ string `json:"typ,omitempty"`
	}{"ES256", kid, typ})
	if err != nil {
		return "", fmt.Errorf("bench: encode header: %w", err)
	}
	return b64.EncodeToString(b), nil
}

// verifyES256 checks the ES256 signature of a compact JWS with pub and
// returns its decoded payload. The header must name alg ES256.
func verifyES256(pub *ecdsa.PublicKey, raw string) ([]byte, error) {
	h, rest, ok := strings.Cut(raw, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(s, ".") {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrAssertion)
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url", ErrAssertion)
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr.Alg != "ES256" {
		return nil, fmt.Errorf("%w: header alg is not ES256", ErrAssertion)
	}
	sig, err := b64.DecodeString(s)
	if err != nil || len(sig) != es256Size {
		return nil, fmt.Errorf("%w: signature is not %d bytes of base64url", ErrAssertion, es256Size)
	}
	digest := sha256.Sum256([]byte(raw[:len(h)+1+len(p)]))
	r, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, ss) {
		return nil, fmt.Errorf("%w: signature does not verify", ErrAssertion)
	}
	payload, err := b64.DecodeString(p)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrAssertion)
	}
	return payload, nil
}

// assertionClaims are the claims of a client assertion (RFC 7523 §3).
type assertionClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
}

// assertionLifetime is how long a client assertion the load generator
// signs is valid.
const assertionLifetime = 60 * time.Second

// assertionSigner signs client assertions of one client (RFC 7523 §2.2):
// iss = sub = the client id, aud = the issuer, a 60 s lifetime and a
// unique jti. It is safe for concurrent use.
type assertionSigner struct {
	key      *ecdsa.PrivateKey
	header   string
	clientID string
	audience string
	rand     io.Reader
}

func newAssertionSigner(key *ecdsa.PrivateKey, kid, clientID, audience string, rnd io.Reader) (*assertionSigner, error) {
	h, err := encodeHeader(kid, "JWT")
	if err != nil {
		return nil, err
	}
	return &assertionSigner{key: key, header: h, clientID: clientID, audience: audience, rand: rnd}, nil
}

// sign returns an assertion issued at now with the jti.
func (s *assertionSigner) sign(now time.Time, jti string) (string, error) {
	payload, err := json.Marshal(assertionClaims{
		Iss: s.clientID, Sub: s.clientID, Aud: s.audience,
		Iat: now.Unix(), Exp: now.Add(assertionLifetime).Unix(), Jti: jti,
	})
	if err != nil {
		return "", fmt.Errorf("bench: encode assertion: %w", err)
	}
	return signES256(s.rand, s.key, s.header, payload)
}
