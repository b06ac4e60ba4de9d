package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Patch is a decoded PatchOp request (RFC 7644 §3.5.2).
type Patch struct {
	ops []patchOp
}

type patchOp struct {
	op    string // add, replace or remove
	path  string
	value json.RawMessage
}

// DecodePatch decodes a PatchOp message: schemas must list the PatchOp
// URN; Operations (any case) holds 1 to MaxOperations operations whose op
// is add, replace or remove in any case (Entra ID sends "Replace"). A
// remove needs a path (RFC 7644 §3.5.2.2, scimType noTarget); add and
// replace need a value. Errors are *Error. Safe on any input.
func DecodePatch(body []byte) (Patch, error) {
	m, err := decodeObject(body, "the PatchOp request")
	if err != nil {
		return Patch{}, err
	}
	if err := checkSchemas(m["schemas"], MessagePatchOp); err != nil {
		return Patch{}, err
	}
	for k := range m {
		if k != "schemas" && k != "operations" {
			return Patch{}, badRequest(TypeInvalidSyntax, "the PatchOp request has no member %s", quote(k))
		}
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(m["operations"], &raw); err != nil || len(raw) == 0 {
		return Patch{}, badRequest(TypeInvalidSyntax, "Operations must be a non-empty list")
	}
	if len(raw) > MaxOperations {
		return Patch{}, badRequest(TypeInvalidSyntax, "at most %d operations per request", MaxOperations)
	}
	var p Patch
	for i, r := range raw {
		om, err := decodeObject(r, fmt.Sprintf("Operations[%d]", i))
		if err != nil {
			return Patch{}, err
		}
		var op patchOp
		for k, v := range om {
			switch k {
			case "op":
				if err := json.Unmarshal(v, &op.op); err != nil {
					return Patch{}, badRequest(TypeInvalidSyntax, "Operations[%d].op must be a string", i)
				}
				op.op = strings.ToLower(op.op)
			case "path":
				if err := json.Unmarshal(v, &op.path); err != nil {
					return Patch{}, badRequest(TypeInvalidPath, "Operations[%d].path must be a string", i)
				}
				op.path = strings.TrimSpace(op.path)
			case "value":
				op.value = v
			default:
				return Patch{}, badRequest(TypeInvalidSyntax, "Operations[%d] has no member %s", i, quote(k))
			}
		}
		switch op.op {
		case "add", "replace":
			if op.value == nil {
				return Patch{}, badRequest(TypeInvalidValue, "Operations[%d]: %s needs a value", i, op.op)
			}
		case "remove":
			if op.path == "" {
				return Patch{}, badRequest(TypeNoTarget, "Operations[%d]: remove needs a path", i)
			}
		default:
			return Patch{}, badRequest(TypeInvalidSyntax, "Operations[%d].op must be add, replace or remove", i)
		}
		p.ops = append(p.ops, op)
	}
	return p, nil
}

// apply runs the operations in order on a User's attributes.
func (p Patch) apply(a attrs) (attrs, error) { return applyOps(p, a, applyPath) }

// pathApplier applies one operation (op, path, value) to a resource's
// attributes.
type pathApplier[T any] func(a T, op, path string, value json.RawMessage) (T, error)

// applyOps runs the operations of p in order on a, each through apply;
// all succeed or the patch fails (RFC 7644 §3.5.2: a PATCH is atomic).
func applyOps[T any](p Patch, a T, apply pathApplier[T]) (T, error) {
	for i, op := range p.ops {
		var err error
		if op.path == "" {
			a, err = applyObject(a, op.op, op.value, apply)
		} else {
			a, err = apply(a, op.op, op.path, op.value)
		}
		if err != nil {
			if e, ok := errors.AsType[*Error](err); ok {
				return a, &Error{Status: e.Status, ScimType: e.ScimType, Detail: fmt.Sprintf("Operations[%d]: %s", i, e.Detail)}
			}
			return a, err
		}
	}
	return a, nil
}

// applyObject applies an add or replace without a path: every member of
// the value object is an attribute path and its value (RFC 7644
// §3.5.2.1, §3.5.2.3), applied in name order.
func applyObject[T any](a T, op string, value json.RawMessage, apply pathApplier[T]) (T, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(value, &m); err != nil || m == nil {
		return a, badRequest(TypeInvalidValue, "%s without a path needs an object value", op)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var err error
		if a, err = apply(a, op, k, m[k]); err != nil {
			return a, err
		}
	}
	return a, nil
}

// patchPath is a parsed PATCH path: attr[filter].sub, lowercased except
// the filter.
type patchPath struct {
	attr, filter, sub string
	hasFilter         bool
}

// parsePath parses a PATCH path (RFC 7644 §3.5.2: attrPath or
// valuePath [subAttr]). ignore is true for a path into an extension
// schema, which the provider accepts and does not store.
func parsePath(path string) (pp patchPath, ignore bool, err error) {
	name, ok := stripURN(path, SchemaUser)
	if !ok {
		if len(path) >= len(SchemaEnterpriseUser) && strings.EqualFold(path[:len(SchemaEnterpriseUser)], SchemaEnterpriseUser) {
			return pp, true, nil
		}
		return pp, false, badRequest(TypeInvalidPath, "path %s names no attribute of the User schema", quote(path))
	}
	pp, err = splitPath(path, name)
	return pp, false, err
}

// splitPath parses the attribute path name (path without its schema URN)
// into attribute, value filter and sub-attribute.
func splitPath(path, name string) (pp patchPath, err error) {
	if i := strings.IndexByte(name, '['); i >= 0 {
		j := strings.LastIndexByte(name, ']')
		if j < i {
			return pp, badRequest(TypeInvalidPath, "path %s has an unclosed [", quote(path))
		}
		pp.attr, pp.filter, pp.hasFilter = name[:i], name[i+1:j], true
		rest := name[j+1:]
		if rest != "" {
			if rest[0] != '.' {
				return pp, badRequest(TypeInvalidPath, "path %s: \".\" expected after ]", quote(path))
			}
			pp.sub = rest[1:]
		}
	} else {
		pp.attr, pp.sub, _ = strings.Cut(name, ".")
	}
	pp.attr, pp.sub = strings.ToLower(pp.attr), strings.ToLower(pp.sub)
	if pp.attr == "" || strings.ContainsAny(pp.sub, ".[]") {
		return pp, badRequest(TypeInvalidPath, "path %s is malformed", quote(path))
	}
	return pp, nil
}

// isNameSubAttr reports whether sub (lowercased) is a sub-attribute of
// name (RFC 7643 §4.1.1).
func isNameSubAttr(sub string) bool {
	switch sub {
	case "formatted", "familyname", "givenname", "middlename", "honorificprefix", "honorificsuffix":
		return true
	}
	return false
}

// applyPath applies one operation to the attribute at path.
func applyPath(a attrs, op, path string, value json.RawMessage) (attrs, error) {
	pp, ignore, err := parsePath(path)
	if err != nil || ignore {
		return a, err
	}
	remove := op == "remove"
	if pp.hasFilter && pp.attr != "emails" {
		return a, badRequest(TypeInvalidPath, "path %s: only emails takes a value filter", quote(path))
	}
	single := func(field *string, attr string, required bool) error {
		if pp.sub != "" {
			return badRequest(TypeInvalidPath, "%s has no sub-attribute %s", attr, quote(pp.sub))
		}
		if remove {
			if required {
				return badRequest(TypeInvalidValue, "%s is required and cannot be removed", attr)
			}
			*field = ""
			return nil
		}
		v, err := stringValue(value, attr)
		if err == nil && required && strings.TrimSpace(v) == "" {
			err = badRequest(TypeInvalidValue, "%s is required and cannot be empty", attr)
		}
		if err == nil {
			*field = v
		}
		return err
	}
	switch pp.attr {
	case "username":
		return a, single(&a.userName, "userName", true)
	case "externalid":
		return a, single(&a.externalID, "externalId", false)
	case "displayname":
		return a, single(&a.displayName, "displayName", false)
	case "active":
		if pp.sub != "" {
			return a, badRequest(TypeInvalidPath, "active has no sub-attribute %s", quote(pp.sub))
		}
		if remove {
			return a, badRequest(TypeInvalidValue, "active cannot be removed")
		}
		a.active, err = boolValue(value, "active")
		return a, err
	case "name":
		switch {
		case pp.sub == "formatted":
			pp.sub = ""
			return a, single(&a.displayName, "name.formatted", false)
		case pp.sub != "" && !isNameSubAttr(pp.sub):
			return a, badRequest(TypeInvalidPath, "name has no sub-attribute %s", quote(pp.sub))
		case pp.sub != "":
			return a, nil // givenName and the rest are not stored
		case remove:
			a.displayName = ""
			return a, nil
		}
		m, err := decodeObject(value, "name")
		if err != nil {
			return a, badRequest(TypeInvalidValue, "name must be an object")
		}
		if f, ok := m["formatted"]; ok {
			a.displayName, err = stringValue(f, "name.formatted")
		}
		return a, err
	case "emails":
		return applyEmails(a, op, pp, value)
	}
	switch {
	case isIgnoredAttr(pp.attr):
		return a, nil
	case isReadOnlyAttr(pp.attr), pp.attr == "schemas":
		return a, &Error{Status: 400, ScimType: TypeMutability, Detail: fmt.Sprintf("attribute %s is read-only", quote(pp.attr))}
	}
	return a, badRequest(TypeInvalidPath, "path %s names no attribute of the User schema", quote(path))
}

// applyEmails applies an operation to emails, emails.value or
// emails[…][.value]. An owner keeps one email, its primary work email: a
// value filter that selects another (type eq "home") is ignored by add
// and replace and is noTarget for remove.
func applyEmails(a attrs, op string, pp patchPath, value json.RawMessage) (attrs, error) {
	if pp.hasFilter {
		selects, err := emailSelector(pp.filter)
		if err != nil {
			return a, badRequest(TypeInvalidPath, "emails[%s]: %s", quote(pp.filter), strings.TrimPrefix(err.Error(), "scim: filter: "))
		}
		if !selects {
			if op == "remove" {
				return a, badRequest(TypeNoTarget, "emails[%s] matches no email", pp.filter)
			}
			return a, nil
		}
	}
	switch pp.sub {
	case "value":
		if op == "remove" {
			a.email = ""
			return a, nil
		}
		v, err := stringValue(value, "emails.value")
		if err == nil {
			a.email = v
		}
		return a, err
	case "type", "primary", "display":
		return a, nil
	case "":
		if op == "remove" {
			a.email = ""
			return a, nil
		}
		v, err := emailValue(value)
		if err != nil {
			return a, err
		}
		if v != "" || op == "replace" {
			a.email = v
		}
		return a, nil
	}
	return a, badRequest(TypeInvalidPath, "emails has no sub-attribute %s", quote(pp.sub))
}
