package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/agentid/agentid/internal/store"
)

// Cedar entity types of the schema (ADR 0013).
const (
	TypeAgent    types.EntityType = "Agent"
	TypePerson   types.EntityType = "Person"
	TypeInstance types.EntityType = "Instance"
	TypeResource types.EntityType = "Resource"
	TypeAction   types.EntityType = "Action"
	// ADR 0016: the typed properties of an AuthZEN entity, and the
	// properties of the request's action.
	TypeLongs            types.EntityType = "Longs"
	TypeBools            types.EntityType = "Bools"
	TypeActionProperties types.EntityType = "ActionProperties"
)

// schemaHead is the fixed part of the Cedar schema; the actions follow,
// one per action class and one per action of a class, each a member of
// its class.
const schemaHead = `// agentid's Cedar schema (ADR 0013, ADR 0016).
// The properties of an AuthZEN entity: every scalar a String tag, integers
// also Long tags of longs, booleans also Bool tags of bools.
entity Longs tags Long;
entity Bools tags Bool;
// A person: an owner, a delegation subject, or a "user" subject whose tags
// are the properties its PEP asserted.
entity Person { longs: Longs, bools: Bools } tags String;
entity Instance { attestation_method: String };
entity Agent {
  id: String,
  spiffe_id: String,
  state: String,
  orphaned: Bool,
  owners: Set<Person>,
  action_classes: Set<String>
} tags String;
entity Resource { type: String, longs: Longs, bools: Bools } tags String;
entity ActionProperties { longs: Longs, bools: Bools } tags String;
type Delegation = { subject: Person, actors: Set<String>, grant_id?: String };
type DecisionContext = {
  action_properties: ActionProperties,
  action_class: String,
  risk_tier: String,
  time: datetime,
  trace_id?: String,
  delegation?: Delegation,
  instance?: Instance,
  attestation_method?: String
};
`

// An open principal scope reads "principal is Agent" (ADR 0016): policies
// concern users only when their scope names Person.
const appliesTo = ` appliesTo { principal: [Agent, Person], resource: [Resource], context: DecisionContext };`

// actionInfo is what a request's action resolves to.
type actionInfo struct {
	uid   types.EntityUID
	class string
	tier  string
}

// registry is the action classes compiled: the schema built from them, its
// validator, and the actions as Cedar entities.
type registry struct {
	classes   []store.ActionClass
	actions   map[string]actionInfo
	entities  types.EntityMap // the Action entities, with their classes as parents
	validator *validate.Validator
	schema    string
}

// SchemaText is the Cedar schema that policies are validated against for
// the action classes given: the fixed entity types and one action per
// class and per action.
func SchemaText(classes []store.ActionClass) string {
	var b strings.Builder
	b.WriteString(schemaHead)
	for _, c := range classes {
		fmt.Fprintf(&b, "action %q%s\n", c.Name, appliesTo)
		for _, a := range c.Actions {
			fmt.Fprintf(&b, "action %q in [%q]%s\n", a, c.Name, appliesTo)
		}
	}
	return b.String()
}

// newRegistry compiles the action classes. The names were validated when
// the classes were set; an error here means the store holds something this
// package would not have written.
func newRegistry(classes []store.ActionClass) (*registry, error) {
	r := &registry{
		classes:  slices.Clone(classes),
		actions:  map[string]actionInfo{},
		entities: types.EntityMap{},
		schema:   SchemaText(classes),
	}
	for _, c := range classes {
		classUID := types.NewEntityUID(TypeAction, types.String(c.Name))
		if _, dup := r.actions[c.Name]; dup {
			return nil, fmt.Errorf("policy: action %q is defined twice", c.Name)
		}
		r.actions[c.Name] = actionInfo{uid: classUID, class: c.Name, tier: c.RiskTier}
		r.entities[classUID] = types.Entity{UID: classUID}
		for _, a := range c.Actions {
			if _, dup := r.actions[a]; dup {
				return nil, fmt.Errorf("policy: action %q is defined twice", a)
			}
			uid := types.NewEntityUID(TypeAction, types.String(a))
			r.actions[a] = actionInfo{uid: uid, class: c.Name, tier: c.RiskTier}
			r.entities[uid] = types.Entity{UID: uid, Parents: types.NewEntityUIDSet(classUID)}
		}
	}
	var s schema.Schema
	s.SetFilename("schema")
	if err := s.UnmarshalCedar([]byte(r.schema)); err != nil {
		return nil, fmt.Errorf("policy: build schema: %w", err)
	}
	resolved, err := s.Resolve()
	if err != nil {
		return nil, fmt.Errorf("policy: resolve schema: %w", err)
	}
	r.validator = validate.New(resolved)
	return r, nil
}
