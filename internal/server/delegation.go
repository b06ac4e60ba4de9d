package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/urlcheck"
)

// DelegationConfig configures delegation (docs/delegation.md): the cap on
// chain depth and the identity providers whose tokens name people.
type DelegationConfig struct {
	// MaxChainDepth caps every grant's max_depth, 1 to 10; default 5.
	MaxChainDepth int `yaml:"max_chain_depth"`
	// Issuers are the trusted issuers of people's tokens.
	Issuers []TrustedIssuerConfig `yaml:"issuers"`
}

// TrustedIssuerConfig is one identity provider for people (ADR 0014 §1).
type TrustedIssuerConfig struct {
	// Issuer is the exact iss of its tokens: https (http only on
	// loopback). Required.
	Issuer string `yaml:"issuer"`
	// Audience is the aud its tokens must carry for agentid. Required.
	Audience string `yaml:"audience"`
	// JWKSURL is where its keys are; default: OpenID Connect discovery.
	JWKSURL string `yaml:"jwks_url"`
	// JWKSFile is a static JWK Set used instead of fetching.
	JWKSFile string `yaml:"jwks_file"`
	// TLSCAFile holds PEM roots for its TLS certificates (default: the
	// system's).
	TLSCAFile string `yaml:"tls_ca_file"`
	// SubjectClaim names the person (default sub); EmailClaim the email
	// (default email).
	SubjectClaim string `yaml:"subject_claim"`
	EmailClaim   string `yaml:"email_claim"`
	// TrustEmail uses the email claim even without email_verified: true
	// (ADR 0027): only for an IdP whose users cannot choose their address.
	TrustEmail bool `yaml:"trust_email"`
	// Algorithms restricts the JWS algorithms (ES256, RS256, PS256,
	// EdDSA; default all four).
	Algorithms []string `yaml:"algorithms"`
}

// resolveDelegationPaths makes the issuers' files relative to baseDir
// absolute.
func (c *Config) resolveDelegationPaths(baseDir string) {
	for i := range c.Delegation.Issuers {
		for _, p := range []*string{&c.Delegation.Issuers[i].JWKSFile, &c.Delegation.Issuers[i].TLSCAFile} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(baseDir, *p)
			}
		}
	}
}

func (c *Config) delegationDefaults() {
	if c.Delegation.MaxChainDepth == 0 {
		c.Delegation.MaxChainDepth = delegation.DefaultMaxChainDepth
	}
}

// validateDelegation checks the depth cap and each issuer entry (files
// are read when the server starts).
func (c *Config) validateDelegation() error {
	if d := c.Delegation.MaxChainDepth; d < 1 || d > delegation.MaxDepthCap {
		return fmt.Errorf("%w: delegation.max_chain_depth: %d must be between 1 and %d", ErrConfig, d, delegation.MaxDepthCap)
	}
	seen := map[string]bool{}
	for i, is := range c.Delegation.Issuers {
		bad := func(key, format string, args ...any) error {
			return fmt.Errorf("%w: delegation.issuers[%d].%s: %s", ErrConfig, i, key, fmt.Sprintf(format, args...))
		}
		if err := urlcheck.HTTPS(is.Issuer, true); err != nil {
			return bad("issuer", "%v", err)
		}
		if is.Issuer == c.Issuer {
			return bad("issuer", "agentid's own tokens are always trusted; list only identity providers")
		}
		if seen[is.Issuer] {
			return bad("issuer", "%q is listed twice", is.Issuer)
		}
		seen[is.Issuer] = true
		if is.Audience == "" {
			return bad("audience", "is required: the aud its tokens carry for agentid")
		}
		if is.JWKSURL != "" && is.JWKSFile != "" {
			return bad("jwks_url", "jwks_url and jwks_file exclude each other")
		}
		if is.JWKSURL != "" {
			if err := urlcheck.HTTPS(is.JWKSURL, false); err != nil {
				return bad("jwks_url", "%v", err)
			}
		}
		for _, a := range is.Algorithms {
			if !slices.Contains(delegation.Algorithms(), a) {
				return bad("algorithms", "%q is not one of %v", a, delegation.Algorithms())
			}
		}
	}
	return nil
}

// newDelegation builds the trusted issuers and the grant service.
func (s *Server) newDelegation(rec *audit.Recorder, clock func() time.Time) (*delegation.Service, error) {
	cfgs := make([]delegation.IssuerConfig, 0, len(s.cfg.Delegation.Issuers))
	for _, is := range s.cfg.Delegation.Issuers {
		cfgs = append(cfgs, delegation.IssuerConfig{
			Issuer: is.Issuer, Audience: is.Audience, JWKSURL: is.JWKSURL, JWKSFile: is.JWKSFile,
			TLSCAFile: is.TLSCAFile, SubjectClaim: is.SubjectClaim, EmailClaim: is.EmailClaim, TrustEmail: is.TrustEmail,
			Algorithms: is.Algorithms,
		})
	}
	issuers, err := delegation.NewIssuers(cfgs, clock)
	if err != nil {
		return nil, fmt.Errorf("%w: delegation: %w", ErrConfig, err)
	}
	d, err := delegation.New(delegation.Params{
		Store: s.store, Recorder: rec, Issuers: issuers, Issuer: s.cfg.Issuer,
		MaxChainDepth: s.cfg.Delegation.MaxChainDepth, Clock: clock, Rand: rand.Reader,
	})
	if err != nil {
		return nil, fmt.Errorf("server: delegation: %w", err)
	}
	if err := s.warnUntiedOwners(); err != nil {
		return nil, err
	}
	return d, nil
}

// warnUntiedOwners logs, when several identity providers are trusted, how
// many active people have a subject tied to no issuer: such a subject
// names no one until it is tied (ADR 0027; `agentid owner update
// --subject-issuer`), so they are matched by verified email only.
func (s *Server) warnUntiedOwners() error {
	if len(s.cfg.Delegation.Issuers) < 2 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := 0
	page := store.Page{PageSize: store.MaxPageSize}
	for {
		owners, next, err := s.store.ListOwners(ctx, store.OwnerFilter{Kind: store.OwnerPerson, State: store.OwnerActive}, page)
		if err != nil {
			return fmt.Errorf("server: count owners tied to no issuer: %w", err)
		}
		for _, o := range owners {
			if o.Subject != "" && o.SubjectIssuer == "" {
				n++
			}
		}
		if next == "" {
			break
		}
		page.PageToken = next
	}
	if n > 0 {
		s.log.Warn("owners have a subject tied to no identity provider, and several are trusted: "+
			"their subjects match no one, only their verified emails do; tie each with "+
			"`agentid owner update OWNER --subject-issuer URL` (ADR 0027)",
			"owners", n, "trusted_issuers", len(s.cfg.Delegation.Issuers))
	}
	return nil
}
