package oauth

import (
	"context"
	"net/http"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

// Revoke handles a revocation request (RFC 7009 §2.1). An agent may revoke
// tokens issued to itself; an admin any token. A token that is invalid,
// unknown or already expired needs no revocation and gets the same success
// (RFC 7009 §2.2). Tokens exchanged from the revoked one, at any depth,
// become inactive with it (ADR 0014 §5); the event counts them.
func (s *Server) Revoke(ctx context.Context, r *Request) *Error {
	if e := checkRepeated(r.Form); e != nil {
		return e
	}
	now := s.now()
	raw := param(r.Form, "token")
	if raw == "" {
		return errf(CodeInvalidRequest, "token is required")
	}
	c, o, e := s.caller(ctx, r, now, "")
	if e != nil {
		return e
	}
	claims, err := s.tokens.ParseAccessToken(raw)
	if err != nil || claims.Expiry <= now.Unix() {
		// Invalid, unknown or expired: nothing to revoke (RFC 7009 §2.2).
		return nil //nolint:nilerr // see above
	}
	if c != nil && claims.ClientID != c.agent.ID {
		return &Error{Code: CodeUnauthorizedClient, Status: http.StatusForbidden,
			Description: "the token was not issued to this client", Reason: "token of another client"}
	}
	exp := time.Unix(claims.Expiry, 0).UTC()
	ev := o.Event(audit.Issuance, "credential.revoked")
	ev.Time = now
	ev.Agent = &audit.Agent{ID: claims.ClientID, Name: claims.Agent.Name, SPIFFEID: claims.Subject}
	ev.Details = map[string]any{"jti": claims.JTI, "expires_at": exp.Format(time.RFC3339), "via": "rfc7009"}
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		n, err := tx.CountExchangedTokens(ctx, store.ExchangedTokenFilter{AncestorJTI: claims.JTI, LiveAt: now})
		if err != nil {
			return err
		}
		ev.Details["tokens_affected"] = n
		if err := tx.RevokeToken(ctx, store.RevokedToken{
			JTI: claims.JTI, AgentID: claims.ClientID, RevokedAt: now, ExpiresAt: exp, RevokedBy: o.Actor.ID,
		}); err != nil {
			return err
		}
		_, err = s.rec.Append(ctx, tx, ev)
		return err
	})
	if err != nil {
		return serverError(err)
	}
	return nil
}

// Collect deletes one-time ids and revocations that have expired, under a
// lease so that one replica of several does it. It returns how many rows
// went.
func (s *Server) Collect(ctx context.Context, holder string) (int64, error) {
	now := s.now()
	var n int64
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.AcquireLease(ctx, "oauth/collect", holder, now, now.Add(time.Minute))
		if err != nil || !ok {
			return err
		}
		if n, err = tx.CollectTokens(ctx, now); err != nil {
			return err
		}
		x, err := tx.CollectExchangedTokens(ctx, now)
		n += x
		return err
	})
	return n, err
}
