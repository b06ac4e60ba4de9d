package identity

import (
	"context"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

// EventCredentialRevoked (family audit.Issuance) records an administrator's
// revocation of one token (details "jti", "kept_until") or of every token of
// an agent issued until now (agent axis; details "tokens_revoked_at",
// "version").
const EventCredentialRevoked = "credential.revoked" //nolint:gosec // an event type, not a credential

// MaxJTILen is the longest token id ("jti") RevokeTokens accepts.
const MaxJTILen = 256

// RevocationSlack is kept beyond the longest token lifetime on a
// revocation by jti, for clock skew between the replicas that issue and
// check tokens.
const RevocationSlack = time.Minute

// RevokeTokensParams names what to revoke: exactly one of JTI and
// AgentRef.
type RevokeTokensParams struct {
	// JTI revokes the one access token with this id.
	JTI string
	// AgentRef (an agent id or name) revokes every token issued to the
	// agent until now.
	AgentRef string
}

// Revocation is what RevokeTokens revoked.
type Revocation struct {
	// JTI is the revoked token's id, for a revocation by JTI.
	JTI string
	// Agent is the agent, with TokensRevokedAt set, for a revocation by
	// agent; the zero Agent otherwise.
	Agent store.Agent
	// RevokedAt is when the revocation took effect. For a JTI revoked
	// before, it is the first revocation's time.
	RevokedAt time.Time
	// ExpiresAt is, for a revocation by JTI, until when the revocation is
	// kept: the longest any token issued until now can live. Zero for a
	// revocation by agent (kept with the agent).
	ExpiresAt time.Time
	// TokensAffected is, for a revocation by JTI, how many live delegated
	// tokens exchanged from it (at any depth) it made inactive.
	TokensAffected int64
}

// RevokeTokens revokes one access token by its jti, or every token issued
// to an agent until now, and records credential.revoked.
//
// By JTI, the jti is recorded (store.RevokeToken) until now + the
// configured MaxTTLCap + RevocationSlack, after which every token it could
// name has expired;
// revoking a revoked jti again keeps the first record and still succeeds.
// The jti is not checked against issued tokens (none are stored), so any
// id of at most MaxJTILen printable ASCII bytes is accepted.
//
// By agent, the agent's TokensRevokedAt is set to now (its version
// increments). That revokes every token whose iat, a NumericDate in whole
// seconds, is at or before TokensRevokedAt truncated to the second (see
// TokensRevoked), so a token issued in the same second as the revocation
// counts as revoked. It is allowed in every state of the agent: revoking
// only takes away.
//
// Errors: *ValidationError unless exactly one of JTI and AgentRef is set
// and well-formed; ErrNotFound for an unknown agent. On any error nothing
// is stored.
func (s *Service) RevokeTokens(ctx context.Context, o audit.Origin, p RevokeTokensParams) (Revocation, error) {
	switch {
	case p.JTI == "" && p.AgentRef == "":
		return Revocation{}, invalid("", "name what to revoke: a token's jti or an agent")
	case p.JTI != "" && p.AgentRef != "":
		return Revocation{}, invalid("", "give either a jti or an agent, not both")
	case p.JTI != "":
		if err := validateJTI(p.JTI); err != nil {
			return Revocation{}, err
		}
		return s.revokeJTI(ctx, o, p.JTI)
	default:
		return s.revokeAgentTokens(ctx, o, p.AgentRef)
	}
}

func (s *Service) revokeJTI(ctx context.Context, o audit.Origin, jti string) (Revocation, error) {
	now := s.now()
	var out Revocation
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		err := tx.RevokeToken(ctx, store.RevokedToken{
			JTI: jti, RevokedAt: now, ExpiresAt: now.Add(s.ttlCap + RevocationSlack), RevokedBy: actorID(o),
		})
		if err != nil {
			return fmt.Errorf("identity: revoke token: %w", err)
		}
		rt, err := tx.GetRevokedToken(ctx, jti)
		if err != nil {
			return fmt.Errorf("identity: read revoked token: %w", err)
		}
		ev := o.Event(audit.Issuance, EventCredentialRevoked)
		ev.Time = now
		ev.Details = map[string]any{
			"jti":        jti,
			"kept_until": optRFC3339(rt.ExpiresAt),
		}
		if !rt.RevokedAt.Equal(now) {
			ev.Details["already_revoked_at"] = optRFC3339(rt.RevokedAt)
		}
		// The cascade (ADR 0014 §5): live tokens exchanged from it.
		n, err := tx.CountExchangedTokens(ctx, store.ExchangedTokenFilter{AncestorJTI: jti, LiveAt: now})
		if err != nil {
			return fmt.Errorf("identity: count delegated tokens: %w", err)
		}
		ev.Details["tokens_affected"] = n

		if _, err := s.rec.Append(ctx, tx, ev); err != nil {
			return fmt.Errorf("identity: record %s: %w", EventCredentialRevoked, err)
		}
		out = Revocation{JTI: jti, RevokedAt: rt.RevokedAt, ExpiresAt: rt.ExpiresAt, TokensAffected: n}
		return nil
	})
	if err != nil {
		return Revocation{}, err
	}
	return out, nil
}

func (s *Service) revokeAgentTokens(ctx context.Context, o audit.Origin, ref string) (Revocation, error) {
	now := s.now()
	var out Revocation
	err := s.updateAgents(ctx, func(ctx context.Context, tx store.Tx) error {
		cur, err := getAgent(ctx, tx, ref)
		if err != nil {
			return withField("agent", err)
		}
		a, err := tx.UpdateAgent(ctx, cur.ID, func(a store.Agent) (store.Agent, error) {
			a.TokensRevokedAt = now
			a.UpdatedAt = now
			return a, nil
		})
		if err != nil {
			return mapUpdateErr("agent", err)
		}
		details := map[string]any{
			"tokens_revoked_at": optRFC3339(a.TokensRevokedAt),
			"version":           a.Version,
		}
		if err := s.appendCredentialEvent(ctx, tx, o, EventCredentialRevoked, a, now, details); err != nil {
			return err
		}
		out = Revocation{Agent: a, RevokedAt: a.TokensRevokedAt}
		return nil
	})
	if err != nil {
		return Revocation{}, err
	}
	return out, nil
}

// TokensRevoked reports whether a token issued to a at issuedAt (the
// token's "iat") is revoked by a.TokensRevokedAt. NumericDate has whole
// seconds, so the comparison is at second precision: a token whose iat is
// at or before TokensRevokedAt truncated to the second is revoked, which
// includes tokens issued in the same second as the revocation.
func TokensRevoked(a store.Agent, issuedAt time.Time) bool {
	if a.TokensRevokedAt.IsZero() {
		return false
	}
	return !issuedAt.Truncate(time.Second).After(a.TokensRevokedAt.Truncate(time.Second))
}

// validateJTI checks a token id: 1 to MaxJTILen bytes of printable ASCII
// without space.
func validateJTI(jti string) error {
	if len(jti) > MaxJTILen {
		return invalid("jti", "must be at most %d bytes", MaxJTILen)
	}
	for i := 0; i < len(jti); i++ {
		if jti[i] < 0x21 || jti[i] > 0x7E {
			return invalid("jti", "must be printable ASCII without space")
		}
	}
	return nil
}
