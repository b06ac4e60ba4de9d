package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/oauth"
)

// Token state collection and DPoP nonces.
const (
	// CollectInterval is how often expired one-time ids and revocations
	// are deleted (by one replica at a time).
	CollectInterval = time.Minute
	// DPoPNonceWindow is how long a DPoP server nonce is current; it is
	// accepted for one more window.
	DPoPNonceWindow = 5 * time.Minute
)

// newOAuth builds the authorization server: tokens signed by the key
// manager, nonces (when configured) derived from the root key so that
// every replica accepts every other's.
func (s *Server) newOAuth(root *keys.RootKey, rec *audit.Recorder, clock func() time.Time) (*oauth.Server, error) {
	iss, err := credential.NewIssuer(s.cfg.Issuer, s.keys, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("server: token issuer: %w", err)
	}
	s.tokens = iss
	p := oauth.Params{
		Store: s.store, Recorder: rec, Tokens: iss, TokenTTL: s.cfg.Credentials.TokenTTL,
		Delegation: s.delegation, TrustDomain: s.cfg.TrustDomain, Clock: clock, Rand: rand.Reader, Logger: s.log,
		JWTAuthorities: s.jwtAuthorities,
	}
	if p.Attestors, err = s.cfg.attestorSetWith(clock, serverBundles{s}, s.log); err != nil {
		return nil, err
	}
	s.attestors = p.Attestors
	// Agents' join tokens (ADR 0015 addendum C): every replica derives the
	// same key.
	if p.JoinTokenKey, err = root.Derive("agent-join-token", 32); err != nil {
		return nil, fmt.Errorf("server: join tokens: %w", err)
	}
	if s.cfg.Credentials.DPoPNonce {
		secret, err := root.Derive("dpop-nonce", 32)
		if err != nil {
			return nil, fmt.Errorf("server: dpop nonces: %w", err)
		}
		if p.Nonces, err = oauth.NewNonces(secret, DPoPNonceWindow); err != nil {
			return nil, fmt.Errorf("server: dpop nonces: %w", err)
		}
	}
	o, err := oauth.New(p)
	if err != nil {
		return nil, fmt.Errorf("server: oauth: %w", err)
	}
	return o, nil
}

// jwtAuthorities are the trust bundle's JWT-SVID keys (none without a
// bundle), which verify JWT-SVIDs presented as actor tokens.
func (s *Server) jwtAuthorities() (map[string]crypto.PublicKey, error) {
	if s.bundle == nil {
		return map[string]crypto.PublicKey{}, nil
	}
	d, err := s.bundle.Current()
	if err != nil {
		return nil, fmt.Errorf("server: trust bundle: %w", err)
	}
	return d.JWTAuthorities, nil
}

// runCollectors deletes expired token state (one-time ids, revocations),
// long-expired SVID records and join tokens every CollectInterval until
// ctx ends. Each
// collection runs under its own store lease, so one replica of several
// does it.
func (s *Server) runCollectors(ctx context.Context) {
	holder, err := replicaID()
	if err != nil {
		s.log.Error("collectors not started", "err", err)
		return
	}
	jobs := []struct {
		what    string
		collect func(context.Context, string) (int64, error)
	}{
		{"expired token records", s.oauth.Collect},
		{"expired SVID records", s.svids.Collect},
		{"expired join tokens", s.nodes.CollectJoinTokens},
		{"expired approvals", s.policy.ExpireApprovals},
		{"old shared signals", s.ssf.Collect},
	}
	t := time.NewTicker(CollectInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, j := range jobs {
			if n, err := j.collect(ctx, holder); err != nil {
				s.log.WarnContext(ctx, "collecting "+j.what+" failed", "err", err)
			} else if n > 0 {
				s.log.DebugContext(ctx, "collected "+j.what, "rows", n)
			}
		}
	}
}
