package store

import (
	"context"
	"time"
)

// JoinToken is a single-use credential with which a node attests itself
// (ADR 0010). Only the SHA-256 of its secret is stored.
type JoinToken struct {
	ID        string // njt_…
	Hash      []byte // SHA-256 of the secret, unique
	CreatedBy string // actor id of the admin that created it
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero: not used yet
	NodeID    string    // the node that used it; "" before
}

// JoinTokenSpendNS is the TokenWriter.UseOnce namespace in which a join
// token's id is spent, by its revocation and by the attestation that uses
// it (ADR 0010 addendum A). ListJoinTokens reads it: an unused token whose
// id is spent there was revoked.
const JoinTokenSpendNS = "node-join-token" //nolint:gosec // G101: a namespace name, not a credential

// JoinTokenState is derived by ListJoinTokens from a join token's UsedAt,
// the spend of its id in JoinTokenSpendNS, and its ExpiresAt.
type JoinTokenState string

// Join token states, in the order they are decided: used (UsedAt set),
// revoked (unused, id spent), expired (ExpiresAt not after the listing's
// now), else unused.
const (
	JoinTokenUnused  JoinTokenState = "unused"
	JoinTokenUsed    JoinTokenState = "used"
	JoinTokenRevoked JoinTokenState = "revoked"
	JoinTokenExpired JoinTokenState = "expired"
)

// JoinTokenFilter narrows ListJoinTokens.
type JoinTokenFilter struct {
	// Now is the moment at which tokens are judged expired. Required.
	Now time.Time
	// State, when set, keeps the tokens in that state.
	State JoinTokenState
}

// ListedJoinToken is a join token as ListJoinTokens returns it: without
// its Hash, with its state.
type ListedJoinToken struct {
	JoinToken
	State JoinTokenState
}

// NodeState is derived from a node's EvictedAt.
type NodeState string

// Node states. Evicted is final.
const (
	NodeActive  NodeState = "active"
	NodeEvicted NodeState = "evicted"
)

// Node is a host running `agentid node`, attested once, that holds an
// X.509-SVID of its own. The record keeps the node's current SVID (its
// serial, signing CA key and expiry): node SVIDs are not in the credentials
// table, which records agents' SVIDs.
type Node struct {
	ID                string // nod_…
	SPIFFEID          string // spiffe://<trust domain>/node/<id>, unique
	AttestationMethod string // "join_token", "kubernetes", "x509"
	// Attestor is the configured attestor that verified the node's
	// evidence, and Facts and FactValues (multi-valued facts) what it
	// proved (ADR 0019); empty for a join token.
	Attestor      string
	Facts         map[string]string
	FactValues    map[string][]string
	AttestedAt    time.Time
	LastSeenAt    time.Time // the last attestation or renewal
	SVIDSerial    string    // lowercase hex
	SVIDKeyID     string    // the CA key that signed the SVID
	SVIDExpiresAt time.Time
	EvictedAt     time.Time // zero: not evicted
	EvictedBy     string    // actor id; "" when not evicted
	Version       int64     // 1 on create, +1 on every update
}

// State is NodeEvicted when the node was evicted, NodeActive otherwise.
func (n Node) State() NodeState {
	if n.EvictedAt.IsZero() {
		return NodeActive
	}
	return NodeEvicted
}

// NodeFilter narrows ListNodes. Zero fields do not filter.
type NodeFilter struct {
	State NodeState
}

// JoinTokenReader reads join tokens.
type JoinTokenReader interface {
	// GetJoinToken returns ErrNotFound when no token has the id.
	GetJoinToken(ctx context.Context, id string) (JoinToken, error)
	// GetJoinTokenByHash returns ErrNotFound when no token has the hash.
	GetJoinTokenByHash(ctx context.Context, hash []byte) (JoinToken, error)
	// ListJoinTokens returns the tokens kept (not yet collected) in id
	// order (creation order to the millisecond), never their hashes, with
	// their states at f.Now, and the next page token. A zero f.Now or an
	// unknown f.State is ErrInvalid.
	ListJoinTokens(ctx context.Context, f JoinTokenFilter, p Page) ([]ListedJoinToken, string, error)
}

// JoinTokenWriter creates, consumes and collects join tokens.
type JoinTokenWriter interface {
	// CreateJoinToken stores a new, unused token; ErrAlreadyExists when the
	// id or hash is taken, ErrInvalid when the id, hash, creation or expiry
	// time is missing, or UsedAt or NodeID is set.
	CreateJoinToken(ctx context.Context, t JoinToken) (JoinToken, error)
	// ConsumeJoinToken marks the token with the hash used at now by the
	// node nodeID, if it is unused and expires after now, and returns it
	// as stored. It returns ErrNotFound when no token has the hash and
	// ErrConflict when the token was used or has expired at now. Concurrent
	// calls with one hash, in one process or several sharing a database,
	// succeed exactly once. hash, nodeID and now are required
	// (ErrInvalid).
	ConsumeJoinToken(ctx context.Context, hash []byte, nodeID string, now time.Time) (JoinToken, error)
	// CollectJoinTokens deletes the tokens, used or not, whose expiry is
	// not after before, and reports how many went.
	CollectJoinTokens(ctx context.Context, before time.Time) (int64, error)
}

// NodeReader reads nodes.
type NodeReader interface {
	// GetNode returns ErrNotFound when no node has the id.
	GetNode(ctx context.Context, id string) (Node, error)
	// ListNodes returns nodes in id order (attestation order to the
	// millisecond) and the next page token.
	ListNodes(ctx context.Context, f NodeFilter, p Page) ([]Node, string, error)
}

// NodeWriter changes nodes.
type NodeWriter interface {
	// CreateNode stores a new node with Version 1. It returns
	// ErrAlreadyExists when the id or SPIFFE ID is taken and ErrInvalid
	// when a required field (ID, SPIFFEID, AttestationMethod, AttestedAt,
	// LastSeenAt, SVIDSerial, SVIDKeyID, SVIDExpiresAt) is missing.
	CreateNode(ctx context.Context, n Node) (Node, error)
	// UpdateNode has the contract of AgentWriter.UpdateAgent: the node is
	// read, passed to fn and what fn returns is stored with Version
	// incremented; concurrent updates of one node are serialised. ID,
	// SPIFFEID, AttestationMethod and AttestedAt cannot change. fn's error
	// is returned unchanged and nothing is written. ErrNotFound when the
	// node does not exist.
	UpdateNode(ctx context.Context, id string, fn func(Node) (Node, error)) (Node, error)
}
