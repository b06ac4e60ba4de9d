package httpapi

import (
	"net/http"

	"github.com/agentid/agentid/internal/scim"
	"github.com/agentid/agentid/internal/store"
)

// scimAgentRoutes serves the Agent resource of
// draft-wzdk-scim-agent-resource-00 under /scim/v2/Agents (ADR 0025,
// docs/scim.md#agents) with handle, the SCIM route registrar of
// scimRoutes.
func (h *handler) scimAgentRoutes(agents *scim.Agents, handle func(string, func(http.ResponseWriter, *http.Request, *principal))) {
	handle("POST "+scimRoot+"/Agents", func(w http.ResponseWriter, r *http.Request, p *principal) {
		body, err := h.scimBody(w, r)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		a, err := agents.Create(r.Context(), p.origin, body)
		h.scimAgent(w, r, http.StatusCreated, a, err)
	})
	handle("GET "+scimRoot+"/Agents", func(w http.ResponseWriter, r *http.Request, _ *principal) {
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
		list, total, err := agents.List(r.Context(), q.Get("filter"), start, count)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		base := h.scimBase(r)
		out := make([]scim.Agent, 0, len(list))
		for _, a := range list {
			out = append(out, scim.FromAgent(a, base))
		}
		h.scimReply(w, http.StatusOK, scim.NewList(out, total, start))
	})
	handle("GET "+scimRoot+"/Agents/{id}", func(w http.ResponseWriter, r *http.Request, _ *principal) {
		a, err := agents.Get(r.Context(), r.PathValue("id"))
		h.scimAgent(w, r, http.StatusOK, a, err)
	})
	handle("PUT "+scimRoot+"/Agents/{id}", func(w http.ResponseWriter, r *http.Request, p *principal) {
		ifMatch, body, err := h.scimChange(w, r)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		a, err := agents.Replace(r.Context(), p.origin, r.PathValue("id"), ifMatch, body)
		h.scimAgent(w, r, http.StatusOK, a, err)
	})
	handle("PATCH "+scimRoot+"/Agents/{id}", func(w http.ResponseWriter, r *http.Request, p *principal) {
		ifMatch, body, err := h.scimChange(w, r)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		a, err := agents.Patch(r.Context(), p.origin, r.PathValue("id"), ifMatch, body)
		h.scimAgent(w, r, http.StatusOK, a, err)
	})
	handle("DELETE "+scimRoot+"/Agents/{id}", func(w http.ResponseWriter, r *http.Request, p *principal) {
		ifMatch, err := scimIfMatch(r)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		if err := agents.Delete(r.Context(), p.origin, r.PathValue("id"), ifMatch); err != nil {
			h.scimError(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	})
}

// scimAgent answers with an Agent and its ETag and, for a creation, its
// Location, or with err.
func (h *handler) scimAgent(w http.ResponseWriter, r *http.Request, status int, a store.Agent, err error) {
	if err != nil {
		h.scimError(w, r, err)
		return
	}
	out := scim.FromAgent(a, h.scimBase(r))
	w.Header().Set("ETag", out.Meta.Version)
	if status == http.StatusCreated {
		w.Header().Set("Location", out.Meta.Location)
	}
	h.scimReply(w, status, out)
}
