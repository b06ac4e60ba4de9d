package server

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/kubernetes"
	"github.com/agentid/agentid/internal/attest/oidc"
)

// AttestorConfig is one entry of the attestors section (ADR 0015 §1): a
// named source of attestation evidence and its trust material.
type AttestorConfig struct {
	// Name is referenced by agents' attestation rules; a DNS label.
	Name string `yaml:"name"`
	// Kind is kubernetes or oidc (x509, join_token, spiffe: reserved).
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
	// InstanceClaims (oidc) identify one run; default [sub].
	InstanceClaims []string `yaml:"instance_claims"`
}

func (c *Config) resolveAttestorPaths(baseDir string) {
	for i := range c.Attestors {
		for _, p := range []*string{&c.Attestors[i].JWKSFile, &c.Attestors[i].TLSCAFile} {
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

// attestorSet builds the configured attestors; nil when there are none.
func (c *Config) attestorSet(clock func() time.Time) (*attest.Set, error) {
	if len(c.Attestors) == 0 {
		return nil, nil
	}
	var as []attest.Attestor
	for i, ac := range c.Attestors {
		bad := func(err error) error { return fmt.Errorf("%w: attestors[%d] (%s): %w", ErrConfig, i, ac.Name, err) }
		switch ac.Kind {
		case attest.MethodKubernetes:
			if len(ac.InstanceClaims) > 0 {
				return nil, bad(fmt.Errorf("instance_claims is for oidc attestors"))
			}
			a, err := kubernetes.New(kubernetes.Config{Name: ac.Name, Issuer: ac.Issuer, Audience: ac.Audience,
				JWKSURL: ac.JWKSURL, JWKSFile: ac.JWKSFile, TLSCAFile: ac.TLSCAFile, DefaultAudiences: ac.DefaultAudiences}, clock)
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
		default:
			if slices.Contains(attest.Kinds(), ac.Kind) {
				return nil, bad(fmt.Errorf("kind %s is not supported yet (docs/attestation.md)", ac.Kind))
			}
			return nil, bad(fmt.Errorf("kind %q is not one of kubernetes, oidc", ac.Kind))
		}
	}
	set, err := attest.NewSet(as...)
	if err != nil {
		return nil, fmt.Errorf("%w: attestors: %w", ErrConfig, err)
	}
	return set, nil
}
