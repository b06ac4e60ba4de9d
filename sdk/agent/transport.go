package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/agentid/agentid/sdk/dpop"
	"golang.org/x/oauth2"
)

// Transport is an http.RoundTripper that authorizes every request with a
// token of its TokenSource (RFC 6750 §2.1 or RFC 9449 §7.1) and propagates
// the W3C trace context. Construct it with NewTransport; it is safe for
// concurrent use.
type Transport struct {
	src  *TokenSource
	base http.RoundTripper
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport that gets tokens from src and sends the
// requests with base (nil: http.DefaultTransport).
func NewTransport(src *TokenSource, base http.RoundTripper) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{src: src, base: base}
}

// RoundTrip sends req with "Authorization: Bearer <token>", or, for a
// DPoP-bound token, "Authorization: DPoP <token>" and a fresh DPoP proof
// bound to the token (ath). It sets the traceparent header: the one of the
// request's context (WithTraceparent), else the request's own, else a new
// one. When a resource server asks for a DPoP nonce (401 with
// error="use_dpop_nonce" and a DPoP-Nonce header) the request is sent once
// more with the nonce, if its body can be replayed (GetBody). req is not
// modified.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	tp := traceparent(req)
	tok, err := t.src.TokenContext(WithTraceparent(req.Context(), tp))
	if err != nil {
		closeBody()
		return nil, err
	}
	r, sent, err := t.authorize(req, req.Body, tok, tp)
	if err != nil {
		closeBody()
		return nil, err
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil || tok.TokenType != TokenTypeDPoP {
		return resp, err
	}
	nonce := resp.Header.Get("DPoP-Nonce")
	t.src.nonces.update(req.URL.String(), nonce)
	if resp.StatusCode != http.StatusUnauthorized || !validNonce(nonce) || nonce == sent || !asksForNonce(resp) {
		return resp, nil
	}
	body := req.Body // nil or http.NoBody need no replay
	if body != nil && body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil
		}
		if body, err = req.GetBody(); err != nil {
			return resp, nil //nolint:nilerr // the first answer stands when the body cannot be replayed
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r, _, err = t.authorize(req, body, tok, tp)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(r)
}

// authorize returns a copy of req with body, the token, its DPoP proof and
// the traceparent, and the DPoP nonce it used.
func (t *Transport) authorize(req *http.Request, body io.ReadCloser, tok *oauth2.Token, tp string) (*http.Request, string, error) {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", tok.TokenType+" "+tok.AccessToken)
	r.Header.Set("Traceparent", tp)
	r.Header.Del("DPoP")
	var nonce string
	if tok.TokenType == TokenTypeDPoP {
		u := req.URL.String()
		nonce = t.src.nonces.get(u)
		proof, err := t.src.dpop.Proof(req.Method, u, dpop.ProofParams{
			AccessToken: tok.AccessToken,
			Nonce:       nonce,
			Now:         t.src.clock(),
		})
		if err != nil {
			return nil, "", fmt.Errorf("agent: %w", err)
		}
		r.Header.Set("DPoP", proof)
	}
	return r, nonce, nil
}

// asksForNonce reports whether a 401 answer is a use_dpop_nonce challenge
// (RFC 9449 §9).
func asksForNonce(resp *http.Response) bool {
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if strings.Contains(strings.ToLower(v), "use_dpop_nonce") {
			return true
		}
	}
	return false
}

// traceparent returns the trace context for req: the context's, the
// request's, or a new one.
func traceparent(req *http.Request) string {
	if tp, ok := TraceparentFromContext(req.Context()); ok {
		return tp
	}
	if tp := req.Header.Get("Traceparent"); ValidTraceparent(tp) {
		return tp
	}
	var b [24]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[15] |= 1             // neither id may be all zeros
	b[23] |= 1
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

type traceparentKey struct{}

// WithTraceparent returns a context that carries a W3C traceparent: a
// Transport sends it with the requests made with the context, and a token
// request made for them carries it, so the token's trace_id is the task's.
// An invalid traceparent is ignored.
func WithTraceparent(ctx context.Context, traceparent string) context.Context {
	if !ValidTraceparent(traceparent) {
		return ctx
	}
	return context.WithValue(ctx, traceparentKey{}, traceparent)
}

// TraceparentFromContext returns the traceparent WithTraceparent put in
// ctx.
func TraceparentFromContext(ctx context.Context) (string, bool) {
	tp, ok := ctx.Value(traceparentKey{}).(string)
	return tp, ok
}

// ValidTraceparent reports whether s is a W3C Trace Context traceparent
// header value (version-traceid-parentid-flags, lower-case hex, ids not all
// zeros; versions after 00 may append fields).
func ValidTraceparent(s string) bool {
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	version, trace, parent, flags := s[:2], s[3:35], s[36:52], s[53:55]
	switch {
	case version == "ff" || !lowerHex(version) || !lowerHex(trace) || !lowerHex(parent) || !lowerHex(flags):
		return false
	case strings.Trim(trace, "0") == "" || strings.Trim(parent, "0") == "":
		return false
	case version == "00":
		return len(s) == 55
	}
	return len(s) == 55 || s[55] == '-'
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
