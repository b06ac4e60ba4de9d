package store

import (
	"context"
	"time"
)

// Role is what an admin token may do.
type Role string

// Roles.
const (
	RoleAdmin   Role = "admin"   // everything on the admin API
	RoleAuditor Role = "auditor" // read-only, audit only
)

// AdminToken is a bearer credential for the admin API. Only the SHA-256 of
// the secret is stored.
type AdminToken struct {
	ID        string // adm_…
	Name      string // unique
	Role      Role
	Hash      []byte // SHA-256 of the secret, unique
	CreatedBy string // actor id, "system" for the bootstrap token
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	RevokedAt time.Time // zero: not revoked
	Version   int64
}

// AdminTokenReader reads admin tokens.
type AdminTokenReader interface {
	// GetAdminToken returns ErrNotFound when no token has the id.
	GetAdminToken(ctx context.Context, id string) (AdminToken, error)
	// GetAdminTokenByHash returns ErrNotFound when no token has the hash.
	GetAdminTokenByHash(ctx context.Context, hash []byte) (AdminToken, error)
	// ListAdminTokens returns tokens in id order and the next page token.
	ListAdminTokens(ctx context.Context, p Page) ([]AdminToken, string, error)
}

// AdminTokenWriter changes admin tokens.
type AdminTokenWriter interface {
	// CreateAdminToken stores a new token with Version 1; ErrAlreadyExists
	// when the id, name or hash is taken (names are unique so that two
	// replicas cannot both create the bootstrap token).
	CreateAdminToken(ctx context.Context, t AdminToken) (AdminToken, error)
	// UpdateAdminToken has the contract of AgentWriter.UpdateAgent.
	UpdateAdminToken(ctx context.Context, id string, fn func(AdminToken) (AdminToken, error)) (AdminToken, error)
}
