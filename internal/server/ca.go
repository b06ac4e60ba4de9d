package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/ca"
	"github.com/agentid/agentid/internal/keys"
)

// newCA builds the trust domain's X.509 CA from the config: self-signed,
// or signed by the configured upstream CA. SVIDs live at most
// credentials.max_ttl, so a retired CA stays in the bundle that long.
func (s *Server) newCA(ctx context.Context, root *keys.RootKey, rec *audit.Recorder, clock func() time.Time) (*ca.Manager, error) {
	holder, err := replicaID()
	if err != nil {
		return nil, err
	}
	p := ca.Params{
		Store: s.store, Root: root, TrustDomain: s.cfg.TrustDomain, TTL: s.cfg.CA.TTL,
		MaxSVIDTTL: s.cfg.Credentials.MaxTTL, RefreshInterval: KeyRefreshInterval,
		Holder: holder, Recorder: keyAudit{rec}, Clock: clock, Rand: rand.Reader, Logger: s.log,
	}
	if c := s.cfg.CA; c.Upstream() {
		if p.Upstream, err = ca.LoadUpstream(c.UpstreamCertFile, c.UpstreamKeyFile, c.UpstreamBundleFile); err != nil {
			return nil, fmt.Errorf("server: ca: %w", err)
		}
	}
	m, err := ca.New(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("server: ca: %w", err)
	}
	return m, nil
}

// CA is the trust domain's X.509 certificate authority.
func (s *Server) CA() *ca.Manager { return s.ca }
