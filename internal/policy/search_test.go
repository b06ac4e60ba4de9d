package policy_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/policy"
)

const searchPolicies = `@id("everything-but-deletes")
permit (principal == Agent::"invoice-bot", action, resource)
unless { context.risk_tier == "high" && context.action_class == "delete" };

@id("invoice-1")
permit (principal, action == Action::"read", resource in Resource::"invoice/1");

@id("invoice-2")
permit (principal, action == Action::"read", resource == Resource::"invoice/2");

@id("order-9")
permit (principal, action == Action::"read", resource == Resource::"order/9");

@id("invoice-3")
permit (principal, action == Action::"read", resource == Resource::"invoice/3");

@id("frozen")
forbid (principal, action, resource) when { resource.hasTag("state") && resource.getTag("state") == "frozen" };
`

// all pages through a search, limit results per page.
func all(t *testing.T, e *env, p policy.SearchParams) ([]policy.SearchHit, int) {
	t.Helper()
	var out []policy.SearchHit
	pages := 0
	for {
		res, err := e.svc.Search(context.Background(), e.admin, p)
		if err != nil {
			t.Fatalf("Search: %v", err)
		}
		pages++
		if len(res.Results) > p.Limit && p.Limit > 0 || res.EventID == "" {
			t.Fatalf("page of %d results for limit %d, event %q", len(res.Results), p.Limit, res.EventID)
		}
		out = append(out, res.Results...)
		if p.Token = res.NextToken; p.Token == "" || pages > 50 {
			return out, pages
		}
	}
}

func TestSearchPages(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, searchPolicies)
	r := req("", "invoice", "1")
	// Actions: every action but delete's, two per page.
	hits, pages := all(t, e, policy.SearchParams{Kind: policy.SearchAction, Request: r, Limit: 2})
	var names []string
	for _, h := range hits {
		names = append(names, h.Name)
	}
	if want := []string{"admin", "external-comms", "payments", "read", "write"}; !slices.Equal(names, want) || pages < 3 {
		t.Errorf("action search = %v in %d pages, want %v in ≥ 3", names, pages, want)
	}
	// Resources the policies name, of the type asked.
	r.Action = "read"
	hits, _ = all(t, e, policy.SearchParams{Kind: policy.SearchResource, Request: r, Limit: 1})
	if want := []policy.SearchHit{{Type: "invoice", ID: "1"}, {Type: "invoice", ID: "2"}, {Type: "invoice", ID: "3"}}; !slices.Equal(hits, want) {
		t.Errorf("resource search = %v, want %v", hits, want)
	}
	r.Resource.Properties = json.RawMessage(`{"state": "frozen"}`)
	if hits, _ = all(t, e, policy.SearchParams{Kind: policy.SearchResource, Request: r}); len(hits) != 0 {
		t.Errorf("resource search with a forbidding property = %v, want none", hits)
	}
	// Subjects: the active agents (idle-bot is suspended).
	r.Resource.Properties = nil
	hits, _ = all(t, e, policy.SearchParams{Kind: policy.SearchSubject, Request: r, Limit: 1})
	if want := []policy.SearchHit{{Type: "agent", ID: "invoice-bot"}}; !slices.Equal(hits, want) {
		t.Errorf("subject search = %v, want %v", hits, want)
	}
	// Every page is one decision.searched event; no decision.made.
	n := 0
	for _, ev := range e.events(t, audit.Authorization) {
		if ev["type"] == policy.EventDecisionMade {
			t.Errorf("a search recorded a decision: %v", ev)
		}
		if ev["type"] == policy.EventSearched {
			n++
		}
	}
	if n < 8 {
		t.Errorf("%d decision.searched events, want one per page (≥ 8)", n)
	}
}

func TestSearchBadInput(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, searchPolicies)
	ctx := context.Background()
	first, err := e.svc.Search(ctx, e.admin, policy.SearchParams{Kind: policy.SearchAction, Request: req("", "invoice", "1"), Limit: 1})
	if err != nil || first.NextToken == "" {
		t.Fatalf("Search = %+v, %v", first, err)
	}
	for name, p := range map[string]policy.SearchParams{
		"token of another search": {Kind: policy.SearchAction, Request: req("", "invoice", "2"), Token: first.NextToken},
		"token of another kind":   {Kind: policy.SearchResource, Request: req("read", "invoice", ""), Token: first.NextToken},
		"garbage token":           {Kind: policy.SearchAction, Request: req("", "invoice", "1"), Token: "%%%"},
		"limit too large":         {Kind: policy.SearchAction, Request: req("", "invoice", "1"), Limit: policy.MaxSearchLimit + 1},
		"unknown kind":            {Kind: "everything", Request: req("read", "invoice", "1")},
		"unknown action":          {Kind: policy.SearchSubject, Request: req("launch", "invoice", "1")},
		"no resource type":        {Kind: policy.SearchResource, Request: req("read", "", "")},
	} {
		if _, err := e.svc.Search(ctx, e.admin, p); !errors.Is(err, policy.ErrInvalid) {
			t.Errorf("%s: Search = %v, want ErrInvalid", name, err)
		}
	}
	// Another subject type, users when no policy names a person, or an
	// unknown agent: no results, no error.
	for _, typ := range []string{"spaceship", policy.SubjectUser} {
		other := req("read", "invoice", "1")
		other.Subject.Type = typ
		if res, err := e.svc.Search(ctx, e.admin, policy.SearchParams{Kind: policy.SearchSubject, Request: other}); err != nil || len(res.Results) != 0 {
			t.Errorf("%s subject search = %+v, %v", typ, res, err)
		}
	}
	ghost := req("", "invoice", "1")
	ghost.Subject.ID = "ghost-bot"
	if res, err := e.svc.Search(ctx, e.admin, policy.SearchParams{Kind: policy.SearchAction, Request: ghost}); err != nil || len(res.Results) != 0 {
		t.Errorf("unknown agent action search = %+v, %v", res, err)
	}
}
