package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/admin"
)

const (
	scimUserURN  = "urn:ietf:params:scim:schemas:core:2.0:User"
	scimErrorURN = "urn:ietf:params:scim:api:messages:2.0:Error"
	scimListURN  = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
)

// scimAnswer is one SCIM answer: status, headers and the decoded body.
type scimAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// scim sends one SCIM request with the admin token (token "" sends none)
// and checks what every answer must be: application/scim+json, and for
// an error the SCIM error of RFC 7644 §3.12 with status as a string.
func (e *env) scim(t *testing.T, method, path, token, body string, hdr map[string]string) scimAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, e.url+"/scim/v2"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := scimAnswer{status: resp.StatusCode, header: resp.Header}
	if a.raw, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusNoContent {
		return a
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/scim+json" {
		t.Fatalf("%s %s: Content-Type %q, want application/scim+json; body %s", method, path, ct, a.raw)
	}
	if err := json.Unmarshal(a.raw, &a.body); err != nil {
		t.Fatalf("%s %s: body %s: %v", method, path, a.raw, err)
	}
	if resp.StatusCode >= 400 {
		if !cmp.Equal(a.body["schemas"], []any{scimErrorURN}) || a.body["status"] != fmt.Sprint(resp.StatusCode) {
			t.Fatalf("%s %s: %d with a body that is no SCIM error: %s", method, path, resp.StatusCode, a.raw)
		}
	}
	return a
}

// want fails the test unless the answer has the status (and, for an
// error, the scimType, "" for none).
func (a scimAnswer) want(t *testing.T, what string, status int, scimType string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, a.status, status, a.raw)
	}
	if status >= 400 {
		if got, _ := a.body["scimType"].(string); got != scimType {
			t.Fatalf("%s: scimType %q, want %q; body %s", what, got, scimType, a.raw)
		}
	}
}

// user decodes the answer as a User resource.
func (a scimAnswer) user(t *testing.T) scimUser {
	t.Helper()
	var u scimUser
	if err := json.Unmarshal(a.raw, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

type scimUser struct {
	Schemas     []string `json:"schemas"`
	ID          string   `json:"id"`
	ExternalID  string   `json:"externalId"`
	UserName    string   `json:"userName"`
	DisplayName string   `json:"displayName"`
	Name        *struct {
		Formatted string `json:"formatted"`
	} `json:"name"`
	Emails []struct {
		Value   string `json:"value"`
		Type    string `json:"type"`
		Primary bool   `json:"primary"`
	} `json:"emails"`
	Active bool `json:"active"`
	Meta   struct {
		ResourceType string `json:"resourceType"`
		Created      string `json:"created"`
		LastModified string `json:"lastModified"`
		Location     string `json:"location"`
		Version      string `json:"version"`
	} `json:"meta"`
}

// scimList answers a GET of the resource type at endpoint (/Users,
// /Agents) with query, checks it is a ListResponse, and returns
// totalResults and the ids.
func (e *env) scimList(t *testing.T, endpoint, query string) (int, []string) {
	t.Helper()
	a := e.scim(t, "GET", endpoint+"?"+query, e.token, "", nil)
	a.want(t, "list "+endpoint+" "+query, 200, "")
	var l struct {
		Schemas      []string `json:"schemas"`
		TotalResults int      `json:"totalResults"`
		ItemsPerPage int      `json:"itemsPerPage"`
		Resources    []struct {
			ID string `json:"id"`
		} `json:"Resources"`
	}
	if err := json.Unmarshal(a.raw, &l); err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(l.Schemas, []string{scimListURN}) || l.ItemsPerPage != len(l.Resources) || l.Resources == nil {
		t.Errorf("list %s %s is no ListResponse: %s", endpoint, query, a.raw)
	}
	ids := []string{}
	for _, r := range l.Resources {
		ids = append(ids, r.ID)
	}
	return l.TotalResults, ids
}

// eventsSince returns the types of the audit events after seq, and checks
// that each names the admin token as its actor.
func (e *env) eventsSince(t *testing.T, seq int64, actor string) []string {
	t.Helper()
	evs, err := e.admin.ListAuditEvents(context.Background(), admin.AuditQuery{AfterSeq: seq, PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs.Items {
		if ev.Type == "admin.authenticated" || ev.Type == "admin.authorized" {
			continue
		}
		types = append(types, ev.Type)
		if ev.Actor == nil || ev.Actor.Type != "admin" || ev.Actor.ID != actor {
			t.Errorf("event %s: actor %+v, want the admin token %s", ev.Type, ev.Actor, actor)
		}
	}
	return types
}

func (e *env) headSeq(t *testing.T) int64 {
	t.Helper()
	seq, _, err := e.store.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// adminTokenID is the id of the bootstrap admin token.
func (e *env) adminTokenID(t *testing.T) string {
	t.Helper()
	l, err := e.admin.ListAdminTokens(context.Background(), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range l.Items {
		if tok.Role == "admin" {
			return tok.ID
		}
	}
	t.Fatal("no admin token")
	return ""
}

// entraUser is a User as Entra ID's provisioning service creates it,
// with attributes this provider does not keep.
const entraUser = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	"externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
	"userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com",
	"active": true,
	"displayName": "Test User",
	"emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@contoso.com"}],
	"name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
	"title": "Engineer",
	"password": "never-stored-1!",
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Identity", "employeeNumber": "7"}
}`

// TestSCIMUserLifecycle provisions an owner the way Entra ID and Okta do:
// create, read, find by filter, deactivate (Entra's and Okta's PATCH),
// reactivate, replace and delete, over real HTTP on a real store, and
// checks the owner's agent is orphaned and everything audited.
func TestSCIMUserLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	actor := e.adminTokenID(t)
	seq := e.headSeq(t)

	a := e.scim(t, "POST", "/Users", e.token, entraUser, nil)
	a.want(t, "create", 201, "")
	u := a.user(t)
	if !strings.HasPrefix(u.ID, "own_") || u.UserName != "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com" ||
		u.ExternalID != "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef" || u.DisplayName != "Test User" ||
		u.Name == nil || u.Name.Formatted != "Test User" || !u.Active ||
		len(u.Emails) != 1 || u.Emails[0].Value != "test_user_fd0ea19b@contoso.com" || u.Emails[0].Type != "work" || !u.Emails[0].Primary {
		t.Fatalf("created User = %s", a.raw)
	}
	if strings.Contains(string(a.raw), "never-stored") || strings.Contains(string(a.raw), "Engineer") {
		t.Errorf("the answer holds an attribute the provider does not keep: %s", a.raw)
	}
	if u.Meta.ResourceType != "User" || u.Meta.Version != `W/"1"` || u.Meta.Location != e.url+"/scim/v2/Users/"+u.ID ||
		u.Meta.Created == "" || u.Meta.Created != u.Meta.LastModified {
		t.Errorf("meta = %+v", u.Meta)
	}
	if a.header.Get("Location") != u.Meta.Location || a.header.Get("ETag") != `W/"1"` {
		t.Errorf("Location %q, ETag %q", a.header.Get("Location"), a.header.Get("ETag"))
	}
	checkUserAgainstSchema(t, e, a.raw)
	// The owner is the admin API's too.
	own, err := e.admin.GetOwner(ctx, u.ID)
	if err != nil || own.Kind != "person" || own.UserName != u.UserName || own.ExternalID != u.ExternalID {
		t.Fatalf("the owner through the admin API = %+v, %v", own, err)
	}

	g := e.scim(t, "GET", "/Users/"+u.ID, e.token, "", nil)
	g.want(t, "get", 200, "")
	if diff := cmp.Diff(u, g.user(t)); diff != "" || g.header.Get("ETag") != `W/"1"` {
		t.Errorf("GET (-created +got):\n%s", diff)
	}

	for _, f := range []string{
		`userName eq "test_user_AB6490EE-1e48-479e-a20b-2d77186b5dd1@CONTOSO.com"`,
		`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`,
		`id eq "` + u.ID + `"`,
		`emails[type eq "work"].value eq "Test_User_fd0ea19b@contoso.com"`,
		`emails.value eq "test_user_fd0ea19b@contoso.com"`,
		`USERNAME EQ "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com" and (active eq true and externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef")`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com"`,
	} {
		if total, ids := e.scimList(t, "/Users", "filter="+urlQuery(f)); total != 1 || !cmp.Equal(ids, []string{u.ID}) {
			t.Errorf("filter %s: %d %v, want the user", f, total, ids)
		}
	}
	for _, f := range []string{
		`userName eq "someone-else@contoso.com"`,
		`externalId eq "0A21F0F2-8D2A-4F8E-BF98-7363C4AED4EF"`, // externalId is case-exact
		`emails[type eq "home"].value eq "test_user_fd0ea19b@contoso.com"`,
		`userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com" and userName eq "x"`,
		`active eq false`,
	} {
		if total, ids := e.scimList(t, "/Users", "filter="+urlQuery(f)); total != 0 || len(ids) != 0 {
			t.Errorf("filter %s: %d %v, want none", f, total, ids)
		}
	}

	// An agent owned by the User alone.
	ag, err := e.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "report-bot", Purpose: "Reports", Owners: []string{u.ID}})
	if err != nil {
		t.Fatal(err)
	}
	wantOrphaned := func(what string, want bool) {
		t.Helper()
		got, err := e.admin.GetAgent(ctx, ag.ID)
		if err != nil || got.Orphaned != want {
			t.Fatalf("%s: agent orphaned = %v, %v; want %v", what, got.Orphaned, err, want)
		}
	}
	if got := e.eventsSince(t, seq, actor); !cmp.Equal(got, []string{"owner.created", "agent.created"}) {
		t.Errorf("events of the creation = %v", got)
	}

	steps := []struct {
		name       string
		patch      string
		wantActive bool
		wantEvents []string
	}{
		{"Entra deactivation", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
			false, []string{"owner.deactivated", "agent.orphaned"}},
		{"Okta reactivation", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`,
			true, []string{"owner.reactivated"}},
		{"Okta deactivation", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
			false, []string{"owner.deactivated", "agent.orphaned"}},
		{"Entra reactivation with an update", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"Replace","path":"active","value":"True"},
			{"op":"Add","path":"displayName","value":"Test User Jr"},
			{"op":"Replace","path":"name.givenName","value":"ignored"},
			{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"ignored"},
			{"op":"Replace","path":"emails[type eq \"work\"].value","value":"jr@contoso.com"}]}`,
			true, []string{"owner.updated", "owner.reactivated"}},
	}
	version := 1
	for _, s := range steps {
		seq = e.headSeq(t)
		a := e.scim(t, "PATCH", "/Users/"+u.ID, e.token, s.patch, nil)
		a.want(t, s.name, 200, "")
		version++
		got := a.user(t)
		if got.Active != s.wantActive || got.Meta.Version != fmt.Sprintf(`W/"%d"`, version) || a.header.Get("ETag") != got.Meta.Version {
			t.Fatalf("%s: active %v, version %s, ETag %s", s.name, got.Active, got.Meta.Version, a.header.Get("ETag"))
		}
		wantOrphaned(s.name, !s.wantActive)
		if diff := cmp.Diff(s.wantEvents, e.eventsSince(t, seq, actor)); diff != "" {
			t.Errorf("%s: events (-want +got):\n%s", s.name, diff)
		}
	}
	got := e.scim(t, "GET", "/Users/"+u.ID, e.token, "", nil).user(t)
	if got.DisplayName != "Test User Jr" || got.Emails[0].Value != "jr@contoso.com" {
		t.Errorf("after the PATCH with an update: %+v", got)
	}
	// A PATCH that changes nothing stores nothing.
	seq = e.headSeq(t)
	e.scim(t, "PATCH", "/Users/"+u.ID, e.token, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`, nil).
		want(t, "no-op PATCH", 200, "")
	if got := e.eventsSince(t, seq, actor); len(got) != 0 {
		t.Errorf("a no-op PATCH recorded %v", got)
	}

	// PUT replaces: emails and externalId absent are cleared, active absent
	// keeps the state; the If-Match of the current version passes.
	seq = e.headSeq(t)
	p := e.scim(t, "PUT", "/Users/"+u.ID, e.token, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"test.user@contoso.com","name":{"givenName":"Test","familyName":"User"}}`, map[string]string{"If-Match": `W/"5"`})
	p.want(t, "PUT", 200, "")
	pu := p.user(t)
	if pu.UserName != "test.user@contoso.com" || pu.DisplayName != "Test User" || pu.ExternalID != "" || len(pu.Emails) != 0 ||
		!pu.Active || pu.Meta.Version != `W/"6"` {
		t.Errorf("after PUT: %s", p.raw)
	}
	if diff := cmp.Diff([]string{"owner.updated"}, e.eventsSince(t, seq, actor)); diff != "" {
		t.Errorf("PUT events (-want +got):\n%s", diff)
	}

	// DELETE deactivates (owners are never removed) and is idempotent.
	seq = e.headSeq(t)
	e.scim(t, "DELETE", "/Users/"+u.ID, e.token, "", map[string]string{"If-Match": `W/"6"`}).want(t, "DELETE", 204, "")
	wantOrphaned("DELETE", true)
	if diff := cmp.Diff([]string{"owner.deactivated", "agent.orphaned"}, e.eventsSince(t, seq, actor)); diff != "" {
		t.Errorf("DELETE events (-want +got):\n%s", diff)
	}
	e.scim(t, "DELETE", "/Users/"+u.ID, e.token, "", nil).want(t, "second DELETE", 204, "")
	if got := e.scim(t, "GET", "/Users/"+u.ID, e.token, "", nil).user(t); got.Active {
		t.Error("the deleted User is active")
	}
	if total, _ := e.scimList(t, "/Users", "filter="+urlQuery(`active eq false`)); total != 1 {
		t.Errorf("deactivated Users: %d, want 1", total)
	}
}

func urlQuery(s string) string {
	r := strings.NewReplacer(" ", "%20", `"`, "%22", "[", "%5B", "]", "%5D", "(", "%28", ")", "%29", ":", "%3A")
	return r.Replace(s)
}

// TestSCIMPagination pages through Users with startIndex and count
// (RFC 7644 §3.4.2.4): totalResults counts every match, a page holds at
// most count, startIndex below 1 is 1, and teams are no Users.
func TestSCIMPagination(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 7 {
		a := e.scim(t, "POST", "/Users", e.token, fmt.Sprintf(`{"schemas":["%s"],"userName":"user%d"}`, scimUserURN, i), nil)
		a.want(t, "create", 201, "")
		ids = append(ids, a.user(t).ID)
	}
	slices.Sort(ids) // the list's order: ids made in one millisecond need not sort by creation
	if _, err := e.admin.CreateOwner(context.Background(), admin.CreateOwnerRequest{Kind: "team", Email: "team@example.com"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", ids},
		{"startIndex=1&count=3", ids[:3]},
		{"startIndex=4&count=3", ids[3:6]},
		{"startIndex=7&count=3", ids[6:]},
		{"startIndex=8&count=3", nil},
		{"startIndex=0&count=2", ids[:2]},
		{"startIndex=-5&count=2", ids[:2]},
		{"count=0", nil},
		{"count=-1", nil},
		{"startIndex=3&count=100000", ids[2:]},
		{"filter=" + urlQuery(`active eq true`) + "&startIndex=6&count=10", ids[5:]},
	} {
		total, got := e.scimList(t, "/Users", tc.query)
		if total != 7 {
			t.Errorf("%s: totalResults %d, want 7", tc.query, total)
		}
		if tc.want == nil {
			tc.want = []string{}
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.query, diff)
		}
	}
	a := e.scim(t, "GET", "/Users?startIndex=4&count=2", e.token, "", nil)
	if a.body["startIndex"] != float64(4) || a.body["itemsPerPage"] != float64(2) {
		t.Errorf("startIndex and itemsPerPage of a page: %s", a.raw)
	}
}

// TestSCIMDiscovery checks the discovery documents (RFC 7643 §5–7,
// RFC 7644 §4) say what the provider does.
func TestSCIMDiscovery(t *testing.T) {
	e := newEnv(t)
	a := e.scim(t, "GET", "/ServiceProviderConfig", e.token, "", nil)
	a.want(t, "ServiceProviderConfig", 200, "")
	var spc struct {
		Schemas        []string                 `json:"schemas"`
		Patch          struct{ Supported bool } `json:"patch"`
		Bulk           struct{ Supported bool } `json:"bulk"`
		ChangePassword struct{ Supported bool } `json:"changePassword"`
		Sort           struct{ Supported bool } `json:"sort"`
		ETag           struct{ Supported bool } `json:"etag"`
		Filter         struct {
			Supported  bool
			MaxResults int
		} `json:"filter"`
		AuthenticationSchemes []struct {
			Type    string `json:"type"`
			Primary bool   `json:"primary"`
		} `json:"authenticationSchemes"`
		Meta struct{ ResourceType, Location string } `json:"meta"`
	}
	if err := json.Unmarshal(a.raw, &spc); err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(spc.Schemas, []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"}) ||
		!spc.Patch.Supported || spc.Bulk.Supported || spc.ChangePassword.Supported || spc.Sort.Supported || !spc.ETag.Supported ||
		!spc.Filter.Supported || spc.Filter.MaxResults != 200 || len(spc.AuthenticationSchemes) != 1 ||
		spc.AuthenticationSchemes[0].Type != "oauthbearertoken" || spc.Meta.ResourceType != "ServiceProviderConfig" ||
		spc.Meta.Location != e.url+"/scim/v2/ServiceProviderConfig" {
		t.Errorf("ServiceProviderConfig = %s", a.raw)
	}
	for _, path := range []string{"/ResourceTypes", "/Schemas"} {
		a := e.scim(t, "GET", path, e.token, "", nil)
		a.want(t, path, 200, "")
		res, _ := a.body["Resources"].([]any)
		if a.body["totalResults"] != float64(2) || len(res) != 2 {
			t.Errorf("%s = %s, want a ListResponse of two: User and Agent", path, a.raw)
		}
	}
	rt := e.scim(t, "GET", "/ResourceTypes/User", e.token, "", nil)
	rt.want(t, "ResourceTypes/User", 200, "")
	if rt.body["endpoint"] != "/Users" || rt.body["schema"] != scimUserURN || rt.body["id"] != "User" {
		t.Errorf("User resource type = %s", rt.raw)
	}
	s := e.scim(t, "GET", "/Schemas/"+strings.ToLower(scimUserURN), e.token, "", nil)
	s.want(t, "Schemas/User", 200, "")
	var names []string
	attrs, _ := s.body["attributes"].([]any)
	for _, at := range attrs {
		m, _ := at.(map[string]any)
		names = append(names, fmt.Sprint(m["name"]))
	}
	if diff := cmp.Diff([]string{"userName", "name", "displayName", "emails", "active"}, names); diff != "" {
		t.Errorf("User schema attributes (-want +got):\n%s", diff)
	}
}

// TestSCIMConcurrentPatch sends unconditional PATCHes at once: each reads,
// changes and writes conditionally, retrying a lost race, so every one
// succeeds and every change is one version.
func TestSCIMConcurrentPatch(t *testing.T) {
	e := newEnv(t)
	a := e.scim(t, "POST", "/Users", e.token, `{"schemas":["`+scimUserURN+`"],"userName":"racer"}`, nil)
	a.want(t, "create", 201, "")
	id := a.user(t).ID
	const n = 3
	e.concurrentPatches(t, "/Users/"+id, n, func(i int) string {
		return fmt.Sprintf(`{"op":"replace","path":"displayName","value":"name %d"}`, i)
	})
	if got := e.scim(t, "GET", "/Users/"+id, e.token, "", nil).user(t); got.Meta.Version != fmt.Sprintf(`W/"%d"`, 1+n) {
		t.Errorf("version after %d PATCHes: %s", n, got.Meta.Version)
	}
}

// concurrentPatches sends n PATCHes of the resource at path (under
// /scim/v2) at once, the ith with the operation op(i) and no If-Match,
// and checks that every one succeeded: lost races are retried.
func (e *env) concurrentPatches(t *testing.T, path string, n int, op func(i int) string) {
	t.Helper()
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(context.Background(), "PATCH", e.url+"/scim/v2"+path, strings.NewReader(
				`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`+op(i)+`]}`))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+e.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_ = resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 200 {
			t.Errorf("PATCH %d: status %d", i, s)
		}
	}
}
