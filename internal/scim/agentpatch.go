package scim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// applyAgent runs the operations of p in order on an Agent's attributes.
func (p Patch) applyAgent(a agentAttrs) (agentAttrs, error) { return applyOps(p, a, applyAgentPath) }

// applyAgentPath applies one operation to the Agent attribute at path.
// name is immutable (the agent's name never changes): setting
// it to its value is no change, to another is mutability. description
// cannot be removed. displayName and paths into extension schemas are
// accepted and ignored.
func applyAgentPath(a agentAttrs, op, path string, value json.RawMessage) (agentAttrs, error) {
	name, ok := stripURN(path, SchemaAgent)
	if !ok {
		return a, nil // an extension schema: not stored
	}
	pp, err := splitPath(path, name)
	if err != nil {
		return a, err
	}
	remove := op == "remove"
	if pp.hasFilter && pp.attr != "owners" {
		return a, badRequest(TypeInvalidPath, "path %s: only owners takes a value filter", quote(path))
	}
	if pp.sub != "" && pp.attr != "owners" {
		return a, badRequest(TypeInvalidPath, "%s has no sub-attribute %s", pp.attr, quote(pp.sub))
	}
	switch pp.attr {
	case "name":
		if !remove {
			v, err := stringValue(value, "name")
			if err != nil || v == a.name {
				return a, err
			}
		}
		return a, &Error{Status: 400, ScimType: TypeMutability,
			Detail: "name is immutable: an agent's name never changes (register a new agent instead)"}
	case "externalid":
		if remove {
			a.externalID = ""
			return a, nil
		}
		a.externalID, err = stringValue(value, "externalId")
		return a, err
	case "description":
		if remove {
			return a, badRequest(TypeInvalidValue, "description is required and cannot be removed")
		}
		v, err := stringValue(value, "description")
		if err == nil && strings.TrimSpace(v) == "" {
			err = badRequest(TypeInvalidValue, "description is required and cannot be empty")
		}
		if err == nil {
			a.description = v
		}
		return a, err
	case "active":
		if remove {
			return a, badRequest(TypeInvalidValue, "active cannot be removed")
		}
		a.active, err = boolValue(value, "active")
		return a, err
	case "owners":
		return applyOwners(a, op, pp, value)
	case "id", "meta", "schemas", "groups":
		return a, &Error{Status: 400, ScimType: TypeMutability, Detail: fmt.Sprintf("attribute %s is read-only", quote(pp.attr))}
	}
	if isIgnoredAgentAttr(pp.attr) {
		return a, nil
	}
	return a, badRequest(TypeInvalidPath, "path %s names no attribute of the Agent schema this provider serves", quote(path))
}

// applyOwners applies an operation to owners (RFC 7644 §3.5.2 on a
// multi-valued attribute): add merges the values in, replace sets them,
// remove without a value filter takes the listed values out (Entra ID's
// form for members) or, with no value, all of them, and
// owners[value eq "own_…"] removes that one (Okta's form). Whether an
// owner is left is checked after every operation has applied.
func applyOwners(a agentAttrs, op string, pp patchPath, value json.RawMessage) (agentAttrs, error) {
	if pp.sub != "" {
		return a, badRequest(TypeInvalidPath, "owners: only whole values can be changed, not %s", quote(pp.sub))
	}
	if pp.hasFilter {
		if op != "remove" {
			return a, badRequest(TypeInvalidPath, "owners[…] takes only remove; add or replace owners with a list of values")
		}
		id, err := ownerSelector(pp.filter)
		if err != nil {
			return a, err
		}
		if !slices.Contains(a.owners, id) {
			return a, badRequest(TypeNoTarget, "owners[%s] matches no owner", pp.filter)
		}
		a.owners = slices.DeleteFunc(slices.Clone(a.owners), func(o string) bool { return o == id })
		return a, nil
	}
	ids, err := ownersValue(value)
	if err != nil {
		return a, err
	}
	switch op {
	case "add":
		a.owners = append(slices.Clone(a.owners), ids...)
		slices.Sort(a.owners)
		a.owners = slices.Compact(a.owners)
	case "replace":
		a.owners = ids
	case "remove":
		if isNull(value) {
			a.owners = nil
			return a, nil
		}
		a.owners = slices.DeleteFunc(slices.Clone(a.owners), func(o string) bool { return slices.Contains(ids, o) })
	}
	return a, nil
}

// ownerSelector parses the value filter of a PATCH path owners[…]:
// value eq "<User id>".
func ownerSelector(text string) (string, error) {
	const want = `owners[…] takes value eq "<User id>"`
	p := &filterParser{src: text}
	if err := p.tokenize(); err != nil || len(p.toks) != 3 {
		return "", badRequest(TypeInvalidPath, want)
	}
	attr, op, v := p.toks[0], p.toks[1], p.toks[2]
	if !p.isWord(attr, "value") || !p.isWord(op, "eq") || v.kind != tokString {
		return "", badRequest(TypeInvalidPath, want)
	}
	return v.text, nil
}
