package resource

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/agentid/agentid/sdk/dpop"
)

// Authorization schemes (RFC 6750 §2.1, RFC 9449 §7.1).
const (
	SchemeBearer = "Bearer"
	SchemeDPoP   = "DPoP"
)

// VerifyRequest verifies the access token of an HTTP request: the
// Authorization header with the Bearer or DPoP scheme (RFC 6750 §2.1, RFC
// 9449 §7.1; tokens in the query or body are not accepted), then Verify.
// A DPoP-bound token (cnf.jkt) must come with the DPoP scheme and one DPoP
// header holding a valid proof for this request (method and URL, see
// VerifierParams.ExternalURL), for this token (ath), signed by the bound
// key, and not used before; a bearer token must come with the Bearer
// scheme. A token bound to a client certificate (cnf x5t#S256, RFC 8705 §3)
// must come over TLS with that certificate. The error is an *Error.
func (v *Verifier) VerifyRequest(r *http.Request) (*Claims, error) {
	scheme, token, err := credentials(r)
	if err != nil {
		return nil, err
	}
	c, err := v.Verify(r.Context(), token)
	if err != nil {
		return nil, err
	}
	switch {
	case c.CnfJKT != "" && scheme != SchemeDPoP:
		return nil, fail(ErrDPoPRequired, "token is DPoP-bound: use the DPoP scheme and a proof")
	case c.CnfJKT == "" && scheme == SchemeDPoP:
		return nil, fail(ErrInvalidToken, "token is not DPoP-bound: use the Bearer scheme")
	case c.CnfJKT != "":
		if err := v.checkProof(r, token, c.CnfJKT); err != nil {
			return nil, err
		}
	}
	if err := checkCertificateBinding(r, c); err != nil {
		return nil, err
	}
	return c, nil
}

// credentials returns the scheme and token of the request's Authorization
// header.
func credentials(r *http.Request) (scheme, token string, err error) {
	vals := r.Header.Values("Authorization")
	switch {
	case len(vals) == 0:
		return "", "", fail(ErrNoToken, "no Authorization header")
	case len(vals) > 1:
		return "", "", fail(ErrInvalidRequest, "more than one Authorization header")
	}
	s, tok, _ := strings.Cut(vals[0], " ")
	switch {
	case strings.EqualFold(s, SchemeBearer):
		scheme = SchemeBearer
	case strings.EqualFold(s, SchemeDPoP):
		scheme = SchemeDPoP
	default:
		return "", "", fail(ErrNoToken, "no Bearer or DPoP credentials")
	}
	tok = strings.TrimLeft(tok, " ")
	if !b64token(tok) {
		return scheme, "", fail(ErrInvalidRequest, "malformed access token")
	}
	return scheme, tok, nil
}

// b64token reports whether s matches RFC 6750 §2.1 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func b64token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		if !b64tokenChar(body[i]) {
			return false
		}
	}
	return true
}

func b64tokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

// checkProof checks the request's DPoP proof against the token bound to
// the key with thumbprint jkt (RFC 9449 §7.1), then records its jti.
func (v *Verifier) checkProof(r *http.Request, token, jkt string) error {
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return fail(ErrInvalidDPoPProof, "want exactly one DPoP header")
	}
	now := v.clock()
	p, err := dpop.Verify(proofs[0], dpop.VerifyParams{
		Method:      r.Method,
		URL:         v.requestURL(r),
		AccessToken: token,
		Now:         now,
		MaxAge:      v.dpopMaxAge,
		Leeway:      v.leeway,
		Algorithms:  v.dpopAlgs,
	})
	if err != nil {
		reason := "proof is not for this request"
		if errors.Is(err, dpop.ErrInvalidProof) {
			reason = strings.TrimPrefix(err.Error(), dpop.ErrInvalidProof.Error()+": ")
		}
		return &Error{Kind: ErrInvalidDPoPProof, Reason: reason, Err: err}
	}
	if subtle.ConstantTimeCompare([]byte(p.Thumbprint), []byte(jkt)) != 1 {
		return fail(ErrInvalidDPoPProof, "proof is not signed by the token's key")
	}
	if !v.replay.Use(p.Thumbprint+" "+p.JTI, p.IssuedAt.Add(v.dpopMaxAge+v.leeway), now) {
		return fail(ErrInvalidDPoPProof, "proof was already used")
	}
	return nil
}

// requestURL returns the URL the client used for r, without query: from
// ExternalURL when set, else from the request's Host and TLS state.
func (v *Verifier) requestURL(r *http.Request) string {
	if v.externalURL != "" {
		return v.externalURL + r.URL.EscapedPath()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// checkCertificateBinding enforces a cnf x5t#S256 binding (RFC 8705 §3.1):
// the request's TLS client certificate must have that SHA-256 thumbprint.
func checkCertificateBinding(r *http.Request, c *Claims) error {
	cnf, _ := c.Raw["cnf"].(map[string]any)
	want, ok := cnf["x5t#S256"].(string)
	if !ok {
		return nil
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return fail(ErrInvalidToken, "token is bound to a client certificate the request does not present")
	}
	got := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(got[:])), []byte(want)) != 1 {
		return fail(ErrInvalidToken, "token is bound to another client certificate")
	}
	return nil
}
