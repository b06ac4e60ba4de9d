package httpapi_test

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// schemaAttr is an attribute definition of RFC 7643 §7.
type schemaAttr struct {
	Name          string       `json:"name"`
	Type          string       `json:"type"`
	MultiValued   bool         `json:"multiValued"`
	Required      bool         `json:"required"`
	Returned      string       `json:"returned"`
	Mutability    string       `json:"mutability"`
	SubAttributes []schemaAttr `json:"subAttributes"`
}

// checkUserAgainstSchema checks a User resource against the User schema
// the provider publishes at /Schemas (RFC 7643 §7) and the common
// attributes of RFC 7643 §3.1: every attribute is defined, of its type
// and multiplicity, never one that is not returned, and every required
// one is present. No independent SCIM implementation could be fetched to
// check it (github.com/elimity-com/scim is not on the module proxy), so
// the schema document is the reference: this keeps the resources and the
// discovery documents honest with each other.
func checkUserAgainstSchema(t *testing.T, e *env, raw []byte) {
	t.Helper()
	checkAgainstSchema(t, e, raw, scimUserURN, "User", "own_")
}

// checkAgentAgainstSchema checks an Agent resource against the Agent
// schema the provider publishes, as checkUserAgainstSchema a User.
func checkAgentAgainstSchema(t *testing.T, e *env, raw []byte) {
	t.Helper()
	checkAgainstSchema(t, e, raw, scimAgentURN, "Agent", "agt_")
}

// checkAgainstSchema checks a resource of the resource type rt, whose
// ids start with idPrefix, against the schema urn.
func checkAgainstSchema(t *testing.T, e *env, raw []byte, urn, rt, idPrefix string) {
	t.Helper()
	a := e.scim(t, "GET", "/Schemas/"+urn, e.token, "", nil)
	a.want(t, "the "+rt+" schema", 200, "")
	var schema struct {
		ID         string       `json:"id"`
		Attributes []schemaAttr `json:"attributes"`
	}
	if err := json.Unmarshal(a.raw, &schema); err != nil || schema.ID != urn {
		t.Fatalf("%s schema %s: %v", rt, a.raw, err)
	}
	var user map[string]any
	if err := json.Unmarshal(raw, &user); err != nil {
		t.Fatal(err)
	}
	schemas, _ := user["schemas"].([]any)
	if len(schemas) == 0 || schemas[0] != urn {
		t.Errorf("schemas = %v, want the %s URN", user["schemas"], rt)
	}
	if id, _ := user["id"].(string); !strings.HasPrefix(id, idPrefix) {
		t.Errorf("id = %v", user["id"])
	}
	if ext, ok := user["externalId"]; ok {
		if s, _ := ext.(string); s == "" {
			t.Errorf("externalId = %v, want a non-empty string when present", ext)
		}
	}
	meta, _ := user["meta"].(map[string]any)
	for _, k := range []string{"created", "lastModified"} {
		if s, _ := meta[k].(string); s == "" {
			t.Errorf("meta.%s missing", k)
		} else if _, err := time.Parse(time.RFC3339, s); err != nil {
			t.Errorf("meta.%s = %q: %v", k, s, err)
		}
	}
	if meta["resourceType"] != rt || !regexp.MustCompile(`^W/"[1-9][0-9]*"$`).MatchString(str(meta["version"])) {
		t.Errorf("meta = %v", meta)
	}
	if u, err := url.Parse(str(meta["location"])); err != nil || !u.IsAbs() || !strings.HasSuffix(u.Path, "/"+rt+"s/"+str(user["id"])) {
		t.Errorf("meta.location = %v, want an absolute URL of the %s", meta["location"], rt)
	}
	common := map[string]bool{"schemas": true, "id": true, "externalId": true, "meta": true}
	checkAttrs(t, "", user, schema.Attributes, common)
}

func str(v any) string { s, _ := v.(string); return s }

// checkAttrs checks the members of obj against defs; skip names members
// checked elsewhere.
func checkAttrs(t *testing.T, prefix string, obj map[string]any, defs []schemaAttr, skip map[string]bool) {
	t.Helper()
	byName := map[string]schemaAttr{}
	for _, d := range defs {
		byName[strings.ToLower(d.Name)] = d
		if _, ok := obj[d.Name]; d.Required && !ok {
			t.Errorf("required attribute %s%s is missing", prefix, d.Name)
		}
	}
	for k, v := range obj {
		if skip[k] {
			continue
		}
		d, ok := byName[strings.ToLower(k)]
		if !ok {
			t.Errorf("attribute %s%s is not in the schema", prefix, k)
			continue
		}
		if d.Returned == "never" {
			t.Errorf("attribute %s%s is returned but the schema says never", prefix, k)
		}
		values := []any{v}
		if d.MultiValued {
			list, ok := v.([]any)
			if !ok {
				t.Errorf("attribute %s%s is multi-valued but not a list", prefix, k)
				continue
			}
			values = list
		}
		for _, val := range values {
			switch d.Type {
			case "string", "reference", "dateTime", "binary":
				if _, ok := val.(string); !ok {
					t.Errorf("attribute %s%s = %v, want a string", prefix, k, val)
				}
			case "boolean":
				if _, ok := val.(bool); !ok {
					t.Errorf("attribute %s%s = %v, want a boolean", prefix, k, val)
				}
			case "complex":
				m, ok := val.(map[string]any)
				if !ok {
					t.Errorf("attribute %s%s = %v, want an object", prefix, k, val)
					continue
				}
				checkAttrs(t, prefix+k+".", m, d.SubAttributes, nil)
			default:
				t.Errorf("attribute %s%s has type %q, which RFC 7643 §2.3 does not name", prefix, k, d.Type)
			}
		}
	}
}
