package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

func TestApprovalCommandsAgainstServer(t *testing.T) {
	url, tok := realServer(t)
	cl, err := admin.New(url, tok)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	owner, err := cl.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: "alice@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateAgent(ctx, admin.CreateAgentRequest{Name: "pay-bot", Owners: []string{owner.ID},
		Purpose: "tests", ActionClasses: []string{"payments"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: `@id("pay")
@decision("conditional")
permit (principal, action in Action::"payments", resource);`}); err != nil {
		t.Fatal(err)
	}
	evaluate := func(invoice string) map[string]any {
		t.Helper()
		body := `{"subject":{"type":"agent","id":"pay-bot"},"action":{"name":"payments"},"resource":{"type":"invoice","id":"` +
			invoice + `"},"context":{"amount":120}}`
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/access/v1/evaluation", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	id, _ := evaluate("9")["context"].(map[string]any)["approval_id"].(string)
	if id == "" {
		t.Fatal("no approval id in the conditional decision")
	}

	r := runAs(t, url, tok, "approval", "list", "--state", "pending")
	wantCode(t, r, ExitOK)
	contains(t, "list", r.stdout, id, "pay-bot", "invoice/9", "amount≤120")
	r = runAs(t, url, tok, "approval", "show", id)
	wantCode(t, r, ExitOK)
	contains(t, "show", r.stdout, "pending", "payments", "pay (version 1)")
	r = runAs(t, url, tok, "approval", "deny", id)
	wantCode(t, r, ExitUsage)
	r = runAs(t, url, tok, "approval", "approve", id, "--reason", "fine", "--ttl", "5m")
	wantCode(t, r, ExitOK)
	contains(t, "approve", r.stdout, "approved until")
	if d := evaluate("9"); d["decision"] != true {
		t.Errorf("evaluation after approve: %v", d)
	}
	r = runAs(t, url, tok, "approval", "deny", id, "--reason", "too late")
	wantCode(t, r, ExitError)
	contains(t, "deny an approved request", r.stderr, "approved")
	r = runAs(t, url, tok, "-o", "json", "approval", "show", id)
	wantCode(t, r, ExitOK)
	contains(t, "show json", r.stdout, `"state": "approved"`, `"decide_reason": "fine"`)
}
