package httpapi_test

import (
	"context"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

// TestSCIMAgentBadInputChangesNothing sends refused requests to /Agents and
// checks each gets the SCIM error of RFC 7644 §3.12 with its status and
// scimType, and changes nothing: no agent, owner or audit event (failed
// authentications record their event, as on the admin API).
func TestSCIMAgentBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	alice := e.scimOwner(t, "alice@contoso.com")
	carol := e.scimOwner(t, "carol@contoso.com")
	e.scim(t, "PATCH", "/Users/"+carol, e.token, scimPatch(`{"op":"replace","path":"active","value":false}`), nil).want(t, "deactivate carol", 200, "")
	a := e.scim(t, "POST", "/Agents", e.token, `{"schemas":["`+scimAgentURN+`"],"name":"seed-bot","description":"Seeds",
		"owners":[{"value":"`+alice+`"}]}`, nil)
	a.want(t, "seed", 201, "")
	id := a.agent(t).ID
	gone, err := e.admin.CreateAgent(context.Background(), admin.CreateAgentRequest{Name: "gone-bot", Purpose: "p", Owners: []string{alice}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.DeprovisionAgent(context.Background(), gone.ID, admin.TransitionRequest{}); err != nil {
		t.Fatal(err)
	}
	const unknownOwner = "own_01jndy7x5p0000000000000009"
	agent := func(members string) string { return `{"schemas":["` + scimAgentURN + `"],` + members + `}` }
	full := func(name, owner string) string {
		return agent(`"name":"` + name + `","description":"Does things","owners":[{"value":"` + owner + `"}]`)
	}
	path := "/Agents/" + id
	tests := []scimRefusal{
		{name: "malformed JSON", method: "POST", path: "/Agents", token: "admin", body: `{"name":`, wantStatus: 400, wantType: "invalidSyntax"},
		{name: "not an object", method: "POST", path: "/Agents", token: "admin", body: `["x"]`, wantStatus: 400, wantType: "invalidSyntax"},
		{name: "no schemas", method: "POST", path: "/Agents", token: "admin", body: `{"name":"x","description":"d","owners":[{"value":"` + alice + `"}]}`, wantStatus: 400, wantType: "invalidSyntax"},
		{name: "the User schema", method: "POST", path: "/Agents", token: "admin", body: `{"schemas":["` + scimUserURN + `"],"name":"x"}`, wantStatus: 400, wantType: "invalidSyntax"},
		{name: "missing name", method: "POST", path: "/Agents", token: "admin", body: agent(`"description":"d","owners":[{"value":"` + alice + `"}]`), wantStatus: 400, wantType: "invalidValue"},
		{name: "missing description", method: "POST", path: "/Agents", token: "admin", body: agent(`"name":"x","owners":[{"value":"` + alice + `"}]`), wantStatus: 400, wantType: "invalidValue"},
		{name: "blank description", method: "POST", path: "/Agents", token: "admin", body: agent(`"name":"x","description":" ","owners":[{"value":"` + alice + `"}]`), wantStatus: 400, wantType: "invalidValue", wantDetail: "description is required"},
		{name: "missing owners", method: "POST", path: "/Agents", token: "admin", body: agent(`"name":"x","description":"d"`), wantStatus: 400, wantType: "invalidValue"},
		{name: "unknown owner", method: "POST", path: "/Agents", token: "admin", body: full("x", unknownOwner), wantStatus: 400, wantType: "invalidValue", wantDetail: "owners: no owner"},
		{name: "deactivated owner", method: "POST", path: "/Agents", token: "admin", body: full("x", carol), wantStatus: 400, wantType: "invalidValue", wantDetail: "owners: owner " + carol + " is deactivated"},
		{name: "owner by email", method: "POST", path: "/Agents", token: "admin", body: full("x", "alice@contoso.com"), wantStatus: 400, wantType: "invalidValue"},
		{name: "name outside agentid's rules", method: "POST", path: "/Agents", token: "admin", body: full("Helpdesk Bot", alice), wantStatus: 400, wantType: "invalidValue", wantDetail: "name: must be a lowercase DNS label"},
		{name: "duplicate name", method: "POST", path: "/Agents", token: "admin", body: full("seed-bot", alice), wantStatus: 409, wantType: "uniqueness", wantDetail: "name"},
		{name: "a deprovisioned agent's name", method: "POST", path: "/Agents", token: "admin", body: full("gone-bot", alice), wantStatus: 409, wantType: "uniqueness"},
		{name: "an agentid-only attribute", method: "POST", path: "/Agents", token: "admin", body: agent(`"name":"x","description":"d","owners":[{"value":"` + alice + `"}],"actionClasses":["write"]`), wantStatus: 400, wantType: "invalidSyntax"},
		{name: "externalId with a control character", method: "POST", path: "/Agents", token: "admin", body: agent(`"name":"x","description":"d","owners":[{"value":"` + alice + `"}],"externalId":"a\u0007"`), wantStatus: 400, wantType: "invalidValue"},
		{name: "wrong media type", method: "POST", path: "/Agents", token: "admin", body: full("x", alice), hdr: map[string]string{"Content-Type": "text/plain"}, wantStatus: 415},
		{name: "unsupported filter attribute", method: "GET", path: "/Agents?filter=" + urlQuery(`displayName eq "x"`), token: "admin", wantStatus: 400, wantType: "invalidFilter"},
		{name: "a User attribute", method: "GET", path: "/Agents?filter=" + urlQuery(`userName eq "x"`), token: "admin", wantStatus: 400, wantType: "invalidFilter"},
		{name: "unsupported operator", method: "GET", path: "/Agents?filter=" + urlQuery(`name sw "seed"`), token: "admin", wantStatus: 400, wantType: "invalidFilter"},
		{name: "or", method: "GET", path: "/Agents?filter=" + urlQuery(`id eq "a" or id eq "b"`), token: "admin", wantStatus: 400, wantType: "invalidFilter"},
		{name: "bad startIndex", method: "GET", path: "/Agents?startIndex=one", token: "admin", wantStatus: 400, wantType: "invalidValue"},
		{name: "PUT renames", method: "PUT", path: path, token: "admin", body: full("other-bot", alice), wantStatus: 400, wantType: "mutability", wantDetail: "immutable"},
		{name: "PUT without owners", method: "PUT", path: path, token: "admin", body: agent(`"name":"seed-bot","description":"d"`), wantStatus: 400, wantType: "invalidValue"},
		{name: "PUT with a deactivated owner only", method: "PUT", path: path, token: "admin", body: full("seed-bot", carol), wantStatus: 400, wantType: "invalidValue"},
		{name: "stale If-Match on PUT", method: "PUT", path: path, token: "admin", body: full("seed-bot", alice), hdr: map[string]string{"If-Match": `W/"7"`}, wantStatus: 412},
		{name: "stale If-Match on PATCH", method: "PATCH", path: path, token: "admin", body: scimPatch(`{"op":"replace","path":"active","value":false}`), hdr: map[string]string{"If-Match": `W/"2"`}, wantStatus: 412},
		{name: "stale If-Match on DELETE", method: "DELETE", path: path, token: "admin", hdr: map[string]string{"If-Match": `"3"`}, wantStatus: 412},
		{name: "PATCH renames", method: "PATCH", path: path, token: "admin", body: scimPatch(`{"op":"replace","path":"name","value":"other-bot"}`), wantStatus: 400, wantType: "mutability"},
		{name: "PATCH removes the description", method: "PATCH", path: path, token: "admin", body: scimPatch(`{"op":"remove","path":"description"}`), wantStatus: 400, wantType: "invalidValue"},
		{name: "PATCH removes every owner", method: "PATCH", path: path, token: "admin", body: scimPatch(`{"op":"remove","path":"owners"}`), wantStatus: 400, wantType: "invalidValue"},
		{name: "PATCH adds an unknown owner", method: "PATCH", path: path, token: "admin", body: scimPatch(`{"op":"add","path":"owners","value":[{"value":"` + unknownOwner + `"}]}`), wantStatus: 400, wantType: "invalidValue"},
		{name: "PATCH adds a deactivated owner", method: "PATCH", path: path, token: "admin", body: scimPatch(`{"op":"add","path":"owners","value":[{"value":"` + carol + `"}]}`), wantStatus: 400, wantType: "invalidValue"},
		{name: "PATCH removes an owner it does not have", method: "PATCH", path: path, token: "admin", body: scimPatch(`{"op":"remove","path":"owners[value eq \"` + carol + `\"]"}`), wantStatus: 400, wantType: "noTarget"},
		{name: "PATCH an agentid-only attribute", method: "PATCH", path: path, token: "admin", body: scimPatch(`{"op":"replace","path":"labels","value":{"a":"b"}}`), wantStatus: 400, wantType: "invalidPath"},
		{name: "a later operation fails: none applies", method: "PATCH", path: path, token: "admin",
			body: scimPatch(`{"op":"replace","path":"active","value":false},{"op":"replace","path":"description","value":7}`), wantStatus: 400, wantType: "invalidValue"},
		{name: "unknown Agent", method: "GET", path: "/Agents/agt_01jndy7x5p0000000000000001", token: "admin", wantStatus: 404},
		{name: "a name is no id", method: "GET", path: "/Agents/seed-bot", token: "admin", wantStatus: 404},
		{name: "a deprovisioned agent", method: "GET", path: "/Agents/" + gone.ID, token: "admin", wantStatus: 404},
		{name: "PUT a deprovisioned agent", method: "PUT", path: "/Agents/" + gone.ID, token: "admin", body: full("gone-bot", alice), wantStatus: 404},
		{name: "DELETE an unknown Agent", method: "DELETE", path: "/Agents/agt_01jndy7x5p0000000000000001", token: "admin", wantStatus: 404},
		{name: "wrong method", method: "POST", path: path, token: "admin", body: full("x", alice), wantStatus: 405},
		{name: "no token", method: "GET", path: "/Agents", wantStatus: 401},
		{name: "bad token", method: "POST", path: "/Agents", token: "bad", body: full("x", alice), wantStatus: 401, authFailure: "authentication"},
		{name: "auditor may not read", method: "GET", path: path, token: "auditor", wantStatus: 403, authFailure: "authorization"},
		{name: "auditor may not write", method: "DELETE", path: path, token: "auditor", wantStatus: 403, authFailure: "authorization"},
	}
	e.refusedSCIM(t, tests)
}
