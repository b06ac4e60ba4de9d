package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

// The OpenID AuthZEN certification scenario
// (openid/authzen certification/authorization-api-1_0-scenario.md, 2026)
// over HTTP against a real server, as published: its "user" subjects are
// Cedar Person principals whose properties the caller (the PEP) asserts,
// bob's role "admin" comes from his subject properties, and rules 7 and 8
// read action.properties.soft (ADR 0016). The fixture is Cedar policies
// only: agentid keeps no user directory and no resource registry, so the
// policies name the fixture's users and resources in their scopes, which
// is what the subject and resource searches enumerate.
const conformancePolicies = `// Rules 1 and 2 (3.2.3: alice writes active records; rule 5: never an archived one).
@id("alice-reads-record-1")
permit (principal == Person::"alice", action == Action::"read", resource == Resource::"record/record-1");

@id("alice-writes-record-1")
permit (principal == Person::"alice", action == Action::"write", resource == Resource::"record/record-1")
unless { resource.hasTag("status") && resource.getTag("status") == "archived" };

// Rules 3 and 4: bob reads record-1 and does not write it.
@id("bob-reads-record-1")
permit (principal == Person::"bob", action == Action::"read", resource == Resource::"record/record-1");

// Rule 6: a subject whose role is admin (as its PEP asserts) writes
// archived records.
@id("admins-write-archived")
permit (principal is Person, action == Action::"write", resource)
when { principal.hasTag("role") && principal.getTag("role") == "admin" &&
       resource.hasTag("status") && resource.getTag("status") == "archived" };

// record-2 is the fixture's archived record: naming it lets the resource
// search (4.3.3, which sends no resource properties) enumerate it.
@id("admins-write-record-2")
permit (principal is Person, action == Action::"write", resource == Resource::"record/record-2")
when { principal.hasTag("role") && principal.getTag("role") == "admin" };

// bob is the fixture's admin, resolved by the PDP: the subject search
// 4.2.4 sends no subject properties.
@id("bob-writes-archived")
permit (principal == Person::"bob", action == Action::"write", resource)
when { resource.hasTag("status") && resource.getTag("status") == "archived" };

// Rules 7 and 8: alice soft-deletes record-1, never hard.
@id("alice-soft-deletes-record-1")
permit (principal == Person::"alice", action == Action::"delete", resource == Resource::"record/record-1")
when { context.action_properties.bools.hasTag("soft") && context.action_properties.bools.getTag("soft") };
`

type conformanceCase struct {
	id, path, body string
	status         int
	decision       *bool    // the fixture decision, when the scenario checks it
	batch          []bool   // the fixture decisions of a batch
	results        []string // entities a search must include ("type/id" or action names)
}

func TestAuthZENConformanceScenario(t *testing.T) {
	ls := startServer(t)
	ctx := t.Context()
	if _, err := ls.admin.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: conformancePolicies, Comment: "AuthZEN certification fixture"}); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	const (
		eval   = "/access/v1/evaluation"
		evals  = "/access/v1/evaluations"
		subj   = "/access/v1/search/subject"
		res    = "/access/v1/search/resource"
		action = "/access/v1/search/action"
	)
	cases := []conformanceCase{
		// Basic Core and Basic Properties (rules 1 to 8).
		{"2.2.1", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`, 200, &yes, nil, nil},
		{"2.2.2", eval, `{"subject":{"type":"user","id":"bob"},"action":{"name":"write"},"resource":{"type":"record","id":"record-1"}}`, 200, &no, nil, nil},
		{"2.2.3", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"},"context":{"time":"2025-06-27T18:03-07:00","ip":"192.168.1.1"}}`, 200, &yes, nil, nil},
		{"2.2.4", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"write"},"resource":{"type":"record","id":"record-2","properties":{"status":"archived"}}}`, 200, &no, nil, nil},
		{"2.2.5", eval, `{"subject":{"type":"user","id":"bob","properties":{"role":"admin"}},"action":{"name":"write"},"resource":{"type":"record","id":"record-2","properties":{"status":"archived"}}}`, 200, &yes, nil, nil},
		{"2.2.6", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"delete","properties":{"soft":true}},"resource":{"type":"record","id":"record-1"}}`, 200, &yes, nil, nil},
		{"2.2.7", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"delete","properties":{"soft":false}},"resource":{"type":"record","id":"record-1"}}`, 200, &no, nil, nil},
		{"2.2.8", eval, `{"subject":{"type":"user","id":"alice","properties":{"department":"Sales","role":"manager"}},"action":{"name":"read","properties":{"method":"GET"}},"resource":{"type":"record","id":"record-1","properties":{"status":"active","owner":"bob"}}}`, 200, &yes, nil, nil},
		{"2.2.9", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"},"foo":"bar","futureField":{"nested":true}}`, 200, &yes, nil, nil},
		{"2.4.1 no subject", eval, `{"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`, 400, nil, nil, nil},
		{"2.4.1 no action", eval, `{"subject":{"type":"user","id":"alice"},"resource":{"type":"record","id":"record-1"}}`, 400, nil, nil, nil},
		{"2.4.1 no resource", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"}}`, 400, nil, nil, nil},
		{"2.4.2 no subject type", eval, `{"subject":{"id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`, 400, nil, nil, nil},
		{"2.4.2 no subject id", eval, `{"subject":{"type":"user"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`, 400, nil, nil, nil},
		{"2.4.2 no action name", eval, `{"subject":{"type":"user","id":"alice"},"action":{},"resource":{"type":"record","id":"record-1"}}`, 400, nil, nil, nil},
		{"2.4.2 no resource type", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"id":"record-1"}}`, 400, nil, nil, nil},
		{"2.4.2 no resource id", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record"}}`, 400, nil, nil, nil},
		{"2.4.4 malformed", eval, `{"subject":`, 400, nil, nil, nil},
		{"2.4.5 empty", eval, ``, 400, nil, nil, nil},
		{"2.4.6 subject a string", eval, `{"subject":"alice","action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`, 400, nil, nil, nil},
		{"2.4.6 action name a number", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":123},"resource":{"type":"record","id":"record-1"}}`, 400, nil, nil, nil},
		// Batch Core and Batch Properties.
		{"3.2.1", evals, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"evaluations":[{"resource":{"type":"record","id":"record-1"}},{"resource":{"type":"record","id":"record-2"}}]}`, 200, nil, []bool{true, false}, nil},
		{"3.2.2", evals, `{"subject":{"type":"user","id":"bob"},"resource":{"type":"record","id":"record-1"},"evaluations":[{"action":{"name":"read"}},{"action":{"name":"write"}}]}`, 200, nil, []bool{true, false}, nil},
		{"3.2.3", evals, `{"subject":{"type":"user","id":"alice"},"action":{"name":"write"},"evaluations":[{"resource":{"type":"record","id":"record-1","properties":{"status":"active"}}},{"resource":{"type":"record","id":"record-2","properties":{"status":"archived"}}}]}`, 200, nil, []bool{true, false}, nil},
		{"3.2.4", evals, `{"action":{"name":"write"},"resource":{"type":"record","id":"record-2","properties":{"status":"archived"}},"evaluations":[{"subject":{"type":"user","id":"alice"}},{"subject":{"type":"user","id":"bob","properties":{"role":"admin"}}}]}`, 200, nil, []bool{false, true}, nil},
		{"3.2.5", evals, `{"evaluations":[{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}},{"subject":{"type":"user","id":"bob"},"action":{"name":"write"},"resource":{"type":"record","id":"record-1"}}]}`, 200, nil, []bool{true, false}, nil},
		{"3.2.6", evals, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"context":{"time":"2025-06-27T18:03-07:00"},"evaluations":[{"resource":{"type":"record","id":"record-1"}},{"resource":{"type":"record","id":"record-2"},"context":{"time":"2025-06-27T19:00-07:00","source":"batch-override"}}]}`, 200, nil, []bool{true, false}, nil},
		{"3.2.7", evals, `{"subject":{"type":"user","id":"alice"},"action":{"name":"write"},"resource":{"type":"record"},"evaluations":[{"resource":{"id":"record-1","properties":{"status":"active"}}},{"resource":{"type":"record","id":"record-2","properties":{"status":"archived"}}}]}`, 200, nil, []bool{true, false}, nil},
		{"3.4.1", evals, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"evaluations":[{"resource":{"type":"record","id":"record-1"}},{}]}`, 200, nil, []bool{true, false}, nil},
		{"3.4.2", evals, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`, 200, &yes, nil, nil},
		{"3.4.3", evals, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"},"evaluations":[]}`, 200, &yes, nil, nil},
		// Search Core and Search Properties.
		{"4.2.1", subj, `{"subject":{"type":"user"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`, 200, nil, nil, []string{"user/alice", "user/bob"}},
		{"4.2.2", subj, `{"subject":{"type":"user"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"},"context":{"time":"2025-06-27T18:03-07:00"}}`, 200, nil, nil, []string{"user/alice", "user/bob"}},
		{"4.2.4", subj, `{"subject":{"type":"user"},"action":{"name":"write"},"resource":{"type":"record","id":"record-2","properties":{"status":"archived"}}}`, 200, nil, nil, []string{"user/bob"}},
		{"4.3.1", res, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record"}}`, 200, nil, nil, []string{"record/record-1"}},
		{"4.3.3", res, `{"subject":{"type":"user","id":"bob","properties":{"role":"admin"}},"action":{"name":"write"},"resource":{"type":"record"}}`, 200, nil, nil, []string{"record/record-2"}},
		{"4.4.1", action, `{"subject":{"type":"user","id":"alice"},"resource":{"type":"record","id":"record-1"}}`, 200, nil, nil, []string{"read", "write"}},
		{"4.4.2", action, `{"subject":{"type":"user","id":"alice"},"resource":{"type":"record","id":"record-1"},"context":{"time":"2025-06-27T18:03-07:00"}}`, 200, nil, nil, []string{"read", "write"}},
		{"4.4.3", action, `{"subject":{"type":"user","id":"bob","properties":{"role":"admin"}},"resource":{"type":"record","id":"record-2","properties":{"status":"archived"}}}`, 200, nil, nil, []string{"write"}},
		{"4.5.1", subj, `{"subject":{"type":"user"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"},"page":{"limit":1}}`, 200, nil, nil, nil},
		{"4.6.1", action, `{"subject":{"type":"user","id":"nonexistent-user"},"resource":{"type":"record","id":"record-1"}}`, 200, nil, nil, []string{}},
		{"4.6.2", subj, `{"subject":{"type":"spaceship"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`, 200, nil, nil, []string{}},
		{"4.7.1 subject search without action", subj, `{"subject":{"type":"user"},"resource":{"type":"record","id":"record-1"}}`, 400, nil, nil, nil},
		{"4.7.1 resource search without subject", res, `{"action":{"name":"read"},"resource":{"type":"record"}}`, 400, nil, nil, nil},
		{"4.7.1 action search without resource", action, `{"subject":{"type":"user","id":"alice"}}`, 400, nil, nil, nil},
		{"4.7.2 subject search without resource id", subj, `{"subject":{"type":"user"},"action":{"name":"read"},"resource":{"type":"record"}}`, 400, nil, nil, nil},
		{"4.7.2 resource search without subject id", res, `{"subject":{"type":"user"},"action":{"name":"read"},"resource":{"type":"record"}}`, 400, nil, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			status, h, out := ls.authzen(tc.path, ls.token, tc.body, map[string]string{"X-Request-ID": "conf-" + tc.id})
			if status != tc.status || h.Get("X-Request-ID") != "conf-"+tc.id {
				t.Fatalf("%d (X-Request-ID %q) %v, want %d", status, h.Get("X-Request-ID"), out, tc.status)
			}
			if status != 200 {
				return
			}
			checkConformanceAnswer(t, tc, out)
		})
	}
	// 2.6 idempotency.
	for range 3 {
		if _, _, out := ls.authzen(eval, ls.token, `{"subject":{"type":"user","id":"bob"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`, nil); out["decision"] != true {
			t.Errorf("2.6: %v", out)
		}
	}
	// 2.4.3 a body that is not application/json.
	if status, _, _ := ls.authzen(eval, ls.token, `{}`, map[string]string{"Content-Type": "text/plain"}); status != 400 {
		t.Errorf("2.4.3: %d, want 400", status)
	}
	// 4.5.2 the next page: alice, then bob and the end.
	_, _, first := ls.authzen(subj, ls.token, `{"subject":{"type":"user"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"},"page":{"limit":1}}`, nil)
	tok, _ := first["page"].(map[string]any)["next_token"].(string)
	if tok == "" {
		t.Errorf("4.5.1: no next_token with limit 1 and two users: %v", first)
	} else {
		_, _, next := ls.authzen(subj, ls.token, `{"subject":{"type":"user"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"},"page":{"token":"`+tok+`"}}`, nil)
		page, _ := next["page"].(map[string]any)
		if rs, _ := next["results"].([]any); page == nil || page["next_token"] != "" || len(rs) != 1 ||
			rs[0].(map[string]any)["id"] != "bob" {
			t.Errorf("4.5.2: %v, want bob and an empty next_token", next)
		}
	}
	conformanceBeyond(t, ls)
	// 6 discovery.
	resp, err := http.Get(ls.url + "/.well-known/authzen-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var meta map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("6: %d %q %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	for k, path := range map[string]string{"access_evaluation_endpoint": eval, "access_evaluations_endpoint": evals,
		"search_subject_endpoint": subj, "search_resource_endpoint": res, "search_action_endpoint": action} {
		if meta[k] != ls.url+path {
			t.Errorf("6: %s = %v, want %s", k, meta[k], ls.url+path)
		}
	}
	if meta["policy_decision_point"] != ls.url {
		t.Errorf("6: policy_decision_point = %v, want %s", meta["policy_decision_point"], ls.url)
	}
}

// conformanceBeyond checks what the scenario implies without testing it:
// rule 6 is decided by the asserted role, not by bob's name; the asserted
// properties are on the record, marked as the PEP's; an agent's request
// properties are not its attributes.
func conformanceBeyond(t *testing.T, ls *liveServer) {
	t.Helper()
	const archived = `"action":{"name":"write"},"resource":{"type":"record","id":"record-2","properties":{"status":"archived"}}`
	for body, want := range map[string]bool{
		`{"subject":{"type":"user","id":"carol","properties":{"role":"admin"}},` + archived + `}`:   true,
		`{"subject":{"type":"user","id":"carol","properties":{"role":"auditor"}},` + archived + `}`: false,
		`{"subject":{"type":"user","id":"carol"},` + archived + `}`:                                 false,
		`{"subject":{"type":"agent","id":"bot","properties":{"role":"admin"}},` + archived + `}`:    false,
	} {
		if status, _, out := ls.authzen("/access/v1/evaluation", ls.token, body, nil); status != 200 || out["decision"] != want {
			t.Errorf("%s: %d %v, want decision %v", body, status, out, want)
		}
	}
	_, _, out := ls.authzen("/access/v1/evaluation", ls.token, `{"subject":{"type":"user","id":"bob","properties":{"role":"admin"}},`+archived+`}`, nil)
	c, _ := out["context"].(map[string]any)
	if ids, _ := c["policy_ids"].([]any); !slices.Contains(ids, any("admins-write-archived")) {
		t.Errorf("2.2.5 policy_ids %v lack admins-write-archived", c["policy_ids"])
	}
	evs, err := ls.admin.ListAuditEvents(t.Context(), admin.AuditQuery{Family: "authorization", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs.Items {
		if ev.ID != c["id"] {
			continue
		}
		var details struct {
			Subject map[string]any `json:"subject"`
			Input   struct {
				Subject map[string]any `json:"subject"`
			} `json:"input"`
		}
		if err := json.Unmarshal(ev.Details, &details); err != nil {
			t.Fatal(err)
		}
		props, _ := details.Input.Subject["properties"].(map[string]any)
		if ev.Agent != nil || details.Subject["type"] != "user" || details.Input.Subject["asserted_by"] != "pep" || props["role"] != "admin" {
			t.Errorf("2.2.5 event: agent %v, details %s; want no agent, the user and his asserted role", ev.Agent, ev.Details)
		}
		return
	}
	t.Errorf("no event %v for 2.2.5", c["id"])
}

// checkConformanceAnswer checks a 200 answer's structure and, where the
// scenario checks them, its decisions or results.
func checkConformanceAnswer(t *testing.T, tc conformanceCase, out map[string]any) {
	t.Helper()
	if c, ok := out["context"]; ok {
		if _, ok := c.(map[string]any); !ok {
			t.Errorf("context %v is not an object", c)
		}
	}
	switch {
	case tc.batch != nil:
		evs, ok := out["evaluations"].([]any)
		if !ok || len(evs) != len(tc.batch) {
			t.Fatalf("evaluations %v, want %d", out, len(tc.batch))
		}
		for i, e := range evs {
			if d, ok := e.(map[string]any)["decision"].(bool); !ok || d != tc.batch[i] {
				t.Errorf("evaluations[%d] = %v, want decision %v", i, e, tc.batch[i])
			}
		}
	case tc.results != nil || strings.Contains(tc.path, "/search/"):
		rs, ok := out["results"].([]any)
		if !ok {
			t.Fatalf("no results array: %v", out)
		}
		var got []string
		for _, r := range rs {
			m, _ := r.(map[string]any)
			if typ, _ := m["type"].(string); (strings.HasSuffix(tc.path, "/subject") && typ != "user") ||
				(strings.HasSuffix(tc.path, "/resource") && typ != "record") {
				t.Errorf("result %v is not of the type searched", r)
			}
			if n, ok := m["name"].(string); ok {
				got = append(got, n)
			} else if typ, _ := m["type"].(string); typ != "" && m["id"] != nil {
				got = append(got, typ+"/"+m["id"].(string))
			} else {
				t.Errorf("result %v has neither name nor type and id", r)
			}
		}
		for _, w := range tc.results {
			if !slices.Contains(got, w) {
				t.Errorf("results %v lack %s", got, w)
			}
		}
		if tc.results != nil && len(tc.results) == 0 && len(got) != 0 {
			t.Errorf("results %v, want none", got)
		}
		if page, ok := out["page"]; ok {
			if p, ok := page.(map[string]any); !ok {
				t.Errorf("page %v is not an object", page)
			} else if _, ok := p["next_token"].(string); !ok {
				t.Errorf("page.next_token %v is not a string", p["next_token"])
			}
		}
	default:
		d, ok := out["decision"].(bool)
		if !ok {
			t.Fatalf("no boolean decision: %v", out)
		}
		if tc.decision != nil && d != *tc.decision {
			t.Errorf("decision %v, want %v (%v)", d, *tc.decision, out)
		}
	}
}
