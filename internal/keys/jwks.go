package keys

import (
	"crypto/x509"
	"encoding/json"
	"time"
)

// jwksCache is the JWKS document built for one key view, valid until the
// next publication or removal instant.
type jwksCache struct {
	state        *keyState
	body         []byte
	built, until time.Time
}

// JWKS returns the JWK Set (RFC 7517 §5) of every key published now:
// pending, active and retired keys until their RemoveAt, public members
// only, in activation order, and the time the document was built. The
// document is rebuilt only when the loaded keys change or a key's
// publication or removal instant passes; callers must not modify it.
func (m *Manager) JWKS() ([]byte, time.Time) {
	st := m.state.Load()
	now := m.clock()
	m.jwksMu.Lock()
	defer m.jwksMu.Unlock()
	c := &m.jwks
	if c.state == st && c.body != nil && !now.Before(c.built) && now.Before(c.until) {
		return c.body, c.built
	}
	set := struct {
		Keys []JWK `json:"keys"`
	}{Keys: []JWK{}}
	until := now.Add(100 * 365 * 24 * time.Hour)
	for _, k := range st.keys {
		if k.pub == nil {
			continue
		}
		if published(k.rec, now) {
			set.Keys = append(set.Keys, k.jwk)
		}
		for _, t := range []time.Time{k.rec.PublishAt, k.rec.RemoveAt} {
			if t.After(now) && t.Before(until) {
				until = t
			}
		}
	}
	body, err := json.Marshal(set)
	if err != nil { // cannot happen: strings only
		m.log.Error("encode JWKS", "err", err)
	}
	*c = jwksCache{state: st, body: body, built: now, until: until}
	return body, now
}

// PublishedKey is a key published now, with its certificate chain.
type PublishedKey struct {
	ID    string
	State KeyState
	// TaintedAt is when the key was tainted; zero: not tainted.
	TaintedAt time.Time
	// Chain is the key's certificate first, then its intermediates; nil
	// for keys without a certificate. Callers must not modify it.
	Chain []*x509.Certificate
}

// Published returns the keys published now (pending, active, and retired
// or tainted until their RemoveAt), in activation order, from memory: what
// a trust bundle lists.
func (m *Manager) Published() []PublishedKey {
	st := m.state.Load()
	now := m.clock()
	var out []PublishedKey
	for _, k := range st.keys {
		if k.pub != nil && published(k.rec, now) {
			out = append(out, PublishedKey{ID: k.rec.ID, State: StateAt(k.rec, now), TaintedAt: k.rec.TaintedAt, Chain: k.chain})
		}
	}
	return out
}
