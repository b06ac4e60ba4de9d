package cli

import (
	"fmt"
	"strings"

	"github.com/agentid/agentid/sdk/admin"
)

type approvalCmd struct {
	List    approvalListCmd    `cmd:"" help:"List approval requests of conditional decisions."`
	Show    approvalShowCmd    `cmd:"" help:"Show one approval request."`
	Approve approvalApproveCmd `cmd:"" help:"Approve a pending request: the same request within its scope is allowed until it expires."`
	Deny    approvalDenyCmd    `cmd:"" help:"Deny a pending request, with a reason."`
}

type approvalListCmd struct {
	pageFlags
	State string `help:"Only requests in this state: pending, approved, denied or expired." placeholder:"STATE"`
	Agent string `help:"Only requests of this agent (its id)." placeholder:"AGENT_ID"`
	User  string `help:"Only requests of this user subject (its id, as the PEP sent it)." placeholder:"ID"`
}

func (c *approvalListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	fetch := func(tok string) (admin.List[admin.Approval], error) {
		l, err := cl.ListApprovals(rc.ctx, admin.ListApprovalsParams{State: c.State, Agent: c.Agent, User: c.User,
			PageSize: c.PageSize, PageToken: tok})
		if err != nil {
			return l, fmt.Errorf("list approvals: %w", err)
		}
		return l, nil
	}
	return listPages(rc, c.pageFlags, fetch,
		[]string{"ID", "STATE", "SUBJECT", "PERSON", "ACTION", "RESOURCE", "LIMITS", "EXPIRES"},
		func(a admin.Approval) []string {
			return []string{a.ID, a.State, approvalSubject(a), dash(a.Person), a.Action, a.Resource.Type + "/" + a.Resource.ID,
				dash(limitsText(a.Limits)), fmtTime(a.ExpiresAt)}
		})
}

// approvalSubject is an approval's subject in a table: the agent's name,
// or "user ID" for a user subject's approval.
func approvalSubject(a admin.Approval) string {
	if a.User != "" {
		return "user " + a.User
	}
	return a.Agent.Name
}

// limitsText renders an approval's limits as "k≤v, k2≤v2" in key order.
func limitsText(m map[string]string) string { return fmtPairs(m, "≤") }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type approvalShowCmd struct {
	ID string `arg:"" help:"The approval id (apr_…)." placeholder:"ID"`
}

func (c *approvalShowCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	a, err := cl.GetApproval(rc.ctx, c.ID)
	if err != nil {
		return fmt.Errorf("show approval: %w", err)
	}
	return printApproval(rc, a)
}

func printApproval(rc *runContext, a admin.Approval) error {
	if rc.jsonOutput() {
		return rc.printJSON(a)
	}
	t := rc.newTable("FIELD", "VALUE")
	t.row("id", a.ID)
	t.row("state", a.State)
	if a.User != "" {
		t.row("user", a.User)
	} else {
		t.row("agent", a.Agent.Name+" ("+a.Agent.ID+")")
	}
	t.row("person", dash(a.Person))
	t.row("action", a.Action+" (class "+dash(a.ActionClass)+", risk "+dash(a.RiskTier)+")")
	t.row("resource", a.Resource.Type+"/"+a.Resource.ID)
	t.row("limits", dash(limitsText(a.Limits)))
	t.row("obligations", strings.Join(a.Obligations, ", "))
	t.row("policies", fmt.Sprintf("%s (version %d)", strings.Join(a.PolicyIDs, ", "), a.PolicyVersion))
	t.row("reason", dash(a.Reason))
	t.row("created", fmtTime(a.CreatedAt))
	t.row("expires", fmtTime(a.ExpiresAt))
	if a.DecidedAt != nil {
		t.row("decided", fmtTime(*a.DecidedAt)+" by "+a.DeciderType+" "+a.Decider)
		t.row("decision reason", dash(a.DecideReason))
	}
	return t.flush()
}

type approvalApproveCmd struct {
	ID     string `arg:"" help:"The approval id (apr_…)." placeholder:"ID"`
	Reason string `help:"Why: kept with the approval and on the audit event." placeholder:"TEXT"`
	TTL    string `help:"How long the approval covers requests (a Go duration, at most the server's approvals.ttl)." placeholder:"DURATION"`
}

func (c *approvalApproveCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	a, err := cl.Approve(rc.ctx, c.ID, admin.DecideApprovalRequest{Reason: c.Reason, TTL: c.TTL})
	if err != nil {
		return fmt.Errorf("approve: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(a)
	}
	rc.printf("Approval %s approved until %s.\n", a.ID, fmtTime(a.ExpiresAt))
	return nil
}

type approvalDenyCmd struct {
	ID     string `arg:"" help:"The approval id (apr_…)." placeholder:"ID"`
	Reason string `required:"" help:"Why: kept with the approval and on the audit event." placeholder:"TEXT"`
}

func (c *approvalDenyCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	a, err := cl.DenyApproval(rc.ctx, c.ID, admin.DecideApprovalRequest{Reason: c.Reason})
	if err != nil {
		return fmt.Errorf("deny: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(a)
	}
	rc.printf("Approval %s denied.\n", a.ID)
	return nil
}
