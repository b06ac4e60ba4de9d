package cli

import (
	"encoding/json"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

// TestAgentExternalIDAgainstServer sets, shows and clears an agent's
// external id (its SCIM externalId, ADR 0025) with agent update
// --external-id against a real server; a bad one is refused with the
// field named.
func TestAgentExternalIDAgainstServer(t *testing.T) {
	url, tok := realServer(t, nil)
	_, owner := newOwner(t, url, tok, "o@example.org")
	run := func(args ...string) result {
		t.Helper()
		return runAs(t, url, tok, args...)
	}
	wantCode(t, run("agent", "create", "helpdesk-bot", "--owner", owner, "--purpose", "answers tickets"), ExitOK)

	r := run("agent", "update", "helpdesk-bot", "--external-id", "8ccc535b-716d-4d32-b3e9-57c8be449c82", "--if-version", "1")
	wantCode(t, r, ExitOK)
	contains(t, "agent update --external-id", r.stdout, "External ID:     8ccc535b-716d-4d32-b3e9-57c8be449c82\n", "Version:         2\n")

	show := func() admin.Agent {
		t.Helper()
		r := run("-o", "json", "agent", "show", "helpdesk-bot")
		wantCode(t, r, ExitOK)
		contains(t, "agent show -o json", r.stdout, `"external_id": `)
		var a admin.Agent
		if err := json.Unmarshal([]byte(r.stdout), &a); err != nil {
			t.Fatalf("agent show -o json: %v\n%s", err, r.stdout)
		}
		return a
	}
	if a := show(); a.ExternalID != "8ccc535b-716d-4d32-b3e9-57c8be449c82" || a.Purpose != "answers tickets" {
		t.Errorf("agent show -o json = external id %q, purpose %q", a.ExternalID, a.Purpose)
	}

	r = run("agent", "update", "helpdesk-bot", "--external-id", "a\tb")
	wantCode(t, r, ExitError)
	contains(t, "agent update --external-id with a tab", r.stderr, "field external_id")

	wantCode(t, run("agent", "update", "helpdesk-bot", "--external-id", ""), ExitOK)
	if a := show(); a.ExternalID != "" || a.Version != 3 {
		t.Errorf("after --external-id \"\": external id %q, version %d", a.ExternalID, a.Version)
	}
}
