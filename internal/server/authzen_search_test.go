package server_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

const searchPolicies = `@id("readers")
permit (principal, action in Action::"read", resource)
when { principal.action_classes.contains("read") };

@id("bot-writes-ticket-7")
permit (principal == Agent::"bot", action == Action::"write", resource == Resource::"ticket/7");

@id("writes-ticket-9")
permit (principal, action == Action::"write", resource == Resource::"ticket/9");

@id("ticket-9-frozen")
forbid (principal, action, resource == Resource::"ticket/9") when { resource.hasTag("frozen") };

@id("deletes-need-approval")
@decision("conditional")
permit (principal, action in Action::"delete", resource);
`

// hits returns the ids (or names) of a search answer's results.
func hits(t *testing.T, body map[string]any) []string {
	t.Helper()
	rs, ok := body["results"].([]any)
	if !ok {
		t.Fatalf("no results array: %v", body)
	}
	var out []string
	for _, r := range rs {
		m := r.(map[string]any)
		if n, ok := m["name"].(string); ok {
			out = append(out, n)
			continue
		}
		out = append(out, fmt.Sprint(m["type"], "/", m["id"]))
	}
	return out
}

func TestAuthZENSearchOverHTTP(t *testing.T) {
	ls := startServer(t)
	ctx := t.Context()
	if _, err := ls.admin.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: searchPolicies}); err != nil {
		t.Fatal(err)
	}
	read := []string{"read"}
	for _, name := range []string{"bot", "reader-a", "reader-b", "reader-c", "writer"} {
		if name != "bot" {
			ls.newAgent(ctx, name, nil)
		}
		classes := read
		if name == "writer" {
			classes = []string{"write"}
		}
		if _, err := ls.admin.UpdateAgent(ctx, name, admin.UpdateAgentRequest{ActionClasses: &classes}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ls.admin.SuspendAgent(ctx, "reader-c", admin.TransitionRequest{Reason: "test"}); err != nil {
		t.Fatal(err)
	}

	// Subject search: the active agents allowed to read; X-Request-ID echoed.
	status, h, body := ls.authzen("/access/v1/search/subject", ls.token,
		`{"subject":{"type":"agent"},"action":{"name":"read"},"resource":{"type":"ticket","id":"1"}}`, map[string]string{"X-Request-ID": "s-1"})
	if got := hits(t, body); status != 200 || h.Get("X-Request-ID") != "s-1" ||
		!slices.Equal(got, []string{"agent/bot", "agent/reader-a", "agent/reader-b"}) {
		t.Errorf("subject search = %d %v", status, body)
	}
	// Paged: limit 1 walks the same three, one at a time.
	var paged []string
	token := ""
	for range 5 {
		req := `{"subject":{"type":"agent"},"action":{"name":"read"},"resource":{"type":"ticket","id":"1"},"page":{"limit":1` +
			map[bool]string{true: `,"token":"` + token + `"`, false: ``}[token != ""] + `}}`
		status, _, body := ls.authzen("/access/v1/search/subject", ls.token, req, nil)
		page, _ := body["page"].(map[string]any)
		if status != 200 || page == nil {
			t.Fatalf("paged subject search = %d %v", status, body)
		}
		paged = append(paged, hits(t, body)...)
		if token, _ = page["next_token"].(string); token == "" {
			break
		}
	}
	if !slices.Equal(paged, []string{"agent/bot", "agent/reader-a", "agent/reader-b"}) {
		t.Errorf("paged subject search = %v", paged)
	}
	// Another subject type matches nothing.
	if status, _, body = ls.authzen("/access/v1/search/subject", ls.token,
		`{"subject":{"type":"spaceship"},"action":{"name":"read"},"resource":{"type":"ticket","id":"1"}}`, nil); status != 200 || len(hits(t, body)) != 0 {
		t.Errorf("spaceship search = %d %v", status, body)
	}

	// Resource search: the resources the policies name, allowed.
	status, _, body = ls.authzen("/access/v1/search/resource", ls.token,
		`{"subject":{"type":"agent","id":"bot"},"action":{"name":"write"},"resource":{"type":"ticket"}}`, nil)
	if got := hits(t, body); status != 200 || !slices.Equal(got, []string{"ticket/7", "ticket/9"}) {
		t.Errorf("resource search = %d %v", status, body)
	}
	status, _, body = ls.authzen("/access/v1/search/resource", ls.token,
		`{"subject":{"type":"agent","id":"writer"},"action":{"name":"write"},"resource":{"type":"ticket","properties":{"frozen":"yes"}}}`, nil)
	if got := hits(t, body); status != 200 || len(got) != 0 {
		t.Errorf("resource search with a forbidding property = %d %v", status, body)
	}

	// Action search: the actions allowed (the conditional delete is not).
	status, _, body = ls.authzen("/access/v1/search/action", ls.token,
		`{"subject":{"type":"agent","id":"bot"},"resource":{"type":"ticket","id":"7"},"context":{"time":"2026-11-25T10:00:00Z"}}`, nil)
	if got := hits(t, body); status != 200 || !slices.Equal(got, []string{"read", "write"}) {
		t.Errorf("action search = %d %v", status, body)
	}
	// An unknown agent matches nothing.
	status, _, body = ls.authzen("/access/v1/search/action", ls.token,
		`{"subject":{"type":"agent","id":"nobody"},"resource":{"type":"ticket","id":"7"}}`, nil)
	if status != 200 || len(hits(t, body)) != 0 {
		t.Errorf("action search for an unknown agent = %d %v", status, body)
	}

	// Every search is an audit event.
	evs, err := ls.admin.ListAuditEvents(ctx, admin.AuditQuery{Family: "authorization", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs.Items {
		if ev.Type == "decision.searched" {
			n++
		}
	}
	if n < 9 {
		t.Errorf("%d decision.searched events, want one per search (≥ 9)", n)
	}

	// The metadata lists the search endpoints.
	_, _, meta := ls.do(mustGet(t, ls.url+"/.well-known/authzen-configuration"))
	if meta["search_subject_endpoint"] != ls.url+"/access/v1/search/subject" ||
		meta["search_resource_endpoint"] != ls.url+"/access/v1/search/resource" ||
		meta["search_action_endpoint"] != ls.url+"/access/v1/search/action" {
		t.Errorf("metadata = %v", meta)
	}
}

func TestAuthZENSearchBadInput(t *testing.T) {
	ls := startServer(t)
	if _, err := ls.admin.ApplyPolicy(t.Context(), admin.ApplyPolicyRequest{Text: searchPolicies}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, body string }{
		{"subject search without action", "/access/v1/search/subject", `{"subject":{"type":"agent"},"resource":{"type":"t","id":"1"}}`},
		{"subject search without resource id", "/access/v1/search/subject", `{"subject":{"type":"agent"},"action":{"name":"read"},"resource":{"type":"t"}}`},
		{"subject search without subject type", "/access/v1/search/subject", `{"subject":{},"action":{"name":"read"},"resource":{"type":"t","id":"1"}}`},
		{"resource search without subject", "/access/v1/search/resource", `{"action":{"name":"read"},"resource":{"type":"t"}}`},
		{"resource search without subject id", "/access/v1/search/resource", `{"subject":{"type":"agent"},"action":{"name":"read"},"resource":{"type":"t"}}`},
		{"action search without resource", "/access/v1/search/action", `{"subject":{"type":"agent","id":"bot"}}`},
		{"unknown action", "/access/v1/search/subject", `{"subject":{"type":"agent"},"action":{"name":"launch"},"resource":{"type":"t","id":"1"}}`},
		{"limit zero", "/access/v1/search/action", `{"subject":{"type":"agent","id":"bot"},"resource":{"type":"t","id":"1"},"page":{"limit":0}}`},
		{"forged token", "/access/v1/search/action", `{"subject":{"type":"agent","id":"bot"},"resource":{"type":"t","id":"1"},"page":{"token":"eyJrIjoiYWN0aW9uIn0"}}`},
		{"malformed", "/access/v1/search/action", `{"subject":`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := ls.authzen(tc.path, ls.token, tc.body, nil)
			if status != 400 || body["type"] == nil {
				t.Errorf("%d %v, want 400 with a problem", status, body)
			}
		})
	}
	// A token of one search does not continue another.
	_, _, body := ls.authzen("/access/v1/search/subject", ls.token,
		`{"subject":{"type":"agent"},"action":{"name":"read"},"resource":{"type":"t","id":"1"},"page":{"limit":1}}`, nil)
	page, _ := body["page"].(map[string]any)
	tok, _ := page["next_token"].(string)
	if tok != "" {
		status, _, _ := ls.authzen("/access/v1/search/subject", ls.token,
			`{"subject":{"type":"agent"},"action":{"name":"read"},"resource":{"type":"t","id":"2"},"page":{"token":"`+tok+`"}}`, nil)
		if status != 400 {
			t.Errorf("a token reused for another search = %d, want 400", status)
		}
	}
	if status, _, _ := ls.authzen("/access/v1/search/subject", "", `{}`, nil); status != 401 {
		t.Errorf("search without a token = %d, want 401", status)
	}
}
