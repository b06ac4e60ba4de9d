package store

import (
	"context"
	"time"
)

// FederatedBundle is the SPIFFE trust bundle of a foreign trust domain
// that this one federates with, as last fetched from its bundle endpoint
// (or seeded from a configured initial bundle), and the state of its
// refresh. One record per foreign trust domain; replicas sharing a
// database share it, so that one of them fetches and the others read.
type FederatedBundle struct {
	TrustDomain string // the foreign trust domain's name, e.g. "partner.example"
	EndpointURL string // its bundle endpoint, as configured when last written
	// Bundle is the SPIFFE bundle document (SPIFFE Trust Domain and Bundle
	// §4) as fetched, unparsed; empty when none was ever obtained.
	Bundle []byte
	// Sequence is the bundle's spiffe_sequence (0 when it has none), at
	// most math.MaxInt64; Bundle keeps the exact value.
	Sequence int64
	// FetchedAt is when Bundle was fetched from the endpoint; zero when it
	// came from the initial bundle and no fetch has succeeded yet.
	FetchedAt time.Time
	// RefreshAt is when the next fetch is due.
	RefreshAt time.Time
	// LastError is why the last fetch failed; "" when it succeeded (or
	// none was tried yet).
	LastError string
	// Failures counts the fetches that failed since the last success.
	Failures  int
	UpdatedAt time.Time
	Version   int64 // 1 on create, +1 on every update
}

// FederationReader reads the bundles of federated trust domains.
type FederationReader interface {
	// GetFederatedBundle returns ErrNotFound when no record of the trust
	// domain is stored.
	GetFederatedBundle(ctx context.Context, trustDomain string) (FederatedBundle, error)
	// ListFederatedBundles returns every record in trust-domain order.
	ListFederatedBundles(ctx context.Context) ([]FederatedBundle, error)
}

// FederationWriter changes the bundles of federated trust domains.
type FederationWriter interface {
	// CreateFederatedBundle stores a new record with Version 1;
	// ErrAlreadyExists when the trust domain has one, ErrInvalid when the
	// trust domain or endpoint URL is empty or Failures or Sequence is
	// negative.
	CreateFederatedBundle(ctx context.Context, b FederatedBundle) (FederatedBundle, error)
	// UpdateFederatedBundle has the contract of AgentWriter.UpdateAgent:
	// every field but TrustDomain can change (Version is set by the
	// store).
	UpdateFederatedBundle(ctx context.Context, trustDomain string, fn func(FederatedBundle) (FederatedBundle, error)) (FederatedBundle, error)
}
