package policy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

// The AuthZEN 1.0 search APIs (§8-§10): which subjects, resources or
// actions would be allowed, the other two members given. A result fed
// back into an evaluation is an allow (AuthZEN: "MUST result in a
// decision true"), so conditional answers are left out; approvals are not
// consulted.

// SearchKind is what a search looks for.
type SearchKind string

// Search kinds.
const (
	SearchSubject  SearchKind = "subject"
	SearchResource SearchKind = "resource"
	SearchAction   SearchKind = "action"
)

// EventSearched (family authorization) records a search: details "kind",
// "subject" {"type", "id"}, "action", "resource" {"type", "id"},
// "policy_version", "results" (how many in the page), "more" (whether a
// next page exists) and "context_sha256"; the agent axis is the subject
// agent of a resource or action search.
const EventSearched = "decision.searched"

// Search bounds.
const (
	// DefaultSearchLimit is a search page's size when the caller gives none.
	DefaultSearchLimit = 50
	// MaxSearchLimit bounds a search page's size.
	MaxSearchLimit = 1000
	// maxSearchScan bounds the candidates one search request evaluates;
	// a page may hold fewer results than its limit and a next token.
	maxSearchScan = 10000
	// maxPageToken bounds a page token.
	maxPageToken = 2048
)

// SearchParams is one search request. Request holds the members given:
// for a subject search Subject.ID is ignored, for a resource search
// Resource.ID, for an action search Action.
type SearchParams struct {
	Kind    SearchKind
	Request Request
	// Limit is the page size: 0 means DefaultSearchLimit; at most
	// MaxSearchLimit.
	Limit int
	// Token is the NextToken of the previous page of the same search.
	Token string
}

// SearchHit is one result: a subject or resource (Type, ID) or an action
// (Name).
type SearchHit struct {
	Type, ID string
	Name     string
}

// SearchResult is one page of results, in a stable order (agents by id,
// resources and actions by name).
type SearchResult struct {
	Results []SearchHit
	// NextToken continues the search; "" on the last page.
	NextToken string
	// EventID is the audit event that records the search.
	EventID       string
	PolicyVersion int64
}

// pageToken is the opaque page token: the search it continues (a digest
// of the request) and where.
type pageToken struct {
	Kind   SearchKind `json:"k"`
	Query  string     `json:"q"`
	Cursor string     `json:"c"`
}

// Search answers a search and records it before returning. A malformed
// request or page token is a *ValidationError; a subject type other than
// agent and user matches nothing (an empty page, not an error). Users are
// searched among the persons the policies name in their principal scope
// (there is no user directory), each with the request's subject
// properties.
func (s *Service) Search(ctx context.Context, o audit.Origin, p SearchParams) (SearchResult, error) {
	switch {
	case p.Limit < 0 || p.Limit > MaxSearchLimit:
		return SearchResult{}, invalid("page.limit", "must be between 1 and %d", MaxSearchLimit)
	case p.Limit == 0:
		p.Limit = DefaultSearchLimit
	}
	c, err := s.current(ctx)
	if err != nil {
		return SearchResult{}, err
	}
	req := p.Request
	// Check the request's shape with placeholders for the member searched.
	probe := req
	switch p.Kind {
	case SearchSubject:
		if req.Subject.Type == "" {
			return SearchResult{}, invalid("subject.type", "is required")
		}
		probe.Subject = Subject{Type: req.Subject.Type, ID: "-", Properties: req.Subject.Properties}
	case SearchResource:
		probe.Resource.ID = "-"
	case SearchAction:
		if len(c.reg.classes) == 0 {
			return SearchResult{}, fmt.Errorf("policy: no action classes") // the migration seeds six; never deleted
		}
		probe.Action = c.reg.classes[0].Name
	default:
		return SearchResult{}, invalid("kind", "must be subject, resource or action")
	}
	if req.Subject.Type != SubjectAgent && req.Subject.Type != SubjectUser {
		probe.Subject.Type = SubjectAgent // another subject type matches nothing
	}
	in, err := check(c, probe)
	if err != nil {
		return SearchResult{}, err
	}
	query := searchDigest(p.Kind, req, in.digest)
	cursor, err := decodePageToken(p.Token, p.Kind, query)
	if err != nil {
		return SearchResult{}, err
	}
	now := s.now()
	res := SearchResult{Results: []SearchHit{}, PolicyVersion: c.version}
	var agent *store.Agent
	next := ""
	switch {
	case req.Subject.Type == SubjectAgent && p.Kind == SearchSubject:
		res.Results, next, err = s.searchSubjects(ctx, c, in, now, cursor, p.Limit)
	case req.Subject.Type == SubjectAgent:
		var a store.Agent
		a, agent, err = s.activeAgent(ctx, req.Subject.ID, now)
		if err == nil && agent != nil {
			res.Results, next = searchNames(c, p.Kind, agentEntity(a), req, in, now, cursor, p.Limit)
		}
	case req.Subject.Type == SubjectUser && p.Kind == SearchSubject:
		res.Results, next = searchNames(c, p.Kind, types.Entity{}, req, in, now, cursor, p.Limit)
	case req.Subject.Type == SubjectUser: // check refused an empty id
		res.Results, next = searchNames(c, p.Kind, personEntity(req.Subject.ID, in.userProps), req, in, now, cursor, p.Limit)
	}
	if err != nil {
		return SearchResult{}, err
	}
	if next != "" {
		res.NextToken = encodePageToken(pageToken{Kind: p.Kind, Query: query, Cursor: next})
	}
	ev := o.Event(audit.Authorization, EventSearched)
	ev.Time = now
	ev.Details = map[string]any{
		"kind":           string(p.Kind),
		"subject":        map[string]any{"type": truncated(req.Subject.Type), "id": truncated(req.Subject.ID)},
		"resource":       map[string]any{"type": truncated(req.Resource.Type), "id": truncated(req.Resource.ID)},
		"policy_version": c.version,
		"results":        len(res.Results),
		"more":           res.NextToken != "",
		"context_sha256": in.digest,
	}
	if p.Kind != SearchAction {
		ev.Details["action"] = truncated(req.Action)
	}
	if agent != nil {
		ev.Agent = &audit.Agent{ID: agent.ID, Name: agent.Name, SPIFFEID: agent.SPIFFEID}
	}
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		rec, err := s.rec.Append(ctx, tx, ev)
		res.EventID = rec.ID
		return err
	})
	if err != nil {
		return SearchResult{}, fmt.Errorf("policy: record search: %w", err)
	}
	return res, nil
}

// activeAgent looks the subject agent up; agent is nil when it is
// unknown, inactive or expired (the search then matches nothing).
func (s *Service) activeAgent(ctx context.Context, ref string, now time.Time) (store.Agent, *store.Agent, error) {
	if ref == "" {
		return store.Agent{}, nil, invalid("subject.id", "is required")
	}
	a, found, err := s.lookupAgent(ctx, ref)
	if err != nil || !found || !usable(a, now) {
		return store.Agent{}, nil, err
	}
	return a, &a, nil
}

// usable reports whether decisions for the agent reach the policies.
func usable(a store.Agent, now time.Time) bool {
	return a.State == store.AgentActive && (a.ExpiresAt.IsZero() || now.Before(a.ExpiresAt))
}

// searchSubjects walks the active agents from cursor (a store page
// token), asking for no more than the results still wanted per store
// page so that a page never ends in the middle of a store page.
func (s *Service) searchSubjects(ctx context.Context, c *compiled, in input, now time.Time, cursor string, limit int) ([]SearchHit, string, error) {
	out := []SearchHit{}
	scanned := 0
	for len(out) < limit && scanned < maxSearchScan {
		agents, next, err := s.store.ListAgents(ctx, store.AgentFilter{State: store.AgentActive},
			store.Page{PageSize: limit - len(out), PageToken: cursor})
		if err != nil {
			return nil, "", fmt.Errorf("policy: list agents: %w", err)
		}
		for _, a := range agents {
			scanned++
			if usable(a, now) && decideWith(c, a, in, now).Decision == Allow {
				out = append(out, SearchHit{Type: SubjectAgent, ID: a.Name})
			}
		}
		cursor = next
		if next == "" {
			break
		}
	}
	return out, cursor, nil
}

// searchNames evaluates for principal the candidate resources (those the
// policies name in their resource scope, of the type asked) or actions
// (every action of the registry), or the candidate users (the persons the
// policies name in their principal scope, each with the request's subject
// properties; principal is then unused), in name order after cursor.
func searchNames(c *compiled, kind SearchKind, principal types.Entity, req Request, in input, now time.Time, cursor string, limit int) ([]SearchHit, string) {
	var names []string
	switch kind {
	case SearchAction:
		for name := range c.reg.actions {
			names = append(names, name)
		}
	case SearchResource:
		names = policyResources(c.pol, req.Resource.Type)
	case SearchSubject:
		names = policyPersons(c.pol)
	}
	slices.Sort(names)
	out := []SearchHit{}
	start, _ := slices.BinarySearch(names, cursor)
	if cursor != "" && start < len(names) && names[start] == cursor {
		start++
	}
	for i := start; i < len(names); i++ {
		if len(out) == limit || i-start == maxSearchScan {
			return out, names[i-1]
		}
		cand, p := in, principal
		switch kind {
		case SearchAction:
			ai := c.reg.actions[names[i]]
			cand.action, cand.actionName = ai, names[i]
		case SearchResource:
			cand.resource = types.NewEntityUID(TypeResource, types.String(req.Resource.Type+"/"+names[i]))
		case SearchSubject:
			cand.user, p = names[i], personEntity(names[i], in.userProps)
		}
		if decideAs(c, p, cand, now).Decision != Allow {
			continue
		}
		switch kind {
		case SearchAction:
			out = append(out, SearchHit{Name: names[i]})
		case SearchResource:
			out = append(out, SearchHit{Type: req.Resource.Type, ID: names[i]})
		case SearchSubject:
			out = append(out, SearchHit{Type: SubjectUser, ID: names[i]})
		}
	}
	return out, ""
}

// policyResources returns the ids of the resources of type typ that the
// policies name in their resource scope (resource == / in
// Resource::"<typ>/<id>"), without duplicates.
func policyResources(p *parsed, typ string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range p.ids {
		ast := (*xast.Policy)(p.set.Get(cedar.PolicyID(id)).AST())
		e, ok := scopeEntity(ast.Resource)
		if !ok {
			continue
		}
		rid, ok := strings.CutPrefix(string(e.ID), typ+"/")
		if e.Type != TypeResource || !ok || rid == "" || seen[rid] {
			continue
		}
		seen[rid] = true
		out = append(out, rid)
	}
	return out
}

// policyPersons returns the ids of the persons the policies name in their
// principal scope (principal == / in Person::"<id>", principal is Person in
// Person::"<id>"), without duplicates.
func policyPersons(p *parsed) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range p.ids {
		ast := (*xast.Policy)(p.set.Get(cedar.PolicyID(id)).AST())
		e, ok := scopeEntity(ast.Principal)
		if sc, isIn := ast.Principal.(xast.ScopeTypeIsIn); isIn && sc.Type != TypePerson {
			continue
		}
		if !ok || e.Type != TypePerson || e.ID == "" || seen[string(e.ID)] {
			continue
		}
		seen[string(e.ID)] = true
		out = append(out, string(e.ID))
	}
	return out
}

// scopeEntity returns the entity a scope names (==, in, is … in).
func scopeEntity(n any) (types.EntityUID, bool) {
	switch sc := n.(type) {
	case xast.ScopeTypeEq:
		return sc.Entity, true
	case xast.ScopeTypeIn:
		return sc.Entity, true
	case xast.ScopeTypeIsIn:
		return sc.Entity, true
	}
	return types.EntityUID{}, false
}

// searchDigest names a search so that a page token is only used with the
// search that issued it.
func searchDigest(kind SearchKind, req Request, digest string) string {
	switch kind {
	case SearchSubject:
		req.Subject.ID = "" // ignored
	case SearchResource:
		req.Resource.ID = "" // ignored
	case SearchAction:
		req.Action = "" // absent
	}
	h := sha256.New()
	for _, s := range []string{string(kind), req.Subject.Type, req.Subject.ID, req.Action, req.Resource.Type, req.Resource.ID, digest} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func encodePageToken(t pageToken) string {
	b, _ := json.Marshal(t) //nolint:errchkjson // strings only
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken returns the cursor of a page token of this search; ""
// for none.
func decodePageToken(tok string, kind SearchKind, query string) (string, error) {
	if tok == "" {
		return "", nil
	}
	bad := invalid("page.token", "is not a page token of this search")
	if len(tok) > maxPageToken {
		return "", bad
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", bad
	}
	var t pageToken
	if err := json.Unmarshal(b, &t); err != nil || t.Kind != kind || t.Query != query || t.Cursor == "" {
		return "", bad
	}
	return t.Cursor, nil
}
