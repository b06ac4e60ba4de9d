package store

import (
	"context"
	"time"
)

// ClientKey is a public key an agent authenticates with (private_key_jwt,
// RFC 7523 §2.2).
type ClientKey struct {
	AgentID   string
	KeyID     string // unique per agent: the JWK "kid", or its RFC 7638 thumbprint
	Algorithm string // JWS "alg" the key signs with
	JWK       []byte // the public JWK, JSON
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
}

// ClientSecret is a generated client secret. Only the SHA-256 of the secret
// is stored.
type ClientSecret struct {
	ID        string // sec_…
	AgentID   string
	Hash      []byte // SHA-256 of the secret, unique
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
}

// ClientReader reads agents' client credentials.
type ClientReader interface {
	// GetClientKey returns ErrNotFound when the agent has no key with the id.
	GetClientKey(ctx context.Context, agentID, keyID string) (ClientKey, error)
	// ListClientKeys returns the agent's keys (expired ones included) in key
	// id order.
	ListClientKeys(ctx context.Context, agentID string) ([]ClientKey, error)
	// ListClientSecrets returns the agent's secrets (expired ones included)
	// in id order.
	ListClientSecrets(ctx context.Context, agentID string) ([]ClientSecret, error)
}

// ClientWriter changes agents' client credentials.
type ClientWriter interface {
	// CreateClientKey stores a key; ErrAlreadyExists when the agent has a key
	// with the id, ErrInvalid when the agent does not exist or a field is
	// missing.
	CreateClientKey(ctx context.Context, k ClientKey) (ClientKey, error)
	// DeleteClientKey removes a key; ErrNotFound when there is none.
	DeleteClientKey(ctx context.Context, agentID, keyID string) error
	// CreateClientSecret stores a secret; ErrAlreadyExists when the id or
	// hash is taken, ErrInvalid when the agent does not exist.
	CreateClientSecret(ctx context.Context, s ClientSecret) (ClientSecret, error)
	// DeleteClientSecret removes a secret of the agent; ErrNotFound when
	// there is none.
	DeleteClientSecret(ctx context.Context, agentID, id string) error
}
