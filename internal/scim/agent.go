package scim

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// SchemaAgent is the core schema of the Agent resource of
// draft-wzdk-scim-agent-resource-00 (ADR 0025).
const SchemaAgent = "urn:ietf:params:scim:schemas:core:2.0:Agent"

// Agent is the wire form of an Agent resource for an agentid agent: only
// the attributes the provider maps (ADR 0025). The agentid-only fields
// (action classes, credential policy, attestation rules, selectors,
// labels, …) are not part of it.
type Agent struct {
	Schemas     []string   `json:"schemas"`
	ID          string     `json:"id"`
	ExternalID  string     `json:"externalId,omitempty"`
	AgentName   string     `json:"name"`
	DisplayName string     `json:"displayName"`
	Description string     `json:"description"`
	Owners      []OwnerRef `json:"owners"`
	Active      bool       `json:"active"`
	Meta        Meta       `json:"meta"`
}

// OwnerRef is one value of an Agent's owners: a User (an owner) by id.
type OwnerRef struct {
	Value string `json:"value"`
	Ref   string `json:"$ref"`
}

// FromAgent returns the Agent resource of a; base is the absolute URL of
// the SCIM root (…/scim/v2). displayName is the agent's name (agentid
// keeps no other), active is true only in state active.
func FromAgent(a store.Agent, base string) Agent {
	out := Agent{
		Schemas: []string{SchemaAgent}, ID: a.ID, ExternalID: a.ExternalID, AgentName: a.Name,
		DisplayName: a.Name, Description: a.Purpose, Owners: make([]OwnerRef, 0, len(a.Owners)),
		Active: a.State == store.AgentActive,
		Meta: Meta{ResourceType: "Agent", Created: a.CreatedAt.UTC(), LastModified: a.UpdatedAt.UTC(),
			Location: base + "/Agents/" + a.ID, Version: ETag(a.Version)},
	}
	for _, id := range a.Owners {
		out.Owners = append(out.Owners, OwnerRef{Value: id, Ref: base + "/Users/" + id})
	}
	return out
}

// agentAttrs are the Agent attributes the provider maps, as a request
// sets them.
type agentAttrs struct {
	name, externalID, description string
	owners                        []string // owner ids, sorted, no duplicates
	active                        bool
}

func agentAttrsOf(a store.Agent) agentAttrs {
	return agentAttrs{name: a.Name, externalID: a.ExternalID, description: a.Purpose,
		owners: slices.Clone(a.Owners), active: a.State == store.AgentActive}
}

// isIgnoredAgentAttr reports whether name (lowercased) is an Agent
// attribute the provider accepts and does not store: displayName (the
// agent's name is shown) and the attributes of the draft's Agent schema
// agentid keeps no record of, as the User attributes it does not keep
// (ADR 0025).
func isIgnoredAgentAttr(name string) bool {
	switch name {
	case "displayname", "agenttype", "entitlements", "roles", "applications", "subject",
		"x509certificates", "protocols", "parent":
		return true
	}
	return false
}

// isReadOnlyAgentAttr reports whether name (lowercased) is an attribute a
// client cannot set (RFC 7643 §2.2 mutability readOnly).
func isReadOnlyAgentAttr(name string) bool { return name == "id" || name == "meta" || name == "groups" }

// ownersValue decodes an owners value: a list of {value, $ref, display,
// type} (a single object is a list of one) whose values are owner ids
// (own_…, the ids of Users). The ids come back sorted, without duplicates.
func ownersValue(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		list = []json.RawMessage{raw}
	}
	ids := make([]string, 0, len(list))
	for _, r := range list {
		m, err := decodeObject(r, "a value of owners")
		if err != nil {
			return nil, badRequest(TypeInvalidValue, "owners must be a list of {\"value\": \"<User id>\"}")
		}
		for k := range m {
			switch k {
			case "value", "$ref", "display", "type":
			default:
				return nil, badRequest(TypeInvalidValue, "owners has no sub-attribute %s", quote(k))
			}
		}
		v, err := stringValue(m["value"], "owners.value")
		if err != nil {
			return nil, err
		}
		if recordid.Valid(recordid.Owner, v) != nil {
			return nil, badRequest(TypeInvalidValue, "owners.value %s is not the id of a User", quote(v))
		}
		ids = append(ids, v)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// parseAgent reads the Agent of a POST or PUT body (RFC 7644 §3.3,
// §3.5.1). active is cur.active when absent; externalId absent is
// cleared. name, description and at least one owner are
// required. Read-only attributes (id, meta) are ignored, as RFC 7644 §3.3
// asks, as are displayName and extension schemas; any other attribute is
// invalidSyntax.
func parseAgent(body []byte, cur agentAttrs) (agentAttrs, error) {
	m, err := decodeObject(body, "the Agent")
	if err != nil {
		return agentAttrs{}, err
	}
	if err := checkSchemas(m["schemas"], SchemaAgent); err != nil {
		return agentAttrs{}, err
	}
	out := agentAttrs{active: cur.active}
	for k, v := range m {
		switch {
		case k == "schemas", isReadOnlyAgentAttr(k), isIgnoredAgentAttr(k), strings.HasPrefix(k, "urn:"):
		case k == "name":
			out.name, err = stringValue(v, "name")
		case k == "externalid":
			out.externalID, err = stringValue(v, "externalId")
		case k == "description":
			out.description, err = stringValue(v, "description")
		case k == "owners":
			out.owners, err = ownersValue(v)
		case k == "active":
			if !isNull(v) {
				out.active, err = boolValue(v, "active")
			}
		default:
			return agentAttrs{}, badRequest(TypeInvalidSyntax, "attribute %s is not an attribute of the Agent schema this provider serves", quote(k))
		}
		if err != nil {
			return agentAttrs{}, err
		}
	}
	if out.name == "" {
		return agentAttrs{}, badRequest(TypeInvalidValue, "name is required")
	}
	return out, checkAgentAttrs(out)
}

// checkAgentAttrs requires what every stored agent has: a description
// (its purpose) and an owner.
func checkAgentAttrs(a agentAttrs) error {
	if strings.TrimSpace(a.description) == "" {
		return badRequest(TypeInvalidValue, "description is required: the agent's purpose (business justification)")
	}
	if len(a.owners) == 0 {
		return badRequest(TypeInvalidValue, "owners is required: at least one active User accountable for the agent")
	}
	return nil
}

// AgentQuery is a parsed filter over Agents: the agents it selects are
// those matching Filter, or none at all when Empty.
type AgentQuery struct {
	Filter store.AgentFilter
	Empty  bool
}

// ParseAgentFilter parses a SCIM filter (RFC 7644 §3.4.2.2) over Agents:
// a conjunction ("and", with parentheses) of equality tests ("eq") on id,
// externalId (case-exact), name (not case-exact: agent names are
// lowercase) and active (true or false). The grammar and its errors are
// ParseFilter's; any other attribute is invalidFilter. Safe on any input.
func ParseAgentFilter(s string) (AgentQuery, error) {
	var q AgentQuery
	err := parseFilter(s, func(p *filterParser, path string) (valueTest, error) {
		name, ok := stripURN(path, SchemaAgent)
		attr := strings.ToLower(name)
		switch {
		case !ok:
			return nil, invalidFilter("attribute %s is not one of this provider's", quote(path))
		case attr == "active":
			return func(v token) error {
				if v.kind != tokWord || (!strings.EqualFold(v.text, "true") && !strings.EqualFold(v.text, "false")) {
					return invalidFilter("active compares with true or false, not %s", v)
				}
				st := store.AgentSuspended
				if strings.EqualFold(v.text, "true") {
					st = store.AgentActive
				}
				setAgentKey(&q, &q.Filter.State, st)
				return nil
			}, nil
		case attr == "id" || attr == "externalid" || attr == "name":
			return func(v token) error {
				if v.kind != tokString {
					return invalidFilter("%s compares with a string, not %s", name, v)
				}
				switch attr {
				case "id":
					setAgentKey(&q, &q.Filter.ID, v.text)
				case "externalid":
					setAgentKey(&q, &q.Filter.ExternalID, v.text)
				default:
					setAgentKey(&q, &q.Filter.Name, strings.ToLower(v.text))
				}
				return nil
			}, nil
		}
		return nil, invalidFilter("attribute %s cannot be filtered on; this provider answers id, externalId, name and active", quote(path))
	})
	return q, err
}

// setAgentKey sets *field to v, or marks q empty when v is empty (no
// agent has an empty id, name or external id to match) or the field
// already holds another value.
func setAgentKey[T ~string](q *AgentQuery, field *T, v T) {
	if v == "" || (*field != "" && *field != v) {
		q.Empty = true
	}
	*field = v
}
