package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

// TestNodeTokenRevoke runs `node token revoke` against a real server: the
// token is revoked once; a second revocation, an unknown id and a bad id
// fail.
func TestNodeTokenRevoke(t *testing.T) {
	u, tok := realServer(t, nil)
	cl, err := admin.New(u, tok)
	if err != nil {
		t.Fatal(err)
	}
	jt, err := cl.CreateJoinToken(t.Context(), admin.CreateJoinTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r := runAs(t, u, tok, "node", "token", "revoke", jt.ID)
	wantCode(t, r, ExitOK)
	if !strings.Contains(r.stdout, "Join token "+jt.ID+" revoked at") || strings.Contains(r.stdout, jt.Token) {
		t.Errorf("stdout = %s", r.stdout)
	}
	r = runAs(t, u, tok, "node", "token", "revoke", jt.ID)
	wantCode(t, r, ExitError)
	if !strings.Contains(r.stderr, "was revoked") {
		t.Errorf("revoke twice: stderr = %s", r.stderr)
	}
	other, err := cl.CreateJoinToken(t.Context(), admin.CreateJoinTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r = runAs(t, u, tok, "-o", "json", "node", "token", "revoke", other.ID)
	wantCode(t, r, ExitOK)
	var got admin.RevokedNodeJoinToken
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.ID != other.ID || !got.ExpiresAt.Equal(other.ExpiresAt) ||
		got.RevokedAt.IsZero() || got.RevokedBy == "" || got.CreatedBy == "" {
		t.Fatalf("-o json: %s (%v)", r.stdout, err)
	}
	wantCode(t, runAs(t, u, tok, "node", "token", "revoke", "njt_01jbz9q0000000000000000000"), ExitError)
	wantCode(t, runAs(t, u, tok, "node", "token", "revoke", "ajt_01jbz9q0000000000000000000"), ExitError)
}
