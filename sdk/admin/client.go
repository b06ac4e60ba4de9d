package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the admin API. Construct it with New.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: a client with a 30 s
// timeout; export streams are not bounded by it).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// maxResponse bounds a non-streaming response body.
const maxResponse = 16 << 20

// maxExportLine bounds one line of an export stream.
const maxExportLine = 1 << 20

// New returns a client of the server at serverURL (http or https) that
// authenticates with the admin token.
func New(serverURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(serverURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("admin: server url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("admin: server url %q: want http(s)://host[:port]", serverURL)
	}
	c := &Client{base: u, token: token, http: &http.Client{}, userAgent: "agentid-sdk"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// CreateAgent registers an agent.
func (c *Client) CreateAgent(ctx context.Context, r CreateAgentRequest) (Agent, error) {
	var a Agent
	return a, c.do(ctx, http.MethodPost, "/v1/agents", nil, r, &a)
}

// ListAgentsParams filters ListAgents. Owner is an owner id or email.
type ListAgentsParams struct {
	State     string
	Owner     string
	Orphaned  bool
	PageSize  int
	PageToken string
}

// ListAgents returns one page of agents.
func (c *Client) ListAgents(ctx context.Context, p ListAgentsParams) (List[Agent], error) {
	q := url.Values{}
	set(q, "state", p.State)
	set(q, "owner", p.Owner)
	if p.Orphaned {
		q.Set("orphaned", "true")
	}
	page(q, p.PageSize, p.PageToken)
	var l List[Agent]
	return l, c.do(ctx, http.MethodGet, "/v1/agents", q, nil, &l)
}

// GetAgent returns the agent with the id or name.
func (c *Client) GetAgent(ctx context.Context, ref string) (Agent, error) {
	var a Agent
	return a, c.do(ctx, http.MethodGet, "/v1/agents/"+url.PathEscape(ref), nil, nil, &a)
}

// UpdateAgent changes the fields set in r.
func (c *Client) UpdateAgent(ctx context.Context, ref string, r UpdateAgentRequest) (Agent, error) {
	var a Agent
	return a, c.do(ctx, http.MethodPatch, "/v1/agents/"+url.PathEscape(ref), nil, r, &a)
}

// SuspendAgent suspends an active agent.
func (c *Client) SuspendAgent(ctx context.Context, ref string, r TransitionRequest) (Agent, error) {
	return c.agentAction(ctx, ref, "suspend", r)
}

// ResumeAgent makes a suspended agent active again.
func (c *Client) ResumeAgent(ctx context.Context, ref string, r TransitionRequest) (Agent, error) {
	return c.agentAction(ctx, ref, "resume", r)
}

// DeprovisionAgent ends an agent for good; its name stays reserved.
func (c *Client) DeprovisionAgent(ctx context.Context, ref string, r TransitionRequest) (Agent, error) {
	return c.agentAction(ctx, ref, "deprovision", r)
}

func (c *Client) agentAction(ctx context.Context, ref, action string, r TransitionRequest) (Agent, error) {
	var a Agent
	return a, c.do(ctx, http.MethodPost, "/v1/agents/"+url.PathEscape(ref)+"/"+action, nil, r, &a)
}

// CreateOwner registers an owner.
func (c *Client) CreateOwner(ctx context.Context, r CreateOwnerRequest) (Owner, error) {
	var o Owner
	return o, c.do(ctx, http.MethodPost, "/v1/owners", nil, r, &o)
}

// ListOwnersParams filters ListOwners.
type ListOwnersParams struct {
	State     string
	PageSize  int
	PageToken string
}

// ListOwners returns one page of owners.
func (c *Client) ListOwners(ctx context.Context, p ListOwnersParams) (List[Owner], error) {
	q := url.Values{}
	set(q, "state", p.State)
	page(q, p.PageSize, p.PageToken)
	var l List[Owner]
	return l, c.do(ctx, http.MethodGet, "/v1/owners", q, nil, &l)
}

// GetOwner returns the owner with the id or email.
func (c *Client) GetOwner(ctx context.Context, ref string) (Owner, error) {
	var o Owner
	return o, c.do(ctx, http.MethodGet, "/v1/owners/"+url.PathEscape(ref), nil, nil, &o)
}

// DeactivateOwner deactivates an owner; ReactivateOwner undoes it.
func (c *Client) DeactivateOwner(ctx context.Context, ref string, r TransitionRequest) (Owner, error) {
	var o Owner
	return o, c.do(ctx, http.MethodPost, "/v1/owners/"+url.PathEscape(ref)+"/deactivate", nil, r, &o)
}

// CreateAdminToken creates an admin token; the answer holds its secret once.
func (c *Client) CreateAdminToken(ctx context.Context, r CreateAdminTokenRequest) (CreatedAdminToken, error) {
	var t CreatedAdminToken
	return t, c.do(ctx, http.MethodPost, "/v1/admin-tokens", nil, r, &t)
}

// ListAdminTokens returns one page of admin tokens.
func (c *Client) ListAdminTokens(ctx context.Context, pageSize int, pageToken string) (List[AdminToken], error) {
	q := url.Values{}
	page(q, pageSize, pageToken)
	var l List[AdminToken]
	return l, c.do(ctx, http.MethodGet, "/v1/admin-tokens", q, nil, &l)
}

// RevokeAdminToken revokes an admin token.
func (c *Client) RevokeAdminToken(ctx context.Context, id string) (AdminToken, error) {
	var t AdminToken
	return t, c.do(ctx, http.MethodPost, "/v1/admin-tokens/"+url.PathEscape(id)+"/revoke", nil, struct{}{}, &t)
}

// ListAuditEvents returns one page of audit events in sequence order.
func (c *Client) ListAuditEvents(ctx context.Context, aq AuditQuery) (List[AuditEvent], error) {
	var l List[AuditEvent]
	return l, c.do(ctx, http.MethodGet, "/v1/audit/events", auditValues(aq), nil, &l)
}

// PruneAudit deletes the audit events recorded before req.Before, up to
// the last checkpoint signed before it; the remaining trail still verifies
// (ADR 0018). Admin only.
func (c *Client) PruneAudit(ctx context.Context, req PruneAuditRequest) (AuditPrune, error) {
	var out AuditPrune
	return out, c.do(ctx, http.MethodPost, "/v1/audit/prune", nil, req, &out)
}

// ExportAudit streams the audit trail as JSON Lines (OCSF records with
// aq.Format "ocsf") and calls fn with each line (without its newline) in
// sequence order. The line is only valid until fn returns. fn's error
// stops the stream and is returned.
func (c *Client) ExportAudit(ctx context.Context, aq AuditQuery, fn func(line []byte) error) error {
	q := auditValues(aq)
	set(q, "format", aq.Format)
	resp, err := c.send(ctx, http.MethodGet, "/v1/audit/export", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxExportLine)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("admin: read export: %w", err)
	}
	return nil
}

// AuditCheckpoints returns every signed checkpoint with Seq > afterSeq.
func (c *Client) AuditCheckpoints(ctx context.Context, afterSeq int64) ([]AuditCheckpoint, error) {
	q := url.Values{}
	if afterSeq > 0 {
		q.Set("after_seq", strconv.FormatInt(afterSeq, 10))
	}
	var l List[AuditCheckpoint]
	return l.Items, c.do(ctx, http.MethodGet, "/v1/audit/checkpoints", q, nil, &l)
}

// AuditKeys returns the public checkpoint-signing keys.
func (c *Client) AuditKeys(ctx context.Context) ([]AuditKey, error) {
	var l List[AuditKey]
	return l.Items, c.do(ctx, http.MethodGet, "/v1/audit/keys", nil, nil, &l)
}

// Version returns the server's version and trust domain.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	return v, c.do(ctx, http.MethodGet, "/v1/version", nil, nil, &v)
}

func auditValues(aq AuditQuery) url.Values {
	q := url.Values{}
	set(q, "agent", aq.Agent)
	set(q, "family", aq.Family)
	set(q, "trace_id", aq.TraceID)
	if !aq.Since.IsZero() {
		q.Set("since", aq.Since.UTC().Format(time.RFC3339Nano))
	}
	if !aq.Until.IsZero() {
		q.Set("until", aq.Until.UTC().Format(time.RFC3339Nano))
	}
	if aq.AfterSeq > 0 {
		q.Set("after_seq", strconv.FormatInt(aq.AfterSeq, 10))
	}
	page(q, aq.PageSize, aq.PageToken)
	return q
}

func set(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func page(q url.Values, size int, token string) {
	if size > 0 {
		q.Set("page_size", strconv.Itoa(size))
	}
	set(q, "page_token", token)
}

// do sends a JSON request and decodes a JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	resp, err := c.send(ctx, method, path, q, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
		return fmt.Errorf("admin: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// send sends the request and returns a 2xx response; any other status
// becomes a *Problem. path is escaped (its segments through
// url.PathEscape), so a segment may hold '/', '%' or '?'.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, in any) (*http.Response, error) {
	u := *c.base
	unescaped, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("admin: %s %s: %w", method, path, err)
	}
	u.RawPath = u.EscapedPath() + path
	u.Path += unescaped
	u.RawQuery = q.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("admin: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("admin: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readProblem(resp)
}

// readProblem turns an error response into a *Problem, also when the body
// is not problem+json (a proxy's error page, say).
func readProblem(resp *http.Response) error {
	p := &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		var got Problem
		if err := json.Unmarshal(b, &got); err == nil && got.Status != 0 {
			return &got
		}
	}
	p.Detail = strings.TrimSpace(string(b))
	if len(p.Detail) > 200 {
		p.Detail = p.Detail[:200]
	}
	return p
}

// IsProblem reports whether err is a *Problem of the type (one of the
// Problem* constants).
func IsProblem(err error, typ string) bool {
	var p *Problem
	return errors.As(err, &p) && p.Type == typ
}
