// Package authzen is a client of the OpenID AuthZEN Authorization API 1.0
// as agentid's decision point serves it: access evaluation (§6), batch
// evaluations (§7), subject, resource and action search (§8-§10) and the
// PDP metadata (§11), plus Middleware, which asks the PDP before each
// request reaches a handler, with an opt-in bounded decision Cache.
//
// agentid answers allow, deny or conditional; on the wire a conditional
// decision is "decision": false with context.decision "conditional" and
// its obligations (an approval, for example): the caller must not go ahead
// until they are met. Decision.Conditional and Decision.Obligations read
// them.
//
// A Client is safe for concurrent use.
package authzen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxResponse bounds an answer read from the PDP.
const maxResponse = 8 << 20

// Paths of the AuthZEN endpoints relative to the PDP's URL (§12), used when
// the metadata does not name them.
const (
	EvaluationPath     = "/access/v1/evaluation"
	EvaluationsPath    = "/access/v1/evaluations"
	SearchSubjectPath  = "/access/v1/search/subject"
	SearchResourcePath = "/access/v1/search/resource"
	SearchActionPath   = "/access/v1/search/action"
	MetadataPath       = "/.well-known/authzen-configuration"
)

// Subject is who asks: for agentid, Type "agent" and ID the agent's id,
// name or SPIFFE ID.
type Subject struct {
	Type       string         `json:"type"`
	ID         string         `json:"id,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Action is what the subject wants to do: for agentid an action class or
// an action of one.
type Action struct {
	Name       string         `json:"name"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Resource is what the action is on.
type Resource struct {
	Type       string         `json:"type"`
	ID         string         `json:"id,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Request is one access evaluation request (§6.1).
type Request struct {
	Subject  Subject        `json:"subject"`
	Action   Action         `json:"action"`
	Resource Resource       `json:"resource"`
	Context  map[string]any `json:"context,omitempty"`
}

// Decision is one answer (§6.2). Context is the PDP's explanation; for
// agentid it holds "id" (the audit event), "decision"
// (allow|deny|conditional), "policy_ids", "obligations", "approval_id",
// and for a batch item that could not be evaluated "error".
type Decision struct {
	Decision bool           `json:"decision"`
	Context  map[string]any `json:"context,omitempty"`
}

// Conditional reports whether the PDP allows the request once its
// obligations are met (agentid's conditional decision).
func (d Decision) Conditional() bool { return !d.Decision && d.Context["decision"] == "conditional" }

// Obligations are what a conditional decision needs first.
func (d Decision) Obligations() []string { return stringsOf(d.Context["obligations"]) }

// EventID is the audit event that records the decision, "" when the PDP
// does not say.
func (d Decision) EventID() string { s, _ := d.Context["id"].(string); return s }

func stringsOf(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Batch semantics (§7.1.2).
const (
	ExecuteAll          = "execute_all"
	DenyOnFirstDeny     = "deny_on_first_deny"
	PermitOnFirstPermit = "permit_on_first_permit"
)

// Evaluation is one item of a batch: the members it gives replace the
// batch's defaults.
type Evaluation struct {
	Subject  *Subject       `json:"subject,omitempty"`
	Action   *Action        `json:"action,omitempty"`
	Resource *Resource      `json:"resource,omitempty"`
	Context  map[string]any `json:"context,omitempty"`
}

// EvaluationsRequest is a batch (§7.1): defaults, the items and the
// semantic ("" means ExecuteAll).
type EvaluationsRequest struct {
	Subject     *Subject       `json:"subject,omitempty"`
	Action      *Action        `json:"action,omitempty"`
	Resource    *Resource      `json:"resource,omitempty"`
	Context     map[string]any `json:"context,omitempty"`
	Evaluations []Evaluation   `json:"evaluations"`
	Semantic    string         `json:"-"`
}

// SearchRequest is a search (§8-§10): the member searched is left blank
// (Subject.ID for a subject search, Resource.ID for a resource search,
// Action for an action search). Limit bounds the page (0: the PDP's
// default); Token continues a previous page.
type SearchRequest struct {
	Subject  Subject
	Action   Action
	Resource Resource
	Context  map[string]any
	Limit    int
	Token    string
}

// SearchPage is one page of search results: subjects and resources carry
// Type and ID, actions Name. NextToken is "" on the last page.
type SearchPage struct {
	Results   []Entity
	NextToken string
}

// Entity is one search result.
type Entity struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Metadata is the PDP metadata (§11).
type Metadata struct {
	PolicyDecisionPoint       string `json:"policy_decision_point"`
	AccessEvaluationEndpoint  string `json:"access_evaluation_endpoint"`
	AccessEvaluationsEndpoint string `json:"access_evaluations_endpoint,omitempty"`
	SearchSubjectEndpoint     string `json:"search_subject_endpoint,omitempty"`
	SearchResourceEndpoint    string `json:"search_resource_endpoint,omitempty"`
	SearchActionEndpoint      string `json:"search_action_endpoint,omitempty"`
}

// Error is an answer other than 200: the status and, when the PDP sent an
// RFC 9457 problem, its type, title and detail.
type Error struct {
	Status int
	Type   string
	Title  string
	Detail string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("authzen: the PDP answered %d", e.Status)
	if e.Detail != "" {
		msg += ": " + e.Detail
	} else if e.Title != "" {
		msg += ": " + e.Title
	}
	return msg
}

// Client calls one PDP.
type Client struct {
	base  *url.URL
	hc    *http.Client
	token func(context.Context) (string, error)
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: one with no special
// settings; give one with a timeout in production).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithToken sets where the bearer token of each call comes from (an admin
// token, or an agentid access token whose agent holds the evaluate
// permission: sdk/agent's Token, for example). It is called per request.
func WithToken(fn func(context.Context) (string, error)) Option {
	return func(c *Client) { c.token = fn }
}

// WithStaticToken sends the same bearer token with every call.
func WithStaticToken(tok string) Option {
	return WithToken(func(context.Context) (string, error) { return tok, nil })
}

// New returns a client of the PDP at pdp (agentid's issuer URL).
func New(pdp string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(pdp, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("authzen: the PDP URL %q must be an absolute http(s) URL without query or fragment", pdp)
	}
	c := &Client{base: u, hc: &http.Client{}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Evaluate asks one question (§6).
func (c *Client) Evaluate(ctx context.Context, r Request) (Decision, error) {
	var d Decision
	return d, c.post(ctx, EvaluationPath, r, &d)
}

// Evaluations asks a batch (§7) and returns the answers in order (fewer
// than the items when a short-circuit semantic stopped early).
func (c *Client) Evaluations(ctx context.Context, r EvaluationsRequest) ([]Decision, error) {
	body := struct {
		EvaluationsRequest
		Options *struct {
			Semantic string `json:"evaluations_semantic"`
		} `json:"options,omitempty"`
	}{EvaluationsRequest: r}
	if r.Semantic != "" {
		body.Options = &struct {
			Semantic string `json:"evaluations_semantic"`
		}{r.Semantic}
	}
	var out struct {
		Evaluations []Decision `json:"evaluations"`
	}
	if err := c.post(ctx, EvaluationsPath, body, &out); err != nil {
		return nil, err
	}
	return out.Evaluations, nil
}

// SearchSubjects returns a page of the subjects allowed (§8).
func (c *Client) SearchSubjects(ctx context.Context, r SearchRequest) (SearchPage, error) {
	r.Subject.ID = ""
	return c.search(ctx, SearchSubjectPath, r, true)
}

// SearchResources returns a page of the resources allowed (§9).
func (c *Client) SearchResources(ctx context.Context, r SearchRequest) (SearchPage, error) {
	r.Resource.ID = ""
	return c.search(ctx, SearchResourcePath, r, true)
}

// SearchActions returns a page of the actions allowed (§10).
func (c *Client) SearchActions(ctx context.Context, r SearchRequest) (SearchPage, error) {
	return c.search(ctx, SearchActionPath, r, false)
}

func (c *Client) search(ctx context.Context, path string, r SearchRequest, withAction bool) (SearchPage, error) {
	type page struct {
		Token string `json:"token,omitempty"`
		Limit int    `json:"limit,omitempty"`
	}
	body := struct {
		Subject  Subject        `json:"subject"`
		Action   *Action        `json:"action,omitempty"`
		Resource Resource       `json:"resource"`
		Context  map[string]any `json:"context,omitempty"`
		Page     *page          `json:"page,omitempty"`
	}{Subject: r.Subject, Resource: r.Resource, Context: r.Context}
	if withAction {
		body.Action = &r.Action
	}
	if r.Token != "" || r.Limit != 0 {
		body.Page = &page{Token: r.Token, Limit: r.Limit}
	}
	var out struct {
		Results []Entity `json:"results"`
		Page    struct {
			NextToken string `json:"next_token"`
		} `json:"page"`
	}
	if err := c.post(ctx, path, body, &out); err != nil {
		return SearchPage{}, err
	}
	return SearchPage{Results: out.Results, NextToken: out.Page.NextToken}, nil
}

// Metadata fetches the PDP metadata (§11.2) and checks that it names this
// PDP (§11.2.2: a mismatch is refused).
func (c *Client) Metadata(ctx context.Context) (Metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+MetadataPath, nil)
	if err != nil {
		return Metadata{}, fmt.Errorf("authzen: %w", err)
	}
	var m Metadata
	if err := c.do(req, &m); err != nil {
		return Metadata{}, err
	}
	if m.PolicyDecisionPoint != c.base.String() {
		return Metadata{}, fmt.Errorf("authzen: the metadata names the PDP %q, not %q", m.PolicyDecisionPoint, c.base.String())
	}
	return m, nil
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("authzen: encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("authzen: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != nil {
		tok, err := c.token(ctx)
		if err != nil {
			return fmt.Errorf("authzen: get a token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if id := requestIDFrom(ctx); id != "" {
		req.Header.Set("X-Request-ID", id)
	}
	return c.do(req, out)
}

func (c *Client) do(req *http.Request, out any) error {
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("authzen: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("authzen: %s %s: read answer: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Status: resp.StatusCode}
		var p struct{ Type, Title, Detail string }
		if json.Unmarshal(body, &p) == nil {
			e.Type, e.Title, e.Detail = p.Type, p.Title, p.Detail
		}
		return e
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("authzen: %s %s: decode answer: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// requestIDKey carries an X-Request-ID in a context.
type requestIDKey struct{}

// WithRequestID returns a context whose calls send id as X-Request-ID
// (the PDP echoes it; agentid's audit events of the call carry the trace).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

func requestIDFrom(ctx context.Context) string { s, _ := ctx.Value(requestIDKey{}).(string); return s }

// IsStatus reports whether err is an *Error with the status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}
