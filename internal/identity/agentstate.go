package identity

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

// The agent's life-cycle transitions: suspend, resume, deprovision.

// SuspendAgent moves an active agent to suspended and records
// agent.suspended (with the reason when given). Credentials are not issued
// to a suspended agent.
//
// Errors: *ValidationError; ErrNotFound; ErrVersionMismatch;
// ErrIllegalTransition unless the agent is active. On any error nothing is
// stored.
func (s *Service) SuspendAgent(ctx context.Context, o audit.Origin, p TransitionParams) (store.Agent, error) {
	return s.transitionAgent(ctx, o, p, "suspend", store.AgentSuspended, store.AgentActive)
}

// ResumeAgent moves a suspended agent back to active and records
// agent.resumed. Errors as SuspendAgent, with ErrIllegalTransition unless
// the agent is suspended.
func (s *Service) ResumeAgent(ctx context.Context, o audit.Origin, p TransitionParams) (store.Agent, error) {
	return s.transitionAgent(ctx, o, p, "resume", store.AgentActive, store.AgentSuspended)
}

// DeprovisionAgent moves an active or suspended agent to deprovisioned, a
// final state (its name stays reserved), and records agent.deprovisioned.
// Errors as SuspendAgent, with ErrIllegalTransition when the agent is
// already deprovisioned.
func (s *Service) DeprovisionAgent(ctx context.Context, o audit.Origin, p TransitionParams) (store.Agent, error) {
	return s.transitionAgent(ctx, o, p, "deprovision", store.AgentDeprovisioned, store.AgentActive, store.AgentSuspended)
}

func (s *Service) transitionAgent(ctx context.Context, o audit.Origin, p TransitionParams, verb string, to store.AgentState, from ...store.AgentState) (store.Agent, error) {
	if err := checkIfVersion(p.IfVersion); err != nil {
		return store.Agent{}, err
	}
	reason, err := p.normalizeReason()
	if err != nil {
		return store.Agent{}, err
	}
	now := s.now()
	var out store.Agent
	err = s.updateAgents(ctx, func(ctx context.Context, tx store.Tx) error {
		cur, err := getAgent(ctx, tx, p.Ref)
		if err != nil {
			return err
		}
		var prev store.AgentState
		updated, err := tx.UpdateAgent(ctx, cur.ID, func(a store.Agent) (store.Agent, error) {
			if p.IfVersion != 0 && a.Version != p.IfVersion {
				return a, versionErr("agent", a.Name, a.Version, p.IfVersion)
			}
			if !slices.Contains(from, a.State) {
				return a, fmt.Errorf("identity: cannot %s agent %q in state %s: %w", verb, a.Name, a.State, ErrIllegalTransition)
			}
			prev = a.State
			a.State = to
			a.UpdatedAt = now
			return a, nil
		})
		if err != nil {
			return mapUpdateErr("agent", err)
		}
		if err := s.appendTransition(ctx, tx, o, updated, prev, now, reason); err != nil {
			return err
		}
		out = updated
		return nil
	})
	if err != nil {
		return store.Agent{}, err
	}
	return out, nil
}

// appendTransition records the move of a from prev into its state:
// agent.suspended, agent.resumed or agent.deprovisioned with the version,
// both states and, out of active, the delegated tokens affected.
func (s *Service) appendTransition(ctx context.Context, tx store.Tx, o audit.Origin, a store.Agent, prev store.AgentState, now time.Time, reason string) error {
	details := map[string]any{
		"version":        a.Version,
		"state":          string(a.State),
		"previous_state": string(prev),
	}
	if a.State != store.AgentActive {
		// The cascade (ADR 0014 §5): live delegated tokens whose chain
		// holds the agent stop being active now.
		n, err := tx.CountExchangedTokens(ctx, store.ExchangedTokenFilter{AgentID: a.ID, LiveAt: now})
		if err != nil {
			return fmt.Errorf("identity: count delegated tokens: %w", err)
		}
		details["tokens_affected"] = n
	}
	typ := EventAgentResumed
	switch a.State {
	case store.AgentSuspended:
		typ = EventAgentSuspended
	case store.AgentDeprovisioned:
		typ = EventAgentDeprovisioned
	}
	return s.appendAgentEvent(ctx, tx, o, typ, a, details, reason)
}
