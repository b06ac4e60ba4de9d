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

// scoped are the policies that can apply to one action: those for every
// principal of a type (Agent, Person), and those whose principal scope
// names one principal.
type scoped struct {
	any         map[types.EntityType][]entry
	byPrincipal map[types.EntityUID][]entry
}

// index maps every action of the registry to its policies.
type index map[types.EntityUID]*scoped

// newIndex files each policy under the actions its action scope admits
// and under the principals its principal scope admits: every principal of
// a type, or the one it names. A policy whose principal scope names
// another type of entity never applies (agents and persons are the only
// principals, and they have no parents). An open scope was read as
// "principal is Agent" when the policy was parsed (ADR 0016).
func newIndex(reg *registry, p *parsed) index {
	ix := index{}
	for _, a := range reg.actions {
		ix[a.uid] = &scoped{any: map[types.EntityType][]entry{}, byPrincipal: map[types.EntityUID][]entry{}}
	}
	for _, id := range p.ids {
		pol := p.set.Get(cedar.PolicyID(id))
		ast := (*xast.Policy)(pol.AST())
		one, typ, ok := principalScope(ast.Principal)
		if !ok {
			continue
		}
		for _, a := range reg.actions {
			if !actionScope(ast.Action, a.uid, types.NewEntityUID(TypeAction, types.String(a.class))) {
				continue
			}
			s := ix[a.uid]
			e := entry{id: cedar.PolicyID(id), p: pol}
			if written, ok := p.open[cedar.PolicyID(id)]; ok {
				e.p = written // filed under Agent: "is Agent" holds
			}
			if typ != "" {
				s.any[typ] = append(s.any[typ], e)
			} else {
				s.byPrincipal[one] = append(s.byPrincipal[one], e)
			}
		}
	}
	return ix
}

// isPrincipalType reports whether t is a type of principal.
func isPrincipalType(t types.EntityType) bool { return t == TypeAgent || t == TypePerson }

// principalScope reads a principal scope: the one principal it names, or
// the type of every principal it admits (typ); ok is false when no
// principal can match it.
func principalScope(n xast.IsPrincipalScopeNode) (one types.EntityUID, typ types.EntityType, ok bool) {
	switch s := n.(type) {
	case xast.ScopeTypeEq:
		return s.Entity, "", isPrincipalType(s.Entity.Type)
	case xast.ScopeTypeIn:
		return s.Entity, "", isPrincipalType(s.Entity.Type)
	case xast.ScopeTypeIs:
		return types.EntityUID{}, s.Type, isPrincipalType(s.Type)
	case xast.ScopeTypeIsIn:
		return s.Entity, "", isPrincipalType(s.Type) && s.Type == s.Entity.Type
	default: // not after parse: an open scope reads "principal is Agent"
		return types.EntityUID{}, TypeAgent, true
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

// candidates are the policies that can apply to a principal's request
// for the action.
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

// lookup returns the candidates for a principal's request.
func (ix index) lookup(action, principal types.EntityUID) candidates {
	s := ix[action]
	if s == nil {
		return candidates{}
	}
	return candidates{s.any[principal.Type], s.byPrincipal[principal]}
}
