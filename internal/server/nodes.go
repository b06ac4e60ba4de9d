package server

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/noderegistry"
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
	})
	if err != nil {
		return fmt.Errorf("server: node registry: %w", err)
	}
	return nil
}

// Nodes is the node registry: join tokens, attestation and eviction.
func (s *Server) Nodes() *noderegistry.Service { return s.nodes }
