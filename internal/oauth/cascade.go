package oauth

import (
	"context"
	"errors"
	"time"

	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
)

// chainActive applies cascade revocation to a delegated token (one with
// grant_id) whose own checks passed (ADR 0014 §5): its grant is neither
// revoked nor expired, its exchanged-token record exists, every agent of
// its chain may still use credentials, and no ancestor token is revoked —
// by jti, or by its agent's revoke-all since it was issued. Missing
// records make the token inactive (fail closed).
func (s *Server) chainActive(ctx context.Context, c credential.Claims, now time.Time) (bool, error) {
	g, err := s.store.GetGrant(ctx, c.GrantID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	case !g.RevokedAt.IsZero() || !now.Before(g.ExpiresAt):
		return false, nil
	}
	rec, err := s.store.GetExchangedToken(ctx, c.JTI)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	case rec.GrantID != c.GrantID:
		return false, nil
	}
	for _, id := range rec.Chain {
		if ok, err := s.agentUsable(ctx, id, time.Time{}, now); !ok || err != nil {
			return false, err
		}
	}
	for range delegation.MaxDepthCap + 1 {
		if rec.ParentJTI == "" {
			return true, nil
		}
		switch _, err := s.store.GetRevokedToken(ctx, rec.ParentJTI); {
		case err == nil:
			return false, nil
		case !errors.Is(err, store.ErrNotFound):
			return false, err
		}
		if ok, err := s.agentUsable(ctx, rec.ParentAgentID, rec.ParentIssuedAt, now); !ok || err != nil {
			return false, err
		}
		parent, err := s.store.GetExchangedToken(ctx, rec.ParentJTI)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return true, nil // the root: an agent's plain token, checked above
		case err != nil:
			return false, err
		}
		rec = parent
	}
	return false, nil // deeper than any chain agentid issues
}

// agentUsable reports whether the agent exists, may use credentials at
// now, and (when issuedAt is set) has not revoked its tokens since
// issuedAt.
func (s *Server) agentUsable(ctx context.Context, id string, issuedAt, now time.Time) (bool, error) {
	cl, oerr, ok := s.lookupClient(ctx, id)
	switch {
	case oerr != nil:
		return false, oerr.Err
	case !ok:
		return false, nil
	}
	if usable(cl.agent, now) != "" {
		return false, nil
	}
	return issuedAt.IsZero() || !identity.TokensRevoked(cl.agent, issuedAt), nil
}
