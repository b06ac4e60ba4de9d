package store

import (
	"context"
	"time"
)

// RevokedToken records that an issued token was revoked before its expiry.
// It is kept until ExpiresAt, after which the token is dead anyway.
type RevokedToken struct {
	JTI       string
	AgentID   string // "" when the revoker could not tell
	RevokedAt time.Time
	ExpiresAt time.Time
	RevokedBy string // actor id
}

// TokenReader reads token state kept for introspection.
type TokenReader interface {
	// GetRevokedToken returns ErrNotFound when the jti is not revoked.
	GetRevokedToken(ctx context.Context, jti string) (RevokedToken, error)
}

// TokenWriter records one-time identifiers and revocations.
type TokenWriter interface {
	// UseOnce records that the identifier id in namespace ns (for example
	// a client's assertion jti, or a DPoP proof jti) was used and must not
	// be used again before expiresAt. It returns ErrAlreadyExists when the
	// identifier is recorded and has not expired at now. Concurrent calls
	// with one identifier, in one process or several sharing a database,
	// succeed exactly once.
	UseOnce(ctx context.Context, ns, id string, now, expiresAt time.Time) error
	// RevokeToken records a revocation. Revoking a revoked jti again keeps
	// the first record and returns nil.
	RevokeToken(ctx context.Context, r RevokedToken) error
	// CollectTokens deletes one-time identifiers and revocations that
	// expired before now and reports how many rows went.
	CollectTokens(ctx context.Context, now time.Time) (int64, error)
}
