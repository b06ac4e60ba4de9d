package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/bundle"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/svid"
)

// JWTSVIDKeyPurpose is the purpose of the keys that sign JWT-SVIDs.
const JWTSVIDKeyPurpose = "jwt-svid"

// newSVIDs builds the JWT-SVID signing keys (ES256, the only algorithm
// JWT-SVID verifiers accept), the SVID issuer over them and the CA, the
// SVID service and the trust bundle.
//
// A JWT-SVID key must reach every bundle consumer before it signs: a
// consumer polls every refresh hint and a cache may hold the bundle as
// long (its max-age), so the keys' prepublication delay counts twice the
// refresh hint as their "JWKS max age".
func (s *Server) newSVIDs(ctx context.Context, root *keys.RootKey, rec *audit.Recorder, clock func() time.Time) error {
	holder, err := replicaID()
	if err != nil {
		return err
	}
	hint := s.cfg.Bundle.RefreshHint
	s.jwtSVIDKeys, err = keys.NewManager(ctx, keys.ManagerParams{
		Store: s.store, Root: root, Purpose: JWTSVIDKeyPurpose, Algorithm: keys.ES256,
		RotationPeriod: s.cfg.Keys.RotationPeriod, JWKSMaxAge: 2 * hint, RefreshInterval: KeyRefreshInterval,
		MaxTokenTTL: s.cfg.Credentials.MaxTTL, Holder: holder, Recorder: keyAudit{rec},
		Clock: clock, Rand: rand.Reader, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("server: JWT-SVID signing keys: %w", err)
	}
	p := credential.SVIDIssuerParams{JWTKeys: s.jwtSVIDKeys, Rand: rand.Reader}
	var x5 bundle.X509Source
	if s.ca != nil {
		p.CA, x5 = s.ca, s.ca
	}
	iss, err := credential.NewSVIDIssuer(p)
	if err != nil {
		return fmt.Errorf("server: SVID issuer: %w", err)
	}
	if s.svids, err = svid.New(svid.Params{Store: s.store, Recorder: rec, Issuer: iss, Clock: clock, Logger: s.log}); err != nil {
		return fmt.Errorf("server: SVIDs: %w", err)
	}
	if s.bundle, err = bundle.New(bundle.Params{
		TrustDomain: s.cfg.TrustDomain, X509: x5, JWT: s.jwtSVIDKeys, RefreshHint: hint, Clock: clock,
	}); err != nil {
		return fmt.Errorf("server: trust bundle: %w", err)
	}
	return nil
}

// SVIDs is the service that issues and lists agents' SVIDs.
func (s *Server) SVIDs() *svid.Service { return s.svids }

// JWTSVIDKeys is the manager of the JWT-SVID signing keys.
func (s *Server) JWTSVIDKeys() *keys.Manager { return s.jwtSVIDKeys }

// Bundle is the trust domain's SPIFFE trust bundle.
func (s *Server) Bundle() *bundle.Bundle { return s.bundle }
