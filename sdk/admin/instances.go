package admin

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// AttestationRule says which evidence proves an instance of an agent: the
// configured attestor that verified it and matchers that must all hold,
// k8s:<ns|sa|pod-name|pod-uid|node>:<glob> or <claim>=<glob>, where '*'
// matches any run of characters (docs/attestation.md).
type AttestationRule struct {
	Attestor string   `json:"attestor"`
	Matchers []string `json:"matchers"`
}

// Instance is one attested run of an agent, as the admin API returns it.
// Evidence is the evidence summary (namespace, service account, pod,
// repository, …), never the token. Live is true when it is neither
// revoked nor expired.
type Instance struct {
	ID          string            `json:"id"`
	AgentID     string            `json:"agent_id"`
	Method      string            `json:"method"`
	Attestor    string            `json:"attestor"`
	Key         string            `json:"key"`
	Evidence    map[string]string `json:"evidence"`
	SourceIP    string            `json:"source_ip,omitempty"`
	FirstSeenAt time.Time         `json:"first_seen_at"`
	LastSeenAt  time.Time         `json:"last_seen_at"`
	ExpiresAt   time.Time         `json:"expires_at"`
	RevokedAt   *time.Time        `json:"revoked_at,omitempty"`
	RevokedBy   string            `json:"revoked_by,omitempty"`
	Live        bool              `json:"live"`
	Version     int64             `json:"version"`
}

// ListInstancesParams filters ListInstances. Live keeps only instances
// neither revoked nor expired.
type ListInstancesParams struct {
	Live      bool
	PageSize  int
	PageToken string
}

// ListInstances returns one page of an agent's (id or name) attested
// instances in creation order.
func (c *Client) ListInstances(ctx context.Context, agentRef string, p ListInstancesParams) (List[Instance], error) {
	q := url.Values{}
	if p.Live {
		q.Set("live", "true")
	}
	page(q, p.PageSize, p.PageToken)
	var l List[Instance]
	return l, c.do(ctx, http.MethodGet, "/v1/agents/"+url.PathEscape(agentRef)+"/instances", q, nil, &l)
}

// GetInstance returns the instance with the id (ins_…).
func (c *Client) GetInstance(ctx context.Context, id string) (Instance, error) {
	var in Instance
	return in, c.do(ctx, http.MethodGet, "/v1/instances/"+url.PathEscape(id), nil, nil, &in)
}

// RevokeInstance revokes an instance: every token issued on it is
// inactive at introspection, and the token endpoint refuses to renew it.
// Revoking a revoked instance again succeeds and keeps the first time.
func (c *Client) RevokeInstance(ctx context.Context, id string) (Instance, error) {
	var in Instance
	return in, c.do(ctx, http.MethodPost, "/v1/instances/"+url.PathEscape(id)+"/revoke", nil, struct{}{}, &in)
}
