package keys

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// ErrUnknownKey means no key of the Manager's purpose has the id.
var ErrUnknownKey = errors.New("keys: no such key")

// CertRequest asks a Certifier for the certificate of a new key.
type CertRequest struct {
	// ID is the new key's id.
	ID string
	// Purpose is the Manager's purpose.
	Purpose string
	// Signer is the new key's private key: a self-signed certificate is
	// signed with it. The Certifier must not keep it.
	Signer crypto.Signer
	// Now is when the key is created and published.
	Now time.Time
	// RetireBy is the latest the key stops signing on schedule: its
	// activation, at most one prepublication delay away, plus the rotation
	// period. A manual rotation or a taint retires it sooner; only an
	// outage of every replica keeps it signing longer.
	RetireBy time.Time
	// MaxTokenTTL is the longest lifetime of what the key signs: a
	// certificate valid until RetireBy + MaxTokenTTL + RemovalLeeway
	// outlives everything the key signs on schedule.
	MaxTokenTTL time.Duration
}

// Certifier issues the certificate chain of a new key.
type Certifier interface {
	// Certify returns the DER certificates of the key described by r: its
	// own certificate (whose public key is r.Signer's) first, then any
	// intermediates up to, not including, the trust anchor. It runs
	// before the key is stored, outside any transaction; an error fails
	// the rotation, and nothing is stored.
	Certify(ctx context.Context, r CertRequest) ([][]byte, error)
}

// withdrawn reports whether k was retired no later than it activates (a
// pending key tainted before it signed): it never signs.
func withdrawn(k store.SigningKey) bool {
	return !k.RetireAt.IsZero() && !k.RetireAt.After(k.ActivateAt)
}

// newestLive returns the index of the last key of ks (sorted) that is not
// withdrawn, -1 if there is none.
func newestLive(ks []store.SigningKey) int {
	for i := len(ks) - 1; i >= 0; i-- {
		if !withdrawn(ks[i]) {
			return i
		}
	}
	return -1
}

// parseChain parses a stored certificate chain and checks that the first
// certificate certifies pub.
func parseChain(id string, der [][]byte, pub crypto.PublicKey) ([]*x509.Certificate, error) {
	if len(der) == 0 {
		return nil, nil
	}
	chain := make([]*x509.Certificate, len(der))
	for i, d := range der {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("keys: key %s: certificate %d: %w", id, i, err)
		}
		chain[i] = c
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := pub.(equaler); !ok || !e.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("keys: key %s: its certificate is for another key", id)
	}
	return chain, nil
}

// certUsableUntil is the last instant k's certificate can sign something
// with the full MaxTokenTTL; zero when k has no (parsable) certificate.
func (m *Manager) certUsableUntil(k store.SigningKey) time.Time {
	if len(k.CertChain) == 0 {
		return time.Time{}
	}
	c, err := x509.ParseCertificate(k.CertChain[0])
	if err != nil {
		return time.Time{}
	}
	return c.NotAfter.Add(-m.maxTTL - RemovalLeeway)
}

// activation is when a successor of the newest key of ks, created at now,
// starts signing: after the prepublication delay, but no later than the
// newest key's certificate can still sign with the full TTL (after an
// outage of every replica, at once), and always after the newest key's own
// activation, so that the newest key is the one activating last. With no
// key that may sign, at once.
func (m *Manager) activation(ks []store.SigningKey, now time.Time) time.Time {
	newest := newestLive(ks)
	if newest < 0 {
		return now
	}
	a := now.Add(m.prepublish())
	if u := m.certUsableUntil(ks[newest]); !u.IsZero() && u.Before(a) {
		a = u
		if a.Before(now) {
			a = now
		}
	}
	if prev := ks[newest].ActivateAt; !a.After(prev) {
		// Rotations in one microsecond, or a shorter delay after a config
		// change.
		a = prev.Add(time.Microsecond)
	}
	return a
}

// prepare makes a new key's material outside any transaction: id, private
// key, sealed form and, with a Certifier, certificate chain. PublishAt,
// CreatedAt are now; the caller sets ActivateAt.
func (m *Manager) prepare(ctx context.Context, now time.Time) (store.SigningKey, error) {
	id, err := recordid.New(KeyIDPrefix, now, m.rand)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("keys: %w", err)
	}
	priv, err := generateSigner(m.alg, m.rand)
	if err != nil {
		return store.SigningKey{}, err
	}
	pub, err := x509MarshalPublic(priv)
	if err != nil {
		return store.SigningKey{}, err
	}
	sealed, err := sealSigner(m.root, priv, m.purpose, id, m.alg)
	if err != nil {
		return store.SigningKey{}, err
	}
	k := store.SigningKey{
		ID: id, Algorithm: m.alg, Purpose: m.purpose, PublicKey: pub, Sealed: sealed,
		PublishAt: now, CreatedAt: now,
	}
	if m.certify != nil {
		chain, err := m.certify.Certify(ctx, CertRequest{
			ID: id, Purpose: m.purpose, Signer: priv, Now: now,
			RetireBy: now.Add(m.prepublish() + m.period), MaxTokenTTL: m.maxTTL,
		})
		if err != nil {
			return store.SigningKey{}, fmt.Errorf("keys: certify key %s: %w", id, err)
		}
		if _, err := parseChain(id, chain, priv.Public()); err != nil {
			return store.SigningKey{}, err
		}
		k.CertChain = chain
	}
	return k, nil
}

// locked runs fn in one store transaction holding the lease
// "keys/<purpose>", with the purpose's keys as the transaction sees them,
// sorted, and releases the lease when fn succeeds. ErrBusy: another replica
// holds the lease.
func (m *Manager) locked(ctx context.Context, now time.Time, fn func(ctx context.Context, tx store.Tx, ks []store.SigningKey) error) error {
	lease := LeasePrefix + m.purpose
	return m.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.AcquireLease(ctx, lease, m.holder, now, now.Add(leaseTTL))
		if err != nil {
			return fmt.Errorf("keys: acquire lease %s: %w", lease, err)
		}
		if !ok {
			return ErrBusy
		}
		ks, err := tx.ListSigningKeys(ctx, m.purpose)
		if err != nil {
			return fmt.Errorf("keys: list signing keys: %w", err)
		}
		sortKeys(ks)
		if err := fn(ctx, tx, ks); err != nil {
			return err
		}
		return m.release(ctx, tx, lease, now)
	})
}

// release gives the lease up in the transaction that took it, so that the
// next replica to ask gets it once this transaction commits.
func (m *Manager) release(ctx context.Context, tx store.Tx, lease string, now time.Time) error {
	if _, err := tx.AcquireLease(ctx, lease, m.holder, now, now); err != nil {
		return fmt.Errorf("keys: release lease %s: %w", lease, err)
	}
	return nil
}

// rotate creates a key in one transaction under the lease: the first key
// (signing at once) when there is none, otherwise a successor of the
// newest key, whose RetireAt and RemoveAt it sets. A scheduled rotation
// that is no longer due once the lease is held (another replica did it)
// creates nothing and returns a zero key.
func (m *Manager) rotate(ctx context.Context, o Origin, trigger string) (store.SigningKey, error) {
	now := m.now()
	fresh, err := m.prepare(ctx, now)
	if err != nil {
		return store.SigningKey{}, err
	}
	var created store.SigningKey
	err = m.locked(ctx, now, func(ctx context.Context, tx store.Tx, ks []store.SigningKey) error {
		created = store.SigningKey{}
		if trigger == TriggerScheduled && !m.due(ks, now) {
			return nil
		}
		k, err := m.appendKey(ctx, tx, ks, fresh, m.activation(ks, now), o, trigger)
		if err != nil {
			return err
		}
		created = k
		return nil
	})
	if err != nil {
		return store.SigningKey{}, err
	}
	return created, nil
}

// appendKey stores k, activating at activate, as the successor of the
// newest key of ks that may sign, which it retires at that instant (and
// removes MaxTokenTTL + RemovalLeeway later), and records the event. With
// no such key, k is the first and signs at once.
func (m *Manager) appendKey(ctx context.Context, tx store.Tx, ks []store.SigningKey, k store.SigningKey,
	activate time.Time, o Origin, trigger string) (store.SigningKey, error) {
	now := k.PublishAt
	k.ActivateAt = activate
	ev := Event{Type: EventKeyRotated, Origin: o, Trigger: trigger, Holder: m.holder}
	newest := newestLive(ks)
	if newest < 0 {
		k.ActivateAt = now
		ev.Type, ev.Trigger = EventKeyCreated, TriggerInitial
	}
	k, err := tx.CreateSigningKey(ctx, k)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("keys: create signing key: %w", err)
	}
	if newest >= 0 {
		prev, err := m.retire(ctx, tx, ks[newest].ID, k.ActivateAt)
		if err != nil {
			return store.SigningKey{}, err
		}
		pi := infoOf(prev, now)
		ev.Previous = &pi
	}
	ev.Key = infoOf(k, now)
	if err := m.record(ctx, tx, ev); err != nil {
		return store.SigningKey{}, err
	}
	return k, nil
}

// retire sets the key id to stop signing at, and to leave publication
// once everything it signed until then has expired.
func (m *Manager) retire(ctx context.Context, tx store.Tx, id string, at time.Time) (store.SigningKey, error) {
	k, err := tx.UpdateSigningKey(ctx, id, func(p store.SigningKey) (store.SigningKey, error) {
		p.RetireAt = at
		p.RemoveAt = at.Add(m.maxTTL + RemovalLeeway)
		return p, nil
	})
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("keys: retire signing key %s: %w", id, err)
	}
	return k, nil
}

func (m *Manager) record(ctx context.Context, tx store.Tx, ev Event) error {
	if m.rec == nil {
		return nil
	}
	return m.rec.RecordKeyEvent(ctx, tx, ev)
}

// Taint marks the key kid compromised: whatever it signed must be
// re-issued at once. It records key.tainted, and:
//
//   - if the key signs now, a successor is created that signs at once
//     (key.rotated, trigger "taint"), without the prepublication delay:
//     for a compromised key there is no point in waiting for caches. The
//     tainted key retires now and stays published, like any retired key,
//     until everything it signed has expired (RemoveAt = now +
//     MaxTokenTTL + RemovalLeeway). A successor already published keeps
//     its schedule: the new key signs until that one activates;
//   - if the key is pending, it never signs: it is withdrawn (retired at its
//     activation, and removed from publication at once, having signed
//     nothing). The key before it signs on until the next pending key
//     activates or, if there is none, until a successor created now with
//     the usual prepublication delay does;
//   - a retired or removed key is only marked.
//
// Tainting a tainted key changes nothing and returns it. Replicas sign
// with the successor from their next reload (RefreshInterval); this
// Manager reloads at once. ErrUnknownKey: no key of the purpose has the id;
// ErrBusy: as Rotate.
func (m *Manager) Taint(ctx context.Context, o Origin, kid string) (KeyInfo, error) {
	now := m.now()
	fresh, err := m.prepare(ctx, now)
	if err != nil {
		return KeyInfo{}, err
	}
	var tainted store.SigningKey
	err = m.locked(ctx, now, func(ctx context.Context, tx store.Tx, ks []store.SigningKey) error {
		i := -1
		for j := range ks {
			if ks[j].ID == kid {
				i = j
			}
		}
		if i < 0 {
			return fmt.Errorf("%w: %q", ErrUnknownKey, kid)
		}
		tainted = ks[i]
		if !tainted.TaintedAt.IsZero() {
			return nil
		}
		return m.taint(ctx, tx, ks, i, fresh, o)
	})
	if err != nil {
		return KeyInfo{}, err
	}
	if err := m.reload(ctx); err != nil {
		m.log.WarnContext(ctx, "reload signing keys after taint", "purpose", m.purpose, "err", err)
	}
	for _, k := range m.state.Load().keys {
		if k.rec.ID == kid {
			tainted = k.rec
		}
	}
	return infoOf(tainted, m.clock()), nil
}

// taint marks ks[i] tainted and rotates as Taint describes, in tx.
func (m *Manager) taint(ctx context.Context, tx store.Tx, ks []store.SigningKey, i int, fresh store.SigningKey, o Origin) error {
	now := fresh.PublishAt
	k := ks[i]
	pending, signs := StateAt(k, now) == StatePending, StateAt(k, now) == StateActive
	live := !withdrawn(k)
	k, err := tx.UpdateSigningKey(ctx, k.ID, func(p store.SigningKey) (store.SigningKey, error) {
		p.TaintedAt = now
		if live && pending {
			p.RetireAt, p.RemoveAt = p.ActivateAt, now
		}
		return p, nil
	})
	if err != nil {
		return fmt.Errorf("keys: taint signing key %s: %w", ks[i].ID, err)
	}
	ks[i] = k
	if err := m.record(ctx, tx, Event{Type: EventKeyTainted, Origin: o, Trigger: TriggerManual, Holder: m.holder,
		Key: infoOf(k, now)}); err != nil {
		return err
	}
	next := -1 // the next key that may sign
	for j := i + 1; j < len(ks); j++ {
		if !withdrawn(ks[j]) {
			next = j
			break
		}
	}
	switch {
	case !live || (!pending && !signs):
		return nil
	case pending && next >= 0:
		// The key before it signs until the next pending key activates.
		if prev := newestLive(ks[:i]); prev >= 0 {
			_, err := m.retire(ctx, tx, ks[prev].ID, ks[next].ActivateAt)
			return err
		}
		return nil
	case pending:
		_, err := m.appendKey(ctx, tx, ks, fresh, m.activation(ks, now), o, TriggerTaint)
		return err
	case next < 0:
		// The tainted key was the newest: its successor signs now.
		at := now
		if !at.After(k.ActivateAt) {
			at = k.ActivateAt.Add(time.Microsecond)
		}
		_, err := m.appendKey(ctx, tx, ks, fresh, at, o, TriggerTaint)
		return err
	}
	// A successor is already published: a new key signs from now until it
	// activates.
	at := now
	if !at.After(k.ActivateAt) {
		at = k.ActivateAt.Add(time.Microsecond)
	}
	if !at.Before(ks[next].ActivateAt) {
		return nil // the successor activates within a microsecond
	}
	fresh.ActivateAt = at
	fresh.RetireAt = ks[next].ActivateAt
	fresh.RemoveAt = fresh.RetireAt.Add(m.maxTTL + RemovalLeeway)
	n, err := tx.CreateSigningKey(ctx, fresh)
	if err != nil {
		return fmt.Errorf("keys: create signing key: %w", err)
	}
	prev, err := m.retire(ctx, tx, k.ID, at)
	if err != nil {
		return err
	}
	pi := infoOf(prev, now)
	return m.record(ctx, tx, Event{Type: EventKeyRotated, Origin: o, Trigger: TriggerTaint, Holder: m.holder,
		Key: infoOf(n, now), Previous: &pi})
}
