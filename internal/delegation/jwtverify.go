package delegation

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4/jwt"
)

// VerifyJWT checks a JWT of a trusted issuer with the machinery of
// Verify — the issuer's algorithm allow-list, its keys (discovery, JWKS
// cache and refetch rules, or the static JWKS file), iss, aud (the
// configured audience), exp, nbf and iat with Leeway — but none of the
// subject-token rules (subject claim, scope, may_act). It returns the
// standard claims and every claim of the token, for callers with claim
// rules of their own (the attestors of ADR 0015). The error is a
// *TokenError of kind ErrUntrustedIssuer, ErrInvalidToken or
// ErrKeysUnavailable.
func (is *Issuers) VerifyJWT(ctx context.Context, raw string) (jwt.Claims, map[string]json.RawMessage, error) {
	_, std, extra, err := is.verifyJWT(ctx, raw)
	return std, extra, err
}

// verifyJWT is VerifyJWT that also returns the trusted issuer whose keys
// and rules the token passed, for Verify's subject-token rules. On error
// the claims are zero.
func (is *Issuers) verifyJWT(ctx context.Context, raw string) (*issuer, jwt.Claims, map[string]json.RawMessage, error) {
	fail := func(err error) (*issuer, jwt.Claims, map[string]json.RawMessage, error) {
		return nil, jwt.Claims{}, nil, err
	}
	if len(raw) > MaxTokenBytes {
		return fail(tokenErr(ErrInvalidToken, fmt.Sprintf("longer than %d bytes", MaxTokenBytes)))
	}
	if is == nil {
		return fail(tokenErr(ErrUntrustedIssuer, "the token's issuer is not trusted"))
	}
	iss := is.byIss[UnverifiedIssuer(raw)]
	if iss == nil {
		return fail(tokenErr(ErrUntrustedIssuer, "the token's issuer is not trusted"))
	}
	tok, err := jwt.ParseSigned(raw, iss.algs)
	if err != nil {
		return fail(tokenErr(ErrInvalidToken, "not a JWS with an algorithm the issuer may use"))
	}
	if len(tok.Headers) != 1 {
		return fail(tokenErr(ErrInvalidToken, "want one signature"))
	}
	h := tok.Headers[0]
	now := is.clock()
	keys, err := iss.keysFor(ctx, h.KeyID, now)
	if err != nil {
		return fail(err)
	}
	var (
		std   jwt.Claims
		extra map[string]json.RawMessage
		ok    bool
	)
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &std, &extra); err == nil {
			ok = true
			break
		}
	}
	if !ok {
		return fail(tokenErr(ErrInvalidToken, "the signature does not verify with the issuer's keys"))
	}
	c := iss.cfg
	switch {
	case std.Issuer != c.Issuer:
		return fail(tokenErr(ErrInvalidToken, "iss does not match"))
	case !slices.Contains([]string(std.Audience), c.Audience):
		return fail(tokenErr(ErrInvalidToken, "aud does not contain agentid's audience for the issuer"))
	case std.Expiry == nil:
		return fail(tokenErr(ErrInvalidToken, "the token has no exp"))
	case !now.Before(std.Expiry.Time().Add(Leeway)):
		return fail(tokenErr(ErrInvalidToken, "the token has expired"))
	case std.NotBefore != nil && std.NotBefore.Time().After(now.Add(Leeway)):
		return fail(tokenErr(ErrInvalidToken, "the token is not yet valid"))
	case std.IssuedAt != nil && std.IssuedAt.Time().After(now.Add(Leeway)):
		return fail(tokenErr(ErrInvalidToken, "the token's iat is in the future"))
	}
	return iss, std, extra, nil
}
