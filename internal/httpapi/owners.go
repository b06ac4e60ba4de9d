package httpapi

import (
	"net/http"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

func ownerOut(o store.Owner) admin.Owner {
	return admin.Owner{
		ID: o.ID, Kind: string(o.Kind), Email: o.Email, Subject: o.Subject, SubjectIssuer: o.SubjectIssuer, DisplayName: o.DisplayName,
		UserName: o.UserName, ExternalID: o.ExternalID, State: string(o.State), CreatedAt: o.CreatedAt.UTC(), UpdatedAt: o.UpdatedAt.UTC(), Version: o.Version,
	}
}

func (h *handler) createOwner(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.CreateOwnerRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	kind := store.OwnerKind(in.Kind)
	if kind == "" {
		kind = store.OwnerPerson
	}
	o, err := h.p.Identity.CreateOwner(r.Context(), p.origin, identity.CreateOwnerParams{
		Kind: kind, Email: in.Email, Subject: in.Subject, SubjectIssuer: in.SubjectIssuer, DisplayName: in.DisplayName,
		UserName: in.UserName, ExternalID: in.ExternalID,
	})
	if err != nil {
		h.problem(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/owners/"+o.ID)
	etag(w, o.Version)
	h.reply(w, http.StatusCreated, ownerOut(o))
}

func (h *handler) listOwners(w http.ResponseWriter, r *http.Request, _ *principal) {
	pg, err := pageOf(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	f := store.OwnerFilter{State: store.OwnerState(r.URL.Query().Get("state"))}
	switch f.State {
	case "", store.OwnerActive, store.OwnerDeactivated:
	default:
		h.problem(w, r, badRequest("state", "state must be active or deactivated"))
		return
	}
	owners, next, err := h.p.Identity.ListOwners(r.Context(), f, pg)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.List[admin.Owner]{Items: make([]admin.Owner, 0, len(owners)), NextPageToken: next}
	for _, o := range owners {
		out.Items = append(out.Items, ownerOut(o))
	}
	h.reply(w, http.StatusOK, out)
}

func (h *handler) getOwner(w http.ResponseWriter, r *http.Request, _ *principal) {
	o, err := h.p.Identity.GetOwner(r.Context(), r.PathValue("ref"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	etag(w, o.Version)
	h.reply(w, http.StatusOK, ownerOut(o))
}

func (h *handler) deactivateOwner(w http.ResponseWriter, r *http.Request, p *principal) {
	tp, err := h.transition(w, r, "ref")
	if err != nil {
		h.problem(w, r, err)
		return
	}
	o, err := h.p.Identity.DeactivateOwner(r.Context(), p.origin, tp)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	etag(w, o.Version)
	h.reply(w, http.StatusOK, ownerOut(o))
}

func (h *handler) updateOwner(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.UpdateOwnerRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	v, err := ifVersion(r, in.Version)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	o, err := h.p.Identity.UpdateOwner(r.Context(), p.origin, identity.UpdateOwnerParams{
		Ref: r.PathValue("ref"), IfVersion: v, Email: in.Email, DisplayName: in.DisplayName,
		UserName: in.UserName, ExternalID: in.ExternalID, SubjectIssuer: in.SubjectIssuer,
	})
	if err != nil {
		h.problem(w, r, err)
		return
	}
	etag(w, o.Version)
	h.reply(w, http.StatusOK, ownerOut(o))
}

func (h *handler) reactivateOwner(w http.ResponseWriter, r *http.Request, p *principal) {
	tp, err := h.transition(w, r, "ref")
	if err != nil {
		h.problem(w, r, err)
		return
	}
	o, err := h.p.Identity.ReactivateOwner(r.Context(), p.origin, tp)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	etag(w, o.Version)
	h.reply(w, http.StatusOK, ownerOut(o))
}

func adminTokenOut(t store.AdminToken) admin.AdminToken {
	return admin.AdminToken{
		ID: t.ID, Name: t.Name, Role: string(t.Role), CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt.UTC(),
		ExpiresAt: optTime(t.ExpiresAt), RevokedAt: optTime(t.RevokedAt), Version: t.Version,
	}
}

func (h *handler) createAdminToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.CreateAdminTokenRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	ttl, err := ttlParam("ttl_seconds", in.TTLSeconds)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	t, secret, err := h.p.Auth.Create(r.Context(), p.origin, adminauth.CreateParams{
		Name: in.Name, Role: store.Role(in.Role), TTL: ttl,
	})
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusCreated, admin.CreatedAdminToken{AdminToken: adminTokenOut(t), Token: secret})
}

func (h *handler) listAdminTokens(w http.ResponseWriter, r *http.Request, _ *principal) {
	pg, err := pageOf(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	toks, next, err := h.p.Auth.List(r.Context(), pg)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.List[admin.AdminToken]{Items: make([]admin.AdminToken, 0, len(toks)), NextPageToken: next}
	for _, t := range toks {
		out.Items = append(out.Items, adminTokenOut(t))
	}
	h.reply(w, http.StatusOK, out)
}

func (h *handler) revokeAdminToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var in struct{}
	if r.ContentLength != 0 {
		if err := h.decode(w, r, &in); err != nil {
			h.problem(w, r, err)
			return
		}
	}
	t, err := h.p.Auth.Revoke(r.Context(), p.origin, r.PathValue("id"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, adminTokenOut(t))
}
