// Package oidc is the external OIDC attestor (ADR 0015): it verifies an
// ID-style token of a trusted issuer (GitHub Actions, GitLab CI, cloud
// workload identity, an IdP's service tokens) — the issuer's keys by OIDC
// discovery with a cache or a static JWKS, the configured audience, exp —
// and exposes its top-level claims to claim matchers with globs
// (repository=org/*, ref=refs/heads/main, sub=…). The instance key is the
// values of the configured instance claims.
package oidc

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/issuer"
)

// Limits.
const (
	maxValue   = 256 // bytes of a claim value taken into the evidence
	maxSummary = 32  // claims in the evidence summary
)

// Config is one trusted OIDC issuer.
type Config struct {
	// Name is the attestor's configured name (a DNS label).
	Name string
	// Issuer is the exact iss: https, or http on loopback.
	Issuer string
	// Audience is the aud tokens for agentid carry. Required.
	Audience string
	// JWKSURL, JWKSFile, TLSCAFile: as for trusted delegation issuers
	// (ADR 0014 §1). Empty JWKSURL and JWKSFile: OIDC discovery.
	JWKSURL   string
	JWKSFile  string
	TLSCAFile string
	// InstanceClaims name the claims whose values identify one run (the
	// instance key); each must be present. Empty: [sub].
	InstanceClaims []string
}

// Attestor verifies the tokens of one OIDC issuer. It is safe for
// concurrent use.
type Attestor struct {
	cfg  Config
	keys *issuer.Verifier
}

var _ attest.Attestor = (*Attestor)(nil)

// New validates c and returns its attestor. clock is required. No network
// I/O happens until a token is verified.
func New(c Config, clock func() time.Time) (*Attestor, error) {
	if err := attest.CheckName(c.Name); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if len(c.InstanceClaims) == 0 {
		c.InstanceClaims = []string{"sub"}
	}
	for _, ic := range c.InstanceClaims {
		if _, err := attest.ParseMatcher(ic + "=*"); err != nil || strings.HasPrefix(ic, "k8s:") || strings.HasPrefix(ic, attest.AWSPrefix) {
			return nil, fmt.Errorf("oidc: attestor %s: instance claim %q is not a claim name", c.Name, ic)
		}
	}
	is, err := issuer.New(issuer.Config{
		Issuer: c.Issuer, Audience: c.Audience, JWKSURL: c.JWKSURL, JWKSFile: c.JWKSFile, TLSCAFile: c.TLSCAFile,
	}, clock)
	if err != nil {
		return nil, fmt.Errorf("oidc: attestor %s: %w", c.Name, err)
	}
	return &Attestor{cfg: c, keys: is}, nil
}

// Name implements attest.Attestor.
func (a *Attestor) Name() string { return a.cfg.Name }

// Method implements attest.Attestor.
func (a *Attestor) Method() string { return attest.MethodOIDC }

// Issuer implements attest.Attestor.
func (a *Attestor) Issuer() string { return a.cfg.Issuer }

// notSummarised are claims left out of the evidence summary (times, ids
// of the token itself, the audience).
func notSummarised() []string { return []string{"iss", "aud", "exp", "nbf", "iat", "jti"} }

// Attest implements attest.Attestor. Facts are the top-level claims whose
// value is a string, a number or a boolean of at most 256 bytes of
// printable ASCII; other claims cannot be matched.
func (a *Attestor) Attest(ctx context.Context, raw string) (attest.Evidence, error) {
	std, extra, err := a.keys.Verify(ctx, a, raw)
	if err != nil {
		return attest.Evidence{}, err
	}
	facts := map[string]string{}
	for name, v := range extra {
		if s, ok := attest.ScalarFact(v, maxValue); ok {
			facts[name] = s
		}
	}
	if std.Subject == "" || facts["sub"] != std.Subject {
		return attest.Evidence{}, attest.Refuse(a, "the token has no printable sub")
	}
	key := make([]string, 0, len(a.cfg.InstanceClaims))
	for _, ic := range a.cfg.InstanceClaims {
		v, ok := facts[ic]
		if !ok {
			return attest.Evidence{}, attest.Refuse(a, "the token lacks the instance claim %s", ic)
		}
		key = append(key, v)
	}
	names := make([]string, 0, len(facts))
	for name := range facts {
		if !contains(notSummarised(), name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	summary := map[string]string{}
	for _, name := range names[:min(len(names), maxSummary)] {
		summary[name] = facts[name]
	}
	return attest.Evidence{
		Attestor: a.cfg.Name, Method: attest.MethodOIDC, Issuer: a.cfg.Issuer, Subject: std.Subject,
		Key: strings.Join(key, "|"), Facts: facts, Summary: summary, Expiry: std.Expiry.Time().UTC(),
	}, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
