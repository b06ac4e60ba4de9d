package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/aws"
	"github.com/agentid/agentid/internal/attest/federated"
	"github.com/agentid/agentid/internal/attest/kubernetes"
	"github.com/agentid/agentid/internal/attest/oidc"
	"github.com/agentid/agentid/internal/attest/pki"
	"github.com/agentid/agentid/internal/federation"
)

// AttestorConfig is one entry of the attestors section (ADR 0015 §1): a
// named source of attestation evidence and its trust material.
type AttestorConfig struct {
	// Name is referenced by agents' attestation rules; a DNS label.
	Name string `yaml:"name"`
	// Kind is kubernetes, oidc, aws, x509 or spiffe (join tokens need no
	// attestor: docs/attestation.md#join-tokens).
	Kind string `yaml:"kind"`
	// Issuer is the exact iss of the evidence.
	Issuer string `yaml:"issuer"`
	// Audience is the aud evidence for agentid carries. Required.
	Audience string `yaml:"audience"`
	// JWKSURL, JWKSFile and TLSCAFile: the issuer's keys (default: OIDC
	// discovery), a static JWKS, private TLS roots.
	JWKSURL   string `yaml:"jwks_url"`
	JWKSFile  string `yaml:"jwks_file"`
	TLSCAFile string `yaml:"tls_ca_file"`
	// DefaultAudiences (kubernetes) are refused besides the issuer and the
	// kubernetes.default.svc names.
	DefaultAudiences []string `yaml:"default_audiences"`
	// InstanceClaims (oidc, aws) identify one run; default [sub] (oidc),
	// the EC2 instance, Lambda function or principal ARN (aws).
	InstanceClaims []string `yaml:"instance_claims"`
	// Accounts (aws) are the AWS account ids the token's aws_account must
	// be one of; empty: any (the issuer URL is the account's own).
	Accounts []string `yaml:"accounts"`
	// TrustAnchorFiles (x509, required) are PEM CA bundles: the roots of
	// client certificate chains presented by mutual TLS.
	TrustAnchorFiles []string `yaml:"trust_anchor_files"`
	// CRLFiles (x509) are CRLs (PEM or DER) of the anchors or
	// intermediates, read at start.
	CRLFiles []string `yaml:"crl_files"`
	// TrustDomain (spiffe, required) is a federated trust domain of the
	// federation section whose SVIDs prove instances.
	TrustDomain string `yaml:"trust_domain"`
	// TokenReview (kubernetes) also asks the cluster's API server whether
	// each token is still valid (a deleted pod's is not).
	TokenReview *TokenReviewConfig `yaml:"token_review"`
}

// TokenReviewConfig is a kubernetes attestor's TokenReview check
// (docs/attestation.md#tokenreview).
type TokenReviewConfig struct {
	// APIServer is the API server's https URL. Required.
	APIServer string `yaml:"api_server"`
	// CAFile verifies the API server; empty: the system's roots.
	CAFile string `yaml:"ca_file"`
	// ReviewerTokenFile holds the review request's bearer token (read at
	// each review); empty: the reviewed token itself.
	ReviewerTokenFile string `yaml:"reviewer_token_file"`
	// CacheTTL, when set, reuses the API server's acceptance of a token
	// for that long (never past the token's expiry); 0: ask every time.
	CacheTTL time.Duration `yaml:"cache_ttl"`
}

func (c *Config) resolveAttestorPaths(baseDir string) {
	for i := range c.Attestors {
		ps := []*string{&c.Attestors[i].JWKSFile, &c.Attestors[i].TLSCAFile}
		if tr := c.Attestors[i].TokenReview; tr != nil {
			ps = append(ps, &tr.CAFile, &tr.ReviewerTokenFile)
		}
		for j := range c.Attestors[i].TrustAnchorFiles {
			ps = append(ps, &c.Attestors[i].TrustAnchorFiles[j])
		}
		for j := range c.Attestors[i].CRLFiles {
			ps = append(ps, &c.Attestors[i].CRLFiles[j])
		}
		for _, p := range ps {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(baseDir, *p)
			}
		}
	}
}

// validateAttestors checks the attestors section by building each
// attestor (files are read; nothing is fetched) and their set.
func (c *Config) validateAttestors() error {
	_, err := c.attestorSet(time.Now)
	return err
}

// attestorSet builds the configured attestors, spiffe attestors without
// bundles; nil when there are none.
func (c *Config) attestorSet(clock func() time.Time) (*attest.Set, error) {
	return c.attestorSetWith(clock, nil, nil)
}

// serverBundles hands the federation manager's bundles to spiffe
// attestors; the manager is built after the authorization server.
type serverBundles struct{ s *Server }

func (b serverBundles) BundlesFor(tds []string) map[string]federation.Bundle {
	if b.s.federation == nil {
		return nil
	}
	return b.s.federation.BundlesFor(tds)
}

// attestorSetWith builds the configured attestors, spiffe attestors with
// bundles, logging to log (nil discards); nil when there are none.
func (c *Config) attestorSetWith(clock func() time.Time, bundles federated.Bundles, log *slog.Logger) (*attest.Set, error) {
	if len(c.Attestors) == 0 {
		return nil, nil
	}
	var (
		as []attest.Attestor
		cs []attest.ChainAttestor
	)
	for i, ac := range c.Attestors {
		bad := func(err error) error { return fmt.Errorf("%w: attestors[%d] (%s): %w", ErrConfig, i, ac.Name, err) }
		if ac.Kind != attest.MethodX509 && (len(ac.TrustAnchorFiles) > 0 || len(ac.CRLFiles) > 0) {
			return nil, bad(errors.New("trust_anchor_files and crl_files are for x509 attestors"))
		}
		if ac.Kind != attest.MethodKubernetes && ac.TokenReview != nil {
			return nil, bad(errors.New("token_review is for kubernetes attestors"))
		}
		if ac.Kind != attest.MethodSPIFFE && ac.TrustDomain != "" {
			return nil, bad(errors.New("trust_domain is for spiffe attestors"))
		}
		if ac.Kind != attest.MethodAWS && len(ac.Accounts) > 0 {
			return nil, bad(errors.New("accounts is for aws attestors"))
		}
		switch ac.Kind {
		case attest.MethodSPIFFE:
			if ac.Issuer != "" || ac.Audience != "" || ac.JWKSURL != "" || ac.JWKSFile != "" || ac.TLSCAFile != "" ||
				len(ac.DefaultAudiences) > 0 || len(ac.InstanceClaims) > 0 {
				return nil, bad(errors.New("a spiffe attestor takes trust_domain only"))
			}
			if !slices.ContainsFunc(c.Federation, func(f FederationConfig) bool { return f.TrustDomain == ac.TrustDomain }) {
				return nil, bad(fmt.Errorf("trust_domain %q is not in the federation section", ac.TrustDomain))
			}
			a, err := federated.New(federated.Config{Name: ac.Name, TrustDomain: ac.TrustDomain, Audience: c.Issuer}, bundles, clock)
			if err != nil {
				return nil, bad(err)
			}
			cs = append(cs, a)
		case attest.MethodX509:
			switch {
			case ac.Issuer != "" || ac.Audience != "" || ac.JWKSURL != "" || ac.JWKSFile != "" || ac.TLSCAFile != "" ||
				len(ac.DefaultAudiences) > 0 || len(ac.InstanceClaims) > 0:
				return nil, bad(errors.New("an x509 attestor takes trust_anchor_files and crl_files only"))
			case c.TLS.CertFile == "":
				return nil, bad(errors.New("an x509 attestor needs tls: clients present certificates by mutual TLS"))
			}
			a, err := pki.New(pki.Config{Name: ac.Name, TrustAnchorFiles: ac.TrustAnchorFiles, CRLFiles: ac.CRLFiles, Logger: log}, clock)
			if err != nil {
				return nil, bad(err)
			}
			cs = append(cs, a)
		case attest.MethodKubernetes:
			if len(ac.InstanceClaims) > 0 {
				return nil, bad(fmt.Errorf("instance_claims is for oidc and aws attestors"))
			}
			kc := kubernetes.Config{Name: ac.Name, Issuer: ac.Issuer, Audience: ac.Audience,
				JWKSURL: ac.JWKSURL, JWKSFile: ac.JWKSFile, TLSCAFile: ac.TLSCAFile, DefaultAudiences: ac.DefaultAudiences}
			if tr := ac.TokenReview; tr != nil {
				kc.TokenReview = &kubernetes.TokenReview{APIServer: tr.APIServer, CAFile: tr.CAFile, ReviewerTokenFile: tr.ReviewerTokenFile,
					CacheTTL: tr.CacheTTL}
			}
			a, err := kubernetes.New(kc, clock)
			if err != nil {
				return nil, bad(err)
			}
			as = append(as, a)
		case attest.MethodOIDC:
			if len(ac.DefaultAudiences) > 0 {
				return nil, bad(fmt.Errorf("default_audiences is for kubernetes attestors"))
			}
			a, err := oidc.New(oidc.Config{Name: ac.Name, Issuer: ac.Issuer, Audience: ac.Audience,
				JWKSURL: ac.JWKSURL, JWKSFile: ac.JWKSFile, TLSCAFile: ac.TLSCAFile, InstanceClaims: ac.InstanceClaims}, clock)
			if err != nil {
				return nil, bad(err)
			}
			as = append(as, a)
		case attest.MethodAWS:
			if len(ac.DefaultAudiences) > 0 {
				return nil, bad(fmt.Errorf("default_audiences is for kubernetes attestors"))
			}
			a, err := aws.New(aws.Config{Name: ac.Name, Issuer: ac.Issuer, Audience: ac.Audience, JWKSURL: ac.JWKSURL,
				JWKSFile: ac.JWKSFile, TLSCAFile: ac.TLSCAFile, Accounts: ac.Accounts, InstanceClaims: ac.InstanceClaims}, clock)
			if err != nil {
				return nil, bad(err)
			}
			as = append(as, a)
		default:
			return nil, bad(fmt.Errorf("kind %q is not one of kubernetes, oidc, aws, x509, spiffe", ac.Kind))
		}
	}
	set, err := attest.NewSetWithChains(as, cs)
	if err != nil {
		return nil, fmt.Errorf("%w: attestors: %w", ErrConfig, err)
	}
	return set, nil
}

// requestClientCerts makes the listener ask for (not require, not verify)
// a client certificate when an x509 or spiffe attestor is configured,
// naming the x509 attestors' trust anchors as acceptable CAs (none when a
// spiffe attestor is configured: its authorities change with its bundle): the token endpoint verifies
// the chain (RFC 8705 §2.1), so that a refusal is an OAuth error and an
// audit event rather than a failed handshake.
func (s *Server) requestClientCerts(c *tls.Config) {
	if s.oauth == nil || !s.oauth.RequestsClientCerts() {
		return
	}
	c.ClientAuth = tls.RequestClientCert
	if anchors := s.oauth.ClientCertAnchors(); len(anchors) > 0 {
		pool := x509.NewCertPool()
		for _, a := range anchors {
			pool.AddCert(a)
		}
		c.ClientCAs = pool
	}
}
