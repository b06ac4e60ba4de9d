package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

const authzenPolicies = `@id("granted-low-risk")
permit (principal, action, resource)
when { principal.action_classes.contains(context.action_class) && context.risk_tier == "low" };

@id("delete-needs-approval")
@decision("conditional")
@reason("deleting needs a human")
permit (principal, action in Action::"delete", resource);

@id("no-secrets")
@reason("secrets are off limits")
forbid (principal, action, resource is Resource) when { resource.type == "secret" };
`

// authzen sends an AuthZEN request with a bearer token and decodes the
// answer; the answer must be JSON (a decision) or problem+json.
func (ls *liveServer) authzen(path, token, body string, hdr map[string]string) (int, http.Header, map[string]any) {
	ls.t.Helper()
	req, err := http.NewRequestWithContext(ls.t.Context(), http.MethodPost, ls.url+path, strings.NewReader(body))
	if err != nil {
		ls.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ls.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		ls.t.Fatalf("%s: %d, body is not JSON: %v", path, resp.StatusCode, err)
	}
	want := "application/json"
	if resp.StatusCode != http.StatusOK {
		want = "application/problem+json"
	}
	if ct := resp.Header.Get("Content-Type"); ct != want {
		ls.t.Errorf("%s: %d with Content-Type %q, want %q", path, resp.StatusCode, ct, want)
	}
	return resp.StatusCode, resp.Header, m
}

// pdpToken is an access token for the agent, with agentid's issuer as
// audience.
func (ls *liveServer) pdpToken(clientID, secret string) string {
	ls.t.Helper()
	basic := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(clientID+":"+secret))}}
	status, _, body := ls.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "resource": {ls.url}}, basic)
	tok, _ := body["access_token"].(string)
	if status != 200 || tok == "" {
		ls.t.Fatalf("token for the PDP: %d %v", status, body)
	}
	return tok
}

func TestAuthZENOverHTTP(t *testing.T) {
	ls := startServer(t)
	ctx := t.Context()
	if _, err := ls.admin.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: authzenPolicies, Comment: "first"}); err != nil {
		t.Fatal(err)
	}
	read := []string{"read"}
	if _, err := ls.admin.UpdateAgent(ctx, "bot", admin.UpdateAgentRequest{ActionClasses: &read}); err != nil {
		t.Fatal(err)
	}
	eval := func(action, rtype string) string {
		return `{"subject":{"type":"agent","id":"bot"},"action":{"name":"` + action + `"},"resource":{"type":"` + rtype + `","id":"1"}}`
	}

	// An admin token; X-Request-ID is echoed.
	status, h, body := ls.authzen("/access/v1/evaluation", ls.token, eval("read", "ticket"), map[string]string{"X-Request-ID": "req-42"})
	ctxOut, _ := body["context"].(map[string]any)
	if status != 200 || body["decision"] != true || h.Get("X-Request-ID") != "req-42" ||
		ctxOut["decision"] != "allow" || !equalJSON(ctxOut["policy_ids"], []any{"granted-low-risk"}) {
		t.Fatalf("evaluation: %d %v (X-Request-ID %q)", status, body, h.Get("X-Request-ID"))
	}
	status, _, body = ls.authzen("/access/v1/evaluation", ls.token, eval("delete", "ticket"), nil)
	ctxOut, _ = body["context"].(map[string]any)
	if status != 200 || body["decision"] != false || ctxOut["decision"] != "conditional" ||
		!equalJSON(ctxOut["obligations"], []any{"approval"}) || !equalJSON(ctxOut["reason_admin"], map[string]any{"en": "deleting needs a human"}) {
		t.Errorf("conditional evaluation: %d %v", status, body)
	}
	status, _, body = ls.authzen("/access/v1/evaluation", ls.token, eval("read", "secret"), nil)
	if ctxOut, _ = body["context"].(map[string]any); status != 200 || body["decision"] != false || !equalJSON(ctxOut["policy_ids"], []any{"no-secrets"}) {
		t.Errorf("forbid overrides permit: %d %v", status, body)
	}

	// Batch: defaults merged, each item may override; the semantics.
	batch := func(sem string) string {
		return `{"subject":{"type":"agent","id":"bot"},"action":{"name":"read"},"options":{"evaluations_semantic":"` + sem + `"},
			"evaluations":[{"resource":{"type":"ticket","id":"1"}},{"resource":{"type":"secret","id":"2"}},
			{"action":{"name":"launch"},"resource":{"type":"ticket","id":"3"}},{"action":{"name":"delete"},"resource":{"type":"ticket","id":"4"}}]}`
	}
	for sem, want := range map[string][]any{
		"execute_all":            {true, false, false, false},
		"deny_on_first_deny":     {true, false},
		"permit_on_first_permit": {true},
	} {
		status, _, body := ls.authzen("/access/v1/evaluations", ls.token, batch(sem), nil)
		evs, _ := body["evaluations"].([]any)
		var got []any
		for _, e := range evs {
			got = append(got, e.(map[string]any)["decision"])
		}
		if status != 200 || !equalJSON(got, want) {
			t.Errorf("evaluations %s: %d %v", sem, status, body)
		}
		if sem == "execute_all" {
			errCtx := evs[2].(map[string]any)["context"].(map[string]any)["error"].(map[string]any)
			if errCtx["status"] != float64(400) || !strings.Contains(errCtx["message"].(string), "unknown action") {
				t.Errorf("item with an unknown action: %v", evs[2])
			}
		}
	}
	// Without evaluations (or with none), /evaluations is one evaluation,
	// answered as one (AuthZEN 1.0 §7.1; certification scenario 3.4.2-3).
	for _, body := range []string{eval("read", "ticket"), strings.TrimSuffix(eval("read", "ticket"), "}") + `,"evaluations":[]}`} {
		if status, _, out := ls.authzen("/access/v1/evaluations", ls.token, body, nil); status != 200 || out["decision"] != true || out["evaluations"] != nil {
			t.Errorf("evaluations without items: %d %v", status, out)
		}
	}
	// An item missing a member is an item error, the others are answered
	// (scenario 3.4.1); an item's entity lacking its type takes the
	// default's (scenario 3.2.7).
	status, _, body = ls.authzen("/access/v1/evaluations", ls.token, `{"subject":{"type":"agent","id":"bot"},"action":{"name":"read"},
		"resource":{"type":"ticket"},"evaluations":[{"resource":{"id":"1"}},{}, {"resource":{"type":"secret","id":"2"}}]}`, nil)
	if evs, _ := body["evaluations"].([]any); status != 200 || len(evs) != 3 ||
		!equalJSON(evs[0].(map[string]any)["decision"], true) ||
		!strings.Contains(fmt.Sprint(evs[1]), "resource.id") || !equalJSON(evs[2].(map[string]any)["decision"], false) {
		t.Errorf("batch with an incomplete item: %d %v", status, body)
	}
	// AuthZEN's examples give times without seconds.
	if status, _, body = ls.authzen("/access/v1/evaluation", ls.token, strings.TrimSuffix(eval("read", "ticket"), "}")+
		`,"context":{"time":"2025-06-27T18:03-07:00","ip":"192.168.1.1"}}`, nil); status != 200 || body["decision"] != true {
		t.Errorf("evaluation with a time without seconds: %d %v", status, body)
	}

	// An agent's access token: the evaluate permission and the issuer as
	// audience are required.
	pep, _, _, pepSecret := ls.newAgent(ctx, "pep", []string{"evaluate"})
	aud := []string{ls.url}
	if _, err := ls.admin.UpdateAgent(ctx, "pep", admin.UpdateAgentRequest{Audiences: &aud}); err != nil {
		t.Fatal(err)
	}
	pepToken := ls.pdpToken(pep.ClientID, pepSecret)
	status, _, body = ls.authzen("/access/v1/evaluation", pepToken, eval("read", "ticket"), nil)
	if status != 200 || body["decision"] != true {
		t.Errorf("evaluation with an access token: %d %v", status, body)
	}
	noPerm, _, _, noPermSecret := ls.newAgent(ctx, "no-perm", nil)
	if _, err := ls.admin.UpdateAgent(ctx, "no-perm", admin.UpdateAgentRequest{Audiences: &aud}); err != nil {
		t.Fatal(err)
	}
	status, h, body = ls.authzen("/access/v1/evaluation", ls.pdpToken(noPerm.ClientID, noPermSecret), eval("read", "ticket"), nil)
	if status != 403 || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Errorf("access token without the permission: %d %v %q", status, body, h.Get("WWW-Authenticate"))
	}
	basic := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(ls.agent.ClientID+":"+ls.secret))}}
	_, _, tokBody := ls.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic)
	otherAud, _ := tokBody["access_token"].(string)
	status, h, body = ls.authzen("/access/v1/evaluation", otherAud, eval("read", "ticket"), nil)
	if status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("access token for another audience: %d %v %q", status, body, h.Get("WWW-Authenticate"))
	}

	// The decisions are on the record, with the caller as actor.
	evs, err := ls.admin.ListAuditEvents(ctx, admin.AuditQuery{Family: "authorization", PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	actors := map[string]int{}
	for _, ev := range evs.Items {
		if ev.Type == "decision.made" {
			actors[ev.Actor.Type]++
		}
	}
	if actors["admin"] < 10 || actors["agent"] != 1 {
		t.Errorf("decision events by actor type = %v, want ≥ 10 by the admin and 1 by the agent", actors)
	}

	// PDP metadata.
	_, _, meta := ls.do(mustGet(t, ls.url+"/.well-known/authzen-configuration"))
	if meta["policy_decision_point"] != ls.url || meta["access_evaluation_endpoint"] != ls.url+"/access/v1/evaluation" ||
		meta["access_evaluations_endpoint"] != ls.url+"/access/v1/evaluations" {
		t.Errorf("metadata = %v", meta)
	}
}

// TestAuthZENBadInput: every malformed request gets a 4xx problem and
// records no decision.
func TestAuthZENBadInput(t *testing.T) {
	ls := startServer(t)
	ctx := t.Context()
	if _, err := ls.admin.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: authzenPolicies}); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		evs, err := ls.admin.ListAuditEvents(ctx, admin.AuditQuery{Family: "authorization", PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs.Items)
	}
	before := count()
	deep := strings.Repeat(`{"a":`, 20) + `1` + strings.Repeat(`}`, 20)
	for _, tc := range []struct {
		name, path, token, body string
		status                  int
	}{
		{"malformed JSON", "/access/v1/evaluation", ls.token, `{"subject":`, 400},
		{"not an object", "/access/v1/evaluation", ls.token, `[1,2]`, 400},
		{"empty body", "/access/v1/evaluation", ls.token, ``, 400},
		{"two objects", "/access/v1/evaluation", ls.token, `{} {}`, 400},
		{"missing subject", "/access/v1/evaluation", ls.token, `{"action":{"name":"read"},"resource":{"type":"t","id":"1"}}`, 400},
		{"missing subject type", "/access/v1/evaluation", ls.token, `{"subject":{"id":"bot"},"action":{"name":"read"},"resource":{"type":"t","id":"1"}}`, 400},
		{"missing subject id", "/access/v1/evaluation", ls.token, `{"subject":{"type":"agent"},"action":{"name":"read"},"resource":{"type":"t","id":"1"}}`, 400},
		{"subject type not a string", "/access/v1/evaluation", ls.token, `{"subject":{"type":1,"id":"bot"},"action":{"name":"read"},"resource":{"type":"t","id":"1"}}`, 400},
		{"missing action name", "/access/v1/evaluation", ls.token, `{"subject":{"type":"agent","id":"bot"},"action":{},"resource":{"type":"t","id":"1"}}`, 400},
		{"unknown action", "/access/v1/evaluation", ls.token, `{"subject":{"type":"agent","id":"bot"},"action":{"name":"launch"},"resource":{"type":"t","id":"1"}}`, 400},
		{"other subject type", "/access/v1/evaluation", ls.token, `{"subject":{"type":"spaceship","id":"alice"},"action":{"name":"read"},"resource":{"type":"t","id":"1"}}`, 400},
		{"user properties not an object", "/access/v1/evaluation", ls.token, `{"subject":{"type":"user","id":"alice","properties":["admin"]},"action":{"name":"read"},"resource":{"type":"t","id":"1"}}`, 400},
		{"action properties not an object", "/access/v1/evaluation", ls.token, `{"subject":{"type":"user","id":"alice"},"action":{"name":"delete","properties":true},"resource":{"type":"t","id":"1"}}`, 400},
		{"oversized context", "/access/v1/evaluation", ls.token, `{"subject":{"type":"agent","id":"bot"},"action":{"name":"read"},"resource":{"type":"t","id":"1"},"context":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`, 400},
		{"body too large", "/access/v1/evaluation", ls.token, `{"context":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`, 413},
		{"deeply nested properties", "/access/v1/evaluation", ls.token, `{"subject":{"type":"agent","id":"bot"},"action":{"name":"read"},"resource":{"type":"t","id":"1","properties":` + deep + `}}`, 400},
		{"not JSON", "/access/v1/evaluation", ls.token, `subject=bot`, 400},
		{"unknown semantic", "/access/v1/evaluations", ls.token, `{"subject":{"type":"agent","id":"bot"},"action":{"name":"read"},"resource":{"type":"t","id":"1"},"options":{"evaluations_semantic":"sometimes"}}`, 400},
		{"too many evaluations", "/access/v1/evaluations", ls.token, `{"subject":{"type":"agent","id":"bot"},"action":{"name":"read"},"evaluations":[` + strings.TrimSuffix(strings.Repeat(`{"resource":{"type":"t","id":"1"}},`, 1001), ",") + `]}`, 400},
		{"no token", "/access/v1/evaluation", "", `{}`, 401},
		{"bad admin token", "/access/v1/evaluation", "aida_nope", `{}`, 401},
		{"forged access token", "/access/v1/evaluation", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", `{}`, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := ls.authzen(tc.path, tc.token, tc.body, nil)
			if status != tc.status || body["type"] == nil {
				t.Errorf("%d %v, want %d with a problem", status, body, tc.status)
			}
		})
	}
	// A body that is not application/json is a 400 (AuthZEN's error table
	// has no 415; certification scenario 2.4.3).
	if status, _, body := ls.authzen("/access/v1/evaluation", ls.token, `{}`, map[string]string{"Content-Type": "text/plain"}); status != 400 || body["type"] == nil {
		t.Errorf("text/plain body: %d %v, want 400 with a problem", status, body)
	}
	if n := count(); n != before {
		t.Errorf("%d authorization events after bad requests, want %d", n, before)
	}
	// The wrong method is a 405 with Allow.
	resp, err := http.Get(ls.url + "/access/v1/evaluation")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET /access/v1/evaluation = %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
