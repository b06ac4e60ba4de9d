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

// TestAgentJoinTokenRevoke runs `agent join-token revoke` and `list`
// against a real server: the revoked token is refused at the token
// endpoint and listed as revoked, and a second revocation, an unknown id
// and a bad id fail.
func TestAgentJoinTokenRevoke(t *testing.T) {
	u, tok := realServer(t, nil)
	cl, owner := newOwner(t, u, tok, "o@example.org")
	if _, err := cl.CreateAgent(t.Context(), admin.CreateAgentRequest{Name: "batch", Purpose: "p", Owners: []string{owner},
		Audiences: []string{"https://api.example.org"}}); err != nil {
		t.Fatal(err)
	}
	jt, err := cl.CreateAgentJoinToken(t.Context(), "batch", admin.CreateJoinTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r := runAs(t, u, tok, "agent", "join-token", "revoke", jt.ID)
	wantCode(t, r, ExitOK)
	if !strings.Contains(r.stdout, jt.ID+" of agent "+jt.AgentID+" revoked") || strings.Contains(r.stdout, jt.Token) {
		t.Errorf("stdout = %s", r.stdout)
	}
	resp, err := http.PostForm(u+"/oauth2/token", url.Values{"grant_type": {"urn:agentid:params:oauth:grant-type:join-token"}, "join_token": {jt.Token}})
	if err != nil {
		t.Fatal(err)
	}
	var oe struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&oe)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || oe.Error != "invalid_grant" {
		t.Errorf("redeem a revoked token: %d %s", resp.StatusCode, oe.Error)
	}
	r = runAs(t, u, tok, "agent", "join-token", "revoke", jt.ID)
	wantCode(t, r, ExitError)
	if !strings.Contains(r.stderr, "was revoked") {
		t.Errorf("revoke twice: stderr = %s", r.stderr)
	}

	other, err := cl.CreateAgentJoinToken(t.Context(), "batch", admin.CreateJoinTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r = runAs(t, u, tok, "-o", "json", "agent", "join-token", "revoke", other.ID)
	wantCode(t, r, ExitOK)
	var got admin.RevokedAgentJoinToken
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.ID != other.ID || got.AgentID != other.AgentID ||
		!got.ExpiresAt.Equal(other.ExpiresAt) || got.RevokedAt.IsZero() || got.RevokedBy == "" {
		t.Fatalf("-o json: %s (%v)", r.stdout, err)
	}
	r = runAs(t, u, tok, "agent", "join-token", "list", "batch")
	wantCode(t, r, ExitOK)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") ||
		!strings.Contains(lines[1], other.ID+"  revoked") || !strings.Contains(lines[2], jt.ID+"  revoked") {
		t.Errorf("list:\n%s", r.stdout)
	}
	r = runAs(t, u, tok, "-o", "json", "agent", "join-token", "list", "batch")
	wantCode(t, r, ExitOK)
	var l admin.List[admin.AgentJoinTokenStatus]
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l.Items) != 2 || l.Items[0].ID != other.ID || l.Items[0].State != admin.JoinTokenRevoked {
		t.Errorf("list -o json: %s (%v)", r.stdout, err)
	}
	wantCode(t, runAs(t, u, tok, "agent", "join-token", "list", "nobody"), ExitError)
	wantCode(t, runAs(t, u, tok, "agent", "join-token", "revoke", "ajt_01jbz9q0000000000000000000"), ExitError)
	wantCode(t, runAs(t, u, tok, "agent", "join-token", "revoke", "not-an-id"), ExitError)
}
