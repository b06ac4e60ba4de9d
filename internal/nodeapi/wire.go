// Package nodeapi is the protocol between `agentid node` and the server
// (docs/adr/0012-node-api.md): the wire types and paths of the node API,
// its server-side handler and hub, and the client the node uses.
package nodeapi

import (
	"encoding/json"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

// Paths of the node API. AgentX509SVIDPath and AgentJWTSVIDPath are
// patterns with {id}, the agent's id (agt_…).
const (
	RenewPath         = "/node/v1/renew"
	AgentX509SVIDPath = "/node/v1/agents/{id}/x509-svid"
	AgentJWTSVIDPath  = "/node/v1/agents/{id}/jwt-svid"
	JWTSVIDsPath      = "/node/v1/jwt-svids"
	WatchPath         = "/node/v1/watch"
)

// ServerPath is the path of the server's own SPIFFE ID in its trust
// domain: the node API's server certificate is
// spiffe://<trust domain>/agentid/server.
const ServerPath = "/agentid/server"

// CSRRequest is the body of RenewPath and AgentX509SVIDPath: a PKCS #10
// certificate signing request, DER (base64 in JSON), for a key the node
// generated. Only its key is used.
type CSRRequest struct {
	CSR []byte `json:"csr"`
}

// X509SVID is an X.509-SVID as the node API returns it: its SPIFFE ID, the
// DER certificates (the SVID first, then intermediates, never a root) and
// its NotAfter.
type X509SVID struct {
	SPIFFEID  string    `json:"spiffe_id"`
	CertChain [][]byte  `json:"cert_chain"`
	ExpiresAt time.Time `json:"expires_at"`
}

// JWTSVIDRequest is the body of AgentJWTSVIDPath. Audience is required;
// TTLSeconds zero means the server's default.
type JWTSVIDRequest struct {
	Audience   []string `json:"audience"`
	TTLSeconds int64    `json:"ttl_seconds,omitempty"`
}

// JWTSVID is a JWT-SVID (compact JWS) and its expiry.
type JWTSVID struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// MaxJWTSVIDsBatch bounds the requests of one JWTSVIDsRequest.
const MaxJWTSVIDsBatch = 256

// JWTSVIDsRequest is the body of JWTSVIDsPath: JWT-SVIDs of several
// agents or audiences at once (a node sends the requests its workloads
// made while its previous batch was in flight).
type JWTSVIDsRequest struct {
	Requests []JWTSVIDsItem `json:"requests"`
}

// JWTSVIDsItem is one JWT-SVID asked in a JWTSVIDsRequest.
type JWTSVIDsItem struct {
	AgentID string `json:"agent_id"`
	JWTSVIDRequest
}

// JWTSVIDs is the answer to a JWTSVIDsRequest: one result per request, in
// order.
type JWTSVIDs struct {
	Results []JWTSVIDsResult `json:"results"`
}

// JWTSVIDsResult is one JWT-SVID, or Problem, why it was refused.
type JWTSVIDsResult struct {
	Token     string         `json:"token,omitempty"`
	ExpiresAt time.Time      `json:"expires_at,omitzero"`
	Problem   *admin.Problem `json:"problem,omitempty"`
}

// WatchMessage is one line of the watch stream (application/x-ndjson).
type WatchMessage struct {
	// Type is MessageSnapshot or MessageHeartbeat.
	Type string `json:"type"`
	// Snapshot is set on MessageSnapshot.
	Snapshot *Snapshot `json:"snapshot,omitempty"`
}

// Watch message types.
const (
	MessageSnapshot  = "snapshot"
	MessageHeartbeat = "heartbeat"
)

// Heartbeat timing of the watch stream: the server sends a heartbeat
// every HeartbeatInterval; a node that hears nothing for WatchTimeout
// reconnects.
const (
	HeartbeatInterval = 15 * time.Second
	WatchTimeout      = 45 * time.Second
)

// Snapshot is everything a node needs to serve its workloads besides
// their SVIDs. Revision is the lowercase hex SHA-256 of the canonical JSON
// of the snapshot with Revision empty: equal contents, equal revision.
type Snapshot struct {
	Revision string `json:"revision"`
	// Agents are the active agents with selectors that the node serves
	// (their node scope lets it, ADR 0019), in id order.
	Agents []Agent `json:"agents"`
	// Bundle is the trust domain's SPIFFE bundle document, as served at
	// /spiffe/bundle.
	Bundle json.RawMessage `json:"bundle"`
	// FederatedBundles are the SPIFFE bundle documents of the foreign
	// trust domains the agents federate with that the server holds, by
	// trust domain name.
	FederatedBundles map[string]json.RawMessage `json:"federated_bundles,omitempty"`
	// TaintedAuthorities are the lowercase hex SHA-256 fingerprints of the
	// tainted CA certificates' DER: an SVID whose chain contains one, or
	// that one signed, must be re-issued now.
	TaintedAuthorities []string `json:"tainted_authorities,omitempty"`
}

// Agent is an agent as a node sees it: what selector matching, SVID
// requests and federated bundles need.
type Agent struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	SPIFFEID      string     `json:"spiffe_id"`
	Selectors     []string   `json:"selectors"`
	FederatesWith []string   `json:"federates_with,omitempty"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	Version       int64      `json:"version"`
}
