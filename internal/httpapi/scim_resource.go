package httpapi

import (
	"context"
	"net/http"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/scim"
)

// scimResource is one SCIM resource type's operations on its records R
// (scim.Users over owners, scim.Agents over agents).
type scimResource[R any] interface {
	Create(ctx context.Context, o audit.Origin, body []byte) (R, error)
	Get(ctx context.Context, id string) (R, error)
	List(ctx context.Context, filter string, startIndex, count int) ([]R, int, error)
	Replace(ctx context.Context, o audit.Origin, id string, ifMatch int64, body []byte) (R, error)
	Patch(ctx context.Context, o audit.Origin, id string, ifMatch int64, body []byte) (R, error)
	Delete(ctx context.Context, o audit.Origin, id string, ifMatch int64) error
}

// scimResourceRoutes serves one resource type under scimRoot+endpoint
// (RFC 7644 §3.3–3.6): POST and GET (list) on the endpoint, GET, PUT,
// PATCH and DELETE on one resource. render turns a record into its wire
// form W under the SCIM root's absolute URL, meta reads W's meta
// attribute (its ETag and location); handle is scimRoutes' registrar.
func scimResourceRoutes[R, W any](h *handler, endpoint string, res scimResource[R], render func(R, string) W,
	meta func(W) scim.Meta, handle func(string, func(http.ResponseWriter, *http.Request, *principal))) {
	one := func(w http.ResponseWriter, r *http.Request, status int, rec R, err error) {
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		out := render(rec, h.scimBase(r))
		w.Header().Set("ETag", meta(out).Version)
		if status == http.StatusCreated {
			w.Header().Set("Location", meta(out).Location)
		}
		h.scimReply(w, status, out)
	}
	path := scimRoot + endpoint
	handle("POST "+path, func(w http.ResponseWriter, r *http.Request, p *principal) {
		body, err := h.scimBody(w, r)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		rec, err := res.Create(r.Context(), p.origin, body)
		one(w, r, http.StatusCreated, rec, err)
	})
	handle("GET "+path, func(w http.ResponseWriter, r *http.Request, _ *principal) {
		q := r.URL.Query()
		start, err := scimInt(q, "startIndex", 1)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		count, err := scimInt(q, "count", scim.DefaultCount)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		recs, total, err := res.List(r.Context(), q.Get("filter"), start, count)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		base := h.scimBase(r)
		out := make([]W, 0, len(recs))
		for _, rec := range recs {
			out = append(out, render(rec, base))
		}
		h.scimReply(w, http.StatusOK, scim.NewList(out, total, start))
	})
	handle("GET "+path+"/{id}", func(w http.ResponseWriter, r *http.Request, _ *principal) {
		rec, err := res.Get(r.Context(), r.PathValue("id"))
		one(w, r, http.StatusOK, rec, err)
	})
	change := func(op func(context.Context, audit.Origin, string, int64, []byte) (R, error)) func(http.ResponseWriter, *http.Request, *principal) {
		return func(w http.ResponseWriter, r *http.Request, p *principal) {
			ifMatch, body, err := h.scimChange(w, r)
			if err != nil {
				h.scimError(w, r, err)
				return
			}
			rec, err := op(r.Context(), p.origin, r.PathValue("id"), ifMatch, body)
			one(w, r, http.StatusOK, rec, err)
		}
	}
	handle("PUT "+path+"/{id}", change(res.Replace))
	handle("PATCH "+path+"/{id}", change(res.Patch))
	handle("DELETE "+path+"/{id}", func(w http.ResponseWriter, r *http.Request, p *principal) {
		ifMatch, err := scimIfMatch(r)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		if err := res.Delete(r.Context(), p.origin, r.PathValue("id"), ifMatch); err != nil {
			h.scimError(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	})
}
