package httpapi

import (
	"errors"
	"net/http"
	"slices"

	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// The non-human identity inventory (GET /v1/inventory, docs/inventory.md,
// ADR 0024): a read-only report over the registry, admin only (the
// auditor role reads /v1/audit/… alone).

func (h *handler) inventory(w http.ResponseWriter, r *http.Request, _ *principal) {
	pg, err := pageOf(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	q := r.URL.Query()
	p := identity.InventoryParams{State: store.AgentState(q.Get("state")), Owner: q.Get("owner"), Page: pg}
	switch p.State {
	case "", store.AgentActive, store.AgentSuspended, store.AgentDeprovisioned:
	default:
		h.problem(w, r, badRequest("state", "state must be active, suspended or deprovisioned"))
		return
	}
	if p.Findings, err = identity.ParseFindingCodes(q["finding"]); err != nil {
		h.problem(w, r, queryErr(err))
		return
	}
	if p.ExpiringWithin, err = identity.ParseExpiringWithin(q.Get("expiring_within")); err != nil {
		h.problem(w, r, queryErr(err))
		return
	}
	items, next, err := h.p.Identity.Inventory(r.Context(), p)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.List[admin.InventoryItem]{Items: make([]admin.InventoryItem, 0, len(items)), NextPageToken: next}
	for _, it := range items {
		out.Items = append(out.Items, h.inventoryItemOut(it))
	}
	h.reply(w, http.StatusOK, out)
}

func (h *handler) inventoryItemOut(it identity.InventoryItem) admin.InventoryItem {
	a := it.Agent
	out := admin.InventoryItem{
		ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID, State: string(a.State), Purpose: a.Purpose,
		CreatedAt:     a.CreatedAt.UTC(),
		ExpiresAt:     optTime(a.ExpiresAt),
		Expired:       h.expired(a.ExpiresAt),
		Owners:        make([]admin.InventoryOwner, 0, len(it.Owners)),
		Orphaned:      a.Orphaned,
		ActionClasses: make([]admin.InventoryActionClass, 0, len(it.ActionClasses)),
		RiskTier:      it.RiskTier,
		Credentials: admin.InventoryCredentials{
			ClientKeys:    credentialSummaryOut(it.ClientKeys),
			ClientSecrets: credentialSummaryOut(it.ClientSecrets),
			Selectors:     len(a.Selectors),
			RequireDPoP:   a.RequireDPoP,
		},
		LiveInstances: admin.InventoryCount{Count: it.LiveInstances.N, Capped: it.LiveInstances.Capped},
		ActiveGrants:  admin.InventoryCount{Count: it.ActiveGrants.N, Capped: it.ActiveGrants.Capped},
		Findings:      make([]admin.Finding, 0, len(it.Findings)),
	}
	for _, o := range it.Owners {
		state := string(o.State)
		if state == "" {
			state = "unknown"
		}
		out.Owners = append(out.Owners, admin.InventoryOwner{ID: o.ID, Kind: string(o.Kind), Email: o.Email,
			DisplayName: o.DisplayName, State: state})
	}
	for _, c := range it.ActionClasses {
		out.ActionClasses = append(out.ActionClasses, admin.InventoryActionClass{Name: c.Name, RiskTier: c.RiskTier})
	}
	attestors := []string{}
	for _, rule := range a.AttestationRules {
		attestors = append(attestors, rule.Attestor)
	}
	slices.Sort(attestors)
	out.Credentials.AttestationRules = admin.AttestationSummary{Count: len(a.AttestationRules), Attestors: slices.Compact(attestors)}
	for _, f := range it.Findings {
		out.Findings = append(out.Findings, admin.Finding{Code: string(f.Code), Message: f.Message})
	}
	return out
}

// queryErr turns the validation error of a query parameter into the
// bad-request problem other query parameters get.
func queryErr(err error) error {
	if ve, ok := errors.AsType[*fault.ValidationError](err); ok {
		return badRequest(ve.Field, "%s %s", ve.Field, ve.Reason)
	}
	return err
}

func credentialSummaryOut(s identity.CredentialSummary) admin.CredentialSummary {
	return admin.CredentialSummary{
		Count: s.Count, Expired: s.Expired, WithoutExpiry: s.WithoutExpiry,
		OldestCreatedAt: optTime(s.OldestCreatedAt), SoonestExpiry: optTime(s.SoonestExpiry),
	}
}
