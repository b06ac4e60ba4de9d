package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/admin"
)

const (
	scimAgentURN = "urn:ietf:params:scim:schemas:core:2.0:Agent"
	scimPatchURN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

type scimAgent struct {
	Schemas     []string `json:"schemas"`
	ID          string   `json:"id"`
	ExternalID  string   `json:"externalId"`
	AgentName   string   `json:"name"`
	DisplayName string   `json:"displayName"`
	Description string   `json:"description"`
	Owners      []struct {
		Value string `json:"value"`
		Ref   string `json:"$ref"`
	} `json:"owners"`
	Active bool `json:"active"`
	Meta   struct {
		ResourceType string `json:"resourceType"`
		Created      string `json:"created"`
		LastModified string `json:"lastModified"`
		Location     string `json:"location"`
		Version      string `json:"version"`
	} `json:"meta"`
}

// agent decodes the answer as an Agent resource.
func (a scimAnswer) agent(t *testing.T) scimAgent {
	t.Helper()
	var g scimAgent
	if err := json.Unmarshal(a.raw, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g scimAgent) ownerIDs() []string {
	ids := []string{}
	for _, o := range g.Owners {
		ids = append(ids, o.Value)
	}
	return ids
}

// scimOwner provisions a User and returns its id.
func (e *env) scimOwner(t *testing.T, userName string) string {
	t.Helper()
	a := e.scim(t, "POST", "/Users", e.token, `{"schemas":["`+scimUserURN+`"],"userName":"`+userName+`"}`, nil)
	a.want(t, "create User "+userName, 201, "")
	return a.user(t).ID
}

func scimPatch(ops string) string {
	return `{"schemas":["` + scimPatchURN + `"],"Operations":[` + ops + `]}`
}

// agentOnly is what SCIM must never change of an agent: the fields that
// stay with the admin API.
type agentOnly struct {
	ActionClasses, Audiences, Scopes, Permissions, Selectors []string
	MaxTTLSeconds                                            int64
	Labels                                                   map[string]string
	RequireDPoP                                              bool
}

func agentOnlyOf(a admin.Agent) agentOnly {
	return agentOnly{ActionClasses: a.ActionClasses, Audiences: a.Audiences, Scopes: a.Scopes, Permissions: a.Permissions,
		Selectors: a.Selectors, MaxTTLSeconds: a.MaxTTLSeconds, Labels: a.Labels, RequireDPoP: a.RequireDPoP}
}

// TestSCIMAgentLifecycle provisions an agent the way an identity provider
// would under draft-wzdk-scim-agent-resource-00: create it with an owner,
// read it, find it by filter, suspend and resume it (Entra's and Okta's
// PATCH), change its owners, replace it and delete it, over real HTTP on a
// real store. At each step it checks the agent through the admin API
// (state, the agentid-only fields SCIM must not touch), whether the agent
// can get a credential (a JWT-SVID), and the audit events, each with the
// admin token as actor.
func TestSCIMAgentLifecycle(t *testing.T) {
	e := newSVIDEnv(t)
	ctx := context.Background()
	actor := e.adminTokenID(t)
	alice := e.scimOwner(t, "alice@contoso.com")
	bob := e.scimOwner(t, "bob@contoso.com")
	seq := e.headSeq(t)

	a := e.scim(t, "POST", "/Agents", e.token, `{
		"schemas": ["`+scimAgentURN+`"],
		"externalId": "8ccc535b-716d-4d32-b3e9-57c8be449c82",
		"name": "helpdesk-bot",
		"displayName": "Helpdesk Bot",
		"description": "Answers IT helpdesk tickets",
		"owners": [{"value": "`+alice+`"}],
		"active": true
	}`, nil)
	a.want(t, "create", 201, "")
	g := a.agent(t)
	if !strings.HasPrefix(g.ID, "agt_") || g.AgentName != "helpdesk-bot" || g.DisplayName != "helpdesk-bot" ||
		g.ExternalID != "8ccc535b-716d-4d32-b3e9-57c8be449c82" || g.Description != "Answers IT helpdesk tickets" || !g.Active ||
		!cmp.Equal(g.ownerIDs(), []string{alice}) || g.Owners[0].Ref != e.url+"/scim/v2/Users/"+alice {
		t.Fatalf("created Agent = %s", a.raw)
	}
	if g.Meta.ResourceType != "Agent" || g.Meta.Version != `W/"1"` || g.Meta.Location != e.url+"/scim/v2/Agents/"+g.ID ||
		g.Meta.Created == "" || g.Meta.Created != g.Meta.LastModified {
		t.Errorf("meta = %+v", g.Meta)
	}
	if a.header.Get("Location") != g.Meta.Location || a.header.Get("ETag") != `W/"1"` {
		t.Errorf("Location %q, ETag %q", a.header.Get("Location"), a.header.Get("ETag"))
	}
	checkAgentAgainstSchema(t, e, a.raw)
	if diff := cmp.Diff([]string{"agent.created"}, e.eventsSince(t, seq, actor)); diff != "" {
		t.Errorf("create events (-want +got):\n%s", diff)
	}
	// The agent is the admin API's too, with the external id.
	ag, err := e.admin.GetAgent(ctx, g.ID)
	if err != nil || ag.Name != "helpdesk-bot" || ag.Purpose != g.Description || ag.ExternalID != g.ExternalID || ag.State != "active" ||
		!cmp.Equal(ag.Owners, []string{alice}) {
		t.Fatalf("the agent through the admin API = %+v, %v", ag, err)
	}

	r := e.scim(t, "GET", "/Agents/"+g.ID, e.token, "", nil)
	r.want(t, "get", 200, "")
	if diff := cmp.Diff(g, r.agent(t)); diff != "" || r.header.Get("ETag") != `W/"1"` {
		t.Errorf("GET (-created +got):\n%s", diff)
	}

	for _, f := range []string{
		`name eq "helpdesk-bot"`,
		`name eq "Helpdesk-Bot"`,
		`externalId eq "8ccc535b-716d-4d32-b3e9-57c8be449c82"`,
		`id eq "` + g.ID + `"`,
		`active eq true and (name eq "helpdesk-bot" and externalId eq "8ccc535b-716d-4d32-b3e9-57c8be449c82")`,
		`urn:ietf:params:scim:schemas:core:2.0:Agent:name eq "helpdesk-bot"`,
	} {
		if total, ids := e.scimList(t, "/Agents", "filter="+urlQuery(f)); total != 1 || !cmp.Equal(ids, []string{g.ID}) {
			t.Errorf("filter %s: %d %v, want the agent", f, total, ids)
		}
	}
	for _, f := range []string{
		`name eq "other-bot"`,
		`externalId eq "8CCC535B-716D-4D32-B3E9-57C8BE449C82"`, // externalId is case-exact
		`active eq false`,
		`id eq "` + g.ID + `" and name eq "other-bot"`,
	} {
		if total, ids := e.scimList(t, "/Agents", "filter="+urlQuery(f)); total != 0 || len(ids) != 0 {
			t.Errorf("filter %s: %d %v, want none", f, total, ids)
		}
	}

	// The admin API sets what SCIM does not: action classes, credential
	// policy, selectors, labels, audiences.
	ttl := int64(600)
	ag, err = e.admin.UpdateAgent(ctx, g.ID, admin.UpdateAgentRequest{
		ActionClasses: &[]string{"read", "tickets.write"}, Audiences: &[]string{"spiffe://example.org/db"},
		Selectors: &[]string{"unix:uid:1000"}, Labels: &map[string]string{"team": "it"}, MaxTTLSeconds: &ttl,
	})
	if err != nil {
		t.Fatal(err)
	}
	keep := agentOnlyOf(ag)
	version := int(ag.Version)
	canGetSVID := func(what string, want bool) {
		t.Helper()
		_, err := e.admin.IssueSVID(ctx, g.ID, admin.IssueSVIDRequest{Type: admin.SVIDTypeJWT, Audience: []string{"spiffe://example.org/db"}})
		p, _ := errors.AsType[*admin.Problem](err)
		switch {
		case want && err != nil:
			t.Fatalf("%s: the agent gets no JWT-SVID: %v", what, err)
		case !want && (p == nil || p.Status != 409 || p.Type != admin.ProblemIllegalTransition):
			t.Fatalf("%s: JWT-SVID = %v, want 409 illegal-transition", what, err)
		}
	}
	canGetSVID("active", true)

	steps := []struct {
		name       string
		patch      string
		wantActive bool
		wantOwners []string
		wantEvents []string
	}{
		{"Entra suspension", scimPatch(`{"op":"Replace","path":"active","value":"False"}`), false, []string{alice},
			[]string{"agent.suspended"}},
		{"Okta resumption", scimPatch(`{"op":"replace","value":{"active":true}}`), true, []string{alice},
			[]string{"agent.resumed"}},
		{"owners swapped and the description changed in one request", scimPatch(`
			{"op":"add","path":"owners","value":[{"value":"` + bob + `"}]},
			{"op":"Remove","path":"owners","value":[{"value":"` + alice + `"}]},
			{"op":"replace","path":"description","value":"Answers and closes IT tickets"},
			{"op":"replace","path":"displayName","value":"ignored"}`), true, []string{bob},
			[]string{"agent.updated"}},
		{"Okta removes an owner by filter while adding one, and suspends", scimPatch(`
			{"op":"add","path":"owners","value":[{"value":"` + alice + `"}]},
			{"op":"remove","path":"owners[value eq \"` + bob + `\"]"},
			{"op":"replace","value":{"active":false}}`), false, []string{alice},
			[]string{"agent.updated", "agent.suspended"}},
	}
	for _, s := range steps {
		seq = e.headSeq(t)
		a := e.scim(t, "PATCH", "/Agents/"+g.ID, e.token, s.patch, nil)
		a.want(t, s.name, 200, "")
		version++
		got := a.agent(t)
		if got.Active != s.wantActive || !cmp.Equal(got.ownerIDs(), s.wantOwners) || got.Meta.Version != fmt.Sprintf(`W/"%d"`, version) ||
			a.header.Get("ETag") != got.Meta.Version {
			t.Fatalf("%s: %s", s.name, a.raw)
		}
		if diff := cmp.Diff(s.wantEvents, e.eventsSince(t, seq, actor)); diff != "" {
			t.Errorf("%s: events (-want +got):\n%s", s.name, diff)
		}
		ag, err := e.admin.GetAgent(ctx, g.ID)
		if wantState := map[bool]string{true: "active", false: "suspended"}[s.wantActive]; err != nil || ag.State != wantState {
			t.Fatalf("%s: admin API state %q, %v; want %s", s.name, ag.State, err, wantState)
		}
		if diff := cmp.Diff(keep, agentOnlyOf(ag)); diff != "" {
			t.Errorf("%s changed agentid-only fields (-before +after):\n%s", s.name, diff)
		}
		canGetSVID(s.name, s.wantActive)
	}
	// A PATCH that changes nothing stores nothing.
	seq = e.headSeq(t)
	e.scim(t, "PATCH", "/Agents/"+g.ID, e.token, scimPatch(`{"op":"replace","value":{"active":false,"name":"helpdesk-bot"}}`), nil).
		want(t, "no-op PATCH", 200, "")
	if got := e.eventsSince(t, seq, actor); len(got) != 0 {
		t.Errorf("a no-op PATCH recorded %v", got)
	}

	// PUT replaces what SCIM maps: externalId absent is cleared, the owners
	// and description are the body's, active true resumes; nothing else of
	// the agent changes.
	seq = e.headSeq(t)
	p := e.scim(t, "PUT", "/Agents/"+g.ID, e.token, `{"schemas":["`+scimAgentURN+`"],"name":"helpdesk-bot",
		"description":"Triage only","owners":[{"value":"`+bob+`"},{"value":"`+alice+`"}],"active":true}`,
		map[string]string{"If-Match": fmt.Sprintf(`W/"%d"`, version)})
	p.want(t, "PUT", 200, "")
	version++
	pg := p.agent(t)
	wantOwners := []string{alice, bob}
	slices.Sort(wantOwners)
	if pg.ExternalID != "" || pg.Description != "Triage only" || !cmp.Equal(pg.ownerIDs(), wantOwners) || !pg.Active ||
		pg.Meta.Version != fmt.Sprintf(`W/"%d"`, version) {
		t.Errorf("after PUT: %s", p.raw)
	}
	if diff := cmp.Diff([]string{"agent.updated", "agent.resumed"}, e.eventsSince(t, seq, actor)); diff != "" {
		t.Errorf("PUT events (-want +got):\n%s", diff)
	}
	ag, err = e.admin.GetAgent(ctx, g.ID)
	if err != nil || ag.ExternalID != "" || ag.Purpose != "Triage only" {
		t.Fatalf("after PUT through the admin API: %+v, %v", ag, err)
	}
	if diff := cmp.Diff(keep, agentOnlyOf(ag)); diff != "" {
		t.Errorf("PUT changed agentid-only fields (-before +after):\n%s", diff)
	}
	canGetSVID("after PUT", true)

	// DELETE deprovisions for good: the agent is gone for SCIM, kept by
	// the admin API, and gets no credential; its name stays taken.
	seq = e.headSeq(t)
	e.scim(t, "DELETE", "/Agents/"+g.ID, e.token, "", map[string]string{"If-Match": fmt.Sprintf(`W/"%d"`, version)}).want(t, "DELETE", 204, "")
	evs, err := e.admin.ListAuditEvents(ctx, admin.AuditQuery{AfterSeq: seq, Agent: g.ID})
	if err != nil || len(evs.Items) != 1 || evs.Items[0].Type != "agent.deprovisioned" || evs.Items[0].Reason != "SCIM DELETE" {
		t.Fatalf("events of the agent after DELETE = %+v, %v; want agent.deprovisioned with reason SCIM DELETE", evs.Items, err)
	}
	if diff := cmp.Diff([]string{"agent.deprovisioned"}, e.eventsSince(t, seq, actor)); diff != "" {
		t.Errorf("DELETE events (-want +got):\n%s", diff)
	}
	if ag, err := e.admin.GetAgent(ctx, g.ID); err != nil || ag.State != "deprovisioned" {
		t.Fatalf("after DELETE through the admin API: state %q, %v", ag.State, err)
	}
	canGetSVID("after DELETE", false)
	e.scim(t, "GET", "/Agents/"+g.ID, e.token, "", nil).want(t, "GET after DELETE", 404, "")
	e.scim(t, "DELETE", "/Agents/"+g.ID, e.token, "", nil).want(t, "second DELETE", 404, "")
	e.scim(t, "PATCH", "/Agents/"+g.ID, e.token, scimPatch(`{"op":"replace","path":"active","value":true}`), nil).want(t, "PATCH after DELETE", 404, "")
	if total, ids := e.scimList(t, "/Agents", ""); total != 0 || len(ids) != 0 {
		t.Errorf("Agents after DELETE: %d %v, want none", total, ids)
	}
	e.scim(t, "POST", "/Agents", e.token, `{"schemas":["`+scimAgentURN+`"],"name":"helpdesk-bot","description":"again",
		"owners":[{"value":"`+alice+`"}]}`, nil).want(t, "POST the deprovisioned agent's name", 409, "uniqueness")
}

// TestSCIMAgentCreatedSuspended checks that a POST with active false
// creates the agent suspended, in one event.
func TestSCIMAgentCreatedSuspended(t *testing.T) {
	e := newEnv(t)
	actor := e.adminTokenID(t)
	owner := e.scimOwner(t, "alice@contoso.com")
	seq := e.headSeq(t)
	a := e.scim(t, "POST", "/Agents", e.token, `{"schemas":["`+scimAgentURN+`"],"name":"later-bot","description":"Not yet",
		"owners":[{"value":"`+owner+`"}],"active":"False"}`, nil)
	a.want(t, "create suspended", 201, "")
	if g := a.agent(t); g.Active || g.Meta.Version != `W/"1"` {
		t.Errorf("created = %s", a.raw)
	}
	if diff := cmp.Diff([]string{"agent.created"}, e.eventsSince(t, seq, actor)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if ag, err := e.admin.GetAgent(context.Background(), "later-bot"); err != nil || ag.State != "suspended" {
		t.Errorf("admin API state %q, %v", ag.State, err)
	}
}

// TestSCIMAgentPagination pages through Agents with startIndex and count
// (RFC 7644 §3.4.2.4); a deprovisioned agent is not listed.
func TestSCIMAgentPagination(t *testing.T) {
	e := newEnv(t)
	owner := e.scimOwner(t, "alice@contoso.com")
	var ids []string
	for i := range 7 {
		a := e.scim(t, "POST", "/Agents", e.token, fmt.Sprintf(`{"schemas":["%s"],"name":"bot-%d","description":"d",
			"owners":[{"value":"%s"}],"active":%v}`, scimAgentURN, i, owner, i%2 == 0), nil)
		a.want(t, "create", 201, "")
		ids = append(ids, a.agent(t).ID)
	}
	slices.Sort(ids)
	gone, err := e.admin.CreateAgent(context.Background(), admin.CreateAgentRequest{Name: "gone-bot", Purpose: "p", Owners: []string{owner}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.DeprovisionAgent(context.Background(), gone.ID, admin.TransitionRequest{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query string
		total int
		want  []string
	}{
		{"", 7, ids},
		{"startIndex=1&count=3", 7, ids[:3]},
		{"startIndex=4&count=3", 7, ids[3:6]},
		{"startIndex=7&count=3", 7, ids[6:]},
		{"startIndex=8&count=3", 7, nil},
		{"startIndex=0&count=2", 7, ids[:2]},
		{"count=0", 7, nil},
		{"startIndex=3&count=100000", 7, ids[2:]},
		{"filter=" + urlQuery(`name eq "gone-bot"`), 0, nil},
		{"filter=" + urlQuery(`id eq "`+gone.ID+`"`), 0, nil},
	} {
		total, got := e.scimList(t, "/Agents", tc.query)
		if total != tc.total {
			t.Errorf("%s: totalResults %d, want %d", tc.query, total, tc.total)
		}
		if tc.want == nil {
			tc.want = []string{}
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.query, diff)
		}
	}
	// active eq true and false split the seven: bot-0, 2, 4, 6 are active.
	at, _ := e.scimList(t, "/Agents", "filter="+urlQuery(`active eq true`)+"&count=1")
	af, _ := e.scimList(t, "/Agents", "filter="+urlQuery(`active eq false`))
	if at != 4 || af != 3 {
		t.Errorf("active eq true: %d, active eq false: %d; want 4 and 3", at, af)
	}
	a := e.scim(t, "GET", "/Agents?startIndex=4&count=2", e.token, "", nil)
	if a.body["startIndex"] != float64(4) || a.body["itemsPerPage"] != float64(2) {
		t.Errorf("startIndex and itemsPerPage of a page: %s", a.raw)
	}
}

// TestSCIMAgentDiscovery checks that the discovery documents describe the
// Agent resource (RFC 7643 §6, §7).
func TestSCIMAgentDiscovery(t *testing.T) {
	e := newEnv(t)
	rt := e.scim(t, "GET", "/ResourceTypes/Agent", e.token, "", nil)
	rt.want(t, "ResourceTypes/Agent", 200, "")
	if rt.body["endpoint"] != "/Agents" || rt.body["schema"] != scimAgentURN || rt.body["id"] != "Agent" ||
		rt.body["name"] != "Agent" {
		t.Errorf("Agent resource type = %s", rt.raw)
	}
	l := e.scim(t, "GET", "/ResourceTypes", e.token, "", nil)
	var types struct {
		Resources []struct{ ID, Endpoint string } `json:"Resources"`
	}
	if err := json.Unmarshal(l.raw, &types); err != nil || len(types.Resources) != 2 || types.Resources[1].ID != "Agent" {
		t.Errorf("ResourceTypes = %s", l.raw)
	}
	s := e.scim(t, "GET", "/Schemas/"+strings.ToLower(scimAgentURN), e.token, "", nil)
	s.want(t, "Schemas/Agent", 200, "")
	var schema struct {
		ID         string       `json:"id"`
		Attributes []schemaAttr `json:"attributes"`
	}
	if err := json.Unmarshal(s.raw, &schema); err != nil || schema.ID != scimAgentURN {
		t.Fatalf("Agent schema %s: %v", s.raw, err)
	}
	got := map[string]string{}
	for _, at := range schema.Attributes {
		got[at.Name] = at.Mutability
		if at.Name == "owners" && (!at.MultiValued || !at.Required || len(at.SubAttributes) != 2) {
			t.Errorf("owners = %+v", at)
		}
	}
	want := map[string]string{"name": "immutable", "displayName": "readOnly", "description": "readWrite",
		"owners": "readWrite", "active": "readWrite"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Agent schema attributes and mutability (-want +got):\n%s", diff)
	}
}

// TestSCIMAgentConcurrentPatch sends unconditional PATCHes of one agent at
// once: each reads, changes and writes conditionally, retrying a lost
// race, so every one succeeds and every change is one version.
func TestSCIMAgentConcurrentPatch(t *testing.T) {
	e := newEnv(t)
	owner := e.scimOwner(t, "alice@contoso.com")
	a := e.scim(t, "POST", "/Agents", e.token, `{"schemas":["`+scimAgentURN+`"],"name":"racer","description":"d",
		"owners":[{"value":"`+owner+`"}]}`, nil)
	a.want(t, "create", 201, "")
	id := a.agent(t).ID
	const n = 3
	e.concurrentPatches(t, "/Agents/"+id, n, func(i int) string {
		return fmt.Sprintf(`{"op":"replace","path":"description","value":"purpose %d"}`, i)
	})
	if got := e.scim(t, "GET", "/Agents/"+id, e.token, "", nil).agent(t); got.Meta.Version != fmt.Sprintf(`W/"%d"`, 1+n) {
		t.Errorf("version after %d PATCHes: %s", n, got.Meta.Version)
	}
}
