package cli

import (
	"encoding/json"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

// TestPolicyDryRunAgainstServer records decisions through the AuthZEN
// endpoint of a real server, then replays them against a candidate with
// agentid policy apply --dry-run and policy diff --replay.
func TestPolicyDryRunAgainstServer(t *testing.T) {
	url, tok := realServer(t, nil)
	cl, owner := newOwner(t, url, tok, "alice@example.org")
	ctx := t.Context()
	if _, err := cl.CreateAgent(ctx, admin.CreateAgentRequest{Name: "invoice-bot", Owners: []string{owner},
		Purpose: "tests", ActionClasses: []string{"read", "payments"}}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, runAs(t, url, tok, "policy", "apply", writeTemp(t, "p.cedar", cliPolicies)), ExitOK)
	for _, body := range []string{
		`{"subject":{"type":"agent","id":"invoice-bot"},"action":{"name":"read"},"resource":{"type":"invoice","id":"1"}}`,
		`{"subject":{"type":"agent","id":"invoice-bot"},"action":{"name":"payments"},"resource":{"type":"invoice","id":"2"}}`,
	} {
		evaluate(t, url, tok, body)
	}

	// The candidate forbids reads: the recorded read would change.
	candidate := writeTemp(t, "c.cedar", cliPolicies+"\n@id(\"no-reads\") forbid (principal, action in Action::\"read\", resource);\n")
	r := runAs(t, url, tok, "policy", "apply", candidate, "--dry-run")
	wantCode(t, r, ExitOK)
	contains(t, "dry-run output", r.stdout, "2 recorded decisions read, 2 replayed, 0 skipped; 1 would change",
		"Nothing applied", "invoice/1", "allow", "deny", "no-reads")
	if h, err := cl.PolicyHistory(ctx, 10, ""); err != nil || h.LatestVersion != 1 {
		t.Errorf("history after a dry run = %+v, %v; want version 1 only", h, err)
	}

	r = runAs(t, url, tok, "-o", "json", "policy", "diff", candidate, "--replay", "1")
	wantCode(t, r, ExitOK)
	var out struct {
		Diff   admin.PolicyDiff   `json:"diff"`
		DryRun admin.PolicyDryRun `json:"dry_run"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Diff.Added) != 1 ||
		out.DryRun.Examined != 1 || len(out.DryRun.Changed) != 0 {
		t.Errorf("diff --replay 1 -o json = %s (%v); want one added policy and the payment replayed unchanged", r.stdout, err)
	}
	r = runAs(t, url, tok, "policy", "diff", candidate, "--replay", "5")
	wantCode(t, r, ExitOK)
	contains(t, "diff --replay output", r.stdout, "1 added", "1 would change")

	wantCode(t, runAs(t, url, tok, "policy", "apply", candidate, "--replay", "5"), ExitUsage)
	wantCode(t, runAs(t, url, tok, "policy", "diff", "--replay", "5"), ExitUsage)
	r = runAs(t, url, tok, "policy", "apply", candidate, "--dry-run", "--replay", "20000")
	wantCode(t, r, ExitError)
	contains(t, "too many", r.stderr, "last")
}

// TestPolicyDryRunUserSubject: a recorded decision for a user subject
// (ADR 0016) is replayed and shown as user:<id>.
func TestPolicyDryRunUserSubject(t *testing.T) {
	url, tok := realServer(t, nil)
	base := cliPolicies + "\n@id(\"users-read\") permit (principal is Person, action in Action::\"read\", resource);\n"
	wantCode(t, runAs(t, url, tok, "policy", "apply", writeTemp(t, "p.cedar", base)), ExitOK)
	evaluate(t, url, tok, `{"subject":{"type":"user","id":"carol","properties":{"role":"clerk"}},"action":{"name":"read"},"resource":{"type":"invoice","id":"7"}}`)

	r := runAs(t, url, tok, "policy", "apply", writeTemp(t, "c.cedar", cliPolicies), "--dry-run")
	wantCode(t, r, ExitOK)
	contains(t, "dry-run output", r.stdout, "1 would change", "user:carol", "invoice/7", "allow", "deny")
	r = runAs(t, url, tok, "-o", "json", "policy", "apply", writeTemp(t, "c2.cedar", cliPolicies), "--dry-run")
	wantCode(t, r, ExitOK)
	var out admin.PolicyDryRun
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Changed) != 1 ||
		out.Changed[0].User != "carol" || out.Changed[0].Agent != "" {
		t.Errorf("dry run -o json = %s (%v); want one change for user carol", r.stdout, err)
	}
}
