package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/admin"
)

// TestSCIMBadInputChangesNothing sends refused SCIM requests and checks
// each gets the SCIM error of RFC 7644 §3.12 with the status and scimType
// §3.12 names, and changes nothing (failed authentications record their
// event, as on the admin API).
func TestSCIMBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	a := e.scim(t, "POST", "/Users", e.token, `{"schemas":["`+scimUserURN+`"],"userName":"Bjensen","emails":[{"value":"bjensen@example.com"}]}`, nil)
	a.want(t, "seed", 201, "")
	id := a.user(t).ID
	e.scim(t, "POST", "/Users", e.token, `{"schemas":["`+scimUserURN+`"],"userName":"Other"}`, nil).want(t, "seed", 201, "")
	if _, err := e.admin.CreateOwner(context.Background(), admin.CreateOwnerRequest{Email: "legacy@example.com"}); err != nil {
		t.Fatal(err)
	}
	team, err := e.admin.CreateOwner(context.Background(), admin.CreateOwnerRequest{Kind: "team", Subject: "group:sre"})
	if err != nil {
		t.Fatal(err)
	}
	patch := func(ops string) string {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + ops + `]}`
	}
	user := func(members string) string { return `{"schemas":["` + scimUserURN + `"],` + members + `}` }
	big := user(`"userName":"x","displayName":"` + strings.Repeat("a", 70<<10) + `"`)
	tests := []scimRefusal{
		{name: "malformed JSON", method: "POST", path: "/Users", token: "admin", body: `{"userName":`, wantStatus: 400, wantType: "invalidSyntax"},
		{name: "not an object", method: "POST", path: "/Users", token: "admin", body: `["userName"]`, wantStatus: 400, wantType: "invalidSyntax"},
		{name: "two values", method: "POST", path: "/Users", token: "admin", body: user(`"userName":"two"`) + `{}`, wantStatus: 400, wantType: "invalidSyntax"},
		{name: "no schemas", method: "POST", path: "/Users", token: "admin", body: `{"userName":"noschema"}`, wantStatus: 400, wantType: "invalidSyntax"},
		{name: "missing userName", method: "POST", path: "/Users", token: "admin", body: user(`"displayName":"No Name"`), wantStatus: 400, wantType: "invalidValue"},
		{name: "blank userName", method: "POST", path: "/Users", token: "admin", body: user(`"userName":"  "`), wantStatus: 400, wantType: "invalidValue"},
		{name: "userName of the wrong type", method: "POST", path: "/Users", token: "admin", body: user(`"userName":7`), wantStatus: 400, wantType: "invalidValue"},
		{name: "unknown attribute", method: "POST", path: "/Users", token: "admin", body: user(`"userName":"u","colour":"red"`), wantStatus: 400, wantType: "invalidSyntax"},
		{name: "attribute twice in two cases", method: "POST", path: "/Users", token: "admin", body: user(`"userName":"u","USERNAME":"v"`), wantStatus: 400, wantType: "invalidSyntax"},
		{name: "active of the wrong type", method: "POST", path: "/Users", token: "admin", body: user(`"userName":"u","active":"maybe"`), wantStatus: 400, wantType: "invalidValue"},
		{name: "bad email", method: "POST", path: "/Users", token: "admin", body: user(`"userName":"u","emails":[{"value":"not an email"}]`), wantStatus: 400, wantType: "invalidValue"},
		{name: "control character", method: "POST", path: "/Users", token: "admin", body: user(`"userName":"a\u0007b"`), wantStatus: 400, wantType: "invalidValue"},
		{name: "duplicate userName in another case", method: "POST", path: "/Users", token: "admin", body: user(`"userName":"BJENSEN"`), wantStatus: 409, wantType: "uniqueness"},
		{name: "userName another owner shows", method: "POST", path: "/Users", token: "admin", body: user(`"userName":"LEGACY@example.com"`), wantStatus: 409, wantType: "uniqueness"},
		{name: "duplicate email", method: "POST", path: "/Users", token: "admin", body: user(`"userName":"other","emails":[{"value":"BJensen@example.com"}]`), wantStatus: 409, wantType: "uniqueness"},
		{name: "oversized body", method: "POST", path: "/Users", token: "admin", body: big, wantStatus: 413},
		{name: "wrong media type", method: "POST", path: "/Users", token: "admin", body: user(`"userName":"textual"`), hdr: map[string]string{"Content-Type": "text/plain"}, wantStatus: 415},
		{name: "unknown filter attribute", method: "GET", path: "/Users?filter=title%20eq%20%22x%22", token: "admin", wantStatus: 400, wantType: "invalidFilter"},
		{name: "unsupported operator", method: "GET", path: "/Users?filter=userName%20co%20%22b%22", token: "admin", wantStatus: 400, wantType: "invalidFilter"},
		{name: "or", method: "GET", path: "/Users?filter=userName%20eq%20%22a%22%20or%20userName%20eq%20%22b%22", token: "admin", wantStatus: 400, wantType: "invalidFilter"},
		{name: "malformed filter", method: "GET", path: "/Users?filter=userName%20eq%20%22open", token: "admin", wantStatus: 400, wantType: "invalidFilter"},
		{name: "bad count", method: "GET", path: "/Users?count=ten", token: "admin", wantStatus: 400, wantType: "invalidValue"},
		{name: "If-Match mismatch on PUT", method: "PUT", path: "/Users/" + id, token: "admin", body: user(`"userName":"bjensen2"`), hdr: map[string]string{"If-Match": `W/"9"`}, wantStatus: 412},
		{name: "If-Match mismatch on PATCH", method: "PATCH", path: "/Users/" + id, token: "admin", body: patch(`{"op":"replace","path":"active","value":false}`), hdr: map[string]string{"If-Match": `W/"2"`}, wantStatus: 412},
		{name: "If-Match mismatch on DELETE", method: "DELETE", path: "/Users/" + id, token: "admin", hdr: map[string]string{"If-Match": `"3"`}, wantStatus: 412},
		{name: "If-Match of another kind", method: "DELETE", path: "/Users/" + id, token: "admin", hdr: map[string]string{"If-Match": `"abc"`}, wantStatus: 412},
		{name: "PUT to a taken userName", method: "PUT", path: "/Users/" + id, token: "admin", body: user(`"userName":"OTHER"`), wantStatus: 409, wantType: "uniqueness"},
		{name: "PATCH to a taken userName", method: "PATCH", path: "/Users/" + id, token: "admin", body: patch(`{"op":"replace","value":{"userName":"other"}}`), wantStatus: 409, wantType: "uniqueness"},
		{name: "PATCH without schemas", method: "PATCH", path: "/Users/" + id, token: "admin", body: `{"Operations":[{"op":"replace","path":"active","value":false}]}`, wantStatus: 400, wantType: "invalidSyntax"},
		{name: "PATCH with no operations", method: "PATCH", path: "/Users/" + id, token: "admin", body: patch(``), wantStatus: 400, wantType: "invalidSyntax"},
		{name: "PATCH with an unknown op", method: "PATCH", path: "/Users/" + id, token: "admin", body: patch(`{"op":"move","path":"active","value":false}`), wantStatus: 400, wantType: "invalidSyntax"},
		{name: "remove without a path", method: "PATCH", path: "/Users/" + id, token: "admin", body: patch(`{"op":"remove"}`), wantStatus: 400, wantType: "noTarget"},
		{name: "remove userName", method: "PATCH", path: "/Users/" + id, token: "admin", body: patch(`{"op":"remove","path":"userName"}`), wantStatus: 400, wantType: "invalidValue"},
		{name: "replace id", method: "PATCH", path: "/Users/" + id, token: "admin", body: patch(`{"op":"replace","path":"id","value":"own_x"}`), wantStatus: 400, wantType: "mutability"},
		{name: "unknown path", method: "PATCH", path: "/Users/" + id, token: "admin", body: patch(`{"op":"replace","path":"colour","value":"red"}`), wantStatus: 400, wantType: "invalidPath"},
		{name: "bad active string", method: "PATCH", path: "/Users/" + id, token: "admin", body: patch(`{"op":"Replace","path":"active","value":"No"}`), wantStatus: 400, wantType: "invalidValue"},
		{name: "a later operation fails: none applies", method: "PATCH", path: "/Users/" + id, token: "admin",
			body: patch(`{"op":"replace","path":"active","value":false},{"op":"replace","path":"displayName","value":7}`), wantStatus: 400, wantType: "invalidValue"},
		{name: "remove a home email", method: "PATCH", path: "/Users/" + id, token: "admin", body: patch(`{"op":"remove","path":"emails[type eq \"home\"]"}`), wantStatus: 400, wantType: "noTarget"},
		{name: "unknown User", method: "GET", path: "/Users/own_01jndy7x5p0000000000000001", token: "admin", wantStatus: 404},
		{name: "not an owner id", method: "GET", path: "/Users/bjensen@example.com", token: "admin", wantStatus: 404},
		{name: "a team is no User", method: "GET", path: "/Users/" + team.ID, token: "admin", wantStatus: 404},
		{name: "PATCH an unknown User", method: "PATCH", path: "/Users/own_01jndy7x5p0000000000000001", token: "admin", body: patch(`{"op":"replace","path":"active","value":false}`), wantStatus: 404},
		{name: "unknown schema", method: "GET", path: "/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group", token: "admin", wantStatus: 404},
		{name: "unknown resource type", method: "GET", path: "/ResourceTypes/Group", token: "admin", wantStatus: 404},
		{name: "unknown endpoint", method: "GET", path: "/Groups", token: "admin", wantStatus: 404},
		{name: "wrong method", method: "POST", path: "/Users/" + id, token: "admin", body: user(`"userName":"x"`), wantStatus: 405},
		{name: "bulk is not served", method: "POST", path: "/Bulk", token: "admin", body: `{}`, wantStatus: 404},
		{name: "no token", method: "GET", path: "/Users", wantStatus: 401},
		{name: "no token on discovery", method: "GET", path: "/ServiceProviderConfig", wantStatus: 401},
		{name: "bad token", method: "POST", path: "/Users", token: "bad", body: user(`"userName":"anon"`), wantStatus: 401, authFailure: "authentication"},
		{name: "auditor may not read", method: "GET", path: "/Users", token: "auditor", wantStatus: 403, authFailure: "authorization"},
		{name: "auditor may not write", method: "PATCH", path: "/Users/" + id, token: "auditor", body: patch(`{"op":"replace","path":"active","value":false}`), wantStatus: 403, authFailure: "authorization"},
	}
	e.refusedSCIM(t, tests)
}

// scimRefusal is a SCIM request that must be refused with wantStatus and
// the scimType wantType, and change nothing.
type scimRefusal struct {
	name        string
	method      string
	path        string
	token       string // "admin", "auditor", "bad", ""
	body        string
	hdr         map[string]string
	wantStatus  int
	wantType    string
	wantDetail  string // a part of the detail, "" for any
	authFailure string // the family of the one failure event it writes, "" for none
}

// refusedSCIM sends each refused request and checks its answer, its
// headers (WWW-Authenticate on 401, Allow on 405), its one audit event
// when it failed authentication or authorisation, and that nothing else
// changed.
func (e *env) refusedSCIM(t *testing.T, tests []scimRefusal) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.snapshot(t)
			tok := map[string]string{"admin": e.token, "auditor": e.auditor, "bad": "aida_" + strings.Repeat("A", 43)}[tt.token]
			a := e.scim(t, tt.method, tt.path, tok, tt.body, tt.hdr)
			a.want(t, tt.name, tt.wantStatus, tt.wantType)
			if detail, _ := a.body["detail"].(string); !strings.Contains(detail, tt.wantDetail) {
				t.Errorf("detail %q, want it to hold %q", detail, tt.wantDetail)
			}
			if tt.wantStatus == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.wantStatus == 405 && a.header.Get("Allow") != "GET, PUT, PATCH, DELETE" {
				t.Errorf("405 with Allow %q", a.header.Get("Allow"))
			}
			after := e.snapshot(t)
			if tt.authFailure != "" {
				evs, err := e.admin.ListAuditEvents(context.Background(), admin.AuditQuery{AfterSeq: before.HeadSeq})
				if err != nil {
					t.Fatal(err)
				}
				if len(evs.Items) != 1 || evs.Items[0].Family != tt.authFailure || evs.Items[0].Outcome != "failure" {
					t.Fatalf("failure events = %+v, want one %s failure", evs.Items, tt.authFailure)
				}
				after.HeadSeq = before.HeadSeq
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Fatalf("a refused request changed state (-before +after):\n%s", diff)
			}
		})
	}
}
