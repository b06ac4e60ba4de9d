package server

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/store"
)

// newNodes builds the node registry: join tokens, node attestation and
// node SVIDs, signed by the trust domain's CA. A node's SVID lives
// credential.DefaultX509SVIDTTL (1 h), or credentials.max_ttl when that is
// shorter, so that the CA schedule, which keeps a retired CA in the bundle
// for max_ttl, covers node SVIDs too.
func (s *Server) newNodes(rec *audit.Recorder, clock func() time.Time) error {
	p := credential.SVIDIssuerParams{Rand: rand.Reader}
	if s.ca != nil {
		p.CA = s.ca
	}
	iss, err := credential.NewSVIDIssuer(p)
	if err != nil {
		return fmt.Errorf("server: node SVID issuer: %w", err)
	}
	s.nodes, err = noderegistry.New(noderegistry.Params{
		Store: s.store, Recorder: rec, Issuer: iss, TrustDomain: s.cfg.TrustDomain,
		SVIDTTL: min(credential.DefaultX509SVIDTTL, s.cfg.Credentials.MaxTTL),
		Clock:   clock, Rand: rand.Reader, Logger: s.log,
		Attestors: s.attestors, NodeRules: s.cfg.NodeAPI.nodeRules(),
	})
	if err != nil {
		return fmt.Errorf("server: node registry: %w", err)
	}
	return nil
}

// Nodes is the node registry: join tokens, attestation and eviction.
func (s *Server) Nodes() *noderegistry.Service { return s.nodes }

// nodeRules are the node attestation rules in the registry's form.
func (c NodeAPIConfig) nodeRules() []store.AttestationRule {
	var out []store.AttestationRule
	for _, r := range c.Attestation {
		out = append(out, store.AttestationRule{Attestor: r.Attestor, Matchers: r.Matchers})
	}
	return out
}

// validateNodeRules checks node_api.attestation against the attestors
// section (files are read; nothing is fetched).
func (c *Config) validateNodeRules() error {
	if len(c.NodeAPI.Attestation) == 0 {
		return nil
	}
	set, err := c.attestorSet(time.Now)
	if err != nil {
		return err
	}
	if _, err := noderegistry.CheckNodeRules(c.NodeAPI.nodeRules(), set); err != nil {
		return fmt.Errorf("%w: node_api.attestation: %w", ErrConfig, err)
	}
	return nil
}
