package policy

import (
	"encoding/json"
	"strconv"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/agentid/agentid/internal/store"
)

// props are an AuthZEN entity's scalar properties as policies see them:
// every one a String tag, integers also Long tags (longs), booleans also
// Bool tags (bools).
type props struct {
	tags, longs, bools types.Record
}

// scalarProps converts decoded JSON properties (numbers as json.Number).
// An integer is a Long when it has neither fraction nor exponent and fits
// 64 bits; other numbers are strings only. Null, objects and arrays are
// not visible to policies.
func scalarProps(m map[string]any) props {
	if len(m) == 0 {
		return props{} // the zero Record is the empty record
	}
	tags, longs, bools := types.RecordMap{}, types.RecordMap{}, types.RecordMap{}
	for k, v := range m {
		key := types.String(k)
		switch v := v.(type) {
		case string:
			tags[key] = types.String(v)
		case json.Number:
			tags[key] = types.String(v.String())
			if n, err := strconv.ParseInt(v.String(), 10, 64); err == nil {
				longs[key] = types.Long(n)
			}
		case bool:
			tags[key] = types.String(strconv.FormatBool(v))
			bools[key] = types.Boolean(v)
		}
	}
	return props{tags: types.NewRecord(tags), longs: types.NewRecord(longs), bools: types.NewRecord(bools)}
}

// The typed properties of a request's entities (ADR 0016): Longs and
// Bools entities of these ids, and the action's properties.
//
//nolint:gochecknoglobals // immutable entity ids and attribute records
var (
	resourceLongs = types.NewEntityUID(TypeLongs, "resource")
	resourceBools = types.NewEntityUID(TypeBools, "resource")
	userLongs     = types.NewEntityUID(TypeLongs, "subject")
	userBools     = types.NewEntityUID(TypeBools, "subject")
	actionLongs   = types.NewEntityUID(TypeLongs, "action")
	actionBools   = types.NewEntityUID(TypeBools, "action")
	actionBag     = types.NewEntityUID(TypeActionProperties, "action")
	// noLongs and noBools are the typed properties of an entity without
	// any: a person who is not the principal.
	noLongs = types.NewEntityUID(TypeLongs, "")
	noBools = types.NewEntityUID(TypeBools, "")

	userAttrs   = types.NewRecord(types.RecordMap{"longs": userLongs, "bools": userBools})
	noAttrs     = types.NewRecord(types.RecordMap{"longs": noLongs, "bools": noBools})
	actionAttrs = types.NewRecord(types.RecordMap{"longs": actionLongs, "bools": actionBools})
)

// entities is one request's entities over the registry's actions. The
// entities of the request's properties, and persons other than the
// principal (an agent's owners, a delegation subject: no properties), are
// made when Cedar asks for them.
type entities struct {
	own     types.EntityMap
	actions types.EntityMap
	in      *input
}

func (e entities) Get(uid types.EntityUID) (types.Entity, bool) {
	if uid.Type == TypeAction {
		return e.actions.Get(uid)
	}
	if ent, ok := e.own.Get(uid); ok {
		return ent, true
	}
	var tags types.Record
	switch uid {
	case resourceLongs:
		tags = e.in.resProps.longs
	case resourceBools:
		tags = e.in.resProps.bools
	case userLongs:
		tags = e.in.userProps.longs
	case userBools:
		tags = e.in.userProps.bools
	case actionLongs:
		tags = e.in.actionProps.longs
	case actionBools:
		tags = e.in.actionProps.bools
	case actionBag:
		return types.Entity{UID: uid, Attributes: actionAttrs, Tags: e.in.actionProps.tags}, true
	default:
		switch uid.Type {
		case TypePerson:
			return types.Entity{UID: uid, Attributes: noAttrs, Tags: types.Record{}}, true
		case TypeLongs, TypeBools:
			tags = types.Record{}
		default:
			return types.Entity{}, false
		}
	}
	return types.Entity{UID: uid, Tags: tags}, true
}

// personEntity is the principal of a user subject: the properties its
// caller asserted are its tags.
func personEntity(id string, p props) types.Entity {
	return types.Entity{UID: types.NewEntityUID(TypePerson, types.String(id)), Attributes: userAttrs, Tags: p.tags}
}

// agentEntity is an agent as a Cedar principal, from its record.
func agentEntity(a store.Agent) types.Entity {
	owners := make([]types.Value, len(a.Owners))
	for i, o := range a.Owners {
		owners[i] = types.NewEntityUID(TypePerson, types.String(o))
	}
	classes := make([]types.Value, len(a.ActionClasses))
	for i, ac := range a.ActionClasses {
		classes[i] = types.String(ac)
	}
	labels := make(types.RecordMap, len(a.Labels))
	for k, v := range a.Labels {
		labels[types.String(k)] = types.String(v)
	}
	uid := types.NewEntityUID(TypeAgent, types.String(a.Name))
	return types.Entity{UID: uid, Attributes: types.NewRecord(types.RecordMap{
		"id": types.String(a.ID), "spiffe_id": types.String(a.SPIFFEID), "state": types.String(a.State),
		"orphaned": types.Boolean(a.Orphaned), "owners": types.NewSet(owners...), "action_classes": types.NewSet(classes...),
	}), Tags: types.NewRecord(labels)}
}
