package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// Grants serves the delegation grant endpoints (ADR 0014);
// *delegation.Service implements it.
type Grants interface {
	CreateGrant(ctx context.Context, o audit.Origin, p delegation.CreateGrantParams) (store.Grant, error)
	GetGrant(ctx context.Context, id string) (store.Grant, error)
	ListGrants(ctx context.Context, p delegation.ListGrantsParams) ([]store.Grant, string, error)
	RevokeGrant(ctx context.Context, o audit.Origin, p delegation.RevokeGrantParams) (store.Grant, int64, error)
	// AuthenticatePerson verifies a person's token of a trusted issuer
	// (delegation.ErrUnauthenticated, ErrKeysUnavailable).
	AuthenticatePerson(ctx context.Context, o audit.Origin, token string) (delegation.Subject, audit.Origin, error)
}

var _ Grants = (*delegation.Service)(nil)

// grantRoutes mounts the grant endpoints when Params.Grants is set: the
// admin's under /v1/grants (through handle, an admin token) and the
// person's own under /v1/me/grants (a token of a trusted issuer).
func (h *handler) grantRoutes(handle func(string, store.Role, func(http.ResponseWriter, *http.Request, *principal))) {
	if h.p.Grants == nil {
		return
	}
	handle("POST /v1/grants", store.RoleAdmin, h.createGrant)
	handle("GET /v1/grants", store.RoleAdmin, h.listGrants)
	handle("GET /v1/grants/{id}", store.RoleAdmin, h.getGrant)
	handle("POST /v1/grants/{id}/revoke", store.RoleAdmin, h.revokeGrant)
	h.mux.Handle("POST /v1/me/grants", h.person(h.createMyGrant))
	h.mux.Handle("GET /v1/me/grants", h.person(h.listMyGrants))
	h.mux.Handle("POST /v1/me/grants/{id}/revoke", h.person(h.revokeMyGrant))
}

// person authenticates a person's bearer token of a trusted issuer.
func (h *handler) person(fn func(http.ResponseWriter, *http.Request, *delegation.Subject, audit.Origin)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer, ok := bearerToken(r)
		if !ok {
			h.problem(w, r, grantProblem(delegation.ErrUnauthenticated))
			return
		}
		who, o, err := h.p.Grants.AuthenticatePerson(r.Context(), h.origin(r), bearer)
		if err != nil {
			h.problem(w, r, grantProblem(err))
			return
		}
		fn(w, r, &who, o)
	})
}

// grantProblem turns the delegation service's errors into problems.
func grantProblem(err error) error {
	detail := strings.TrimPrefix(err.Error(), "delegation: ")
	switch {
	case errors.Is(err, delegation.ErrKeysUnavailable):
		return &requestError{status: http.StatusServiceUnavailable, typ: admin.ProblemUnavailable, title: "Unavailable",
			detail: "the identity provider's keys could not be fetched; retry later"}
	case errors.Is(err, delegation.ErrUnauthenticated):
		return &requestError{status: http.StatusUnauthorized, typ: admin.ProblemUnauthenticated, title: "Unauthenticated",
			detail: "a valid token of a trusted identity provider is required: Authorization: Bearer <token>"}
	case errors.Is(err, delegation.ErrForbidden):
		return &requestError{status: http.StatusForbidden, typ: admin.ProblemForbidden, title: "Forbidden", detail: detail}
	case errors.Is(err, delegation.ErrNotFound):
		return &requestError{status: http.StatusNotFound, typ: admin.ProblemNotFound, title: "Not found", detail: detail}
	case errors.Is(err, delegation.ErrIllegalTransition):
		return &requestError{status: http.StatusConflict, typ: admin.ProblemIllegalTransition, title: "Illegal state transition", detail: detail}
	}
	return err
}

func (h *handler) grantOut(g store.Grant) admin.Grant {
	return admin.Grant{
		ID: g.ID, SubjectIssuer: g.SubjectIssuer, Subject: g.Subject, SubjectEmail: g.SubjectEmail, AgentID: g.AgentID,
		Scopes: nonNil(g.Scopes), ActionClasses: nonNil(g.ActionClasses), Audiences: nonNil(g.Audiences),
		ExpiresAt: g.ExpiresAt.UTC(), MaxDepth: g.MaxDepth, AllowSubdelegation: g.AllowSubdelegation,
		Active:        g.RevokedAt.IsZero() && h.p.Clock().Before(g.ExpiresAt),
		CreatedByType: g.CreatedByType, CreatedBy: g.CreatedBy, CreatedAt: g.CreatedAt.UTC(),
		RevokedAt: optTime(g.RevokedAt), RevokedBy: g.RevokedBy, RevokeReason: g.RevokeReason, Version: g.Version,
	}
}

// grantParams reads a CreateGrantRequest.
func (h *handler) grantParams(w http.ResponseWriter, r *http.Request) (delegation.CreateGrantParams, error) {
	var in admin.CreateGrantRequest
	if err := h.decode(w, r, &in); err != nil {
		return delegation.CreateGrantParams{}, err
	}
	p := delegation.CreateGrantParams{
		SubjectIssuer: in.SubjectIssuer, Subject: in.Subject, SubjectEmail: in.SubjectEmail, Agent: in.Agent,
		Scopes: in.Scopes, ActionClasses: in.ActionClasses, Audiences: in.Audiences,
		MaxDepth: in.MaxDepth, AllowSubdelegation: in.AllowSubdelegation,
	}
	if in.ExpiresAt != nil {
		p.ExpiresAt = *in.ExpiresAt
	}
	return p, nil
}

func (h *handler) createGrant(w http.ResponseWriter, r *http.Request, p *principal) {
	params, err := h.grantParams(w, r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.finishCreateGrant(w, r, p.origin, params)
}

func (h *handler) createMyGrant(w http.ResponseWriter, r *http.Request, who *delegation.Subject, o audit.Origin) {
	params, err := h.grantParams(w, r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	params.Person = who
	h.finishCreateGrant(w, r, o, params)
}

func (h *handler) finishCreateGrant(w http.ResponseWriter, r *http.Request, o audit.Origin, params delegation.CreateGrantParams) {
	g, err := h.p.Grants.CreateGrant(r.Context(), o, params)
	if err != nil {
		h.problem(w, r, grantProblem(err))
		return
	}
	w.Header().Set("Location", "/v1/grants/"+g.ID)
	h.reply(w, http.StatusCreated, h.grantOut(g))
}

func (h *handler) listGrants(w http.ResponseWriter, r *http.Request, _ *principal) {
	q := r.URL.Query()
	h.grantList(w, r, delegation.ListGrantsParams{
		Agent: q.Get("agent"), SubjectIssuer: q.Get("subject_issuer"), Subject: q.Get("subject"),
	})
}

func (h *handler) listMyGrants(w http.ResponseWriter, r *http.Request, who *delegation.Subject, _ audit.Origin) {
	h.grantList(w, r, delegation.ListGrantsParams{SubjectIssuer: who.Issuer, Subject: who.Subject})
}

func (h *handler) grantList(w http.ResponseWriter, r *http.Request, lp delegation.ListGrantsParams) {
	pg, err := pageOf(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	active, err := boolParam(r, "active")
	if err != nil {
		h.problem(w, r, err)
		return
	}
	lp.Active, lp.Page = active, pg
	gs, next, err := h.p.Grants.ListGrants(r.Context(), lp)
	if err != nil {
		h.problem(w, r, grantProblem(err))
		return
	}
	out := listOf(gs, h.grantOut)
	out.NextPageToken = next
	h.reply(w, http.StatusOK, out)
}

func (h *handler) getGrant(w http.ResponseWriter, r *http.Request, _ *principal) {
	g, err := h.p.Grants.GetGrant(r.Context(), r.PathValue("id"))
	if err != nil {
		h.problem(w, r, grantProblem(err))
		return
	}
	etag(w, g.Version)
	h.reply(w, http.StatusOK, h.grantOut(g))
}

func (h *handler) revokeGrant(w http.ResponseWriter, r *http.Request, p *principal) {
	h.grantRevoke(w, r, p.origin, nil)
}

func (h *handler) revokeMyGrant(w http.ResponseWriter, r *http.Request, who *delegation.Subject, o audit.Origin) {
	h.grantRevoke(w, r, o, who)
}

// grantRevoke revokes {id}. The body is optional: {"reason": "…"}.
func (h *handler) grantRevoke(w http.ResponseWriter, r *http.Request, o audit.Origin, who *delegation.Subject) {
	var in admin.RevokeGrantRequest
	if r.ContentLength != 0 {
		if err := h.decode(w, r, &in); err != nil {
			h.problem(w, r, err)
			return
		}
	}
	g, n, err := h.p.Grants.RevokeGrant(r.Context(), o, delegation.RevokeGrantParams{
		ID: r.PathValue("id"), Reason: in.Reason, Person: who,
	})
	if err != nil {
		h.problem(w, r, grantProblem(err))
		return
	}
	h.reply(w, http.StatusOK, admin.GrantRevocation{Grant: h.grantOut(g), TokensAffected: n})
}
