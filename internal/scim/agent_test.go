package scim

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

const (
	own1 = "own_01jndy7x5p0000000000000001"
	own2 = "own_01jndy7x5p0000000000000002"
	own3 = "own_01jndy7x5p0000000000000003"
)

var agentBase = agentAttrs{name: "helpdesk-bot", externalID: "ext", description: "Answers tickets", owners: []string{own1, own2}, active: true}

func TestParseAgent(t *testing.T) {
	const s = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:Agent"],`
	const req = `"name":"helpdesk-bot","description":"Answers tickets","owners":[{"value":"` + own2 + `"},{"value":"` + own1 + `"}]`
	tests := []struct {
		name, body string
		cur        agentAttrs
		want       agentAttrs
	}{
		{"the minimum", `{` + s + req + `}`, agentAttrs{active: true},
			agentAttrs{name: "helpdesk-bot", description: "Answers tickets", owners: []string{own1, own2}, active: true}},
		{"active absent keeps the state", `{` + s + req + `}`, agentAttrs{}, agentAttrs{name: "helpdesk-bot", description: "Answers tickets",
			owners: []string{own1, own2}}},
		{"names in any case, active as a string, externalId", `{` + s + `"NAME":"helpdesk-bot","DESCRIPTION":"Answers tickets",
			"Owners":{"value":"` + own1 + `","$ref":"https://x/Users/` + own1 + `","display":"B","type":"User"},"Active":"False","externalId":"e-1"}`,
			agentAttrs{active: true}, agentAttrs{name: "helpdesk-bot", externalID: "e-1", description: "Answers tickets", owners: []string{own1}}},
		{"duplicate owners are one", `{` + s + `"name":"a","description":"d","owners":[{"value":"` + own1 + `"},{"value":"` + own1 + `"}]}`,
			agentAttrs{}, agentAttrs{name: "a", description: "d", owners: []string{own1}}},
		{"ignored and read-only attributes", `{` + s + req + `,"id":"agt_x","meta":{},"displayName":"Helpdesk Bot",
			"agentType":"Assistant","protocols":[{"type":"MCP-Server"}],"parent":{"value":"agt_y"},"groups":[],
			"urn:example:params:scim:schemas:extension:agent:1.0":{"x":1}}`, agentAttrs{active: true},
			agentAttrs{name: "helpdesk-bot", description: "Answers tickets", owners: []string{own1, own2}, active: true}},
	}
	for _, tc := range tests {
		got, err := parseAgent([]byte(tc.body), tc.cur)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(agentAttrs{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	for _, tc := range []struct{ body, scimType string }{
		{`[]`, TypeInvalidSyntax},
		{`{"name":"a","description":"d","owners":[{"value":"` + own1 + `"}]}`, TypeInvalidSyntax},
		{`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a"}`, TypeInvalidSyntax},
		{`{` + s + `"description":"d","owners":[{"value":"` + own1 + `"}]}`, TypeInvalidValue},
		{`{` + s + `"name":"a","owners":[{"value":"` + own1 + `"}]}`, TypeInvalidValue},
		{`{` + s + `"name":"a","description":"  ","owners":[{"value":"` + own1 + `"}]}`, TypeInvalidValue},
		{`{` + s + `"name":"a","description":"d"}`, TypeInvalidValue},
		{`{` + s + `"name":"a","description":"d","owners":[]}`, TypeInvalidValue},
		{`{` + s + `"name":"a","description":"d","owners":[{"value":"alice@example.com"}]}`, TypeInvalidValue},
		{`{` + s + `"name":"a","description":"d","owners":["` + own1 + `"]}`, TypeInvalidValue},
		{`{` + s + `"name":"a","description":"d","owners":[{"value":"` + own1 + `","primary":true}]}`, TypeInvalidValue},
		{`{` + s + `"name":7,"description":"d","owners":[{"value":"` + own1 + `"}]}`, TypeInvalidValue},
		{`{` + s + req + `,"nickName":"Clippy"}`, TypeInvalidSyntax},
		{`{` + s + req + `,"active":"maybe"}`, TypeInvalidValue},
	} {
		_, err := parseAgent([]byte(tc.body), agentAttrs{})
		if e, ok := errors.AsType[*Error](err); !ok || e.Status != http.StatusBadRequest || e.ScimType != tc.scimType {
			t.Errorf("parseAgent(%s) = %v, want a 400 %s", tc.body, err, tc.scimType)
		}
	}
}

func TestFromAgent(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := store.Agent{ID: "agt_1", Name: "bot", Purpose: "p", Owners: []string{own1}, ExternalID: "e", State: store.AgentSuspended,
		ActionClasses: []string{"write"}, CreatedAt: at, UpdatedAt: at.Add(time.Hour), Version: 4}
	want := Agent{Schemas: []string{SchemaAgent}, ID: "agt_1", ExternalID: "e", AgentName: "bot", DisplayName: "bot", Description: "p",
		Owners: []OwnerRef{{Value: own1, Ref: "https://h/scim/v2/Users/" + own1}},
		Meta:   Meta{ResourceType: "Agent", Created: at, LastModified: at.Add(time.Hour), Location: "https://h/scim/v2/Agents/agt_1", Version: `W/"4"`}}
	if diff := cmp.Diff(want, FromAgent(a, "https://h/scim/v2")); diff != "" {
		t.Errorf("FromAgent (-want +got):\n%s", diff)
	}
	a.State = store.AgentActive
	if !FromAgent(a, "").Active {
		t.Error("an active agent is not active")
	}
}

func TestParseAgentFilter(t *testing.T) {
	tests := []struct {
		filter string
		want   AgentQuery
	}{
		{``, AgentQuery{}},
		{`name eq "Helpdesk-Bot"`, AgentQuery{Filter: store.AgentFilter{Name: "helpdesk-bot"}}},
		{`externalId eq "8ccc535b-716d-4d32-b3e9-57c8be449c82"`, AgentQuery{Filter: store.AgentFilter{ExternalID: "8ccc535b-716d-4d32-b3e9-57c8be449c82"}}},
		{`id eq "agt_1" and active eq true`, AgentQuery{Filter: store.AgentFilter{ID: "agt_1", State: store.AgentActive}}},
		{`ACTIVE EQ FALSE`, AgentQuery{Filter: store.AgentFilter{State: store.AgentSuspended}}},
		{`urn:ietf:params:scim:schemas:core:2.0:Agent:name eq "a" and (externalId eq "x")`,
			AgentQuery{Filter: store.AgentFilter{Name: "a", ExternalID: "x"}}},
		{`active eq true and active eq false`, AgentQuery{Filter: store.AgentFilter{State: store.AgentSuspended}, Empty: true}},
		{`externalId eq ""`, AgentQuery{Empty: true}},
	}
	for _, tc := range tests {
		got, err := ParseAgentFilter(tc.filter)
		if err != nil {
			t.Errorf("ParseAgentFilter(%q): %v", tc.filter, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseAgentFilter(%q) (-want +got):\n%s", tc.filter, diff)
		}
	}
	for _, f := range []string{
		`userName eq "a"`, `displayName eq "a"`, `description eq "a"`, `owners.value eq "own_1"`, `name co "a"`,
		`name eq "a" or id eq "b"`, `not (active eq true)`, `active eq "true"`, `id eq agt_1`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"`, `name eq`, `(active eq true`,
	} {
		_, err := ParseAgentFilter(f)
		if e, ok := errors.AsType[*Error](err); !ok || e.Status != http.StatusBadRequest || e.ScimType != TypeInvalidFilter {
			t.Errorf("ParseAgentFilter(%q) = %v, want invalidFilter", f, err)
		}
	}
}

func TestPatchAgent(t *testing.T) {
	with := func(fn func(*agentAttrs)) agentAttrs {
		a := agentBase
		a.owners = slices.Clone(a.owners)
		fn(&a)
		return a
	}
	tests := []struct {
		name string
		ops  string
		want agentAttrs
	}{
		{"Entra suspension", `{"op":"Replace","path":"active","value":"False"}`, with(func(a *agentAttrs) { a.active = false })},
		{"Okta suspension", `{"op":"replace","value":{"active":false}}`, with(func(a *agentAttrs) { a.active = false })},
		{"description", `{"op":"replace","path":"description","value":"Closes tickets"}`,
			with(func(a *agentAttrs) { a.description = "Closes tickets" })},
		{"the same name is no change", `{"op":"replace","value":{"name":"helpdesk-bot","displayName":"X"}}`, agentBase},
		{"displayName is ignored", `{"op":"add","path":"displayName","value":"Helpdesk"}`, agentBase},
		{"draft attributes agentid does not keep are ignored", `{"op":"replace","path":"agentType","value":"Researcher"}`, agentBase},
		{"and in a path-less value", `{"op":"add","value":{"protocols":[{"type":"A2A"}],"parent":{"value":"agt_y"}}}`, agentBase},
		{"extension paths are ignored", `{"op":"replace","path":"urn:example:agent:1.0:model","value":"m"}`, agentBase},
		{"remove externalId", `{"op":"remove","path":"externalId"}`, with(func(a *agentAttrs) { a.externalID = "" })},
		{"add owners merges", `{"op":"add","path":"owners","value":[{"value":"` + own3 + `"},{"value":"` + own1 + `"}]}`,
			with(func(a *agentAttrs) { a.owners = []string{own1, own2, own3} })},
		{"replace owners", `{"op":"replace","path":"owners","value":[{"value":"` + own3 + `"}]}`,
			with(func(a *agentAttrs) { a.owners = []string{own3} })},
		{"remove one owner by filter (Okta)", `{"op":"remove","path":"owners[value eq \"` + own1 + `\"]"}`,
			with(func(a *agentAttrs) { a.owners = []string{own2} })},
		{"remove listed owners (Entra)", `{"op":"Remove","path":"owners","value":[{"value":"` + own2 + `"}]}`,
			with(func(a *agentAttrs) { a.owners = []string{own1} })},
		{"swap an owner in one request", `{"op":"add","path":"owners","value":[{"value":"` + own3 + `"}]},
			{"op":"remove","path":"owners","value":[{"value":"` + own1 + `"},{"value":"` + own2 + `"}]}`,
			with(func(a *agentAttrs) { a.owners = []string{own3} })},
		{"with the schema URN", `{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:Agent:active","value":false}`,
			with(func(a *agentAttrs) { a.active = false })},
	}
	for _, tc := range tests {
		p, err := DecodePatch(patchOf(tc.ops))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := p.applyAgent(agentBase)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(agentAttrs{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	if !slices.Equal(agentBase.owners, []string{own1, own2}) {
		t.Fatalf("a patch changed the attributes it was given: %v", agentBase.owners)
	}
	for _, tc := range []struct{ ops, scimType string }{
		{`{"op":"replace","path":"name","value":"other-bot"}`, TypeMutability},
		{`{"op":"remove","path":"name"}`, TypeMutability},
		{`{"op":"remove","path":"description"}`, TypeInvalidValue},
		{`{"op":"replace","path":"description","value":""}`, TypeInvalidValue},
		{`{"op":"remove","path":"active"}`, TypeInvalidValue},
		{`{"op":"replace","path":"id","value":"agt_2"}`, TypeMutability},
		{`{"op":"add","path":"groups","value":[{"value":"g"}]}`, TypeMutability},
		{`{"op":"replace","path":"actionClasses","value":["write"]}`, TypeInvalidPath},
		{`{"op":"replace","path":"labels.team","value":"x"}`, TypeInvalidPath},
		{`{"op":"replace","path":"description.x","value":"x"}`, TypeInvalidPath},
		{`{"op":"remove","path":"owners[value eq \"` + own3 + `\"]"}`, TypeNoTarget},
		{`{"op":"remove","path":"owners[display eq \"x\"]"}`, TypeInvalidPath},
		{`{"op":"replace","path":"owners[value eq \"` + own1 + `\"]","value":{"value":"` + own3 + `"}}`, TypeInvalidPath},
		{`{"op":"replace","path":"owners.value","value":"` + own3 + `"}`, TypeInvalidPath},
		{`{"op":"add","path":"owners","value":[{"value":"bob@example.com"}]}`, TypeInvalidValue},
		{`{"op":"replace","path":"externalId","value":7}`, TypeInvalidValue},
	} {
		p, err := DecodePatch(patchOf(tc.ops))
		if err == nil {
			_, err = p.applyAgent(agentBase)
		}
		if e, ok := errors.AsType[*Error](err); !ok || e.Status != http.StatusBadRequest || e.ScimType != tc.scimType {
			t.Errorf("patch %s = %v, want a 400 %s", tc.ops, err, tc.scimType)
		}
	}
	// Removing every owner or the whole list applies; Agents.Patch then
	// refuses the result (checkAgentAttrs).
	p, err := DecodePatch(patchOf(`{"op":"remove","path":"owners"}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.applyAgent(agentBase)
	if err != nil || len(got.owners) != 0 {
		t.Fatalf("remove owners = %v, %v", got.owners, err)
	}
	if e, ok := errors.AsType[*Error](checkAgentAttrs(got)); !ok || e.ScimType != TypeInvalidValue {
		t.Errorf("an agent without owners passes: %v", e)
	}
}

func FuzzParseAgentFilter(f *testing.F) {
	for _, s := range []string{`name eq "helpdesk-bot"`, `externalId eq "x" and (active eq false)`, `id eq "agt_1"`,
		`displayName eq "x"`, `name sw "h"`, `"`, `((`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseAgentFilter(s)
		if err != nil {
			e, ok := errors.AsType[*Error](err)
			if !ok || e.Status != http.StatusBadRequest || e.ScimType != TypeInvalidFilter || len(e.Detail) > 512 {
				t.Fatalf("ParseAgentFilter(%q) = %v, want a short invalidFilter", s, err)
			}
			return
		}
		if q.Filter.Live || q.Filter.OwnerID != "" || q.Filter.Orphaned {
			t.Fatalf("ParseAgentFilter(%q) set a field no filter names: %+v", s, q.Filter)
		}
		if st := q.Filter.State; st != "" && st != store.AgentActive && st != store.AgentSuspended {
			t.Fatalf("ParseAgentFilter(%q) selects state %q", s, st)
		}
	})
}

func FuzzPatchAgent(f *testing.F) {
	for _, s := range []string{
		`{"op":"Replace","path":"active","value":"False"}`,
		`{"op":"replace","value":{"active":false,"description":"x"}}`,
		`{"op":"add","path":"owners","value":[{"value":"` + own3 + `"}]}`,
		`{"op":"remove","path":"owners[value eq \"` + own1 + `\"]"}`,
		`{"op":"remove","path":"owners","value":[{"value":"` + own2 + `"}]}`,
	} {
		f.Add(patchOf(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePatch(body)
		if err == nil {
			var a agentAttrs
			a, err = p.applyAgent(agentBase)
			if err == nil && (a.name != agentBase.name || a.description == "" || !slices.IsSorted(a.owners)) {
				t.Fatalf("patch %q: name %q, description %q, owners %v", body, a.name, a.description, a.owners)
			}
		}
		if err != nil {
			if e, ok := errors.AsType[*Error](err); !ok || e.Status != http.StatusBadRequest || e.ScimType == "" {
				t.Fatalf("patch %q: %v, want a SCIM 400 with a scimType", body, err)
			}
		}
	})
}
