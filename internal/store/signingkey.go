package store

import (
	"context"
	"time"
)

// SigningKey is a key that signs tokens. The private key is stored only
// sealed under the root key by the caller; the store never sees plaintext
// key material.
//
// A key's life: it is published in the JWKS from PublishAt, signs from
// ActivateAt until a newer key activates (RetireAt, set when the successor is
// created), and leaves the JWKS at RemoveAt, once every token it signed has
// expired.
//
// A certificate authority's key (purpose "x509-ca") also has its
// certificate chain; a key found compromised is tainted.
type SigningKey struct {
	ID         string // the JWS "kid"
	Algorithm  string // JWS "alg": "ES256" or "EdDSA"
	Purpose    string // what it signs, e.g. "oauth"
	PublicKey  []byte // PKIX DER
	Sealed     []byte // encrypted private key
	PublishAt  time.Time
	ActivateAt time.Time
	RetireAt   time.Time // zero: still the newest key
	RemoveAt   time.Time // zero: no removal scheduled
	// CertChain is the key's X.509 certificate (DER) first, then any
	// intermediates up to, not including, the root that verifies it; empty
	// for keys without a certificate.
	CertChain [][]byte
	// TaintedAt marks the key compromised: whatever it signed must be
	// re-issued at once. Zero: not tainted.
	TaintedAt time.Time
	CreatedAt time.Time
	Version   int64
}

// SigningKeyReader reads signing keys.
type SigningKeyReader interface {
	// ListSigningKeys returns every key with the purpose, including removed
	// ones, ordered by ActivateAt then ID.
	ListSigningKeys(ctx context.Context, purpose string) ([]SigningKey, error)
}

// SigningKeyWriter changes signing keys.
type SigningKeyWriter interface {
	// CreateSigningKey stores a new key with Version 1; ErrAlreadyExists
	// when the id is taken, ErrInvalid when id, algorithm, purpose, public
	// key or sealed key is missing.
	CreateSigningKey(ctx context.Context, k SigningKey) (SigningKey, error)
	// UpdateSigningKey has the contract of AgentWriter.UpdateAgent. Only
	// RetireAt, RemoveAt and TaintedAt can change.
	UpdateSigningKey(ctx context.Context, id string, fn func(SigningKey) (SigningKey, error)) (SigningKey, error)
}

// LeaseWriter hands out named, time-limited leases, so that one replica of
// several sharing a database does a periodic job (key rotation, garbage
// collection) at a time.
type LeaseWriter interface {
	// AcquireLease takes the lease name for holder until the given time if
	// it is free, expired at now, or already held by holder (which extends
	// it). It reports whether holder holds the lease afterwards.
	AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
}
