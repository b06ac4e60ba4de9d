package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/sdk/admin"
)

// TestAuthZENChecksGrants: a PEP passes the grant_id of a delegated token
// in the AuthZEN context; the decision point looks the grant up, so the
// request is allowed while the grant is live and denied, with the reason,
// once it is revoked, even though the token itself still verifies offline
// (ADR 0013 addendum "grants and instances in the context").
func TestAuthZENChecksGrants(t *testing.T) {
	idp := idptest.New(t)
	ls := startDelegationServer(t, idp)
	ctx := t.Context()
	if _, err := ls.admin.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: `@id("delegated-reads")
permit (principal, action in Action::"read", resource) when { context has delegation };
`}); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	g, err := ls.admin.CreateGrant(ctx, admin.CreateGrantRequest{SubjectIssuer: idp.URL, Subject: "alice", Agent: "bot",
		Scopes: []string{"tickets:read"}, Audiences: []string{apiAudience}, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	eval := func(grant string) (bool, string) {
		t.Helper()
		status, _, out := ls.authzen("/access/v1/evaluation", ls.token, `{"subject":{"type":"agent","id":"bot"},`+
			`"action":{"name":"read"},"resource":{"type":"ticket","id":"1"},`+
			`"context":{"delegation":{"subject":"alice","actors":["spiffe://example.org/agent/bot"],"grant_id":"`+grant+`"}}}`, nil)
		if status != http.StatusOK {
			t.Fatalf("evaluation: %d %v", status, out)
		}
		reasons, _ := json.Marshal(out["context"])
		return out["decision"] == true, string(reasons)
	}
	if ok, c := eval(g.ID); !ok {
		t.Errorf("evaluation under a live grant: denied, %s", c)
	}
	if ok, c := eval("grt_01m8unknown000000000000000"); ok || !strings.Contains(c, policy.ReasonUnknownGrant) {
		t.Errorf("evaluation under an unknown grant: allowed %v, %s", ok, c)
	}
	if _, err := ls.admin.RevokeGrant(ctx, g.ID, admin.RevokeGrantRequest{Reason: "trip cancelled"}); err != nil {
		t.Fatal(err)
	}
	if ok, c := eval(g.ID); ok || !strings.Contains(c, policy.ReasonGrantRevoked) {
		t.Errorf("evaluation under a revoked grant: allowed %v, %s", ok, c)
	}
	evs := ls.eventsOfType("decision.made")
	if n := len(evs); n != 3 {
		t.Fatalf("%d decision.made events, want 3", n)
	}
}
