package policy

import (
	"iter"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// Cedar evaluates every policy it is given. Most policies cannot apply to
// a request by their scope alone (another action, another agent), so the
// index gives Authorize, per action and agent, only the policies whose
// scope can match: the answer is the same, the work scales with the
// policies that concern the request.

// entry is one policy of the set.
type entry struct {
	id cedar.PolicyID
	p  *cedar.Policy
}

// scoped are the policies that can apply to one action: those for any
// principal, and those whose principal scope names one agent.
type scoped struct {
	any     []entry
	byAgent map[types.String][]entry
}

// index maps every action of the registry to its policies.
type index map[types.EntityUID]*scoped

// newIndex files each policy under the actions its action scope admits
// and, when its principal scope is one agent, under that agent. A policy
// whose principal scope names an entity of another type never applies
// (agents are the only principals, and they have no parents).
func newIndex(reg *registry, p *parsed) index {
	ix := index{}
	for _, a := range reg.actions {
		ix[a.uid] = &scoped{byAgent: map[types.String][]entry{}}
	}
	for _, id := range p.ids {
		pol := p.set.Get(cedar.PolicyID(id))
		ast := (*xast.Policy)(pol.AST())
		agent, anyAgent, ok := principalScope(ast.Principal)
		if !ok {
			continue
		}
		for _, a := range reg.actions {
			if !actionScope(ast.Action, a.uid, types.NewEntityUID(TypeAction, types.String(a.class))) {
				continue
			}
			s := ix[a.uid]
			e := entry{id: cedar.PolicyID(id), p: pol}
			if anyAgent {
				s.any = append(s.any, e)
			} else {
				s.byAgent[agent] = append(s.byAgent[agent], e)
			}
		}
	}
	return ix
}

// principalScope reads a principal scope: the one agent it names, or
// anyAgent; ok is false when no agent can match it.
func principalScope(n xast.IsPrincipalScopeNode) (agent types.String, anyAgent, ok bool) {
	switch s := n.(type) {
	case xast.ScopeTypeEq:
		return s.Entity.ID, false, s.Entity.Type == TypeAgent
	case xast.ScopeTypeIn:
		return s.Entity.ID, false, s.Entity.Type == TypeAgent
	case xast.ScopeTypeIs:
		return "", true, s.Type == TypeAgent
	case xast.ScopeTypeIsIn:
		return s.Entity.ID, false, s.Type == TypeAgent && s.Entity.Type == TypeAgent
	default:
		return "", true, true
	}
}

// actionScope reports whether an action scope admits the action, whose
// class is its only ancestor (a class is its own class).
func actionScope(n xast.IsActionScopeNode, action, class types.EntityUID) bool {
	switch s := n.(type) {
	case xast.ScopeTypeEq:
		return s.Entity == action
	case xast.ScopeTypeIn:
		return s.Entity == action || s.Entity == class
	case xast.ScopeTypeInSet:
		for _, e := range s.Entities {
			if e == action || e == class {
				return true
			}
		}
		return false
	default:
		return true
	}
}

// candidates are the policies that can apply to the agent's request for
// the action.
type candidates struct{ a, b []entry }

func (c candidates) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, l := range [2][]entry{c.a, c.b} {
			for _, e := range l {
				if !yield(e.id, e.p) {
					return
				}
			}
		}
	}
}

// lookup returns the candidates for an agent's request.
func (ix index) lookup(action types.EntityUID, agent types.String) candidates {
	s := ix[action]
	if s == nil {
		return candidates{}
	}
	return candidates{s.any, s.byAgent[agent]}
}
