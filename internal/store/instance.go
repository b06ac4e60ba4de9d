package store

import (
	"context"
	"time"
)

// AttestationRule says which evidence proves an instance of an agent
// (ADR 0015): the configured attestor that must have verified it and the
// matchers (k8s:ns:payments, repository=org/*, …) that must all hold.
type AttestationRule struct {
	Attestor string   `json:"attestor"`
	Matchers []string `json:"matchers"`
}

// NodeScope names the nodes that may obtain an agent's SVIDs (ADR 0019):
// a node qualifies when its id is one of NodeIDs or when one of Rules
// matches the evidence it attested with (the rule's attestor and all its
// matchers). An empty scope lets every node.
type NodeScope struct {
	NodeIDs []string          `json:"node_ids,omitempty"`
	Rules   []AttestationRule `json:"rules,omitempty"`
}

// IsZero reports whether the scope lets every node.
func (s NodeScope) IsZero() bool { return len(s.NodeIDs) == 0 && len(s.Rules) == 0 }

// Instance is one attested run of an agent (ADR 0015): what proved it,
// where it ran, and when it was seen. Each successful attestation with the
// same (AgentID, Attestor, Key) refreshes one instance.
type Instance struct {
	ID       string // ins_…
	AgentID  string // agt_…
	Method   string // kubernetes | oidc | …
	Attestor string // the configured attestor's name
	// Key identifies the run within the attestor (the pod uid, the OIDC
	// subject and run): the refresh key, never a secret.
	Key string
	// Evidence is the evidence summary (namespace, service account, pod,
	// repository, …), never the raw token.
	Evidence    map[string]string
	SourceIP    string
	FirstSeenAt time.Time
	LastSeenAt  time.Time
	// ExpiresAt is the expiry of the latest evidence.
	ExpiresAt time.Time
	RevokedAt time.Time // zero: not revoked
	RevokedBy string    // actor id; "" when not revoked
	Version   int64     // 1 on create, +1 on every update
}

// InstanceFilter narrows ListInstances. Zero fields do not filter.
type InstanceFilter struct {
	AgentID string
	// LiveAt keeps instances neither revoked nor expired at it.
	LiveAt time.Time
}

// InstanceReader reads instances.
type InstanceReader interface {
	// GetInstance returns ErrNotFound when no instance has the id.
	GetInstance(ctx context.Context, id string) (Instance, error)
	// GetInstanceByKey returns the instance of the agent with the attestor
	// and key; ErrNotFound when there is none.
	GetInstanceByKey(ctx context.Context, agentID, attestor, key string) (Instance, error)
	// ListInstances returns instances in id order (creation order to the
	// millisecond) and the next page token.
	ListInstances(ctx context.Context, f InstanceFilter, p Page) ([]Instance, string, error)
}

// InstanceWriter creates and changes instances.
type InstanceWriter interface {
	// CreateInstance stores a new instance with Version 1. It returns
	// ErrAlreadyExists when the id or (AgentID, Attestor, Key) is taken
	// (of two concurrent creations of one key, exactly one succeeds) and
	// ErrInvalid when a required field (ID, AgentID, Method, Attestor,
	// Key, FirstSeenAt, LastSeenAt, ExpiresAt) is missing or the agent
	// does not exist.
	CreateInstance(ctx context.Context, in Instance) (Instance, error)
	// UpdateInstance has the contract of AgentWriter.UpdateAgent. ID,
	// AgentID, Method, Attestor, Key and FirstSeenAt cannot change.
	UpdateInstance(ctx context.Context, id string, fn func(Instance) (Instance, error)) (Instance, error)
}
