// Package issuer verifies the JWT evidence of one attestor's issuer with
// the machinery of the trusted delegation issuers (ADR 0014 §1, reused by
// ADR 0015): OIDC discovery or a configured JWKS URL with a cache and
// refetch limits, or a static JWKS file; the asymmetric algorithm
// allow-list; iss, aud, exp, nbf and iat. Refusals are *attest.Error.
package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/delegation"
)

// Config is the trust material of one issuer.
type Config struct {
	Issuer    string // exact iss: https, or http on loopback
	Audience  string // required aud
	JWKSURL   string // empty: OIDC discovery (unless JWKSFile)
	JWKSFile  string // a static JWKS: no fetching
	TLSCAFile string // PEM roots for the issuer's TLS; empty: the system's
	// Algorithms is the JWS algorithm allow-list, a subset of
	// delegation.PermittedAlgorithms(); empty: delegation.Algorithms()
	// (ES256, RS256, PS256, EdDSA). Never none or HMAC.
	Algorithms []string
}

// Verifier verifies the tokens of one issuer. Safe for concurrent use.
type Verifier struct {
	is *delegation.Issuers
}

// New validates c and returns a Verifier; clock is required. No network
// I/O happens until a token is verified.
func New(c Config, clock func() time.Time) (*Verifier, error) {
	is, err := delegation.NewIssuers([]delegation.IssuerConfig{{
		Issuer: c.Issuer, Audience: c.Audience, JWKSURL: c.JWKSURL, JWKSFile: c.JWKSFile, TLSCAFile: c.TLSCAFile,
		Algorithms: c.Algorithms,
	}}, clock)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	return &Verifier{is: is}, nil
}

// Verify checks raw and returns its standard claims and every claim. A
// refusal is an *attest.Error of a (ErrUntrusted, ErrInvalid or
// ErrUnavailable).
func (v *Verifier) Verify(ctx context.Context, a attest.Attestor, raw string) (jwt.Claims, map[string]json.RawMessage, error) {
	std, extra, err := v.is.VerifyJWT(ctx, raw)
	if err == nil {
		return std, extra, nil
	}
	e := &attest.Error{Kind: attest.ErrInvalid, Reason: "the token is not valid", Attestor: a.Name(), Method: a.Method(), Issuer: a.Issuer()}
	var te *delegation.TokenError
	if errors.As(err, &te) {
		e.Reason, e.Err = te.Reason, te.Err
	}
	switch {
	case errors.Is(err, delegation.ErrKeysUnavailable):
		e.Kind = attest.ErrUnavailable
	case errors.Is(err, delegation.ErrUntrustedIssuer):
		e.Kind = attest.ErrUntrusted
	}
	return jwt.Claims{}, nil, e
}
