package cli

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

// TestAgentJoinTokenCreate runs `agent join-token create` against a real
// server and redeems the printed token once.
func TestAgentJoinTokenCreate(t *testing.T) {
	u, tok := realServer(t, nil)
	cl, owner := newOwner(t, u, tok, "o@example.org")
	if _, err := cl.CreateAgent(t.Context(), admin.CreateAgentRequest{Name: "batch", Purpose: "p", Owners: []string{owner},
		Audiences: []string{"https://api.example.org"}}); err != nil {
		t.Fatal(err)
	}
	r := runAs(t, u, tok, "agent", "join-token", "create", "batch")
	wantCode(t, r, ExitOK)
	if !strings.Contains(r.stdout, "aidajt_") || !strings.Contains(r.stdout, "Warning") {
		t.Errorf("stdout = %s", r.stdout)
	}
	r = runAs(t, u, tok, "-o", "json", "agent", "join-token", "create", "batch", "--ttl", "5m")
	wantCode(t, r, ExitOK)
	var jt admin.AgentJoinToken
	if err := json.Unmarshal([]byte(r.stdout), &jt); err != nil || !strings.HasPrefix(jt.Token, "aidajt_") || !strings.HasPrefix(jt.ID, "ajt_") {
		t.Fatalf("-o json: %s (%v)", r.stdout, err)
	}
	resp, err := http.PostForm(u+"/oauth2/token", url.Values{"grant_type": {"urn:agentid:params:oauth:grant-type:join-token"}, "join_token": {jt.Token}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("redeem: %d", resp.StatusCode)
	}
	wantCode(t, runAs(t, u, tok, "agent", "join-token", "create", "batch", "--ttl", "0s"), ExitUsage)
	wantCode(t, runAs(t, u, tok, "agent", "join-token", "create", "nobody"), ExitError)
}
