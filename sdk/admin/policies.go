package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Decisions a policy gives (ADR 0013).
const (
	DecisionAllow       = "allow"
	DecisionDeny        = "deny"
	DecisionConditional = "conditional"
)

// PolicyVersion is one version of the deployment's Cedar policy set.
// Text is set when one version is asked for (GetPolicyVersion) and on
// apply; lists leave it out.
type PolicyVersion struct {
	Version   int64     `json:"version"`
	Active    bool      `json:"active"`
	SHA256    string    `json:"sha256"`
	PolicyIDs []string  `json:"policy_ids"`
	Author    string    `json:"author"`
	Comment   string    `json:"comment,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Text      string    `json:"text,omitempty"`
}

// PolicyHistory is the answer to GET /v1/policies: the active and latest
// version numbers (0: none) and one page of versions, newest first.
type PolicyHistory struct {
	ActiveVersion int64           `json:"active_version"`
	LatestVersion int64           `json:"latest_version"`
	Items         []PolicyVersion `json:"items"`
	NextPageToken string          `json:"next_page_token,omitempty"`
}

// ApplyPolicyRequest is the body of POST /v1/policies: a Cedar document
// that becomes the next version and is activated at once.
type ApplyPolicyRequest struct {
	Text    string `json:"text"`
	Comment string `json:"comment,omitempty"`
}

// RollbackPolicyRequest is the body of POST /v1/policies/rollback.
type RollbackPolicyRequest struct {
	Version int64 `json:"version"`
}

// PolicyDiffRequest is the body of POST /v1/policies/diff. From is a
// version (0: the active one); the other side is Text when given, else
// version To (0: the latest).
type PolicyDiffRequest struct {
	From int64  `json:"from,omitempty"`
	To   int64  `json:"to,omitempty"`
	Text string `json:"text,omitempty"`
}

// PolicyDiff is how two policy documents differ, by policy @id. FromText
// and ToText hold the canonical text of every policy named in Added,
// Removed or Changed on each side.
type PolicyDiff struct {
	From     int64             `json:"from"`
	To       int64             `json:"to,omitempty"` // 0 when the other side was a text
	Added    []string          `json:"added"`
	Removed  []string          `json:"removed"`
	Changed  []string          `json:"changed"`
	FromText map[string]string `json:"from_text"`
	ToText   map[string]string `json:"to_text"`
}

// PolicyTestCase is one case of POST /v1/policies/test: an AuthZEN access
// evaluation request and the decision expected of it (DecisionAllow,
// DecisionDeny or DecisionConditional).
type PolicyTestCase struct {
	Name    string          `json:"name,omitempty"`
	Request json.RawMessage `json:"request"`
	Expect  string          `json:"expect"`
}

// PolicyTestRequest is the body of POST /v1/policies/test: a Cedar
// document checked and evaluated against the cases without being applied
// (no version, no recorded decisions).
type PolicyTestRequest struct {
	Text  string           `json:"text"`
	Cases []PolicyTestCase `json:"cases"`
}

// PolicyTestResult is the outcome of one case: the decision, the policies
// that determined it, or the error that kept the request from being
// evaluated.
type PolicyTestResult struct {
	Name      string   `json:"name,omitempty"`
	Expect    string   `json:"expect"`
	Decision  string   `json:"decision,omitempty"`
	PolicyIDs []string `json:"policy_ids,omitempty"`
	Error     string   `json:"error,omitempty"`
	Pass      bool     `json:"pass"`
}

// PolicyTestReport is the answer to POST /v1/policies/test.
type PolicyTestReport struct {
	Passed  int                `json:"passed"`
	Failed  int                `json:"failed"`
	Results []PolicyTestResult `json:"results"`
}

// PolicyDryRunRequest is the body of POST /v1/policies/dry-run: a Cedar
// document checked and replayed against the Last most recent recorded
// decisions (0: the server's default, 1,000; at most 10,000) without
// being applied.
type PolicyDryRunRequest struct {
	Text string `json:"text"`
	Last int    `json:"last,omitempty"`
}

// PolicyDryRun is the answer to POST /v1/policies/dry-run: how many
// recorded decisions were read, replayed (with the active version and with
// the document, each at the time it was made, against the agents as they
// are now, approvals aside) and skipped (recorded before decisions kept
// their inputs, an unknown agent, an action no longer in the registry),
// and those the document would change, oldest first.
type PolicyDryRun struct {
	ActiveVersion int64                `json:"active_version"`
	Examined      int                  `json:"examined"`
	Replayed      int                  `json:"replayed"`
	Skipped       int                  `json:"skipped"`
	Changed       []PolicyReplayChange `json:"changed"`
}

// PolicyReplayChange is one recorded decision that a candidate document
// would change: the audit event that recorded it, what it asked, the
// decision recorded then, and the decisions of the active version and of
// the candidate with the policies that determined them.
type PolicyReplayChange struct {
	EventID              string    `json:"event_id"`
	Seq                  int64     `json:"seq"`
	Time                 time.Time `json:"time"`
	Agent                string    `json:"agent"`
	User                 string    `json:"user,omitempty"` // a user subject's id (ADR 0016); Agent is then ""
	Action               string    `json:"action"`
	ResourceType         string    `json:"resource_type"`
	ResourceID           string    `json:"resource_id"`
	Recorded             string    `json:"recorded"`
	Current              string    `json:"current"`
	CurrentPolicyIDs     []string  `json:"current_policy_ids"`
	CurrentObligations   []string  `json:"current_obligations,omitempty"`
	Candidate            string    `json:"candidate"`
	CandidatePolicyIDs   []string  `json:"candidate_policy_ids"`
	CandidateObligations []string  `json:"candidate_obligations,omitempty"`
}

// ActionClass is a class of actions with a risk tier.
type ActionClass struct {
	Name        string     `json:"name"`
	RiskTier    string     `json:"risk_tier"`
	Description string     `json:"description,omitempty"`
	Actions     []string   `json:"actions"`
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
	UpdatedBy   string     `json:"updated_by,omitempty"`
	Version     int64      `json:"version"`
}

// SetActionClassRequest is the body of PUT /v1/action-classes/{name}:
// absent fields keep the class's value; a new class needs RiskTier.
// Actions replaces the class's actions.
type SetActionClassRequest struct {
	RiskTier    *string   `json:"risk_tier,omitempty"`
	Description *string   `json:"description,omitempty"`
	Actions     *[]string `json:"actions,omitempty"`
}

// ApplyPolicy stores a Cedar document as the next version and activates
// it. A document that does not parse or validate is a 400 problem whose
// detail lists every problem as line:column.
func (c *Client) ApplyPolicy(ctx context.Context, r ApplyPolicyRequest) (PolicyVersion, error) {
	var v PolicyVersion
	return v, c.do(ctx, http.MethodPost, "/v1/policies", nil, r, &v)
}

// PolicyHistory lists policy versions, newest first.
func (c *Client) PolicyHistory(ctx context.Context, pageSize int, pageToken string) (PolicyHistory, error) {
	q := url.Values{}
	page(q, pageSize, pageToken)
	var h PolicyHistory
	return h, c.do(ctx, http.MethodGet, "/v1/policies", q, nil, &h)
}

// GetPolicyVersion returns one version with its text.
func (c *Client) GetPolicyVersion(ctx context.Context, version int64) (PolicyVersion, error) {
	var v PolicyVersion
	return v, c.do(ctx, http.MethodGet, "/v1/policies/"+strconv.FormatInt(version, 10), nil, nil, &v)
}

// RollbackPolicy activates an earlier version again.
func (c *Client) RollbackPolicy(ctx context.Context, version int64) (PolicyVersion, error) {
	var v PolicyVersion
	return v, c.do(ctx, http.MethodPost, "/v1/policies/rollback", nil, RollbackPolicyRequest{Version: version}, &v)
}

// DiffPolicies compares two versions, or a version and a document.
func (c *Client) DiffPolicies(ctx context.Context, r PolicyDiffRequest) (PolicyDiff, error) {
	var d PolicyDiff
	return d, c.do(ctx, http.MethodPost, "/v1/policies/diff", nil, r, &d)
}

// TestPolicy evaluates test cases against a document without applying it.
func (c *Client) TestPolicy(ctx context.Context, r PolicyTestRequest) (PolicyTestReport, error) {
	var rep PolicyTestReport
	return rep, c.do(ctx, http.MethodPost, "/v1/policies/test", nil, r, &rep)
}

// DryRunPolicy replays recent recorded decisions against a document
// without applying it and reports those it would change.
func (c *Client) DryRunPolicy(ctx context.Context, r PolicyDryRunRequest) (PolicyDryRun, error) {
	var d PolicyDryRun
	return d, c.do(ctx, http.MethodPost, "/v1/policies/dry-run", nil, r, &d)
}

// ListActionClasses returns every action class in name order.
func (c *Client) ListActionClasses(ctx context.Context) (List[ActionClass], error) {
	var l List[ActionClass]
	return l, c.do(ctx, http.MethodGet, "/v1/action-classes", nil, nil, &l)
}

// SetActionClass creates or changes an action class.
func (c *Client) SetActionClass(ctx context.Context, name string, r SetActionClassRequest) (ActionClass, error) {
	var ac ActionClass
	return ac, c.do(ctx, http.MethodPut, "/v1/action-classes/"+url.PathEscape(name), nil, r, &ac)
}
