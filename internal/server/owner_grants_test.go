package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/sdk/admin"
)

// TestLeaverGrantsRevokedOverSCIM: alice grants the bot, the bot
// exchanges her token; her IdP then provisions her over SCIM and
// deactivates her (Okta's PATCH active false). Her grant is revoked in
// that request, so introspection finds the delegated token inactive, bob's
// grant is untouched, and reactivating her restores nothing.
func TestLeaverGrantsRevokedOverSCIM(t *testing.T) {
	idp := idptest.New(t)
	ls := startDelegationServer(t, idp)
	ctx := t.Context()
	exp := time.Now().Add(24 * time.Hour)
	grants := map[string]admin.Grant{}
	tokens := map[string]string{}
	basic := http.Header{"Authorization": {"Basic " + basicAuth(ls.agent.ClientID, ls.secret)}}
	for _, who := range []string{"alice", "bob"} {
		person := idp.Mint("rs1", idp.Claims(who, time.Now()))
		c, err := admin.New(ls.url, person)
		if err != nil {
			t.Fatal(err)
		}
		g, err := c.CreateMyGrant(ctx, admin.CreateGrantRequest{
			Agent: "bot", Scopes: []string{"tickets:read"}, Audiences: []string{apiAudience}, ExpiresAt: &exp,
		})
		if err != nil || g.SubjectEmail != who+"@example.com" {
			t.Fatalf("CreateMyGrant(%s) = %+v, %v", who, g, err)
		}
		grants[who] = g
		status, _, body := ls.post("/oauth2/token", url.Values{
			"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token":      {person},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"},
			"resource":           {apiAudience},
			"scope":              {"tickets:read"},
		}, basic)
		if status != http.StatusOK {
			t.Fatalf("exchange for %s: %d %v", who, status, body)
		}
		tokens[who], _ = body["access_token"].(string)
	}
	adminAuth := http.Header{"Authorization": {"Bearer " + ls.token}}
	active := func(who string) any {
		t.Helper()
		_, _, in := ls.post("/oauth2/introspect", url.Values{"token": {tokens[who]}}, adminAuth)
		return in["active"]
	}
	if active("alice") != true || active("bob") != true {
		t.Fatal("the delegated tokens are not active")
	}

	// The IdP provisions alice (no subject: SCIM carries her email), then
	// deactivates her.
	status, _, u := ls.scim(http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"alice","emails":[{"value":"Alice@Example.com","type":"work","primary":true}],"active":true}`)
	id, _ := u["id"].(string)
	if status != http.StatusCreated || id == "" {
		t.Fatalf("SCIM create = %d %v", status, u)
	}
	patch := func(on bool) {
		t.Helper()
		body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":` +
			map[bool]string{true: "true", false: "false"}[on] + `}}]}`
		if status, _, u := ls.scim(http.MethodPatch, "/Users/"+id, body); status != http.StatusOK || u["active"] != on {
			t.Fatalf("SCIM PATCH active %v = %d %v", on, status, u)
		}
	}
	patch(false)
	if active("alice") != false {
		t.Error("alice's delegated token is active after her deactivation")
	}
	if active("bob") != true {
		t.Error("bob's delegated token is inactive after alice's deactivation")
	}
	g, err := ls.admin.GetGrant(ctx, grants["alice"].ID)
	if err != nil || g.Active || g.RevokeReason != "owner deactivated" {
		t.Errorf("alice's grant = %+v, %v", g, err)
	}
	if evs := ls.eventsOfType("owner.deactivated"); len(evs) != 1 || evs[0]["revoked_grants"] != float64(1) {
		t.Errorf("owner.deactivated details = %v", evs)
	}
	if evs := ls.eventsOfType("grant.revoked"); len(evs) != 1 || evs[0]["tokens_affected"] != float64(1) ||
		evs[0]["owner_id"] != id || evs[0]["grant_id"] != grants["alice"].ID {
		t.Errorf("grant.revoked details = %v", evs)
	}

	patch(true)
	if active("alice") != false {
		t.Error("alice's delegated token is active again after her reactivation")
	}
	if g, err := ls.admin.GetGrant(ctx, grants["alice"].ID); err != nil || g.Active {
		t.Errorf("alice's grant after her reactivation = %+v, %v", g, err)
	}
}

// scim sends one SCIM request with the admin token and decodes the
// answer, which must be application/scim+json (RFC 7644 §3.1).
func (ls *liveServer) scim(method, path, body string) (int, http.Header, map[string]any) {
	ls.t.Helper()
	req, err := http.NewRequestWithContext(ls.t.Context(), method, ls.url+"/scim/v2"+path, strings.NewReader(body))
	if err != nil {
		ls.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ls.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ls.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		ls.t.Fatalf("%s %s: %d, body is not JSON: %v", method, path, resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/scim+json" {
		ls.t.Errorf("%s %s: Content-Type = %q", method, path, ct)
	}
	return resp.StatusCode, resp.Header, m
}

// eventsOfType returns the details of the trail's events of type typ,
// oldest first.
func (ls *liveServer) eventsOfType(typ string) []map[string]any {
	ls.t.Helper()
	var out []map[string]any
	q := admin.AuditQuery{PageSize: 500}
	for {
		page, err := ls.admin.ListAuditEvents(ls.t.Context(), q)
		if err != nil {
			ls.t.Fatal(err)
		}
		for _, ev := range page.Items {
			if ev.Type != typ {
				continue
			}
			var d map[string]any
			if err := json.Unmarshal(ev.Details, &d); err != nil {
				ls.t.Fatal(err)
			}
			out = append(out, d)
		}
		if page.NextPageToken == "" {
			return out
		}
		q.PageToken = page.NextPageToken
	}
}
