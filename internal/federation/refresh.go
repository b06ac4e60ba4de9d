package federation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

// errNotDue aborts a claim whose refresh another replica has just made.
var errNotDue = errors.New("federation: refresh not due")

// leaseMargin is how much longer than one fetch a fetch lease lasts.
const leaseMargin = 30 * time.Second

// load reads the stored bundles of the configured trust domains into
// memory, seeding those without one.
func (m *Manager) load(ctx context.Context) error {
	if len(m.domains) == 0 {
		return nil
	}
	recs, err := m.stored(ctx)
	if err != nil {
		return err
	}
	for i := range m.domains {
		d := &m.domains[i]
		rec, ok := recs[d.TrustDomain]
		if !ok || (len(rec.Bundle) == 0 && len(d.InitialBundle) > 0) {
			if rec, err = m.seed(ctx, d); err != nil {
				return err
			}
		}
		m.adopt(ctx, rec)
	}
	return nil
}

// stored returns the stored records by trust domain.
func (m *Manager) stored(ctx context.Context) (map[string]store.FederatedBundle, error) {
	recs, err := m.st.ListFederatedBundles(ctx)
	if err != nil {
		return nil, fmt.Errorf("federation: list stored bundles: %w", err)
	}
	out := make(map[string]store.FederatedBundle, len(recs))
	for _, r := range recs {
		out[r.TrustDomain] = r
	}
	return out, nil
}

// seed creates the record of d, due for a fetch now, with d's initial
// bundle if it has one, or gives a stored record without a bundle the
// initial bundle; a seeded bundle is recorded as federation.bundle_updated
// (trigger initial_bundle). A record another replica seeded first is
// returned as it is.
func (m *Manager) seed(ctx context.Context, d *Domain) (store.FederatedBundle, error) {
	now := m.now()
	var initial *spiffebundle.Bundle
	if len(d.InitialBundle) > 0 {
		var err error
		if initial, err = ParseBundle(d.TrustDomain, d.InitialBundle); err != nil {
			return store.FederatedBundle{}, fmt.Errorf("federation: %s: initial bundle: %w", d.TrustDomain, err)
		}
	}
	var out store.FederatedBundle
	err := m.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		cur, err := tx.GetFederatedBundle(ctx, d.TrustDomain)
		switch {
		case errors.Is(err, store.ErrNotFound):
			rec := store.FederatedBundle{TrustDomain: d.TrustDomain, EndpointURL: d.EndpointURL, RefreshAt: now, UpdatedAt: now}
			if initial != nil {
				rec.Bundle, rec.Sequence = d.InitialBundle, storedSequence(initial)
			}
			if out, err = tx.CreateFederatedBundle(ctx, rec); err != nil {
				return fmt.Errorf("federation: store %s: %w", d.TrustDomain, err)
			}
		case err != nil:
			return fmt.Errorf("federation: read %s: %w", d.TrustDomain, err)
		case len(cur.Bundle) > 0 || initial == nil:
			out = cur
			return nil
		default:
			if out, err = tx.UpdateFederatedBundle(ctx, d.TrustDomain, func(b store.FederatedBundle) (store.FederatedBundle, error) {
				b.Bundle, b.Sequence, b.UpdatedAt = d.InitialBundle, storedSequence(initial), now
				return b, nil
			}); err != nil {
				return fmt.Errorf("federation: store %s: %w", d.TrustDomain, err)
			}
		}
		if initial == nil {
			return nil
		}
		return m.record(ctx, tx, m.updatedEvent(m.systemOrigin(), out, initial, nil, TriggerInitial))
	})
	if err != nil {
		return store.FederatedBundle{}, err
	}
	return out, nil
}

// adopt makes the bundle of rec the one in use, unless the one in use
// came from the same or a later version of the record. A stored bundle
// that no longer parses is logged and left unused.
func (m *Manager) adopt(ctx context.Context, rec store.FederatedBundle) {
	if v, ok := m.seen(rec.TrustDomain); ok && v >= rec.Version {
		return
	}
	if len(rec.Bundle) == 0 {
		m.note(rec.TrustDomain, rec.Version)
		return
	}
	b, err := ParseBundle(rec.TrustDomain, rec.Bundle)
	if err == nil {
		var v Bundle
		if v, err = view(rec.TrustDomain, rec.Bundle, b, rec.FetchedAt); err == nil {
			m.publish(v, rec.Version)
			return
		}
	}
	m.log.ErrorContext(ctx, "stored federated bundle unusable", "trust_domain", rec.TrustDomain, "version", rec.Version, "err", err)
	m.note(rec.TrustDomain, rec.Version)
}

// Run calls Sync at once and then every PollInterval until ctx is done.
// Failures are logged (and recorded in the store) and retried per the
// backoff.
func (m *Manager) Run(ctx context.Context) {
	if len(m.domains) == 0 {
		return
	}
	t := time.NewTicker(m.poll)
	defer t.Stop()
	for {
		if err := m.Sync(ctx); err != nil && ctx.Err() == nil {
			m.log.WarnContext(ctx, "federated bundle refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync reloads the stored bundles (those another replica fetched) and
// fetches, concurrently, every bundle whose refresh is due, under its
// lease; a trust domain another replica is fetching is left to it. It
// returns the failed fetches (already recorded) and store errors, joined.
func (m *Manager) Sync(ctx context.Context) error {
	if len(m.domains) == 0 {
		return nil
	}
	recs, err := m.stored(ctx)
	if err != nil {
		return err
	}
	now := m.now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for i := range m.domains {
		d := &m.domains[i]
		rec, ok := recs[d.TrustDomain]
		if !ok {
			if rec, err = m.seed(ctx, d); err != nil {
				fail(err)
				continue
			}
		}
		m.adopt(ctx, rec)
		if rec.RefreshAt.After(now) {
			continue
		}
		wg.Go(func() {
			_, err := m.refresh(ctx, d, m.systemOrigin(), TriggerScheduled, false)
			if err != nil && !errors.Is(err, ErrBusy) && !errors.Is(err, errNotDue) {
				fail(err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Refresh fetches the bundle of td now, whatever its schedule, records the
// outcome as a scheduled fetch would (o is the actor of its audit events)
// and returns the trust domain's status. Errors: ErrUnknownTrustDomain;
// ErrBusy when another replica is fetching it; a *FetchError (ErrFetch)
// when the fetch failed or the bundle was refused, the last good bundle
// staying in use.
func (m *Manager) Refresh(ctx context.Context, o audit.Origin, td string) (Status, error) {
	d, ok := m.byTD[td]
	if !ok {
		return Status{}, fmt.Errorf("%w: %q", ErrUnknownTrustDomain, td)
	}
	if _, err := m.st.GetFederatedBundle(ctx, td); errors.Is(err, store.ErrNotFound) {
		if _, err := m.seed(ctx, d); err != nil {
			return Status{}, err
		}
	}
	rec, ferr := m.refresh(ctx, d, o, TriggerManual, true)
	var fe *FetchError
	if ferr != nil && !errors.As(ferr, &fe) {
		return Status{}, ferr
	}
	st := m.status(d, rec, true)
	return st, ferr
}

// refresh fetches d's bundle under the lease LeasePrefix+trust domain and
// stores the outcome: the new bundle and its next refresh, or the failure
// and the retry (the last good bundle kept), with their audit events.
// Unless force, it fetches only when the stored refresh time has come
// (errNotDue otherwise), so that replicas racing for one refresh fetch
// once. It returns the stored record, and a *FetchError when the fetch
// failed.
func (m *Manager) refresh(ctx context.Context, d *Domain, o audit.Origin, trigger string, force bool) (store.FederatedBundle, error) {
	lease := LeasePrefix + d.TrustDomain
	ttl := m.timeout + leaseMargin
	now := m.now()
	var claimed store.FederatedBundle
	err := m.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.AcquireLease(ctx, lease, m.holder, now, now.Add(ttl))
		if err != nil {
			return fmt.Errorf("federation: acquire lease %s: %w", lease, err)
		}
		if !ok {
			return ErrBusy
		}
		if claimed, err = tx.GetFederatedBundle(ctx, d.TrustDomain); err != nil {
			return fmt.Errorf("federation: read %s: %w", d.TrustDomain, err)
		}
		if !force && claimed.RefreshAt.After(now) {
			return errNotDue // rolled back: the lease is not taken
		}
		return nil
	})
	if err != nil {
		return store.FederatedBundle{}, err
	}

	raw, fetched, ferr := m.fetch(ctx, d)
	var prev *spiffebundle.Bundle
	if len(claimed.Bundle) > 0 {
		prev, _ = ParseBundle(d.TrustDomain, claimed.Bundle)
	}
	failure := "" // why the fetch failed, for the store
	if ferr != nil {
		failure = cmp.Or(clip(ferr.Error()), "unknown error")
	}
	done := m.now()
	var out store.FederatedBundle
	err = m.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.AcquireLease(ctx, lease, m.holder, done, done.Add(ttl))
		if err != nil {
			return fmt.Errorf("federation: acquire lease %s: %w", lease, err)
		}
		if !ok {
			return ErrBusy // the lease expired and another replica took it
		}
		var ev *audit.Event
		out, err = tx.UpdateFederatedBundle(ctx, d.TrustDomain, func(b store.FederatedBundle) (store.FederatedBundle, error) {
			if b.Version != claimed.Version {
				return b, ErrBusy
			}
			b.EndpointURL, b.UpdatedAt = d.EndpointURL, done
			if failure != "" {
				b.Failures++
				b.LastError = failure
				b.RefreshAt = done.Add(backoff(b.Failures, prev))
				return b, nil
			}
			b.Bundle, b.Sequence = raw, storedSequence(fetched)
			b.FetchedAt, b.RefreshAt, b.LastError, b.Failures = done, done.Add(interval(fetched)), "", 0
			return b, nil
		})
		if err != nil {
			return fmt.Errorf("federation: store %s: %w", d.TrustDomain, err)
		}
		switch {
		case ferr == nil && (prev == nil || !prev.Equal(fetched)):
			e := m.updatedEvent(o, out, fetched, prev, trigger)
			ev = &e
		case ferr != nil && out.Failures == FailureAuditThreshold:
			e := m.failedEvent(o, out, prev, trigger)
			ev = &e
		}
		if ev != nil {
			if err := m.record(ctx, tx, *ev); err != nil {
				return err
			}
		}
		_, err = tx.AcquireLease(ctx, lease, m.holder, done, done) // release
		return err
	})
	if err != nil {
		return store.FederatedBundle{}, err
	}
	m.adopt(ctx, out)
	if ferr != nil {
		return out, &FetchError{TrustDomain: d.TrustDomain, Err: ferr}
	}
	// Every fetch is logged (SPIFFE Federation §7.6), a change at info.
	lvl := slog.LevelDebug
	if prev == nil || !prev.Equal(fetched) {
		lvl = slog.LevelInfo
	}
	seq, _ := fetched.SequenceNumber()
	if prev != nil {
		// SPIFFE Federation §4.2 orders bundles by sequence; a lower one is
		// still stored (a foreign server whose sequence restarted would
		// otherwise never be followed again), but said.
		if p, ok := prev.SequenceNumber(); ok && seq < p {
			m.log.WarnContext(ctx, "federated bundle's sequence went down; the fetched bundle is in use",
				"trust_domain", d.TrustDomain, "sequence", seq, "previous_sequence", p)
		}
	}
	m.log.Log(ctx, lvl, "fetched federated bundle", "trust_domain", d.TrustDomain, "endpoint_url", d.EndpointURL,
		"sequence", seq, "changed", lvl == slog.LevelInfo, "trigger", trigger)
	return out, nil
}

// clip bounds an error message for the store, on a rune boundary.
func clip(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	s = s[:maxErrorLen]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func (m *Manager) record(ctx context.Context, tx store.Tx, ev audit.Event) error {
	if _, err := m.rec.Append(ctx, tx, ev); err != nil {
		return fmt.Errorf("federation: record %s: %w", ev.Type, err)
	}
	return nil
}

// updatedEvent is federation.bundle_updated for the record rec now holding
// b (prev: the bundle before, nil for none).
func (m *Manager) updatedEvent(o audit.Origin, rec store.FederatedBundle, b, prev *spiffebundle.Bundle, trigger string) audit.Event {
	ev := o.Event(audit.Admin, EventBundleUpdated)
	ev.Time = rec.UpdatedAt
	seq, _ := b.SequenceNumber()
	ev.Details = map[string]any{
		"trust_domain": rec.TrustDomain, "endpoint_url": rec.EndpointURL, "sequence": seq,
		"x509_authorities": len(b.X509Authorities()), "jwt_authorities": len(b.JWTAuthorities()),
		"trigger": trigger, "replica": m.holder,
	}
	if prev != nil {
		p, _ := prev.SequenceNumber()
		ev.Details["previous_sequence"] = p
	}
	return ev
}

// failedEvent is federation.bundle_refresh_failed for the record rec (prev:
// the bundle kept in use, nil for none).
func (m *Manager) failedEvent(o audit.Origin, rec store.FederatedBundle, prev *spiffebundle.Bundle, trigger string) audit.Event {
	ev := o.Event(audit.Admin, EventRefreshFailed)
	ev.Time = rec.UpdatedAt
	ev.Outcome = audit.Failure
	ev.Details = map[string]any{
		"trust_domain": rec.TrustDomain, "endpoint_url": rec.EndpointURL, "failures": rec.Failures,
		"error": rec.LastError, "retry_at": audit.FormatTime(rec.RefreshAt), "trigger": trigger, "replica": m.holder,
	}
	if prev != nil {
		s, _ := prev.SequenceNumber()
		ev.Details["sequence"] = s
	}
	ev.Reason = "the bundle endpoint failed " + fmt.Sprint(rec.Failures) + " times in a row; the last good bundle stays in use"
	return ev
}
