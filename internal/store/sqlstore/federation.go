package sqlstore

import (
	"context"
	"fmt"

	"github.com/agentid/agentid/internal/store"
)

// federatedBundleCols are the columns scanFederatedBundle reads.
const federatedBundleCols = `trust_domain, endpoint_url, bundle, sequence, fetched_at, refresh_at,
	last_error, failures, updated_at, version`

func scanFederatedBundle(s rowScanner) (store.FederatedBundle, error) {
	var b store.FederatedBundle
	if err := s.Scan(&b.TrustDomain, &b.EndpointURL, bytesCol{&b.Bundle}, &b.Sequence,
		timeCol{&b.FetchedAt}, timeCol{&b.RefreshAt}, &b.LastError, &b.Failures,
		timeCol{&b.UpdatedAt}, &b.Version); err != nil {
		return store.FederatedBundle{}, err
	}
	return b, nil
}

// checkFederatedBundle enforces what the store requires of a record.
func checkFederatedBundle(b store.FederatedBundle) error {
	switch {
	case b.TrustDomain == "" || b.EndpointURL == "":
		return fmt.Errorf("%w: federated bundle trust domain and endpoint URL are required", store.ErrInvalid)
	case b.RefreshAt.IsZero():
		return fmt.Errorf("%w: federated bundle refresh time is required", store.ErrInvalid)
	case b.Sequence < 0 || b.Failures < 0:
		return fmt.Errorf("%w: federated bundle sequence and failures must not be negative", store.ErrInvalid)
	}
	return nil
}

// GetFederatedBundle implements store.FederationReader.
func (r *reader) GetFederatedBundle(ctx context.Context, trustDomain string) (store.FederatedBundle, error) {
	b, err := r.getFederatedBundle(ctx, trustDomain, "")
	if err != nil {
		return store.FederatedBundle{}, fmt.Errorf("store: get federated bundle %q: %w", trustDomain, err)
	}
	return b, nil
}

func (r *reader) getFederatedBundle(ctx context.Context, trustDomain, suffix string) (store.FederatedBundle, error) {
	return getOne(ctx, r, scanFederatedBundle,
		`SELECT `+federatedBundleCols+` FROM federated_bundles WHERE trust_domain = $1`+suffix, trustDomain)
}

// ListFederatedBundles implements store.FederationReader. There is one
// record per configured foreign trust domain, a handful: no paging.
func (r *reader) ListFederatedBundles(ctx context.Context) ([]store.FederatedBundle, error) {
	out, err := queryAll(ctx, r, scanFederatedBundle, `SELECT `+federatedBundleCols+` FROM federated_bundles ORDER BY trust_domain`)
	if err != nil {
		return nil, fmt.Errorf("store: list federated bundles: %w", err)
	}
	return out, nil
}

// CreateFederatedBundle implements store.FederationWriter.
func (t *txn) CreateFederatedBundle(ctx context.Context, b store.FederatedBundle) (store.FederatedBundle, error) {
	var out store.FederatedBundle
	err := t.write(ctx, true, func(ctx context.Context) error {
		if err := checkFederatedBundle(b); err != nil {
			return err
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO federated_bundles (`+federatedBundleCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1)`,
			b.TrustDomain, b.EndpointURL, bytesArg(b.Bundle), b.Sequence, t.d.timeArg(b.FetchedAt),
			t.d.timeArg(b.RefreshAt), b.LastError, b.Failures, t.d.timeArg(b.UpdatedAt)); err != nil {
			return t.d.classify(err)
		}
		var err error
		out, err = t.getFederatedBundle(ctx, b.TrustDomain, "")
		return err
	})
	if err != nil {
		return store.FederatedBundle{}, fmt.Errorf("store: create federated bundle %q: %w", b.TrustDomain, err)
	}
	return out, nil
}

// UpdateFederatedBundle implements store.FederationWriter.
func (t *txn) UpdateFederatedBundle(ctx context.Context, trustDomain string,
	fn func(store.FederatedBundle) (store.FederatedBundle, error)) (store.FederatedBundle, error) {
	var out store.FederatedBundle
	err := t.write(ctx, false, func(ctx context.Context) error {
		old, err := t.getFederatedBundle(ctx, trustDomain, t.d.ForUpdate)
		if err != nil {
			return err
		}
		b, err := fn(old)
		if err != nil {
			return &fnError{err}
		}
		b.TrustDomain = old.TrustDomain
		if err := checkFederatedBundle(b); err != nil {
			return err
		}
		res, err := t.q.ExecContext(ctx, `UPDATE federated_bundles SET endpoint_url = $2, bundle = $3,
			sequence = $4, fetched_at = $5, refresh_at = $6, last_error = $7, failures = $8,
			updated_at = $9, version = $10 WHERE trust_domain = $1 AND version = $11`,
			trustDomain, b.EndpointURL, bytesArg(b.Bundle), b.Sequence, t.d.timeArg(b.FetchedAt),
			t.d.timeArg(b.RefreshAt), b.LastError, b.Failures, t.d.timeArg(b.UpdatedAt),
			old.Version+1, old.Version)
		if err := checkOne(t.d, res, err); err != nil {
			return err
		}
		out, err = t.getFederatedBundle(ctx, trustDomain, "")
		return err
	})
	if err != nil {
		return store.FederatedBundle{}, unwrapFn(err, "store: update federated bundle %q", trustDomain)
	}
	return out, nil
}
