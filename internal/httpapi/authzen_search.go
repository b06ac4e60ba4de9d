package httpapi

import (
	"net/http"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/policy"
)

// The AuthZEN 1.0 search endpoints (§8 subject, §9 resource, §10 action
// search): the subjects, resources or actions that an evaluation would
// allow, paged with page.limit and page.token (next_token in the answer,
// "" on the last page).
const (
	authzenSearchSubjectPath  = "/access/v1/search/subject"
	authzenSearchResourcePath = "/access/v1/search/resource"
	authzenSearchActionPath   = "/access/v1/search/action"
)

// authzenSearchRoutes mounts the search endpoints (called by authzenRoutes).
func (h *handler) authzenSearchRoutes() {
	for path, kind := range map[string]policy.SearchKind{
		authzenSearchSubjectPath:  policy.SearchSubject,
		authzenSearchResourcePath: policy.SearchResource,
		authzenSearchActionPath:   policy.SearchAction,
	} {
		h.mux.HandleFunc("POST "+path, h.authzen(func(w http.ResponseWriter, r *http.Request, o audit.Origin, body []byte) {
			h.search(w, r, o, body, kind)
		}))
		h.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			echoRequestID(w, r)
			w.Header().Set("Allow", http.MethodPost)
			h.problem(w, r, errMethod)
		})
	}
}

type (
	azSearch struct {
		azRequest
		Page *struct {
			Token     *string `json:"token"`
			NextToken *string `json:"next_token"` // the drafts' name for token
			Limit     *int    `json:"limit"`
		} `json:"page"`
	}
	azHit struct {
		Type string `json:"type,omitempty"`
		ID   string `json:"id,omitempty"`
		Name string `json:"name,omitempty"`
	}
	azPage struct {
		NextToken string `json:"next_token"`
		Count     int    `json:"count"`
	}
	azSearchContext struct {
		ID            string `json:"id"` // the audit event of the search
		PolicyVersion int64  `json:"policy_version"`
	}
	azSearchResult struct {
		Results []azHit          `json:"results"`
		Page    azPage           `json:"page"`
		Context *azSearchContext `json:"context,omitempty"`
	}
)

// decodeSearch decodes a search request, checking the members its kind
// requires (the searched member's id, or the action of an action search,
// may be absent).
func decodeSearch(body []byte, kind policy.SearchKind) (policy.SearchParams, error) {
	var in azSearch
	if err := decodeAuthZEN(body, &in); err != nil {
		return policy.SearchParams{}, err
	}
	empty := ""
	switch kind {
	case policy.SearchSubject:
		if in.Subject != nil && in.Subject.Type != nil {
			in.Subject.ID = &empty
		}
	case policy.SearchResource:
		if in.Resource != nil && in.Resource.Type != nil {
			in.Resource.ID = &empty
		}
	case policy.SearchAction:
		in.Action = &azAction{Name: &empty}
	}
	req, err := toPolicyRequest(in.azRequest)
	if err != nil {
		return policy.SearchParams{}, err
	}
	p := policy.SearchParams{Kind: kind, Request: req}
	if pg := in.Page; pg != nil {
		switch {
		case pg.Token != nil:
			p.Token = *pg.Token
		case pg.NextToken != nil:
			p.Token = *pg.NextToken
		}
		if pg.Limit != nil {
			if *pg.Limit < 1 || *pg.Limit > policy.MaxSearchLimit {
				return policy.SearchParams{}, badRequest("page.limit", "page.limit must be between 1 and %d", policy.MaxSearchLimit)
			}
			p.Limit = *pg.Limit
		}
	}
	return p, nil
}

func (h *handler) search(w http.ResponseWriter, r *http.Request, o audit.Origin, body []byte, kind policy.SearchKind) {
	p, err := decodeSearch(body, kind)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	res, err := h.p.Policy.Search(r.Context(), o, p)
	if err != nil {
		h.problem(w, r, authzenProblem(err))
		return
	}
	out := azSearchResult{Results: make([]azHit, len(res.Results)), Page: azPage{NextToken: res.NextToken, Count: len(res.Results)},
		Context: &azSearchContext{ID: res.EventID, PolicyVersion: res.PolicyVersion}}
	for i, hit := range res.Results {
		out.Results[i] = azHit(hit)
	}
	h.reply(w, http.StatusOK, out)
}
