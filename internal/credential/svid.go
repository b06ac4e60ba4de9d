package credential

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"time"

	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/recordid"
)

// SVID lifetimes and bounds.
const (
	// DefaultX509SVIDTTL is an X.509-SVID's lifetime when none is asked
	// for (issue 4 §2); the agent's MaxTTL caps it.
	DefaultX509SVIDTTL = time.Hour
	// DefaultJWTSVIDTTL is a JWT-SVID's lifetime when none is asked for:
	// short, because a JWT-SVID is a bearer token that a verifier checks
	// offline until it expires.
	DefaultJWTSVIDTTL = 5 * time.Minute
	// X509SVIDBackdate is how far before its issue time an X.509-SVID's
	// NotBefore lies, so that a verifier whose clock lags the issuer's by
	// up to this much already accepts it.
	X509SVIDBackdate = 30 * time.Second
	// MaxSVIDAudiences bounds the audiences of one JWT-SVID.
	MaxSVIDAudiences = 16
	// MaxSVIDAudienceLen bounds one JWT-SVID audience.
	MaxSVIDAudienceLen = 512
	// serialBytes is the randomness of an X.509-SVID serial number: 128
	// bits, well above the 64 bits of CA/Browser Forum BR §7.1.
	serialBytes = 16
)

// JWTSVIDType is the JWS "typ" of a JWT-SVID (JWT-SVID §2.3 allows "JWT"
// or "JOSE").
const JWTSVIDType = "JWT"

// SVID sentinel errors, beside ErrNoKey (no JWT-SVID signing key).
var (
	// ErrNoCA means no X.509 CA can sign now: none is configured, the CA
	// has no usable key, or its certificate has expired.
	ErrNoCA = errors.New("credential: no X.509 CA")
	// ErrInvalidSVIDParams means an SVID request is malformed: a SPIFFE ID
	// that is not a workload's, a missing audience, a bad TTL or an
	// unsupported public key. The message is safe to show to the client.
	ErrInvalidSVIDParams = errors.New("credential: invalid SVID request")
)

// CAKey is the X.509 CA key that signs now.
type CAKey struct {
	// ID names the key (the store's signing key id); it is recorded with
	// every SVID the key signs.
	ID string
	// Signer is the CA's private key.
	Signer crypto.Signer
	// Chain is the CA's certificate first, then the intermediates toward
	// the root. A self-signed certificate in it (the root) is a trust
	// anchor: verifiers take it from the bundle, so SVID chains omit it.
	Chain []*x509.Certificate
}

// CA gives the X.509 CA key that signs now. internal/ca's Manager
// implements it.
type CA interface {
	// CurrentCA returns the key that signs now; it does no I/O.
	CurrentCA() (CAKey, error)
}

// SVIDIssuerParams configures an SVIDIssuer.
type SVIDIssuerParams struct {
	// CA signs X.509-SVIDs; nil: X509SVID fails with ErrNoCA.
	CA CA
	// JWTKeys signs JWT-SVIDs (a keys.Manager of purpose "jwt-svid" with
	// algorithm ES256); nil: JWTSVID fails with ErrNoKey.
	JWTKeys KeySource
	// Rand is a cryptographic source of serial numbers and jtis. Required.
	Rand io.Reader
}

// SVIDIssuer mints X.509-SVIDs and JWT-SVIDs per the SPIFFE X509-SVID and
// JWT-SVID specifications. It does no I/O and records nothing: the caller
// authorises the request and records the issuance. It is safe for
// concurrent use.
type SVIDIssuer struct {
	ca   CA
	jwt  KeySource
	rand io.Reader
}

// NewSVIDIssuer returns an SVIDIssuer.
func NewSVIDIssuer(p SVIDIssuerParams) (*SVIDIssuer, error) {
	if p.Rand == nil {
		return nil, errors.New("credential: SVID issuer needs Rand")
	}
	return &SVIDIssuer{ca: p.CA, jwt: p.JWTKeys, rand: p.Rand}, nil
}

// X509SVIDParams describes one X.509-SVID.
type X509SVIDParams struct {
	// SPIFFEID is the workload's SPIFFE ID, with a path; it is the
	// certificate's only URI SAN.
	SPIFFEID string
	// PublicKey is the workload's key: from a CSR checked by ParseCSR, or
	// one the caller holds. ECDSA P-256 or P-384, Ed25519, or RSA of 2048
	// to 4096 bits.
	PublicKey crypto.PublicKey
	// IssuedAt is the issue time.
	IssuedAt time.Time
	// TTL is the asked lifetime; zero means DefaultX509SVIDTTL.
	TTL time.Duration
	// MaxTTL, when not zero, caps the lifetime: the agent's policy.
	MaxTTL time.Duration
}

// X509SVID is a minted X.509-SVID.
type X509SVID struct {
	// Chain is the DER certificates to present: the SVID first, then the
	// CA's certificate and intermediates, without a self-signed root.
	Chain [][]byte
	// SPIFFEID is the SVID's URI SAN.
	SPIFFEID string
	// Serial is the serial number in lowercase hex without leading zeros.
	Serial string
	// NotBefore and ExpiresAt (NotAfter) bound the SVID's validity.
	NotBefore, ExpiresAt time.Time
	// CAKeyID is the CAKey.ID of the key that signed it.
	CAKeyID string
}

// X509SVID mints an X.509-SVID (X509-SVID §3–§5): exactly one URI SAN, the
// SPIFFE ID; an empty subject (so the SAN extension is critical, RFC 5280
// §4.2.1.6); basic constraints CA=false, critical; key usage
// digitalSignature, plus keyEncipherment for an RSA key, which TLS 1.2 RSA
// key transport needs (keyAgreement is never set: no TLS suite uses static
// ECDH keys); extended key usage serverAuth and clientAuth; a random
// positive 128-bit serial number. NotBefore is IssuedAt −
// X509SVIDBackdate; NotAfter is IssuedAt + TTL (DefaultX509SVIDTTL when
// zero, capped by MaxTTL), and never later than any CA certificate's
// NotAfter; IssuedAt is first truncated to the second, as X.509 times have
// no fraction. Anything a CSR asked for besides its key is ignored.
//
// Errors wrap ErrInvalidSVIDParams (bad SPIFFE ID, TTL or key) or ErrNoCA.
func (i *SVIDIssuer) X509SVID(p X509SVIDParams) (X509SVID, error) {
	uri, err := workloadURI(p.SPIFFEID)
	if err != nil {
		return X509SVID{}, err
	}
	if err := CheckWorkloadKey(p.PublicKey); err != nil {
		return X509SVID{}, err
	}
	ttl, err := svidTTL(p.TTL, p.MaxTTL, DefaultX509SVIDTTL)
	if err != nil {
		return X509SVID{}, err
	}
	if i.ca == nil {
		return X509SVID{}, fmt.Errorf("%w: none is configured", ErrNoCA)
	}
	ca, err := i.ca.CurrentCA()
	if err != nil {
		return X509SVID{}, fmt.Errorf("%w: %w", ErrNoCA, err)
	}
	if len(ca.Chain) == 0 || ca.Signer == nil {
		return X509SVID{}, fmt.Errorf("%w: CA key %s has no certificate or signer", ErrNoCA, ca.ID)
	}
	issued := p.IssuedAt.Truncate(time.Second) // X.509 times have whole seconds
	notBefore, notAfter := issued.Add(-X509SVIDBackdate), issued.Add(ttl)
	for _, c := range ca.Chain {
		if c.NotBefore.After(notBefore) {
			notBefore = c.NotBefore
		}
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	if !notAfter.After(p.IssuedAt) {
		return X509SVID{}, fmt.Errorf("%w: CA certificate of key %s has expired", ErrNoCA, ca.ID)
	}
	serial, err := i.serial()
	if err != nil {
		return X509SVID{}, err
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := p.PublicKey.(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		URIs:                  []*url.URL{uri},
	}
	leaf, err := x509.CreateCertificate(i.rand, tmpl, ca.Chain[0], p.PublicKey, ca.Signer)
	if err != nil {
		return X509SVID{}, fmt.Errorf("%w: sign with CA key %s: %w", ErrNoCA, ca.ID, err)
	}
	chain := make([][]byte, 1, 1+len(ca.Chain))
	chain[0] = leaf
	for _, c := range ca.Chain {
		if !bytes.Equal(c.RawSubject, c.RawIssuer) {
			chain = append(chain, c.Raw)
		}
	}
	return X509SVID{
		Chain:     chain,
		SPIFFEID:  p.SPIFFEID,
		Serial:    serial.Text(16),
		NotBefore: notBefore.UTC(),
		ExpiresAt: notAfter.UTC(),
		CAKeyID:   ca.ID,
	}, nil
}

// serial returns a random positive serial number of serialBytes bytes.
func (i *SVIDIssuer) serial() (*big.Int, error) {
	var b [serialBytes]byte
	for {
		if _, err := io.ReadFull(i.rand, b[:]); err != nil {
			return nil, fmt.Errorf("credential: serial number: %w", err)
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}

// JWTSVIDParams describes one JWT-SVID.
type JWTSVIDParams struct {
	// SPIFFEID is the workload's SPIFFE ID, with a path: the "sub" claim.
	SPIFFEID string
	// Audience is the "aud" claim: at least one value, each at most
	// MaxSVIDAudienceLen bytes, at most MaxSVIDAudiences of them.
	Audience []string
	// IssuedAt is the issue time; it is truncated to the second.
	IssuedAt time.Time
	// TTL is the asked lifetime; zero means DefaultJWTSVIDTTL.
	TTL time.Duration
	// MaxTTL, when not zero, caps the lifetime: the agent's policy.
	MaxTTL time.Duration
}

// JWTSVIDClaims is the claim set of a JWT-SVID, in the order it is
// encoded (JWT-SVID §3).
type JWTSVIDClaims struct {
	Subject  string   `json:"sub"`
	Audience Audience `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	JTI      string   `json:"jti"`
}

// JWTSVID is a minted JWT-SVID.
type JWTSVID struct {
	// Token is the compact JWS.
	Token string
	// KeyID is the "kid" of the key that signed it.
	KeyID  string
	Claims JWTSVIDClaims
}

// IssuedAt is the token's iat as a time.
func (s JWTSVID) IssuedAt() time.Time { return time.Unix(s.Claims.IssuedAt, 0).UTC() }

// ExpiresAt is the token's exp as a time.
func (s JWTSVID) ExpiresAt() time.Time { return time.Unix(s.Claims.Expiry, 0).UTC() }

// JWTSVID mints a JWT-SVID (JWT-SVID §2–§3): a JWS signed with ES256 (the
// algorithm go-spiffe's validator and the SPIFFE bundle's JWT authorities
// support; EdDSA is refused), header "kid" and "typ": "JWT", claims "sub"
// (the SPIFFE ID), "aud" (a string when it has one value), "exp" (IssuedAt
// + TTL, DefaultJWTSVIDTTL when zero, capped by MaxTTL), "iat" and "jti".
//
// Errors wrap ErrInvalidSVIDParams (bad SPIFFE ID, audience or TTL) or
// ErrNoKey (no active ES256 key).
func (i *SVIDIssuer) JWTSVID(p JWTSVIDParams) (JWTSVID, error) {
	if _, err := workloadURI(p.SPIFFEID); err != nil {
		return JWTSVID{}, err
	}
	if err := CheckAudience(p.Audience); err != nil {
		return JWTSVID{}, err
	}
	ttl, err := svidTTL(p.TTL, p.MaxTTL, DefaultJWTSVIDTTL)
	if err != nil {
		return JWTSVID{}, err
	}
	if i.jwt == nil {
		return JWTSVID{}, fmt.Errorf("%w: no JWT-SVID keys are configured", ErrNoKey)
	}
	key, err := i.jwt.Current()
	if err != nil {
		return JWTSVID{}, fmt.Errorf("%w: %w", ErrNoKey, err)
	}
	if key.Algorithm != keys.ES256 {
		return JWTSVID{}, fmt.Errorf("%w: JWT-SVID key %s is %s; JWT-SVIDs are signed with ES256 only", ErrNoKey, key.ID, key.Algorithm)
	}
	jti, err := recordid.New(recordid.Token, p.IssuedAt, i.rand)
	if err != nil {
		return JWTSVID{}, fmt.Errorf("credential: JWT-SVID id: %w", err)
	}
	iat := p.IssuedAt.Unix()
	c := JWTSVIDClaims{
		Subject:  p.SPIFFEID,
		Audience: Audience(p.Audience),
		Expiry:   iat + int64(ttl/time.Second),
		IssuedAt: iat,
		JTI:      jti,
	}
	raw, err := signJWS(key, JWTSVIDType, c)
	if err != nil {
		return JWTSVID{}, err
	}
	return JWTSVID{Token: raw, KeyID: key.ID, Claims: c}, nil
}

// workloadURI parses a workload's SPIFFE ID: valid per the SPIFFE ID spec
// and with a path (the trust domain's own ID names no workload).
func workloadURI(id string) (*url.URL, error) {
	td, path, err := identity.ParseSPIFFEID(id)
	if err != nil {
		var ve *identity.ValidationError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("%w: SPIFFE ID %s", ErrInvalidSVIDParams, ve.Reason)
		}
		return nil, fmt.Errorf("%w: SPIFFE ID is malformed", ErrInvalidSVIDParams)
	}
	if path == "" {
		return nil, fmt.Errorf("%w: SPIFFE ID %q names a trust domain, not a workload", ErrInvalidSVIDParams, id)
	}
	return &url.URL{Scheme: "spiffe", Host: td, Path: path}, nil
}

// svidTTL is the lifetime of an SVID: asked (def when zero), capped by
// maxTTL when set, in whole seconds, at least one.
func svidTTL(asked, maxTTL, def time.Duration) (time.Duration, error) {
	if asked < 0 || maxTTL < 0 {
		return 0, fmt.Errorf("%w: TTL must not be negative", ErrInvalidSVIDParams)
	}
	ttl := asked
	if ttl == 0 {
		ttl = def
	}
	if maxTTL > 0 && ttl > maxTTL {
		ttl = maxTTL
	}
	ttl = ttl.Truncate(time.Second)
	if ttl < time.Second {
		return 0, fmt.Errorf("%w: TTL must be at least 1s", ErrInvalidSVIDParams)
	}
	return ttl, nil
}

// CheckAudience applies JWT-SVID §3.2 ("aud" is required) and this
// issuer's bounds: 1 to MaxSVIDAudiences values of 1 to MaxSVIDAudienceLen
// printable ASCII bytes without spaces. Its errors wrap
// ErrInvalidSVIDParams.
func CheckAudience(aud []string) error {
	switch {
	case len(aud) == 0:
		return fmt.Errorf("%w: a JWT-SVID needs at least one audience", ErrInvalidSVIDParams)
	case len(aud) > MaxSVIDAudiences:
		return fmt.Errorf("%w: more than %d audiences", ErrInvalidSVIDParams, MaxSVIDAudiences)
	}
	for _, a := range aud {
		if a == "" || len(a) > MaxSVIDAudienceLen {
			return fmt.Errorf("%w: an audience must be 1 to %d bytes", ErrInvalidSVIDParams, MaxSVIDAudienceLen)
		}
		for j := 0; j < len(a); j++ {
			if a[j] < 0x21 || a[j] > 0x7e {
				return fmt.Errorf("%w: an audience must be printable ASCII without spaces", ErrInvalidSVIDParams)
			}
		}
	}
	return nil
}
