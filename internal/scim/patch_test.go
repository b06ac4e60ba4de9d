package scim

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var patchBase = attrs{userName: "bjensen", externalID: "ext", displayName: "Babs", email: "b@example.com", active: true}

func patchOf(ops string) []byte {
	return []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + ops + `]}`)
}

func TestPatchApply(t *testing.T) {
	with := func(fn func(*attrs)) attrs { a := patchBase; fn(&a); return a }
	tests := []struct {
		name string
		ops  string
		want attrs
	}{
		{"Entra deactivation", `{"op":"Replace","path":"active","value":"False"}`, with(func(a *attrs) { a.active = false })},
		{"Entra boolean string in any case", `{"op":"replace","path":"active","value":"false"}`, with(func(a *attrs) { a.active = false })},
		{"Okta deactivation", `{"op":"replace","value":{"active":false}}`, with(func(a *attrs) { a.active = false })},
		{"Okta reactivation", `{"op":"replace","value":{"active":true}}`, patchBase},
		{"op and path in any case", `{"OP":"REPLACE","PATH":"DisplayName","VALUE":"B"}`, with(func(a *attrs) { a.displayName = "B" })},
		{"add a single value replaces it", `{"op":"add","path":"externalId","value":"x2"}`, with(func(a *attrs) { a.externalID = "x2" })},
		{"remove", `{"op":"remove","path":"externalId"}`, with(func(a *attrs) { a.externalID = "" })},
		{"replace with null clears", `{"op":"replace","path":"displayName","value":null}`, with(func(a *attrs) { a.displayName = "" })},
		{"core URN path", `{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:userName","value":"b2"}`, with(func(a *attrs) { a.userName = "b2" })},
		{"name.formatted", `{"op":"replace","path":"name.formatted","value":"Barbara"}`, with(func(a *attrs) { a.displayName = "Barbara" })},
		{"name object", `{"op":"replace","path":"name","value":{"formatted":"Barbara","givenName":"B"}}`, with(func(a *attrs) { a.displayName = "Barbara" })},
		{"name.givenName is not kept", `{"op":"replace","path":"name.givenName","value":"B"}`, patchBase},
		{"remove name", `{"op":"remove","path":"name"}`, with(func(a *attrs) { a.displayName = "" })},
		{"Entra work email", `{"op":"Replace","path":"emails[type eq \"work\"].value","value":"n@example.com"}`, with(func(a *attrs) { a.email = "n@example.com" })},
		{"home email is not kept", `{"op":"add","path":"emails[type eq \"home\"].value","value":"h@example.com"}`, patchBase},
		{"emails list", `{"op":"replace","path":"emails","value":[{"value":"h@example.com","type":"home"},{"value":"p@example.com","primary":true}]}`, with(func(a *attrs) { a.email = "p@example.com" })},
		{"emails.value", `{"op":"replace","path":"emails.value","value":"v@example.com"}`, with(func(a *attrs) { a.email = "v@example.com" })},
		{"remove emails", `{"op":"remove","path":"emails"}`, with(func(a *attrs) { a.email = "" })},
		{"remove the work email", `{"op":"remove","path":"emails[type eq \"work\"]"}`, with(func(a *attrs) { a.email = "" })},
		{"no path, paths as keys", `{"op":"replace","value":{"displayName":"D","name.givenName":"G","emails[type eq \"work\"].value":"w@example.com","title":"CEO"}}`,
			with(func(a *attrs) { a.displayName, a.email = "D", "w@example.com" })},
		{"enterprise extension", `{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"value":"x"}}`, patchBase},
		{"ignored core attribute", `{"op":"add","path":"phoneNumbers","value":[{"value":"+1"}]}`, patchBase},
		{"in order", `{"op":"replace","path":"active","value":false},{"op":"replace","path":"active","value":"True"},{"op":"replace","path":"displayName","value":"Z"}`,
			with(func(a *attrs) { a.displayName = "Z" })},
	}
	for _, tc := range tests {
		p, err := DecodePatch(patchOf(tc.ops))
		if err != nil {
			t.Errorf("%s: DecodePatch: %v", tc.name, err)
			continue
		}
		got, err := p.apply(patchBase)
		if err != nil {
			t.Errorf("%s: apply: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(attrs{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestPatchRefuses(t *testing.T) {
	tests := []struct {
		name, body, scimType string
	}{
		{"not JSON", `{"Operations":`, TypeInvalidSyntax},
		{"no schemas", `{"Operations":[{"op":"remove","path":"title"}]}`, TypeInvalidSyntax},
		{"other schema", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"Operations":[{"op":"remove","path":"title"}]}`, TypeInvalidSyntax},
		{"no operations", string(patchOf(``)), TypeInvalidSyntax},
		{"operations not a list", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":{}}`, TypeInvalidSyntax},
		{"unknown member", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"title"}],"x":1}`, TypeInvalidSyntax},
		{"unknown op", string(patchOf(`{"op":"copy","path":"title"}`)), TypeInvalidSyntax},
		{"op not a string", string(patchOf(`{"op":1,"path":"title"}`)), TypeInvalidSyntax},
		{"operation not an object", string(patchOf(`"remove"`)), TypeInvalidSyntax},
		{"remove without path", string(patchOf(`{"op":"remove"}`)), TypeNoTarget},
		{"replace without value", string(patchOf(`{"op":"replace","path":"displayName"}`)), TypeInvalidValue},
		{"path not a string", string(patchOf(`{"op":"replace","path":7,"value":"x"}`)), TypeInvalidPath},
	}
	for _, tc := range tests {
		_, err := DecodePatch([]byte(tc.body))
		e, ok := errors.AsType[*Error](err)
		if !ok || e.Status != http.StatusBadRequest || e.ScimType != tc.scimType {
			t.Errorf("%s: DecodePatch = %v, want %s", tc.name, err, tc.scimType)
		}
	}
	applyTests := []struct {
		name, ops, scimType string
	}{
		{"remove userName", `{"op":"remove","path":"userName"}`, TypeInvalidValue},
		{"empty userName", `{"op":"replace","path":"userName","value":""}`, TypeInvalidValue},
		{"userName not a string", `{"op":"replace","path":"userName","value":["a"]}`, TypeInvalidValue},
		{"remove active", `{"op":"remove","path":"active"}`, TypeInvalidValue},
		{"active not boolean", `{"op":"replace","path":"active","value":"yes"}`, TypeInvalidValue},
		{"id is read-only", `{"op":"replace","path":"id","value":"own_x"}`, TypeMutability},
		{"meta is read-only", `{"op":"replace","value":{"meta":{}}}`, TypeMutability},
		{"groups is read-only", `{"op":"add","path":"groups","value":[]}`, TypeMutability},
		{"unknown attribute", `{"op":"replace","path":"colour","value":"red"}`, TypeInvalidPath},
		{"unknown schema", `{"op":"replace","path":"urn:example:ext:colour","value":"red"}`, TypeInvalidPath},
		{"unknown name part", `{"op":"replace","path":"name.nick","value":"B"}`, TypeInvalidPath},
		{"sub-attribute of a simple one", `{"op":"replace","path":"userName.first","value":"B"}`, TypeInvalidPath},
		{"filter on a simple one", `{"op":"replace","path":"userName[type eq \"x\"]","value":"B"}`, TypeInvalidPath},
		{"unclosed filter", `{"op":"replace","path":"emails[type eq \"work\".value","value":"B"}`, TypeInvalidPath},
		{"bad filter", `{"op":"replace","path":"emails[value co \"x\"].value","value":"B"}`, TypeInvalidPath},
		{"remove a home email", `{"op":"remove","path":"emails[type eq \"home\"].value"}`, TypeNoTarget},
		{"no path and no object", `{"op":"replace","value":"x"}`, TypeInvalidValue},
		{"a later operation fails", `{"op":"replace","path":"displayName","value":"ok"},{"op":"replace","path":"externalId","value":1}`, TypeInvalidValue},
	}
	for _, tc := range applyTests {
		p, err := DecodePatch(patchOf(tc.ops))
		if err != nil {
			t.Errorf("%s: DecodePatch: %v", tc.name, err)
			continue
		}
		_, err = p.apply(patchBase)
		e, ok := errors.AsType[*Error](err)
		if !ok || e.Status != http.StatusBadRequest || e.ScimType != tc.scimType {
			t.Errorf("%s: apply = %v, want %s", tc.name, err, tc.scimType)
		}
	}
}

// FuzzPatch: any body decodes and applies, or is refused with a SCIM 400;
// never a panic, and an applied patch keeps a userName.
func FuzzPatch(f *testing.F) {
	for _, s := range []string{
		`{"op":"Replace","path":"active","value":"False"}`,
		`{"op":"replace","value":{"active":false,"name.givenName":"x"}}`,
		`{"op":"add","path":"emails[type eq \"work\"].value","value":"a@b.c"}`,
		`{"op":"remove","path":"emails[type eq \"home\"]"}`,
		`{"op":"remove","path":"name"}`,
	} {
		f.Add(patchOf(s))
	}
	f.Add([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePatch(body)
		if err == nil {
			var a attrs
			a, err = p.apply(patchBase)
			if err == nil && a.userName == "" {
				t.Fatalf("patch %q cleared userName", body)
			}
		}
		if err != nil {
			if e, ok := errors.AsType[*Error](err); !ok || e.Status != http.StatusBadRequest || e.ScimType == "" {
				t.Fatalf("patch %q: %v, want a SCIM 400 with a scimType", body, err)
			}
		}
	})
}
