package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// approvalRoutes mounts the approval endpoints when Params.Policy is set:
// the admin's under /v1/approvals and, when people can authenticate
// (Params.Grants), theirs under /v1/me/approvals (an owner of the agent
// or a designated approver; for a user subject's approval, a designated
// approver other than the user).
func (h *handler) approvalRoutes(handle func(string, store.Role, func(http.ResponseWriter, *http.Request, *principal))) {
	if h.p.Policy == nil {
		return
	}
	handle("GET /v1/approvals", store.RoleAdmin, h.listApprovals)
	handle("GET /v1/approvals/{id}", store.RoleAdmin, h.getApproval)
	handle("POST /v1/approvals/{id}/approve", store.RoleAdmin, h.adminDecideApproval(true))
	handle("POST /v1/approvals/{id}/deny", store.RoleAdmin, h.adminDecideApproval(false))
	if h.p.Grants != nil {
		h.mux.Handle("POST /v1/me/approvals/{id}/approve", h.person(h.personDecideApproval(true)))
		h.mux.Handle("POST /v1/me/approvals/{id}/deny", h.person(h.personDecideApproval(false)))
	}
}

// approvalProblem maps the approval errors of the decision point.
func approvalProblem(err error) error {
	detail := strings.TrimPrefix(strings.SplitN(err.Error(), ": store:", 2)[0], "policy: ")
	switch {
	case errors.Is(err, policy.ErrForbidden):
		return &requestError{status: http.StatusForbidden, typ: admin.ProblemForbidden, title: "Forbidden", detail: detail}
	case errors.Is(err, policy.ErrIllegalTransition):
		return &requestError{status: http.StatusConflict, typ: admin.ProblemIllegalTransition, title: "Illegal state transition", detail: detail}
	case errors.Is(err, policy.ErrNotFound):
		return &requestError{status: http.StatusNotFound, typ: admin.ProblemNotFound, title: "Not found", detail: "no such approval"}
	}
	return authzenProblem(err)
}

func (h *handler) listApprovals(w http.ResponseWriter, r *http.Request, _ *principal) {
	pg, err := pageOf(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	q := r.URL.Query()
	list, next, err := h.p.Policy.ListApprovals(r.Context(), policy.ListApprovalsParams{
		State: store.ApprovalState(q.Get("state")), AgentID: q.Get("agent"), User: q.Get("user"), Page: pg})
	if err != nil {
		h.problem(w, r, approvalProblem(err))
		return
	}
	out := admin.List[admin.Approval]{Items: make([]admin.Approval, 0, len(list)), NextPageToken: next}
	for _, a := range list {
		out.Items = append(out.Items, policy.ApprovalJSON(a))
	}
	h.reply(w, http.StatusOK, out)
}

func (h *handler) getApproval(w http.ResponseWriter, r *http.Request, _ *principal) {
	a, err := h.p.Policy.GetApproval(r.Context(), r.PathValue("id"))
	if err != nil {
		h.problem(w, r, approvalProblem(err))
		return
	}
	h.reply(w, http.StatusOK, policy.ApprovalJSON(a))
}

func (h *handler) adminDecideApproval(approve bool) func(http.ResponseWriter, *http.Request, *principal) {
	return func(w http.ResponseWriter, r *http.Request, p *principal) {
		h.decideApproval(w, r, p.origin, policy.Approver{Type: audit.ActorAdmin, ID: p.token.ID}, approve)
	}
}

func (h *handler) personDecideApproval(approve bool) func(http.ResponseWriter, *http.Request, *delegation.Subject, audit.Origin) {
	return func(w http.ResponseWriter, r *http.Request, who *delegation.Subject, o audit.Origin) {
		h.decideApproval(w, r, o, policy.Approver{Type: audit.ActorPerson, ID: who.Subject, Subject: who.Subject, Email: who.Email,
			Issuer: who.Issuer, SoleIssuer: who.SoleIssuer}, approve)
	}
}

func (h *handler) decideApproval(w http.ResponseWriter, r *http.Request, o audit.Origin, who policy.Approver, approve bool) {
	var in admin.DecideApprovalRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	p := policy.DecideApprovalParams{ID: r.PathValue("id"), Approver: who, Reason: in.Reason}
	if in.TTL != "" {
		ttl, err := time.ParseDuration(in.TTL)
		if err != nil || ttl <= 0 {
			h.problem(w, r, badRequest("ttl", "ttl must be a positive Go duration such as 15m"))
			return
		}
		p.TTL = ttl
	}
	var (
		a   store.Approval
		err error
	)
	if approve {
		a, err = h.p.Policy.Approve(r.Context(), o, p)
	} else {
		a, err = h.p.Policy.DenyApproval(r.Context(), o, p)
	}
	if err != nil {
		h.problem(w, r, approvalProblem(err))
		return
	}
	h.reply(w, http.StatusOK, policy.ApprovalJSON(a))
}
