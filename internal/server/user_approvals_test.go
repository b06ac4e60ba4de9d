package server_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// TestUserApprovalsOverHTTP runs the life cycle of a user subject's
// approval (ADR 0020) through the AuthZEN endpoint and the admin API: the
// user cannot approve their own request, a designated approver can.
func TestUserApprovalsOverHTTP(t *testing.T) {
	idp := idptest.New(t)
	ls := startLive(t, func(cfg *server.Config) {
		cfg.Delegation.Issuers = []server.TrustedIssuerConfig{{Issuer: idp.URL, Audience: idptest.Audience, TLSCAFile: idp.CAFile}}
		cfg.Approvals.Approvers = []string{"dave", "carol"}
	}, nil)
	ctx := t.Context()
	if _, err := ls.admin.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: authzenPolicies + `
@id("users-delete-need-approval")
@decision("conditional")
permit (principal is Person, action in Action::"delete", resource);
`}); err != nil {
		t.Fatal(err)
	}
	del := func(ticket, count string) string {
		return `{"subject":{"type":"user","id":"dave","properties":{"role":"clerk"}},"action":{"name":"delete"},` +
			`"resource":{"type":"ticket","id":"` + ticket + `"},"context":{"count":` + count + `}}`
	}
	eval := func(body string) (bool, string, map[string]any) {
		t.Helper()
		status, _, out := ls.authzen("/access/v1/evaluation", ls.token, body, nil)
		c, _ := out["context"].(map[string]any)
		if status != http.StatusOK || c == nil {
			t.Fatalf("evaluation: %d %v", status, out)
		}
		id, _ := c["approval_id"].(string)
		return out["decision"] == true, id, c
	}
	allowed, id, c := eval(del("1", "3"))
	if allowed || id == "" || c["decision"] != "conditional" || c["approval_state"] != "pending" {
		t.Fatalf("conditional evaluation of a user: %v", c)
	}
	if _, again, _ := eval(del("1", "3")); again != id {
		t.Errorf("same request: approval %s; want %s reused", again, id)
	}
	list, err := ls.admin.ListApprovals(ctx, admin.ListApprovalsParams{User: "dave"})
	if err != nil || len(list.Items) != 1 || list.Items[0].ID != id || list.Items[0].User != "dave" ||
		list.Items[0].Agent != (admin.ApprovalAgent{}) || list.Items[0].Limits["count"] != "3" {
		t.Fatalf("ListApprovals of dave = %+v, %v", list, err)
	}
	if other, err := ls.admin.ListApprovals(ctx, admin.ListApprovalsParams{Agent: ls.agent.ID}); err != nil || len(other.Items) != 0 {
		t.Errorf("ListApprovals of the agent = %+v, %v; want none", other, err)
	}
	var pe *admin.Problem
	if _, err := ls.admin.ListApprovals(ctx, admin.ListApprovalsParams{User: strings.Repeat("u", 2000)}); !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
		t.Errorf("ListApprovals with a too long user = %v; want a 400 problem", err)
	}

	// dave is a designated approver, but not of his own request.
	person := func(sub string) *admin.Client {
		cl, err := admin.New(ls.url, idp.Mint("rs1", idp.Claims(sub, time.Now())))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	if _, err := person("dave").ApproveAsPerson(ctx, id, admin.DecideApprovalRequest{}); !errors.As(err, &pe) || pe.Status != http.StatusForbidden {
		t.Errorf("ApproveAsPerson by the user = %v; want 403", err)
	}
	if _, err := person("mallory").ApproveAsPerson(ctx, id, admin.DecideApprovalRequest{}); !errors.As(err, &pe) || pe.Status != http.StatusForbidden {
		t.Errorf("ApproveAsPerson by a stranger = %v; want 403", err)
	}
	a, err := person("carol").ApproveAsPerson(ctx, id, admin.DecideApprovalRequest{Reason: "fine", TTL: "10m"})
	if err != nil || a.State != admin.ApprovalApproved || a.DeciderType != "person" || a.Decider != "carol" || a.User != "dave" {
		t.Fatalf("ApproveAsPerson by a designated approver = %+v, %v", a, err)
	}

	if allowed, got, c := eval(del("1", "2")); !allowed || got != id || c["decision"] != "allow" {
		t.Errorf("evaluation after approval: %v", c)
	}
	for name, body := range map[string]string{"other resource": del("2", "3"), "larger count": del("1", "4")} {
		if allowed, got, _ := eval(body); allowed || got == id || got == "" {
			t.Errorf("%s: allowed %v, approval %s; want conditional with a new approval", name, allowed, got)
		}
	}
	// An admin decides user approvals too.
	_, other, _ := eval(del("2", "3"))
	if d, err := ls.admin.DenyApproval(ctx, other, admin.DecideApprovalRequest{Reason: "no"}); err != nil || d.State != admin.ApprovalDenied {
		t.Errorf("DenyApproval by an admin = %+v, %v", d, err)
	}
	got, err := ls.admin.GetApproval(ctx, id)
	if err != nil || got.User != "dave" || got.State != admin.ApprovalApproved {
		t.Errorf("GetApproval = %+v, %v", got, err)
	}
}
