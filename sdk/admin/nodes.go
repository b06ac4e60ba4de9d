package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// CreateJoinTokenRequest is the body of POST /v1/node-tokens. A zero
// TTLSeconds means 10 minutes; the lifetime is 60 s to 24 h.
type CreateJoinTokenRequest struct {
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
}

// CreatedJoinToken is the answer to POST /v1/node-tokens: the token's id,
// its secret (this once: only its hash is kept) and its expiry. One node
// may attest with it, once.
type CreatedJoinToken struct {
	ID        string    `json:"id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Node states (Node.State).
const (
	NodeStateActive  = "active"
	NodeStateEvicted = "evicted"
)

// Node is a host running `agentid node`, as the admin API returns it.
// SVIDSerial, SVIDKeyID and SVIDExpiresAt describe the node's current
// X.509-SVID (the CA key that signed it, and when it stops verifying);
// SVIDExpired is true once that moment has passed. An evicted node keeps
// its record with EvictedAt and EvictedBy (the admin token's id).
type Node struct {
	ID                string `json:"id"`
	SPIFFEID          string `json:"spiffe_id"`
	State             string `json:"state"`
	AttestationMethod string `json:"attestation_method"`
	// Attestor, Facts and FactValues are what the node proved when it
	// attested with evidence (the facts agents' node scope rules match,
	// ADR 0019); empty for a join token.
	Attestor      string              `json:"attestor,omitempty"`
	Facts         map[string]string   `json:"facts,omitempty"`
	FactValues    map[string][]string `json:"fact_values,omitempty"`
	AttestedAt    time.Time           `json:"attested_at"`
	LastSeenAt    time.Time           `json:"last_seen_at"`
	SVIDSerial    string              `json:"svid_serial"`
	SVIDKeyID     string              `json:"svid_key_id"`
	SVIDExpiresAt time.Time           `json:"svid_expires_at"`
	SVIDExpired   bool                `json:"svid_expired"`
	EvictedAt     *time.Time          `json:"evicted_at,omitempty"`
	EvictedBy     string              `json:"evicted_by,omitempty"`
	Version       int64               `json:"version"`
}

// EvictNodeRequest is the body of POST /v1/nodes/{id}/evict. Reason is
// optional and lands on the audit event.
type EvictNodeRequest struct {
	Reason string `json:"reason,omitempty"`
}

// NodeAttestPath is the path of the node attestation endpoint.
const NodeAttestPath = "/v1/node/attest"

// AttestNodeRequest is the body of POST /v1/node/attest: a join token and
// a PEM certificate signing request for the node's key (only the key is
// used).
//
// Instead of a join token a node may attest with evidence: a Kubernetes
// projected service-account token (KubernetesToken), or the client
// certificate it presents by mutual TLS (neither field set).
type AttestNodeRequest struct {
	JoinToken       string `json:"join_token,omitempty"`
	KubernetesToken string `json:"kubernetes_token,omitempty"`
	CSR             string `json:"csr"`
}

// AttestedNode is the answer to POST /v1/node/attest: the new node's id
// and SPIFFE ID, its X.509-SVID (PEM, the SVID first, without the root)
// and when that expires, and the trust domain's SPIFFE bundle document,
// when the server publishes one.
type AttestedNode struct {
	NodeID       string          `json:"node_id"`
	SPIFFEID     string          `json:"spiffe_id"`
	CertChainPEM string          `json:"cert_chain_pem"`
	ExpiresAt    time.Time       `json:"expires_at"`
	Bundle       json.RawMessage `json:"bundle,omitempty"`
}

// CreateJoinToken creates a single-use join token; the answer holds its
// secret once.
func (c *Client) CreateJoinToken(ctx context.Context, r CreateJoinTokenRequest) (CreatedJoinToken, error) {
	var t CreatedJoinToken
	return t, c.do(ctx, http.MethodPost, "/v1/node-tokens", nil, r, &t)
}

// ListNodesParams filters ListNodes. State is "", NodeStateActive or
// NodeStateEvicted.
type ListNodesParams struct {
	State     string
	PageSize  int
	PageToken string
}

// ListNodes returns one page of nodes in attestation order.
func (c *Client) ListNodes(ctx context.Context, p ListNodesParams) (List[Node], error) {
	q := url.Values{}
	set(q, "state", p.State)
	page(q, p.PageSize, p.PageToken)
	var l List[Node]
	return l, c.do(ctx, http.MethodGet, "/v1/nodes", q, nil, &l)
}

// GetNode returns the node with the id.
func (c *Client) GetNode(ctx context.Context, id string) (Node, error) {
	var n Node
	return n, c.do(ctx, http.MethodGet, "/v1/nodes/"+url.PathEscape(id), nil, nil, &n)
}

// EvictNode evicts a node for good: it can no longer renew its SVID. The
// SVIDs it holds are not revoked; they expire.
func (c *Client) EvictNode(ctx context.Context, id string, r EvictNodeRequest) (Node, error) {
	var n Node
	return n, c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(id)+"/evict", nil, r, &n)
}

// AttestNode attests a node with a join token. The endpoint needs no admin
// token: a Client made with an empty token calls it.
func (c *Client) AttestNode(ctx context.Context, r AttestNodeRequest) (AttestedNode, error) {
	var a AttestedNode
	return a, c.do(ctx, http.MethodPost, NodeAttestPath, nil, r, &a)
}
