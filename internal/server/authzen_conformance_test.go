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
// over HTTP against a real server, its fixture loaded as agents and Cedar
// policies. agentid's subjects are registered agents, so every "user"
// subject of the scenario is sent as "agent" (alice and bob are agents);
// bob's role "admin" is a label of his agent record, because agentid never
// takes a subject's attributes from the request. Action properties
// (rules 7 and 8: delete with soft true or false) are not visible to
// agentid's policies: those two decisions are not checked (see
// docs/decisions.md, "Not yet").
const conformancePolicies = `// Rules 1 and 3, and the subject search: every agent reads record-1.
@id("read-record-1")
permit (principal, action == Action::"read", resource == Resource::"record/record-1");

// Rule 2 (alice writes record-1; 3.2.3: active records).
@id("alice-writes-record-1")
permit (principal == Agent::"alice", action == Action::"write", resource == Resource::"record/record-1");

// Rule 6: an admin writes archived records. record-2 is the fixture's
// archived record: naming it lets resource search enumerate it.
@id("admins-write-archived")
permit (principal, action == Action::"write", resource)
when { principal.hasTag("role") && principal.getTag("role") == "admin" &&
       resource.hasTag("status") && resource.getTag("status") == "archived" };

@id("admins-write-record-2")
permit (principal, action == Action::"write", resource == Resource::"record/record-2")
when { principal.hasTag("role") && principal.getTag("role") == "admin" };

// Rule 5: nobody else writes an archived record.
@id("archived-is-read-only")
forbid (principal, action == Action::"write", resource)
when { resource.hasTag("status") && resource.getTag("status") == "archived" }
unless { principal.hasTag("role") && principal.getTag("role") == "admin" };
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
	for name, labels := range map[string]map[string]string{"alice": nil, "bob": {"role": "admin"}} {
		owner, err := ls.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: name + "@conformance.example"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ls.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: name, Owners: []string{owner.ID},
			Purpose: "AuthZEN certification fixture", Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ls.admin.SuspendAgent(ctx, "bot", admin.TransitionRequest{Reason: "not in the fixture"}); err != nil {
		t.Fatal(err)
	}
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
		// Basic Core and Basic Properties (rules 5 and 6; 7 and 8 need action properties).
		{"2.2.1", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`, 200, &yes, nil, nil},
		{"2.2.2", eval, `{"subject":{"type":"user","id":"bob"},"action":{"name":"write"},"resource":{"type":"record","id":"record-1"}}`, 200, &no, nil, nil},
		{"2.2.3", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"},"context":{"time":"2025-06-27T18:03-07:00","ip":"192.168.1.1"}}`, 200, &yes, nil, nil},
		{"2.2.4", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"write"},"resource":{"type":"record","id":"record-2","properties":{"status":"archived"}}}`, 200, &no, nil, nil},
		{"2.2.5", eval, `{"subject":{"type":"user","id":"bob","properties":{"role":"admin"}},"action":{"name":"write"},"resource":{"type":"record","id":"record-2","properties":{"status":"archived"}}}`, 200, &yes, nil, nil},
		{"2.2.6 (decision not checked)", eval, `{"subject":{"type":"user","id":"alice"},"action":{"name":"delete","properties":{"soft":true}},"resource":{"type":"record","id":"record-1"}}`, 200, nil, nil, nil},
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
		{"4.2.1", subj, `{"subject":{"type":"user"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`, 200, nil, nil, []string{"agent/alice", "agent/bob"}},
		{"4.2.2", subj, `{"subject":{"type":"user"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"},"context":{"time":"2025-06-27T18:03-07:00"}}`, 200, nil, nil, []string{"agent/alice", "agent/bob"}},
		{"4.2.4", subj, `{"subject":{"type":"user"},"action":{"name":"write"},"resource":{"type":"record","id":"record-2","properties":{"status":"archived"}}}`, 200, nil, nil, []string{"agent/bob"}},
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
			body := strings.ReplaceAll(tc.body, `"type":"user"`, `"type":"agent"`)
			status, h, out := ls.authzen(tc.path, ls.token, body, map[string]string{"X-Request-ID": "conf-" + tc.id})
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
		if _, _, out := ls.authzen(eval, ls.token, `{"subject":{"type":"agent","id":"bob"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}`, nil); out["decision"] != true {
			t.Errorf("2.6: %v", out)
		}
	}
	// 2.4.3 a body that is not application/json.
	if status, _, _ := ls.authzen(eval, ls.token, `{}`, map[string]string{"Content-Type": "text/plain"}); status != 400 {
		t.Errorf("2.4.3: %d, want 400", status)
	}
	// 4.5.2 the next page, when there is one.
	_, _, first := ls.authzen(subj, ls.token, `{"subject":{"type":"agent"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"},"page":{"limit":1}}`, nil)
	if tok, _ := first["page"].(map[string]any)["next_token"].(string); tok != "" {
		_, _, next := ls.authzen(subj, ls.token, `{"subject":{"type":"agent"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"},"page":{"token":"`+tok+`"}}`, nil)
		if page, ok := next["page"].(map[string]any); !ok || page["next_token"] == nil {
			t.Errorf("4.5.2: %v", next)
		}
	}
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
