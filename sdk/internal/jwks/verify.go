package jwks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Kinds of a *RefusedError.
var (
	// ErrMalformed: the token is not a JWS in compact serialization with
	// one signature, the expected typ and an allowed alg.
	ErrMalformed = errors.New("jwks: malformed JWS")
	// ErrSignature: the header names no kid, or no key with that kid
	// verifies the signature.
	ErrSignature = errors.New("jwks: signature not verifiable")
)

// RefusedError is why Verify refused a token. errors.Is matches its Kind.
type RefusedError struct {
	// Kind is ErrMalformed or ErrSignature.
	Kind error
	// Reason says what failed; it holds no secret and may be shown to the
	// token's sender.
	Reason string
	// Err is the underlying error, if any, for logs.
	Err error
}

func (e *RefusedError) Error() string {
	msg := e.Kind.Error() + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns Kind and Err.
func (e *RefusedError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func refuse(kind error, reason string) *RefusedError {
	return &RefusedError{Kind: kind, Reason: reason}
}

// VerifyParams say what Verify accepts.
type VerifyParams struct {
	// Typ is the JWS header typ required (RFC 8725 §3.11 explicit typing),
	// e.g. "at+jwt"; "application/" + Typ matches too, in any case.
	Typ string
	// Algorithms are the signature algorithms accepted.
	Algorithms []jose.SignatureAlgorithm
	// Keys returns the keys with a kid, e.g. a Cache's Get.
	Keys func(ctx context.Context, kid string) ([]jose.JSONWebKey, error)
}

// header is the part of the JWS header read before go-jose parses it.
type header struct {
	Typ string `json:"typ"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// Verify checks a JWS in compact serialization (RFC 7515 §7.1) and returns
// its payload: one signature, header typ p.Typ, an alg of p.Algorithms, a
// kid, and a signature by one of the kid's keys that states no alg or the
// header's. It does not read the payload. The error is a *RefusedError when
// the token is refused, or the error of p.Keys as it is.
func Verify(ctx context.Context, token string, p VerifyParams) ([]byte, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, refuse(ErrMalformed, "not a JWS in compact serialization")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, refuse(ErrMalformed, "header is not base64url")
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, refuse(ErrMalformed, "header is not a JSON object")
	}
	if !strings.EqualFold(h.Typ, p.Typ) && !strings.EqualFold(h.Typ, "application/"+p.Typ) {
		return nil, refuse(ErrMalformed, "typ is not "+p.Typ)
	}
	if !slices.Contains(p.Algorithms, jose.SignatureAlgorithm(h.Alg)) {
		return nil, refuse(ErrMalformed, "alg is not allowed")
	}
	if h.Kid == "" {
		return nil, refuse(ErrSignature, "no kid")
	}
	jws, err := jose.ParseSignedCompact(token, p.Algorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, &RefusedError{Kind: ErrMalformed, Reason: "malformed JWS", Err: err}
	}
	keys, err := p.Keys(ctx, h.Kid)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Alg {
			continue
		}
		if payload, err := jws.Verify(k); err == nil {
			return payload, nil
		}
	}
	return nil, refuse(ErrSignature, "signature does not verify")
}

// Asymmetric reports whether alg is an asymmetric JWS algorithm (RFC 7518
// §3.1, RFC 8037 §3.1): none and HMAC are not.
func Asymmetric(alg jose.SignatureAlgorithm) bool {
	switch alg {
	case jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
		jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		return true
	}
	return false
}

// NumericDate parses a JWT NumericDate (RFC 7519 §2). An absent or null
// value is the zero time, an error when required.
func NumericDate(raw json.RawMessage, required bool) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			return time.Time{}, errors.New("missing")
		}
		return time.Time{}, nil
	}
	if raw[0] == '"' {
		return time.Time{}, errors.New("not a number")
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e12 {
		return time.Time{}, errors.New("not a number")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// Audience reads aud: a string or an array of strings (RFC 7519 §4.1.3).
// An absent or null aud is an empty list. ok is false for anything else.
func Audience(raw json.RawMessage) (aud []string, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []string{s}, true
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, false
	}
	return l, true
}
