package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
)

// States of an agent's join token, as ListJoinTokens derives them.
const (
	JoinTokenUnused  = "unused"  // can still be redeemed
	JoinTokenUsed    = "used"    // redeemed: InstanceID is the instance it created
	JoinTokenRevoked = "revoked" // revoked before use
	JoinTokenExpired = "expired" // expired unused
)

// JoinTokenStatus is what the audit trail says of one join token; never
// the token itself.
type JoinTokenStatus struct {
	ID         string
	AgentID    string
	State      string // JoinTokenUnused, JoinTokenUsed, JoinTokenRevoked or JoinTokenExpired
	CreatedAt  time.Time
	CreatedBy  string // actor id
	ExpiresAt  time.Time
	UsedAt     time.Time // zero unless used
	InstanceID string    // the instance its redemption created; "" unless used
	RevokedAt  time.Time // zero unless revoked
	RevokedBy  string
}

// ListJoinTokens returns the join tokens of the agent ref (id or name)
// created within the last MaxJoinTokenTTL — every one that may still be
// unused — newest first, with their states. Tokens are not stored: the
// list is read from the agent's audit events of that window
// (EventJoinTokenCreated, EventJoinTokenRevoked, and the successful
// EventInstanceAttested of a redemption), through the trail's agent
// lookup. Errors: identity.ErrNotFound for an unknown agent;
// errors.ErrUnsupported when join tokens are not configured.
func (s *Server) ListJoinTokens(ctx context.Context, ref string) ([]JoinTokenStatus, error) {
	if s.joinTokens == nil {
		return nil, fmt.Errorf("oauth: join tokens: %w", errors.ErrUnsupported)
	}
	a, e := s.attestedAgent(ctx, ref)
	switch {
	case e != nil && e.Code == CodeServerError:
		return nil, fmt.Errorf("oauth: list join tokens: %w", e.Err)
	case e != nil:
		return nil, fmt.Errorf("%w: agent %s", identity.ErrNotFound, printable(ref))
	}
	now := s.now()
	var (
		byID  = map[string]*JoinTokenStatus{}
		order []string
	)
	type used struct {
		at       time.Time
		instance string
	}
	uses, revocations := map[string]used{}, map[string]JoinTokenStatus{}
	q := store.AuditQuery{AgentID: a.ID, Since: now.Add(-MaxJoinTokenTTL)}
	err := s.store.ScanAudit(ctx, q, func(rec store.AuditRecord) error {
		switch rec.Type {
		case EventJoinTokenCreated, EventJoinTokenRevoked, EventInstanceAttested:
		default:
			return nil
		}
		var ev struct {
			Outcome  string         `json:"outcome"`
			Actor    audit.Actor    `json:"actor"`
			Instance audit.Instance `json:"instance"`
			Details  struct {
				ID        string            `json:"id"`
				ExpiresAt string            `json:"expires_at"`
				Method    string            `json:"method"`
				Evidence  map[string]string `json:"evidence"`
			} `json:"details"`
		}
		if err := json.Unmarshal(rec.Body, &ev); err != nil {
			return fmt.Errorf("oauth: audit event %s: %w", rec.ID, err)
		}
		switch rec.Type {
		case EventJoinTokenCreated:
			exp, err := time.Parse(time.RFC3339, ev.Details.ExpiresAt)
			if err != nil {
				return fmt.Errorf("oauth: audit event %s: expires_at: %w", rec.ID, err)
			}
			byID[ev.Details.ID] = &JoinTokenStatus{ID: ev.Details.ID, AgentID: a.ID, CreatedAt: rec.Time.UTC(),
				CreatedBy: ev.Actor.ID, ExpiresAt: exp.UTC()}
			order = append(order, ev.Details.ID)
		case EventJoinTokenRevoked:
			revocations[ev.Details.ID] = JoinTokenStatus{RevokedAt: rec.Time.UTC(), RevokedBy: ev.Actor.ID}
		case EventInstanceAttested:
			if id := ev.Details.Evidence["join_token"]; ev.Outcome == string(audit.Success) &&
				ev.Details.Method == attest.MethodJoinToken && id != "" {
				uses[id] = used{at: rec.Time.UTC(), instance: ev.Instance.ID}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("oauth: list join tokens: %w", err)
	}
	out := make([]JoinTokenStatus, 0, len(order))
	for _, id := range slices.Backward(order) {
		t := *byID[id]
		u, isUsed := uses[id]
		r, isRevoked := revocations[id]
		switch {
		case isUsed:
			t.State, t.UsedAt, t.InstanceID = JoinTokenUsed, u.at, u.instance
		case isRevoked:
			t.State, t.RevokedAt, t.RevokedBy = JoinTokenRevoked, r.RevokedAt, r.RevokedBy
		case !now.Before(t.ExpiresAt):
			t.State = JoinTokenExpired
		default:
			t.State = JoinTokenUnused
		}
		out = append(out, t)
	}
	return out, nil
}
