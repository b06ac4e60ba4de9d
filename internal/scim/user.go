package scim

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// User is the wire form of a User resource (RFC 7643 §4.1) for an owner:
// only the attributes the provider stores (ADR 0023).
type User struct {
	Schemas     []string `json:"schemas"`
	ID          string   `json:"id"`
	ExternalID  string   `json:"externalId,omitempty"`
	UserName    string   `json:"userName"`
	Name        *Name    `json:"name,omitempty"`
	DisplayName string   `json:"displayName,omitempty"`
	Emails      []Email  `json:"emails,omitempty"`
	Active      bool     `json:"active"`
	Meta        Meta     `json:"meta"`
}

// Name is the name complex attribute; only formatted is kept.
type Name struct {
	Formatted string `json:"formatted,omitempty"`
}

// Email is one value of the emails attribute. An owner has at most one:
// its primary work email.
type Email struct {
	Value   string `json:"value"`
	Type    string `json:"type"`
	Primary bool   `json:"primary"`
}

// Meta is the resource's meta attribute (RFC 7643 §3.1).
type Meta struct {
	ResourceType string    `json:"resourceType"`
	Created      time.Time `json:"created"`
	LastModified time.Time `json:"lastModified"`
	Location     string    `json:"location"`
	Version      string    `json:"version"`
}

// ETag is the entity tag of a record version: W/"<version>" (RFC 7644
// §3.14; weak, as the representation may vary with the base URL).
func ETag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// ParseETag reads an If-Match value (an entity tag from ETag, or a bare
// version number) into a version; ok is false for anything else, and "*"
// (any version) is 0 with ok.
func ParseETag(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return 0, true
	}
	s = strings.Trim(strings.TrimPrefix(s, "W/"), `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 {
		return 0, false
	}
	return v, true
}

// UserName is the userName an owner shows: its user name, or, for an
// owner that has none (one registered through the admin API), its email,
// its IdP subject or its id, so that the required attribute is never
// empty. A filter userName eq matches the user name or, for an owner
// without one, the email.
func UserName(o store.Owner) string {
	for _, s := range []string{o.UserName, o.Email, o.Subject} {
		if s != "" {
			return s
		}
	}
	return o.ID
}

// FromOwner returns the User resource of o; base is the absolute URL of
// the SCIM root (…/scim/v2), for meta.location.
func FromOwner(o store.Owner, base string) User {
	u := User{
		Schemas: []string{SchemaUser}, ID: o.ID, ExternalID: o.ExternalID, UserName: UserName(o),
		DisplayName: o.DisplayName, Active: o.State == store.OwnerActive,
		Meta: Meta{ResourceType: "User", Created: o.CreatedAt.UTC(), LastModified: o.UpdatedAt.UTC(),
			Location: base + "/Users/" + o.ID, Version: ETag(o.Version)},
	}
	if o.DisplayName != "" {
		u.Name = &Name{Formatted: o.DisplayName}
	}
	if o.Email != "" {
		u.Emails = []Email{{Value: o.Email, Type: "work", Primary: true}}
	}
	return u
}

// attrs are the User attributes the provider stores, as a request sets
// them.
type attrs struct {
	userName, externalID, displayName, email string
	active                                   bool
}

func attrsOf(o store.Owner) attrs {
	return attrs{userName: UserName(o), externalID: o.ExternalID, displayName: o.DisplayName, email: o.Email,
		active: o.State == store.OwnerActive}
}

// isIgnoredAttr reports whether name (lowercased) is an attribute of the
// core User schema (RFC 7643 §4.1) the provider accepts and does not
// store.
func isIgnoredAttr(name string) bool {
	switch name {
	case "nickname", "profileurl", "title", "usertype", "preferredlanguage", "locale", "timezone", "password",
		"phonenumbers", "ims", "photos", "addresses", "entitlements", "roles", "x509certificates":
		return true
	}
	return false
}

// isReadOnlyAttr reports whether name (lowercased) is an attribute a
// client cannot set (RFC 7643 §2.2 mutability readOnly).
func isReadOnlyAttr(name string) bool {
	return name == "id" || name == "meta" || name == "groups"
}

// decodeObject decodes a JSON object with its member names lowercased
// (SCIM attribute names are case-insensitive, RFC 7643 §2.1); two names
// that differ only in case are a syntax error.
func decodeObject(raw []byte, what string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, badRequest(TypeInvalidSyntax, "%s must be a JSON object", what)
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		lk := strings.ToLower(k)
		if _, dup := out[lk]; dup {
			return nil, badRequest(TypeInvalidSyntax, "%s names attribute %s twice", what, quote(k))
		}
		out[lk] = v
	}
	return out, nil
}

// isNull reports whether raw is the JSON null (or absent).
func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// stringValue decodes a string attribute; null is "".
func stringValue(raw json.RawMessage, attr string) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badRequest(TypeInvalidValue, "%s must be a string", attr)
	}
	return s, nil
}

// boolValue decodes active: a JSON boolean, or the strings "true" and
// "false" in any case (Entra ID sends "False").
func boolValue(raw json.RawMessage, attr string) (bool, error) {
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return b, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, badRequest(TypeInvalidValue, "%s must be true or false", attr)
}

// emailValue picks the owner's email from an emails value: the primary
// one, else the work one, else the first; values without an address are
// skipped. A single object is taken as a one-element list.
func emailValue(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	type email struct {
		Value   json.RawMessage `json:"value"`
		Type    string          `json:"type"`
		Primary json.RawMessage `json:"primary"`
	}
	var list []email
	if err := json.Unmarshal(raw, &list); err != nil {
		var one email
		if err := json.Unmarshal(raw, &one); err != nil {
			return "", badRequest(TypeInvalidValue, "emails must be a list of {value, type, primary}")
		}
		list = []email{one}
	}
	best, rank := "", 0
	for _, e := range list {
		v, err := stringValue(e.Value, "emails.value")
		if err != nil {
			return "", err
		}
		if v == "" {
			continue
		}
		r := 1
		if strings.EqualFold(e.Type, "work") {
			r = 2
		}
		if !isNull(e.Primary) {
			if p, err := boolValue(e.Primary, "emails.primary"); err != nil {
				return "", err
			} else if p {
				r = 3
			}
		}
		if r > rank {
			best, rank = v, r
		}
	}
	return best, nil
}

// nameValue returns the display name a name value gives: formatted, else
// givenName and familyName joined.
func nameValue(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	m, err := decodeObject(raw, "name")
	if err != nil {
		return "", badRequest(TypeInvalidValue, "name must be an object")
	}
	var parts [3]string
	for i, k := range []string{"formatted", "givenname", "familyname"} {
		if parts[i], err = stringValue(m[k], "name."+k); err != nil {
			return "", err
		}
	}
	if parts[0] != "" {
		return parts[0], nil
	}
	return strings.TrimSpace(parts[1] + " " + parts[2]), nil
}

// parseUser reads the User of a POST or PUT body (RFC 7644 §3.3, §3.5.1).
// active is cur.active when absent (PUT keeps the state unless told);
// externalId, displayName and emails absent are cleared. Read-only
// attributes (id, meta, groups) are ignored, as RFC 7644 §3.3 asks, as are
// the core attributes the provider does not store and extension schemas.
func parseUser(body []byte, cur attrs) (attrs, error) {
	m, err := decodeObject(body, "the User")
	if err != nil {
		return attrs{}, err
	}
	if err := checkSchemas(m["schemas"], SchemaUser); err != nil {
		return attrs{}, err
	}
	out := attrs{active: cur.active}
	var fromName string
	for k, v := range m {
		switch {
		case k == "schemas", isReadOnlyAttr(k), isIgnoredAttr(k), strings.HasPrefix(k, "urn:"):
		case k == "username":
			out.userName, err = stringValue(v, "userName")
		case k == "externalid":
			out.externalID, err = stringValue(v, "externalId")
		case k == "displayname":
			out.displayName, err = stringValue(v, "displayName")
		case k == "name":
			fromName, err = nameValue(v)
		case k == "emails":
			out.email, err = emailValue(v)
		case k == "active":
			if !isNull(v) {
				out.active, err = boolValue(v, "active")
			}
		default:
			return attrs{}, badRequest(TypeInvalidSyntax, "attribute %s is not an attribute of the User schema", quote(k))
		}
		if err != nil {
			return attrs{}, err
		}
	}
	if strings.TrimSpace(out.displayName) == "" {
		out.displayName = fromName
	}
	if strings.TrimSpace(out.userName) == "" {
		return attrs{}, badRequest(TypeInvalidValue, "userName is required")
	}
	return out, nil
}

// checkSchemas requires a schemas list that holds want.
func checkSchemas(raw json.RawMessage, want string) error {
	var schemas []string
	if isNull(raw) || json.Unmarshal(raw, &schemas) != nil {
		return badRequest(TypeInvalidSyntax, "schemas must list %s", want)
	}
	for _, s := range schemas {
		if strings.EqualFold(s, want) {
			return nil
		}
	}
	return badRequest(TypeInvalidSyntax, "schemas must list %s", want)
}
