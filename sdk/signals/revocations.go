package signals

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/agentid/agentid/sdk/resource"
)

// entryKind is what an entry remembers.
type entryKind uint8

const (
	kindSeen     entryKind = iota // a SET jti already applied
	kindJTI                       // a revoked token: a = iss, b = jti
	kindSubject                   // an agent's tokens up to before: b = SPIFFE ID
	kindInstance                  // an instance's tokens: b = ins_…
	kindGrant                     // a grant's tokens: b = grt_…
	kindAccount                   // an agent's account state: b = SPIFFE ID
)

type entryKey struct {
	kind entryKind
	a, b string
}

// entry is one thing remembered.
type entry struct {
	learned time.Time // when it was learned (or renewed)
	seq     uint64    // of the queue item that is current for it
	// before: kindSubject revokes tokens issued at or before it.
	before time.Time
	// account: kindAccount's state, and the time of the event that set it.
	disabled, purged bool
	at               time.Time
}

// queued is an entry in learning order; stale when seq is not the entry's.
type queued struct {
	key entryKey
	seq uint64
}

// revocations is what the receiver knows. Entries are forgotten a horizon
// after they were learned, except a disabled or purged account's, which is
// renewed instead (the agent's tokens stay refused); past max entries the
// oldest are dropped.
type revocations struct {
	horizon time.Duration
	max     int
	clock   func() time.Time

	mu      sync.RWMutex
	entries map[entryKey]*entry
	queue   []queued // learning order; queue[head:] is live
	head    int
	seq     uint64
}

func newRevocations(horizon time.Duration, max int, clock func() time.Time) *revocations {
	return &revocations{horizon: horizon, max: max, clock: clock, entries: map[entryKey]*entry{}}
}

// touch returns the entry for k, created if missing, and marks it learned
// now; mu is held.
func (rv *revocations) touch(k entryKey, now time.Time) *entry {
	e := rv.entries[k]
	if e == nil {
		e = &entry{}
		rv.entries[k] = e
	}
	rv.seq++
	e.learned, e.seq = now, rv.seq
	rv.queue = append(rv.queue, queued{key: k, seq: rv.seq})
	return e
}

// seen reports whether the SET with jti was applied; a seen SET is
// remembered for the horizon, so a redelivery is not applied twice.
func (rv *revocations) seen(jti string) bool {
	rv.mu.RLock()
	defer rv.mu.RUnlock()
	e, ok := rv.entries[entryKey{kind: kindSeen, b: jti}]
	return ok && rv.clock().Sub(e.learned) < rv.horizon
}

// apply records the effect of the SET with jti.
func (rv *revocations) apply(jti string, ef effect) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	now := rv.clock()
	rv.touch(entryKey{kind: kindSeen, b: jti}, now)
	switch ef.kind {
	case effectRevokeJTI:
		rv.touch(entryKey{kind: kindJTI, a: ef.iss, b: ef.key}, now)
	case effectRevokeSubject:
		k := entryKey{kind: kindSubject, b: ef.key}
		var before time.Time
		if e := rv.entries[k]; e != nil && rv.live(e, now) {
			before = e.before
		}
		if ef.at.After(before) {
			before = ef.at
		}
		rv.touch(k, now).before = before
	case effectRevokeInstance:
		rv.touch(entryKey{kind: kindInstance, b: ef.key}, now)
	case effectRevokeGrant:
		rv.touch(entryKey{kind: kindGrant, b: ef.key}, now)
	case effectDisable, effectEnable, effectPurge:
		k := entryKey{kind: kindAccount, b: ef.key}
		old := rv.entries[k]
		switch {
		case old != nil && old.purged:
			// purged is for good
		case old != nil && ef.kind != effectPurge && ef.at.Before(old.at):
			// an older change, delivered after a newer one: stale
		default:
			e := rv.touch(k, now)
			e.disabled, e.purged, e.at = ef.kind == effectDisable, ef.kind == effectPurge, ef.at
		}
	}
	rv.trim(now)
}

// live reports whether e still counts at now; mu is held.
func (rv *revocations) live(e *entry, now time.Time) bool {
	return e.disabled || e.purged || now.Sub(e.learned) < rv.horizon
}

// expire forgets the entries past the horizon.
func (rv *revocations) expire() {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.trim(rv.clock())
}

// trim drops expired entries and, past max, the oldest; it renews disabled
// and purged accounts; mu is held.
func (rv *revocations) trim(now time.Time) {
	for rv.head < len(rv.queue) {
		q := rv.queue[rv.head]
		e := rv.entries[q.key]
		switch {
		case e == nil || e.seq != q.seq: // stale queue item
		case len(rv.entries) > rv.max:
			delete(rv.entries, q.key)
		case now.Sub(e.learned) < rv.horizon:
			rv.compact()
			return
		case e.disabled || e.purged:
			rv.queue[rv.head] = queued{} // renewed below; let the strings go
			rv.head++
			rv.touch(q.key, now)
			continue
		default:
			delete(rv.entries, q.key)
		}
		rv.queue[rv.head] = queued{}
		rv.head++
	}
	rv.compact()
}

// compact drops the consumed and the stale queue items when they are the
// bulk of the queue; mu is held.
func (rv *revocations) compact() {
	if len(rv.queue) < 64 || len(rv.queue) < 2*len(rv.entries) {
		return
	}
	live := make([]queued, 0, len(rv.entries))
	for _, q := range rv.queue[rv.head:] {
		if e := rv.entries[q.key]; e != nil && e.seq == q.seq {
			live = append(live, q)
		}
	}
	rv.queue, rv.head = live, 0
}

// size is the number of entries held.
func (rv *revocations) size() int {
	rv.mu.RLock()
	defer rv.mu.RUnlock()
	return len(rv.entries)
}

// revoked answers Receiver.Revoked.
func (rv *revocations) revoked(c *resource.Claims) (bool, string) {
	rv.mu.RLock()
	defer rv.mu.RUnlock()
	now := rv.clock()
	has := func(k entryKey) *entry {
		if e := rv.entries[k]; e != nil && rv.live(e, now) {
			return e
		}
		return nil
	}
	if c.JTI != "" && has(entryKey{kind: kindJTI, a: c.Issuer, b: c.JTI}) != nil {
		return true, "the token was revoked (session-revoked, jwt_id)"
	}
	for _, s := range agents(c) {
		if e := has(entryKey{kind: kindAccount, b: s}); e != nil {
			switch {
			case e.purged:
				return true, "agent " + s + " was purged"
			case e.disabled:
				return true, "agent " + s + " is disabled"
			}
		}
		if e := has(entryKey{kind: kindSubject, b: s}); e != nil && !c.IssuedAt.After(e.before) {
			return true, "the tokens of agent " + s + " were revoked (session-revoked, iss_sub)"
		}
	}
	if c.AgentInstance != "" && has(entryKey{kind: kindInstance, b: c.AgentInstance}) != nil {
		return true, "the tokens of instance " + c.AgentInstance + " were revoked"
	}
	if g, _ := c.Raw["grant_id"].(string); g != "" && has(entryKey{kind: kindGrant, b: g}) != nil {
		return true, "the tokens of grant " + g + " were revoked"
	}
	return false, ""
}

// agents returns the agents a token belongs to: its sub, and the sub of
// every act at any depth (RFC 8693 §4.1), up to resource.MaxChainDepth.
func agents(c *resource.Claims) []string {
	out := []string{c.Subject}
	raw := c.Act
	for len(out) <= resource.MaxChainDepth && len(raw) > 0 && string(raw) != "null" {
		var a struct {
			Sub string          `json:"sub"`
			Act json.RawMessage `json:"act"`
		}
		if json.Unmarshal(raw, &a) != nil {
			break
		}
		if a.Sub != "" {
			out = append(out, a.Sub)
		}
		raw = a.Act
	}
	return out
}

// ErrRevoked is what Check returns for a revoked token; the reason follows
// it in the message.
var ErrRevoked = errors.New("signals: token revoked")

// Revoked reports whether the token with verified claims c is revoked by
// the events received, and why (no secret: it may be logged or shown). A
// nil c is not revoked. It takes no lock that a poll holds long and does
// no I/O: it is meant for every request.
func (r *Receiver) Revoked(c *resource.Claims) (revoked bool, reason string) {
	if c == nil {
		return false, ""
	}
	return r.state.revoked(c)
}

// Check is Revoked in the shape of resource.VerifierParams.RevocationCheck:
// it returns an error wrapping ErrRevoked for a revoked token, nil
// otherwise.
func (r *Receiver) Check(_ context.Context, c *resource.Claims) error {
	if ok, reason := r.Revoked(c); ok {
		return &revokedError{reason: reason}
	}
	return nil
}

type revokedError struct{ reason string }

func (e *revokedError) Error() string { return ErrRevoked.Error() + ": " + e.reason }
func (e *revokedError) Unwrap() error { return ErrRevoked }
