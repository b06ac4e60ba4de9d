package dpop

import (
	"crypto"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Defaults of VerifyParams.
const (
	DefaultMaxAge   = 5 * time.Minute
	DefaultLeeway   = 60 * time.Second
	DefaultMaxBytes = 8 << 10
	// maxJTI bounds the jti claim.
	maxJTI = 256
	// minRSABits is the smallest RSA key a proof may be signed with.
	minRSABits = 2048
)

// DefaultAlgorithms returns the algorithms Verify accepts when
// VerifyParams.Algorithms is empty: ES256, EdDSA, RS256 and PS256.
func DefaultAlgorithms() []string {
	return []string{string(jose.ES256), string(jose.EdDSA), string(jose.RS256), string(jose.PS256)}
}

// asymmetric reports whether alg is an asymmetric JWS algorithm: the only
// kind a proof may use (RFC 9449 §4.3: not none, not a MAC).
func asymmetric(alg jose.SignatureAlgorithm) bool {
	switch alg {
	case jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
		jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		return true
	}
	return false
}

// VerifyParams say what request a proof must be for, and how strict to be.
type VerifyParams struct {
	// Method and URL are the request's. URL is compared with the proof's
	// htu without query and fragment, with scheme and host compared
	// case-insensitively and default ports removed (RFC 9449 §4.3).
	Method, URL string
	// AccessToken, when non-empty, is the token presented with the proof:
	// the proof's ath must be its hash.
	AccessToken string
	// Nonce, when non-empty, is the nonce the server gave: the proof's nonce
	// must equal it, else the error wraps ErrUseNonce.
	Nonce string
	// Now is the current time (default: time.Now()).
	Now time.Time
	// MaxAge is how old the proof's iat may be (default 5 minutes).
	MaxAge time.Duration
	// Leeway is how far in the future iat may be (default 60 s).
	Leeway time.Duration
	// Algorithms are the JWS algorithms accepted (default:
	// DefaultAlgorithms). none and the HMAC algorithms are never accepted,
	// even when listed.
	Algorithms []string
	// MaxBytes bounds the proof's length (default 8 KiB).
	MaxBytes int
}

// Proof is what a verified proof says.
type Proof struct {
	// JTI is the proof's unique id: the caller checks it was not used
	// before (RFC 9449 §11.1), for instance with a ReplayCache.
	JTI string
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of the proof's key,
	// base64url: compare it with a bound token's cnf.jkt.
	Thumbprint string
	// Algorithm is the proof's JWS algorithm.
	Algorithm string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
	// Nonce is the proof's nonce, if any.
	Nonce string
}

// header is the part of the JWS header Verify reads before go-jose does.
type header struct {
	Typ string                     `json:"typ"`
	Alg string                     `json:"alg"`
	JWK map[string]json.RawMessage `json:"jwk"`
}

// proofClaims is a proof's payload as received.
type proofClaims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   string          `json:"ath"`
	Nonce string          `json:"nonce"`
}

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidProof, reason) }

// Verify checks a DPoP proof against the request (RFC 9449 §4.3): one JWS in
// compact form, typ dpop+jwt, an allowed asymmetric alg, a public key in the
// jwk header that verifies the signature, htm and htu matching the request,
// iat within [Now-MaxAge, Now+Leeway], a jti of at most 256 characters, ath
// when an access token is given, and the nonce when one is asked for.
//
// Verify does NOT check that the jti is new: the caller must, for as long as
// the proof would be accepted (IssuedAt + MaxAge), else a captured proof can
// be replayed. The error wraps ErrInvalidProof or ErrUseNonce with a reason
// that holds no secret. A request URL that does not parse is an error that
// wraps neither.
func Verify(proof string, p VerifyParams) (Proof, error) {
	want, err := normalURL(p.URL)
	if err != nil {
		return Proof{}, fmt.Errorf("dpop: verify: request %w", err)
	}
	maxBytes := p.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if len(proof) > maxBytes {
		return Proof{}, invalid("proof too large")
	}
	parts := strings.Split(proof, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return Proof{}, invalid("not a JWS in compact serialization")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return Proof{}, invalid("header is not base64url")
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return Proof{}, invalid("header is not a JSON object")
	}
	if !strings.EqualFold(h.Typ, proofType) && !strings.EqualFold(h.Typ, "application/"+proofType) {
		return Proof{}, invalid("typ is not dpop+jwt")
	}
	algs := allowed(p.Algorithms)
	alg := jose.SignatureAlgorithm(h.Alg)
	if !contains(algs, alg) {
		return Proof{}, invalid("alg is not allowed")
	}
	if h.JWK == nil {
		return Proof{}, invalid("no jwk header")
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := h.JWK[private]; ok {
			return Proof{}, invalid("jwk header is not a public key")
		}
	}
	jws, err := jose.ParseSignedCompact(proof, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return Proof{}, invalid("malformed JWS")
	}
	jwk := jws.Signatures[0].Protected.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return Proof{}, invalid("jwk header is not a public key")
	}
	if rk, ok := jwk.Key.(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
		return Proof{}, invalid("RSA key too small")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return Proof{}, invalid("signature does not verify")
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return Proof{}, invalid("jwk header has no thumbprint")
	}
	var c proofClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Proof{}, invalid("claims are not a JSON object of the right types")
	}
	if c.JTI == "" || len(c.JTI) > maxJTI {
		return Proof{}, invalid("jti missing or too long")
	}
	if c.HTM != p.Method {
		return Proof{}, invalid("htm does not match the request method")
	}
	if got, err := normalURL(c.HTU); err != nil || got != want {
		return Proof{}, invalid("htu does not match the request URL")
	}
	iat, err := numericDate(c.IAT)
	if err != nil {
		return Proof{}, invalid("iat missing or not a number")
	}
	now, maxAge, leeway := p.Now, p.MaxAge, p.Leeway
	if now.IsZero() {
		now = time.Now()
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if leeway <= 0 {
		leeway = DefaultLeeway
	}
	if iat.After(now.Add(leeway)) {
		return Proof{}, invalid("iat is in the future")
	}
	if iat.Before(now.Add(-maxAge)) {
		return Proof{}, invalid("proof is too old")
	}
	if p.AccessToken != "" {
		if c.ATH == "" {
			return Proof{}, invalid("ath missing")
		}
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(TokenHash(p.AccessToken))) != 1 {
			return Proof{}, invalid("ath does not match the access token")
		}
	}
	if p.Nonce != "" {
		if c.Nonce == "" {
			return Proof{}, fmt.Errorf("%w: nonce missing", ErrUseNonce)
		}
		if subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(p.Nonce)) != 1 {
			return Proof{}, fmt.Errorf("%w: nonce does not match", ErrUseNonce)
		}
	}
	return Proof{
		JTI:        c.JTI,
		Thumbprint: base64.RawURLEncoding.EncodeToString(tp),
		Algorithm:  string(alg),
		IssuedAt:   iat,
		Nonce:      c.Nonce,
	}, nil
}

// allowed returns the asymmetric algorithms of names, or the defaults when
// names is empty.
func allowed(names []string) []jose.SignatureAlgorithm {
	if len(names) == 0 {
		names = DefaultAlgorithms()
	}
	out := make([]jose.SignatureAlgorithm, 0, len(names))
	for _, n := range names {
		if a := jose.SignatureAlgorithm(n); asymmetric(a) {
			out = append(out, a)
		}
	}
	return out
}

func contains(algs []jose.SignatureAlgorithm, alg jose.SignatureAlgorithm) bool {
	for _, a := range algs {
		if a == alg {
			return true
		}
	}
	return false
}

// numericDate parses a JWT NumericDate (RFC 7519 §2): a JSON number of
// seconds since the epoch, possibly fractional.
func numericDate(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || raw[0] == '"' {
		return time.Time{}, errors.New("not a number")
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > 1e12 {
		return time.Time{}, errors.New("not a number")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// normalURL returns the form of an http(s) URL in which htu and the request
// URL are compared (RFC 9449 §4.3, RFC 3986 §6.2.2 and §6.2.3): lower-case
// scheme and host, no default port, an empty path as "/", percent-encoding
// normalised, no query and no fragment.
func normalURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("url does not parse")
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", errors.New("url is not an absolute http(s) URL")
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	defaultPort := scheme == "http" && port == "80" || scheme == "https" && port == "443"
	if port != "" && !defaultPort {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	path := normalPercent(u.EscapedPath())
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// normalPercent upper-cases percent-encodings and decodes those of
// unreserved characters (RFC 3986 §6.2.2.1, §6.2.2.2).
func normalPercent(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+2 >= len(p) {
			b.WriteByte(p[i])
			continue
		}
		v, err := strconv.ParseUint(p[i+1:i+3], 16, 8)
		if err != nil {
			b.WriteByte(p[i])
			continue
		}
		c := byte(v)
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			b.WriteString(strings.ToUpper(p[i : i+3]))
		}
		i += 2
	}
	return b.String()
}
