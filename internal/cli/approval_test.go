package cli

import (
	"strings"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

func TestApprovalCommandsAgainstServer(t *testing.T) {
	url, tok := realServer(t, nil)
	cl, owner := newOwner(t, url, tok, "alice@example.org")
	ctx := t.Context()
	if _, err := cl.CreateAgent(ctx, admin.CreateAgentRequest{Name: "pay-bot", Owners: []string{owner},
		Purpose: "tests", ActionClasses: []string{"payments"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: `@id("pay")
@decision("conditional")
permit (principal, action in Action::"payments", resource);`}); err != nil {
		t.Fatal(err)
	}
	pay := `{"subject":{"type":"agent","id":"pay-bot"},"action":{"name":"payments"},"resource":{"type":"invoice","id":"9"},` +
		`"context":{"amount":120}}`
	id, _ := evaluate(t, url, tok, pay)["context"].(map[string]any)["approval_id"].(string)
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
	if d := evaluate(t, url, tok, pay); d["decision"] != true {
		t.Errorf("evaluation after approve: %v", d)
	}
	r = runAs(t, url, tok, "approval", "deny", id, "--reason", "too late")
	wantCode(t, r, ExitError)
	contains(t, "deny an approved request", r.stderr, "approved")
	r = runAs(t, url, tok, "-o", "json", "approval", "show", id)
	wantCode(t, r, ExitOK)
	contains(t, "show json", r.stdout, `"state": "approved"`, `"decide_reason": "fine"`)

	// A user subject's approval (ADR 0020): listed by --user, shown with
	// its user and no agent.
	if _, err := cl.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: `@id("pay")
@decision("conditional")
permit (principal, action in Action::"payments", resource);

@id("users-pay")
@decision("conditional")
permit (principal is Person, action in Action::"payments", resource);`}); err != nil {
		t.Fatal(err)
	}
	userPay := `{"subject":{"type":"user","id":"dave"},"action":{"name":"payments"},"resource":{"type":"invoice","id":"10"},` +
		`"context":{"amount":7}}`
	uid, _ := evaluate(t, url, tok, userPay)["context"].(map[string]any)["approval_id"].(string)
	if uid == "" {
		t.Fatal("no approval id in the conditional decision of a user")
	}
	r = runAs(t, url, tok, "approval", "list", "--user", "dave")
	wantCode(t, r, ExitOK)
	contains(t, "list --user", r.stdout, uid, "user dave", "invoice/10", "amount≤7")
	if strings.Contains(r.stdout, id) {
		t.Errorf("list --user dave shows the agent's approval %s:\n%s", id, r.stdout)
	}
	r = runAs(t, url, tok, "approval", "show", uid)
	wantCode(t, r, ExitOK)
	contains(t, "show a user's approval", r.stdout, "user", "dave", "pending")
	r = runAs(t, url, tok, "-o", "json", "approval", "show", uid)
	wantCode(t, r, ExitOK)
	contains(t, "show json of a user's approval", r.stdout, `"user": "dave"`)
	if strings.Contains(r.stdout, `"agent"`) {
		t.Errorf("a user's approval in JSON names an agent:\n%s", r.stdout)
	}
}
