package resource

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
)

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middleware)

// RequireScopes makes the middleware answer 403 insufficient_scope unless
// the token grants every scope given.
func RequireScopes(scopes ...string) MiddlewareOption {
	return func(m *middleware) { m.scopes = append(m.scopes, scopes...) }
}

// WithRealm sets the realm of the WWW-Authenticate challenges.
func WithRealm(realm string) MiddlewareOption {
	return func(m *middleware) { m.realm = realm }
}

// WithLogger logs failures that are not the client's (the JWKS cannot be
// fetched). Default: nothing is logged.
func WithLogger(l *slog.Logger) MiddlewareOption {
	return func(m *middleware) { m.log = l }
}

type middleware struct {
	v      *Verifier
	scopes []string
	realm  string
	log    *slog.Logger
}

type claimsKey struct{}

// ContextWithClaims returns a context carrying c, as Middleware gives it to
// the handler.
func ContextWithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFromContext returns the verified claims Middleware put in ctx.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// Middleware returns a middleware that verifies each request with
// v.VerifyRequest and calls the next handler with the Claims in the request
// context (ClaimsFromContext). It answers failures itself:
//
//   - no credentials: 401 with a Bearer and a DPoP challenge (RFC 6750 §3.1)
//   - malformed Authorization header: 400 invalid_request
//   - invalid, expired or misbound token: 401 invalid_token
//   - invalid or replayed DPoP proof: 401 invalid_dpop_proof (RFC 9449 §7.1)
//   - missing required scope: 403 insufficient_scope with scope=
//   - JWKS unavailable: 503, no challenge
//
// The challenge uses the scheme of the request (DPoP for a DPoP-bound token
// presented as Bearer); the DPoP challenge lists the accepted algs.
func Middleware(v *Verifier, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	m := &middleware{v: v}
	for _, o := range opts {
		o(m)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := v.VerifyRequest(r)
			if err == nil {
				for _, s := range m.scopes {
					if !c.HasScope(s) {
						err = fail(ErrInsufficientScope, "the token lacks a required scope")
						break
					}
				}
			}
			if err != nil {
				m.deny(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(ContextWithClaims(r.Context(), c)))
		})
	}
}

// deny answers a failed request.
func (m *middleware) deny(w http.ResponseWriter, r *http.Request, err error) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	var e *Error
	if !errors.As(err, &e) || errors.Is(err, ErrKeySetUnavailable) {
		if m.log != nil {
			m.log.ErrorContext(r.Context(), "resource: cannot verify access token", "err", err)
		}
		http.Error(w, "token verification unavailable", http.StatusServiceUnavailable)
		return
	}
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	dpopScheme := strings.EqualFold(scheme, SchemeDPoP)
	var status int
	var code string
	switch {
	case errors.Is(err, ErrNoToken):
		h.Add("WWW-Authenticate", m.challenge(SchemeBearer, nil))
		h.Add("WWW-Authenticate", m.challenge(SchemeDPoP, nil))
		w.WriteHeader(http.StatusUnauthorized)
		return
	case errors.Is(err, ErrInvalidRequest):
		status, code = http.StatusBadRequest, "invalid_request"
	case errors.Is(err, ErrInvalidDPoPProof):
		status, code, dpopScheme = http.StatusUnauthorized, "invalid_dpop_proof", true
	case errors.Is(err, ErrInsufficientScope):
		status, code = http.StatusForbidden, "insufficient_scope"
	default:
		status, code = http.StatusUnauthorized, "invalid_token"
		dpopScheme = dpopScheme || errors.Is(err, ErrDPoPRequired)
	}
	params := [][2]string{{"error", code}, {"error_description", e.Reason}}
	if code == "insufficient_scope" {
		params = append(params, [2]string{"scope", strings.Join(m.scopes, " ")})
	}
	s := SchemeBearer
	if dpopScheme {
		s = SchemeDPoP
	}
	h.Set("WWW-Authenticate", m.challenge(s, params))
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": quotable(e.Reason)})
}

// challenge returns a WWW-Authenticate challenge (RFC 9110 §11.6.1) of the
// scheme with the realm, for DPoP the accepted algs, and params.
func (m *middleware) challenge(scheme string, params [][2]string) string {
	var all [][2]string
	if m.realm != "" {
		all = append(all, [2]string{"realm", m.realm})
	}
	if scheme == SchemeDPoP {
		all = append(all, [2]string{"algs", strings.Join(m.v.dpopAlgs, " ")})
	}
	all = append(all, params...)
	var b strings.Builder
	b.WriteString(scheme)
	for i, p := range all {
		if i == 0 {
			b.WriteString(" ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(p[0] + `="` + quotable(p[1]) + `"`)
	}
	return b.String()
}

// quotable drops the characters RFC 6750 §3 does not allow in a quoted
// attribute value (it allows %x20-21 / %x23-5B / %x5D-7E).
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
