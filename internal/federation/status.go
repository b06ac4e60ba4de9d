package federation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// Status is where a foreign trust domain's bundle stands, as the store
// holds it.
type Status struct {
	TrustDomain string
	EndpointURL string // as configured
	Profile     string // ProfileHTTPSWeb
	// HasBundle reports whether a bundle was obtained (fetched, or from
	// the initial bundle); the counts and Sequence describe it.
	HasBundle       bool
	Sequence        uint64
	RefreshHint     time.Duration // 0: the bundle has none
	X509Authorities int
	JWTAuthorities  int
	// FetchedAt is when the bundle was last fetched; zero when it comes
	// from the initial bundle.
	FetchedAt time.Time
	// RefreshAt is when the next fetch is due.
	RefreshAt time.Time
	// LastError is why the last fetch failed, "" when it succeeded;
	// Failures counts the failures since the last success.
	LastError string
	Failures  int
}

// Status returns the status of every configured trust domain, in trust
// domain order, read from the store (so it shows other replicas' fetches).
func (m *Manager) Status(ctx context.Context) ([]Status, error) {
	recs, err := m.stored(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(m.domains))
	for i := range m.domains {
		d := &m.domains[i]
		rec, ok := recs[d.TrustDomain]
		out = append(out, m.status(d, rec, ok))
	}
	return out, nil
}

// status describes d from its record rec (ok: there is one).
func (m *Manager) status(d *Domain, rec store.FederatedBundle, ok bool) Status {
	st := Status{TrustDomain: d.TrustDomain, EndpointURL: d.EndpointURL, Profile: d.Profile}
	if !ok {
		return st
	}
	st.FetchedAt, st.RefreshAt, st.LastError, st.Failures = rec.FetchedAt, rec.RefreshAt, rec.LastError, rec.Failures
	if len(rec.Bundle) == 0 {
		return st
	}
	b, err := ParseBundle(d.TrustDomain, rec.Bundle)
	if err != nil {
		st.LastError = fmt.Sprintf("the stored bundle is unusable: %v", err)
		return st
	}
	st.HasBundle = true
	st.Sequence, _ = b.SequenceNumber()
	if h, ok := b.RefreshHint(); ok && h > 0 {
		st.RefreshHint = h
	}
	st.X509Authorities, st.JWTAuthorities = len(b.X509Authorities()), len(b.JWTAuthorities())
	return st
}

// StoredBundle returns the bundle document of td as stored (last fetched,
// or the initial bundle). Errors: ErrUnknownTrustDomain; ErrNoBundle when
// none was obtained yet.
func (m *Manager) StoredBundle(ctx context.Context, td string) ([]byte, error) {
	if _, ok := m.byTD[td]; !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTrustDomain, td)
	}
	rec, err := m.st.GetFederatedBundle(ctx, td)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: %s", ErrNoBundle, td)
	case err != nil:
		return nil, fmt.Errorf("federation: read %s: %w", td, err)
	case len(rec.Bundle) == 0:
		return nil, fmt.Errorf("%w: %s", ErrNoBundle, td)
	}
	return rec.Bundle, nil
}
