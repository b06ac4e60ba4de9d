package httpapi

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// Handlers of policies (/v1/policies…) and action classes
// (/v1/action-classes…) for administrators (ADR 0013).

// policyRoutes mounts the policy admin endpoints when Params.Policy is set.
func (h *handler) policyRoutes(handle func(string, store.Role, func(http.ResponseWriter, *http.Request, *principal))) {
	if h.p.Policy == nil {
		return
	}
	role := store.RoleAdmin
	handle("GET /v1/policies", role, h.policyHistory)
	handle("POST /v1/policies", role, h.applyPolicy)
	handle("GET /v1/policies/{version}", role, h.getPolicyVersion)
	handle("POST /v1/policies/rollback", role, h.rollbackPolicy)
	handle("POST /v1/policies/diff", role, h.diffPolicies)
	handle("POST /v1/policies/test", role, h.testPolicy)
	handle("POST /v1/policies/dry-run", role, h.dryRunPolicy)
	handle("GET /v1/action-classes", role, h.listActionClasses)
	handle("PUT /v1/action-classes/{name}", role, h.setActionClass)
}

// policyProblem maps the decision point's errors to problems; others go to
// problemFor unchanged.
func policyProblem(err error) error {
	var pe *policy.PolicyError
	switch {
	case errors.As(err, &pe):
		return &requestError{status: http.StatusBadRequest, typ: admin.ProblemValidation, title: "Invalid policy",
			detail: pe.Detail(), field: "text"}
	case errors.Is(err, policy.ErrConflict):
		return &requestError{status: http.StatusConflict, typ: admin.ProblemVersionMismatch, title: "Conflict",
			detail: "policies or action classes changed concurrently; retry"}
	case errors.Is(err, policy.ErrNotFound):
		return &requestError{status: http.StatusNotFound, typ: admin.ProblemNotFound, title: "Not found",
			detail: strings.TrimPrefix(strings.SplitN(err.Error(), ": store:", 2)[0], "policy: not found: ")}
	}
	return err
}

func policyVersionOut(v store.PolicyVersion, active int64, withText bool) admin.PolicyVersion {
	out := admin.PolicyVersion{Version: v.Version, Active: v.Version == active, SHA256: hex.EncodeToString(v.SHA256),
		PolicyIDs: v.PolicyIDs, Author: v.Author, Comment: v.Comment, CreatedAt: v.CreatedAt.UTC()}
	if out.PolicyIDs == nil {
		out.PolicyIDs = []string{}
	}
	if withText {
		out.Text = v.Text
	}
	return out
}

func (h *handler) policyHistory(w http.ResponseWriter, r *http.Request, _ *principal) {
	pg, err := pageOf(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	head, err := h.p.Policy.Head(r.Context())
	if err != nil {
		h.problem(w, r, err)
		return
	}
	vs, next, err := h.p.Policy.History(r.Context(), pg)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.PolicyHistory{ActiveVersion: head.ActiveVersion, LatestVersion: head.LatestVersion,
		Items: make([]admin.PolicyVersion, 0, len(vs)), NextPageToken: next}
	for _, v := range vs {
		out.Items = append(out.Items, policyVersionOut(v, head.ActiveVersion, false))
	}
	h.reply(w, http.StatusOK, out)
}

func (h *handler) applyPolicy(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.ApplyPolicyRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	v, err := h.p.Policy.Apply(r.Context(), p.origin, in.Text, in.Comment)
	if err != nil {
		h.problem(w, r, policyProblem(err))
		return
	}
	h.reply(w, http.StatusCreated, policyVersionOut(v, v.Version, true))
}

func (h *handler) getPolicyVersion(w http.ResponseWriter, r *http.Request, _ *principal) {
	n, err := strconv.ParseInt(r.PathValue("version"), 10, 64)
	if err != nil || n < 1 {
		h.problem(w, r, badRequest("version", "the version must be a positive integer"))
		return
	}
	v, err := h.p.Policy.Get(r.Context(), n)
	if err != nil {
		h.problem(w, r, policyProblem(err))
		return
	}
	head, err := h.p.Policy.Head(r.Context())
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, policyVersionOut(v, head.ActiveVersion, true))
}

func (h *handler) rollbackPolicy(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.RollbackPolicyRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	if in.Version < 1 {
		h.problem(w, r, badRequest("version", "version must be a positive integer"))
		return
	}
	v, err := h.p.Policy.Rollback(r.Context(), p.origin, in.Version)
	if err != nil {
		h.problem(w, r, policyProblem(err))
		return
	}
	h.reply(w, http.StatusOK, policyVersionOut(v, v.Version, false))
}

func (h *handler) diffPolicies(w http.ResponseWriter, r *http.Request, _ *principal) {
	var in admin.PolicyDiffRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	if in.From < 0 || in.To < 0 || (in.To != 0 && in.Text != "") {
		h.problem(w, r, badRequest("to", "give a version to compare with (to) or a document (text), not both"))
		return
	}
	head, err := h.p.Policy.Head(r.Context())
	if err != nil {
		h.problem(w, r, err)
		return
	}
	text := func(n int64) (string, error) {
		if n == 0 {
			return "", nil
		}
		v, err := h.p.Policy.Get(r.Context(), n)
		return v.Text, err
	}
	out := admin.PolicyDiff{From: in.From, To: in.To}
	if out.From == 0 {
		out.From = head.ActiveVersion
	}
	if out.To == 0 && in.Text == "" {
		out.To = head.LatestVersion
	}
	from, err := text(out.From)
	if err != nil {
		h.problem(w, r, policyProblem(err))
		return
	}
	to := in.Text
	if in.Text == "" {
		if to, err = text(out.To); err != nil {
			h.problem(w, r, policyProblem(err))
			return
		}
	}
	d, err := policy.DiffTexts(from, to)
	if err != nil {
		h.problem(w, r, policyProblem(err))
		return
	}
	out.Added, out.Removed, out.Changed = nonNilStrings(d.Added), nonNilStrings(d.Removed), nonNilStrings(d.Changed)
	out.FromText, out.ToText = d.From, d.To
	h.reply(w, http.StatusOK, out)
}

func (h *handler) testPolicy(w http.ResponseWriter, r *http.Request, _ *principal) {
	var in admin.PolicyTestRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	cases := make([]policy.Case, len(in.Cases))
	for i, c := range in.Cases {
		req, err := decodeEvaluation(c.Request)
		if err != nil {
			var re *requestError
			if errors.As(err, &re) {
				err = badRequest(fmt.Sprintf("cases[%d].request", i), "cases[%d].request: %s", i, re.detail)
			}
			h.problem(w, r, err)
			return
		}
		cases[i] = policy.Case{Name: c.Name, Request: req, Expect: c.Expect}
	}
	results, err := h.p.Policy.TestCases(r.Context(), in.Text, cases)
	if err != nil {
		h.problem(w, r, policyProblem(err))
		return
	}
	out := admin.PolicyTestReport{Results: make([]admin.PolicyTestResult, len(results))}
	for i, res := range results {
		o := admin.PolicyTestResult{Name: res.Name, Expect: res.Expect, Pass: res.Pass}
		if res.Err != nil {
			o.Error = clientMessage(res.Err)
		} else {
			o.Decision, o.PolicyIDs = res.Decision.Decision, res.Decision.PolicyIDs
		}
		if o.Pass {
			out.Passed++
		} else {
			out.Failed++
		}
		out.Results[i] = o
	}
	h.reply(w, http.StatusOK, out)
}

func (h *handler) dryRunPolicy(w http.ResponseWriter, r *http.Request, _ *principal) {
	var in admin.PolicyDryRunRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	rep, err := h.p.Policy.DryRun(r.Context(), policy.ReplayParams{Text: in.Text, Last: in.Last})
	if err != nil {
		h.problem(w, r, policyProblem(err))
		return
	}
	out := admin.PolicyDryRun{ActiveVersion: rep.ActiveVersion, Examined: rep.Examined, Replayed: rep.Replayed,
		Skipped: rep.Skipped, Changed: make([]admin.PolicyReplayChange, len(rep.Changed))}
	for i, c := range rep.Changed {
		out.Changed[i] = admin.PolicyReplayChange{EventID: c.EventID, Seq: c.Seq, Time: c.Time.UTC(), Agent: c.Agent,
			User: c.User, Action: c.Action, ResourceType: c.ResourceType, ResourceID: c.ResourceID, Recorded: c.Recorded,
			Current: c.Current.Decision, CurrentPolicyIDs: nonNilStrings(c.Current.PolicyIDs), CurrentObligations: c.Current.Obligations,
			Candidate: c.Candidate.Decision, CandidatePolicyIDs: nonNilStrings(c.Candidate.PolicyIDs),
			CandidateObligations: c.Candidate.Obligations}
	}
	h.reply(w, http.StatusOK, out)
}

func actionClassOut(c store.ActionClass) admin.ActionClass {
	return admin.ActionClass{Name: c.Name, RiskTier: c.RiskTier, Description: c.Description,
		Actions: nonNilStrings(c.Actions), UpdatedAt: optTime(c.UpdatedAt), UpdatedBy: c.UpdatedBy, Version: c.Version}
}

func (h *handler) listActionClasses(w http.ResponseWriter, r *http.Request, _ *principal) {
	cs, err := h.p.Policy.Classes(r.Context())
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, listOf(cs, actionClassOut))
}

func (h *handler) setActionClass(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.SetActionClassRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	c, err := h.p.Policy.SetClass(r.Context(), p.origin, policy.ClassParams{
		Name: r.PathValue("name"), RiskTier: in.RiskTier, Description: in.Description, Actions: in.Actions})
	if err != nil {
		h.problem(w, r, policyProblem(err))
		return
	}
	h.reply(w, http.StatusOK, actionClassOut(c))
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
