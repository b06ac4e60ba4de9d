package server

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/federation"
	"github.com/agentid/agentid/internal/identity"
)

// FederationConfig configures one foreign SPIFFE trust domain this one
// federates with (docs/spiffe.md#federation).
type FederationConfig struct {
	// TrustDomain is the foreign trust domain's name. Required; not this
	// server's own trust_domain.
	TrustDomain string `yaml:"trust_domain"`
	// BundleEndpointURL is its SPIFFE bundle endpoint, an https URL.
	// Required.
	BundleEndpointURL string `yaml:"bundle_endpoint_url"`
	// BundleEndpointProfile is the endpoint profile: https_web (the
	// default and the only one supported: the endpoint's certificate is
	// verified with the Web PKI roots of the system).
	BundleEndpointProfile string `yaml:"bundle_endpoint_profile"`
	// InitialBundleFile, optional, is a SPIFFE bundle document (JSON) of
	// the trust domain used until the first fetch succeeds.
	InitialBundleFile string `yaml:"initial_bundle_file"`
}

// resolveFederationPaths makes the initial bundle files relative to
// baseDir absolute.
func (c *Config) resolveFederationPaths(baseDir string) {
	for i := range c.Federation {
		if p := c.Federation[i].InitialBundleFile; p != "" && !filepath.IsAbs(p) {
			c.Federation[i].InitialBundleFile = filepath.Join(baseDir, p)
		}
	}
}

func (c *Config) federationDefaults() {
	for i := range c.Federation {
		if c.Federation[i].BundleEndpointProfile == "" {
			c.Federation[i].BundleEndpointProfile = federation.ProfileHTTPSWeb
		}
	}
}

// validateFederation checks every federation entry: a valid foreign trust
// domain, listed once, an https bundle endpoint and the https_web profile.
func (c *Config) validateFederation() error {
	seen := map[string]bool{}
	for i, f := range c.Federation {
		bad := func(key, format string, args ...any) error {
			return fmt.Errorf("%w: federation[%d].%s: %s", ErrConfig, i, key, fmt.Sprintf(format, args...))
		}
		if err := identity.ValidateTrustDomain(f.TrustDomain); err != nil {
			return bad("trust_domain", "%q: %v", f.TrustDomain, err)
		}
		if f.TrustDomain == c.TrustDomain {
			return bad("trust_domain", "%q is this server's own trust domain", f.TrustDomain)
		}
		if seen[f.TrustDomain] {
			return bad("trust_domain", "%q is listed twice", f.TrustDomain)
		}
		seen[f.TrustDomain] = true
		if err := federation.CheckEndpointURL(f.BundleEndpointURL); err != nil {
			return bad("bundle_endpoint_url", "%v", err)
		}
		if f.BundleEndpointProfile != federation.ProfileHTTPSWeb {
			return bad("bundle_endpoint_profile", "%q is not supported; only %s is", f.BundleEndpointProfile, federation.ProfileHTTPSWeb)
		}
	}
	return nil
}

// maxInitialBundleBytes bounds an initial bundle file.
const maxInitialBundleBytes = federation.MaxBundleBytes

// readInitialBundle reads an initial bundle file.
func readInitialBundle(path string) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // the operator names the file
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxInitialBundleBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInitialBundleBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxInitialBundleBytes)
	}
	return b, nil
}

// newFederation builds the keeper of the foreign trust domains' bundles
// from the config, reading the initial bundle files.
func (s *Server) newFederation(ctx context.Context, rec *audit.Recorder, clock func() time.Time) error {
	holder, err := replicaID()
	if err != nil {
		return err
	}
	ds := make([]federation.Domain, 0, len(s.cfg.Federation))
	for i, f := range s.cfg.Federation {
		d := federation.Domain{TrustDomain: f.TrustDomain, EndpointURL: f.BundleEndpointURL, Profile: f.BundleEndpointProfile}
		if f.InitialBundleFile != "" {
			if d.InitialBundle, err = readInitialBundle(f.InitialBundleFile); err != nil {
				return fmt.Errorf("%w: federation[%d].initial_bundle_file: %w", ErrConfig, i, err)
			}
		}
		ds = append(ds, d)
	}
	s.federation, err = federation.New(ctx, federation.Params{
		Store: s.store, Recorder: rec, TrustDomain: s.cfg.TrustDomain, Domains: ds, RootCAs: s.federationRoots,
		Holder: holder, Clock: clock, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("server: federation: %w", err)
	}
	return nil
}

// Federation keeps the bundles of the foreign trust domains this one
// federates with.
func (s *Server) Federation() *federation.Manager { return s.federation }
