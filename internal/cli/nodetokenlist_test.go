package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

// TestNodeTokenList runs `node token list` against a real server: a table
// of every token with its state, --state filtering, -o json with --all
// across pages, and an unknown state refused as a usage error. Never a
// token's secret.
func TestNodeTokenList(t *testing.T) {
	u, tok := realServer(t, nil)
	cl, err := admin.New(u, tok)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := cl.CreateJoinToken(t.Context(), admin.CreateJoinTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // ids sort in creation order to the millisecond
	unused, err := cl.CreateJoinToken(t.Context(), admin.CreateJoinTokenRequest{TTLSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RevokeJoinToken(t.Context(), revoked.ID); err != nil {
		t.Fatal(err)
	}

	r := runAs(t, u, tok, "node", "token", "list")
	wantCode(t, r, ExitOK)
	for _, want := range []string{"ID", "STATE", "CREATED BY", revoked.ID + "  revoked", unused.ID + "  unused"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, revoked.Token) || strings.Contains(r.stdout, unused.Token) {
		t.Errorf("table shows a secret:\n%s", r.stdout)
	}

	r = runAs(t, u, tok, "node", "token", "list", "--state", "revoked")
	wantCode(t, r, ExitOK)
	if !strings.Contains(r.stdout, revoked.ID) || strings.Contains(r.stdout, unused.ID) {
		t.Errorf("--state revoked:\n%s", r.stdout)
	}

	r = runAs(t, u, tok, "-o", "json", "node", "token", "list", "--page-size", "1", "--all")
	wantCode(t, r, ExitOK)
	var items []admin.NodeJoinTokenStatus
	if err := json.Unmarshal([]byte(r.stdout), &items); err != nil {
		t.Fatalf("-o json --all: %v\n%s", err, r.stdout)
	}
	if len(items) != 2 || items[0].ID != revoked.ID || items[0].State != admin.JoinTokenRevoked ||
		items[1].ID != unused.ID || items[1].State != admin.JoinTokenUnused || !items[1].ExpiresAt.Equal(unused.ExpiresAt) ||
		items[1].CreatedBy == "" || items[1].UsedAt != nil {
		t.Errorf("-o json --all = %+v", items)
	}

	r = runAs(t, u, tok, "-o", "json", "node", "token", "list", "--page-size", "1")
	wantCode(t, r, ExitOK)
	var page admin.List[admin.NodeJoinTokenStatus]
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Items) != 1 || page.NextPageToken == "" {
		t.Errorf("-o json --page-size 1 = %s (%v)", r.stdout, err)
	}

	wantCode(t, runAs(t, u, tok, "node", "token", "list", "--state", "outstanding"), ExitUsage)
}
