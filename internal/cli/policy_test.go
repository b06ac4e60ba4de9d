package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const cliPolicies = `@id("granted-low-risk")
permit (principal, action, resource)
when { principal.action_classes.contains(context.action_class) && context.risk_tier == "low" };

@id("pay-with-approval")
@decision("conditional")
permit (principal, action in Action::"payments", resource);
`

// TestPolicyCommandsAgainstServer drives agentid policy and agentid
// action-class against a real server.
func TestPolicyCommandsAgainstServer(t *testing.T) {
	url, tok := realServer(t, nil)
	cl, owner := newOwner(t, url, tok, "alice@example.org")
	ctx := t.Context()
	if _, err := cl.CreateAgent(ctx, admin.CreateAgentRequest{Name: "invoice-bot", Owners: []string{owner},
		Purpose: "tests", ActionClasses: []string{"read", "payments"}}); err != nil {
		t.Fatal(err)
	}

	// action-class set and list.
	r := runAs(t, url, tok, "action-class", "set", "payments", "--action", "invoice.pay", "--action", "invoice.refund", "--description", "Moves money")
	wantCode(t, r, ExitOK)
	contains(t, "set output", r.stdout, "invoice.pay, invoice.refund", "high")
	r = runAs(t, url, tok, "action-class", "set", "deploy")
	wantCode(t, r, ExitError)
	contains(t, "set without a tier", r.stderr, "risk_tier")
	r = runAs(t, url, tok, "action-class", "list")
	wantCode(t, r, ExitOK)
	contains(t, "list output", r.stdout, "payments", "invoice.pay,invoice.refund", "external-comms")

	// A broken file is refused with line and column; nothing is applied.
	r = runAs(t, url, tok, "policy", "apply", writeTemp(t, "bad.cedar", "@id(\"a\")\npermit (principal, action, resource)\nwhen { resource.amount > 3 };\n"))
	wantCode(t, r, ExitError)
	contains(t, "apply error", r.stderr, "1:1", "amount")

	// apply, test, history, diff, rollback.
	file := writeTemp(t, "policies.cedar", cliPolicies)
	r = runAs(t, url, tok, "policy", "apply", file, "--comment", "first")
	wantCode(t, r, ExitOK)
	contains(t, "apply output", r.stdout, "version 1", "granted-low-risk")

	cases := []admin.PolicyTestCase{
		{Name: "read", Request: json.RawMessage(`{"subject":{"type":"agent","id":"invoice-bot"},"action":{"name":"read"},"resource":{"type":"invoice","id":"1"}}`), Expect: "allow"},
		{Name: "pay", Request: json.RawMessage(`{"subject":{"type":"agent","id":"invoice-bot"},"action":{"name":"invoice.pay"},"resource":{"type":"invoice","id":"1"}}`), Expect: "conditional"},
	}
	b, _ := json.Marshal(cases)
	casesFile := writeTemp(t, "cases.json", string(b))
	r = runAs(t, url, tok, "policy", "test", file, "--cases", casesFile)
	wantCode(t, r, ExitOK)
	contains(t, "test output", r.stdout, "2 passed, 0 failed")
	cases[1].Expect = "allow"
	b, _ = json.Marshal(cases)
	r = runAs(t, url, tok, "policy", "test", file, "--cases", writeTemp(t, "cases2.json", string(b)))
	wantCode(t, r, ExitError)
	contains(t, "failing test output", r.stdout, "FAIL", "1 passed, 1 failed")

	second := strings.Replace(cliPolicies, `"low"`, `"medium"`, 1) + "\n@id(\"no-deletes\") forbid (principal, action in Action::\"delete\", resource);\n"
	r = runAs(t, url, tok, "policy", "diff", writeTemp(t, "second.cedar", second))
	wantCode(t, r, ExitOK)
	contains(t, "diff output", r.stdout, "1 added, 0 removed, 1 changed", "+ no-deletes", "~ granted-low-risk", `- `, `"low"`, `"medium"`)
	wantCode(t, runAs(t, url, tok, "policy", "apply", writeTemp(t, "second.cedar", second)), ExitOK)

	r = runAs(t, url, tok, "policy", "history")
	wantCode(t, r, ExitOK)
	contains(t, "history output", r.stdout, "VERSION", "first")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 3 || !strings.Contains(lines[1], "2") || !strings.Contains(lines[1], "yes") {
		t.Errorf("history:\n%s", r.stdout)
	}
	r = runAs(t, url, tok, "policy", "rollback", "1")
	wantCode(t, r, ExitOK)
	contains(t, "rollback output", r.stdout, "version 1 is active again")
	r = runAs(t, url, tok, "-o", "json", "policy", "history")
	wantCode(t, r, ExitOK)
	var page struct {
		Items []admin.PolicyVersion `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Items) != 2 || !page.Items[1].Active {
		t.Errorf("history -o json = %s (%v); want version 1 active", r.stdout, err)
	}
	r = runAs(t, url, tok, "policy", "show", "1")
	wantCode(t, r, ExitOK)
	if r.stdout != cliPolicies {
		t.Errorf("show 1 = %q, want the file as applied", r.stdout)
	}
	r = runAs(t, url, tok, "policy", "rollback", "9")
	wantCode(t, r, ExitError)
	contains(t, "rollback to an unknown version", r.stderr, "no policy version 9")
	wantCode(t, runAs(t, url, tok, "policy", "apply", filepath.Join(t.TempDir(), "missing.cedar")), ExitUsage)
}
