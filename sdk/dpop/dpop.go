// Package dpop creates and verifies DPoP proofs (RFC 9449): the JWTs that
// bind an OAuth access token to a key the client holds, so that a stolen
// token is useless without that key.
//
// A client makes a Signer from its key and calls Proof for every request (a
// token request and every call to a resource server). A server calls Verify
// with the request's method and URL; Verify checks everything RFC 9449 §4.3
// lists except replay, which the caller checks with the proof's JTI, for
// instance with a ReplayCache.
//
// The package imports nothing from agentid's internal packages. Signer,
// Verify and ReplayCache are safe for concurrent use.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// Errors. Verify wraps ErrInvalidProof or ErrUseNonce with the reason.
var (
	// ErrInvalidProof: the proof fails a check of RFC 9449 §4.3.
	ErrInvalidProof = errors.New("dpop: invalid proof")
	// ErrUseNonce: the server asked for a nonce (VerifyParams.Nonce) and
	// the proof lacks it or carries another one; the server answers with a
	// use_dpop_nonce error and a DPoP-Nonce header (RFC 9449 §8).
	ErrUseNonce = errors.New("dpop: use the server's nonce")
)

// proofType is the JWS typ header of a DPoP proof (RFC 9449 §4.2).
const proofType = "dpop+jwt"

// Signer signs DPoP proofs with one private key. Construct it with
// NewSigner; it is safe for concurrent use.
type Signer struct {
	alg        jose.SignatureAlgorithm
	signer     jose.Signer
	thumbprint string
}

// NewSigner returns a Signer of key: an ECDSA P-256 key signs with ES256, an
// Ed25519 key with EdDSA. Any other key is refused. key may be a hardware or
// KMS key: only its Sign and Public methods are used.
func NewSigner(key crypto.Signer) (*Signer, error) {
	if key == nil {
		return nil, errors.New("dpop: nil key")
	}
	var alg jose.SignatureAlgorithm
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("dpop: ECDSA key is not on P-256")
		}
		alg = jose.ES256
	case ed25519.PublicKey:
		alg = jose.EdDSA
	default:
		return nil, fmt.Errorf("dpop: unsupported key type %T (want ECDSA P-256 or Ed25519)", pub)
	}
	jwk := jose.JSONWebKey{Key: key.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("dpop: thumbprint: %w", err)
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(proofType)
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: cryptosigner.Opaque(key)}, opts)
	if err != nil {
		return nil, fmt.Errorf("dpop: signer: %w", err)
	}
	return &Signer{alg: alg, signer: js, thumbprint: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// Algorithm returns the JWS algorithm of the proofs: "ES256" or "EdDSA".
func (s *Signer) Algorithm() string { return string(s.alg) }

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of the public key,
// base64url without padding: the jkt a bound token carries in cnf (RFC
// 9449 §6.1).
func (s *Signer) Thumbprint() string { return s.thumbprint }

// ProofParams are the optional parts of a proof.
type ProofParams struct {
	// AccessToken, when set, binds the proof to it (the ath claim); set it
	// on every request to a resource server.
	AccessToken string
	// Nonce is the server's last DPoP-Nonce, if it gave one.
	Nonce string
	// Now is the proof's iat (default: the current time).
	Now time.Time
	// JTI is the proof's unique id (default: 128 random bits).
	JTI string
}

// claims is a proof's JWT payload (RFC 9449 §4.2).
type claims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// Proof returns a DPoP proof for a request with the method and URL. The htu
// claim is the URL without its query and fragment (RFC 9449 §4.2).
func (s *Signer) Proof(method, rawURL string, p ProofParams) (string, error) {
	if method == "" {
		return "", errors.New("dpop: proof: empty method")
	}
	htu, err := targetURI(rawURL)
	if err != nil {
		return "", fmt.Errorf("dpop: proof: %w", err)
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	jti := p.JTI
	if jti == "" {
		jti = rand.Text()
	}
	c := claims{JTI: jti, HTM: method, HTU: htu, IAT: now.Unix(), Nonce: p.Nonce}
	if p.AccessToken != "" {
		c.ATH = TokenHash(p.AccessToken)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("dpop: proof: %w", err)
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("dpop: sign proof: %w", err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("dpop: sign proof: %w", err)
	}
	return out, nil
}

// TokenHash returns the ath value for an access token: the base64url
// (unpadded) SHA-256 of its ASCII form (RFC 9449 §4.2).
func TokenHash(accessToken string) string {
	h := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// targetURI returns rawURL without query and fragment; rawURL must be an
// absolute http(s) URL.
func targetURI(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", errors.New("url does not parse")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("url is not an absolute http(s) URL")
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.String(), nil
}
