package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/sdk/admin"
	"github.com/agentid/agentid/sdk/authzen"
	"github.com/agentid/agentid/sdk/resource"
)

// TestAuthZENChecksGrants: a PEP passes the grant_id of a delegated token
// in the AuthZEN context; the decision point looks the grant up, so the
// request is allowed while the grant is live and denied, with the reason,
// once it is revoked, even though the token itself still verifies offline
// (ADR 0013 addendum "grants and instances in the context").
func TestAuthZENChecksGrants(t *testing.T) {
	_, ls, g := startDelegatedReads(t)
	ctx := t.Context()
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

// TestAuthZENTokenContextThroughSDK: a resource server verifies a
// delegated token offline with sdk/resource, turns its claims into the
// AuthZEN context with authzen.TokenContext and asks the real decision
// point with sdk/authzen: allowed while the grant is live, denied once it
// is revoked, while the token itself still verifies.
func TestAuthZENTokenContextThroughSDK(t *testing.T) {
	idp, ls, g := startDelegatedReads(t)
	ctx := t.Context()
	status, _, body := ls.post("/oauth2/token", url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {idp.Mint("rs1", idp.Claims("alice", time.Now()))},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"},
		"resource":           {apiAudience},
		"scope":              {"tickets:read"},
	}, http.Header{"Authorization": {"Basic " + basicAuth(ls.agent.ClientID, ls.secret)}})
	tok, _ := body["access_token"].(string)
	if status != http.StatusOK || tok == "" {
		t.Fatalf("exchange: %d %v", status, body)
	}
	v, err := resource.NewVerifier(ctx, resource.VerifierParams{Issuer: ls.url, Audience: apiAudience})
	if err != nil {
		t.Fatal(err)
	}
	pdp, err := authzen.New(ls.url, authzen.WithStaticToken(ls.token))
	if err != nil {
		t.Fatal(err)
	}
	decide := func() (bool, map[string]any) {
		t.Helper()
		claims, err := v.Verify(ctx, tok)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		tc, err := authzen.TokenContext(claims)
		if err != nil {
			t.Fatal(err)
		}
		if dl, _ := tc["delegation"].(map[string]any); dl == nil || dl["grant_id"] != g.ID || dl["subject"] != "alice" {
			t.Fatalf("TokenContext = %v", tc)
		}
		d, err := pdp.Evaluate(ctx, authzen.Request{Subject: authzen.Subject{Type: "agent", ID: "bot"},
			Action: authzen.Action{Name: "read"}, Resource: authzen.Resource{Type: "ticket", ID: "1"}, Context: tc})
		if err != nil {
			t.Fatal(err)
		}
		return d.Decision, d.Context
	}
	if ok, c := decide(); !ok {
		t.Errorf("decision under a live grant: denied, %v", c)
	}
	if _, err := ls.admin.RevokeGrant(ctx, g.ID, admin.RevokeGrantRequest{}); err != nil {
		t.Fatal(err)
	}
	if ok, c := decide(); ok || !strings.Contains(func() string { b, _ := json.Marshal(c); return string(b) }(), policy.ReasonGrantRevoked) {
		t.Errorf("decision under a revoked grant: allowed %v, %v", ok, c)
	}
}

// startDelegatedReads starts a delegation server whose one policy allows
// reads made under a delegation, and grants the bot to act for alice.
func startDelegatedReads(t *testing.T) (*idptest.IdP, *liveServer, admin.Grant) {
	t.Helper()
	idp := idptest.New(t)
	ls := startDelegationServer(t, idp)
	if _, err := ls.admin.ApplyPolicy(t.Context(), admin.ApplyPolicyRequest{Text: `@id("delegated-reads")
permit (principal, action in Action::"read", resource) when { context has delegation };
`}); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	g, err := ls.admin.CreateGrant(t.Context(), admin.CreateGrantRequest{SubjectIssuer: idp.URL, Subject: "alice", Agent: "bot",
		Scopes: []string{"tickets:read"}, Audiences: []string{apiAudience}, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	return idp, ls, g
}
