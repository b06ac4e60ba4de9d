package server_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

func TestApprovalsOverHTTP(t *testing.T) {
	ls := startServer(t)
	ctx := t.Context()
	if _, err := ls.admin.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: authzenPolicies}); err != nil {
		t.Fatal(err)
	}
	del := func(id string) string {
		return `{"subject":{"type":"agent","id":"bot"},"action":{"name":"delete"},"resource":{"type":"ticket","id":"` + id +
			`"},"context":{"count":3}}`
	}
	status, _, body := ls.authzen("/access/v1/evaluation", ls.token, del("1"), nil)
	c, _ := body["context"].(map[string]any)
	id, _ := c["approval_id"].(string)
	if status != 200 || body["decision"] != false || c["decision"] != "conditional" || id == "" || c["approval_state"] != "pending" {
		t.Fatalf("conditional evaluation: %d %v", status, body)
	}
	list, err := ls.admin.ListApprovals(ctx, admin.ListApprovalsParams{State: admin.ApprovalPending})
	if err != nil || len(list.Items) != 1 || list.Items[0].ID != id || list.Items[0].Limits["count"] != "3" ||
		list.Items[0].Agent.Name != "bot" || list.Items[0].Resource.ID != "1" {
		t.Fatalf("ListApprovals = %+v, %v", list, err)
	}
	a, err := ls.admin.Approve(ctx, id, admin.DecideApprovalRequest{Reason: "go ahead", TTL: "10m"})
	if err != nil || a.State != admin.ApprovalApproved || a.DeciderType != "admin" || a.DecideReason != "go ahead" {
		t.Fatalf("Approve = %+v, %v", a, err)
	}
	status, _, body = ls.authzen("/access/v1/evaluation", ls.token, del("1"), nil)
	if c, _ = body["context"].(map[string]any); status != 200 || body["decision"] != true || c["approval_id"] != id || c["decision"] != "allow" {
		t.Errorf("evaluation after approval: %d %v", status, body)
	}
	status, _, body = ls.authzen("/access/v1/evaluation", ls.token, del("2"), nil)
	if c, _ = body["context"].(map[string]any); status != 200 || body["decision"] != false || c["approval_id"] == id {
		t.Errorf("approval replayed for another resource: %d %v", status, body)
	}

	var pe *admin.Problem
	if _, err := ls.admin.Approve(ctx, id, admin.DecideApprovalRequest{}); !errors.As(err, &pe) || pe.Status != http.StatusConflict {
		t.Errorf("second Approve = %v; want 409", err)
	}
	if _, err := ls.admin.DenyApproval(ctx, "apr_missing", admin.DecideApprovalRequest{Reason: "x"}); !errors.As(err, &pe) || pe.Status != http.StatusNotFound {
		t.Errorf("DenyApproval of a missing approval = %v; want 404", err)
	}
	if _, err := ls.admin.Approve(ctx, id, admin.DecideApprovalRequest{TTL: "forever"}); !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
		t.Errorf("Approve with a bad ttl = %v; want 400", err)
	}
	if _, err := ls.admin.ListApprovals(ctx, admin.ListApprovalsParams{State: "maybe"}); !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
		t.Errorf("ListApprovals with a bad state = %v; want 400", err)
	}
	got, err := ls.admin.GetApproval(ctx, id)
	if err != nil || got.State != admin.ApprovalApproved {
		t.Errorf("GetApproval = %+v, %v", got, err)
	}
}
