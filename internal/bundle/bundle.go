// Package bundle builds the trust domain's SPIFFE trust bundle: the
// document of SPIFFE Trust Domain and Bundle §4, a JWK Set (RFC 7517 §5)
// whose keys are the trust domain's X.509 authorities (the CA certificates
// that verify X.509-SVIDs: "use": "x509-svid", exactly one certificate in
// "x5c" and no "kid", X509-SVID §6.1) and its JWT authorities (the public
// keys that verify JWT-SVIDs: "use": "jwt-svid" and "kid", §4.2.2), with
// "spiffe_sequence" and "spiffe_refresh_hint" (§4.1.1, §4.1.2).
//
// The authorities come from an X509Source (internal/ca's Manager: every CA
// certificate published now, so a new CA is in the bundle before it signs
// and a retired one stays until its SVIDs have expired) and a JWTSource
// (the keys.Manager of purpose "jwt-svid": every key it publishes, pending
// ones included). Both are read from memory, so building the bundle does
// no I/O.
//
// # Sequence number
//
// The contents of the bundle are its keys and its refresh hint. Whenever
// Current finds them changed since the last document it built, the new
// document's spiffe_sequence is max(previous + 1, now in Unix seconds):
// it strictly increases with every change, stays put while nothing
// changes, and, being anchored to the clock, a restarted server starts
// above every number it served before. Replicas number independently, each
// when it first sees a change (within its key refresh interval of it), so
// two replicas may give the same contents numbers a few seconds apart;
// each replica's own sequence only increases.
//
// A Bundle is safe for concurrent use.
package bundle

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/agentid/agentid/internal/identity"
)

// DefaultRefreshHint is the spiffe_refresh_hint when Params sets none: how
// often consumers should fetch the bundle again (the five minutes §6.2
// suggests to clients without a hint).
const DefaultRefreshHint = 5 * time.Minute

// Public key uses of SPIFFE bundle keys (SPIFFE Trust Domain and Bundle
// §4.2.2).
const (
	UseX509SVID = "x509-svid"
	UseJWTSVID  = "jwt-svid"
)

// X509Source gives the X.509 authorities of the trust domain.
// internal/ca's Manager implements it.
type X509Source interface {
	// X509Authorities returns the CA certificates published now, from
	// memory; callers must not modify them.
	X509Authorities() []*x509.Certificate
}

// JWTSource gives the JWT-SVID signing keys as a JWK Set. *keys.Manager
// implements it.
type JWTSource interface {
	// JWKS returns the JWK Set of the keys published now and when it was
	// built; callers must not modify it.
	JWKS() ([]byte, time.Time)
}

// Params configures a Bundle.
type Params struct {
	// TrustDomain is the trust domain the bundle is for. Required.
	TrustDomain string
	// X509 gives the X.509 authorities; nil: none (no CA).
	X509 X509Source
	// JWT gives the JWT authorities; nil: none.
	JWT JWTSource
	// RefreshHint is the spiffe_refresh_hint, in whole seconds; zero means
	// DefaultRefreshHint.
	RefreshHint time.Duration
	// Clock is the time source of sequence numbers. Required.
	Clock func() time.Time
}

// Bundle builds the bundle document from its sources.
type Bundle struct {
	td    string
	x509  X509Source
	jwt   JWTSource
	hint  time.Duration
	clock func() time.Time

	mu      sync.Mutex
	last    Document
	content []byte              // the last document without its sequence
	x5      []*x509.Certificate // the X.509 authorities last built from
	jwks    []byte              // the JWKS last built from
}

// New returns a Bundle.
func New(p Params) (*Bundle, error) {
	if err := identity.ValidateTrustDomain(p.TrustDomain); err != nil {
		return nil, fmt.Errorf("bundle: trust domain: %w", err)
	}
	if p.Clock == nil {
		return nil, errors.New("bundle: Clock is required")
	}
	if p.RefreshHint < 0 || (p.RefreshHint > 0 && p.RefreshHint < time.Second) {
		return nil, fmt.Errorf("bundle: refresh hint %s must be at least 1s", p.RefreshHint)
	}
	b := &Bundle{td: p.TrustDomain, x509: p.X509, jwt: p.JWT, hint: p.RefreshHint.Truncate(time.Second), clock: p.Clock}
	if b.hint == 0 {
		b.hint = DefaultRefreshHint
	}
	return b, nil
}

// TrustDomain is the trust domain the bundle is for.
func (b *Bundle) TrustDomain() string { return b.td }

// RefreshHint is the bundle's spiffe_refresh_hint.
func (b *Bundle) RefreshHint() time.Duration { return b.hint }

// Document is one version of the bundle. Its fields are shared by every
// caller that gets this version and must not be modified.
type Document struct {
	// JSON is the bundle document (SPIFFE Trust Domain and Bundle §4).
	JSON []byte
	// JWTJWKS is a JWK Set of the JWT authorities alone, the form the
	// Workload API's JWT bundles take.
	JWTJWKS []byte
	// Sequence is the document's spiffe_sequence.
	Sequence uint64
	// RefreshHint is its spiffe_refresh_hint.
	RefreshHint time.Duration
	// X509Authorities are the CA certificates in the document, in order.
	X509Authorities []*x509.Certificate
	// JWTAuthorities are the JWT-SVID keys in the document, by kid.
	JWTAuthorities map[string]crypto.PublicKey
}

// document is the wire form of the bundle: keys first, as in §4's
// examples.
type document struct {
	Keys        []json.RawMessage `json:"keys"`
	RefreshHint int64             `json:"spiffe_refresh_hint"`
	Sequence    uint64            `json:"spiffe_sequence"`
}

// Current returns the bundle now, rebuilt only when its sources changed
// (see the package doc for how the sequence number follows changes).
func (b *Bundle) Current() (Document, error) {
	// The sources are read under the lock (they read memory only), so
	// that a caller holding an older view never rebuilds over a newer one.
	b.mu.Lock()
	defer b.mu.Unlock()
	var x5 []*x509.Certificate
	if b.x509 != nil {
		x5 = b.x509.X509Authorities()
	}
	var jwks []byte
	if b.jwt != nil {
		jwks, _ = b.jwt.JWKS()
	}
	if b.last.JSON != nil && sameCerts(x5, b.x5) && bytes.Equal(jwks, b.jwks) {
		return b.last, nil
	}
	d, keysJSON, err := b.build(x5, jwks)
	if err != nil {
		return Document{}, err
	}
	hint := int64(b.hint / time.Second)
	content, err := json.Marshal(document{Keys: keysJSON, RefreshHint: hint})
	if err != nil {
		return Document{}, fmt.Errorf("bundle: encode: %w", err)
	}
	d.Sequence = b.last.Sequence
	if b.last.JSON == nil || !bytes.Equal(content, b.content) {
		d.Sequence = max(b.last.Sequence+1, uint64(max(b.clock().Unix(), 0)))
	}
	if d.JSON, err = json.Marshal(document{Keys: keysJSON, RefreshHint: hint, Sequence: d.Sequence}); err != nil {
		return Document{}, fmt.Errorf("bundle: encode: %w", err)
	}
	b.last, b.content, b.x5, b.jwks = d, content, x5, bytes.Clone(jwks)
	return d, nil
}

// build encodes the authorities: X.509 first, in the source's order, then
// the JWT keys in the JWKS's order. JWT keys other than EC P-256 (ES256)
// are left out: JWT-SVIDs are ES256 only.
func (b *Bundle) build(x5 []*x509.Certificate, jwks []byte) (Document, []json.RawMessage, error) {
	d := Document{RefreshHint: b.hint, JWTAuthorities: map[string]crypto.PublicKey{}}
	keys := make([]json.RawMessage, 0, len(x5)+2)
	for _, c := range x5 {
		raw, err := jose.JSONWebKey{Key: c.PublicKey, Use: UseX509SVID, Certificates: []*x509.Certificate{c}}.MarshalJSON()
		if err != nil {
			return Document{}, nil, fmt.Errorf("bundle: encode X.509 authority %q: %w", c.Subject.String(), err)
		}
		keys = append(keys, raw)
		d.X509Authorities = append(d.X509Authorities, c)
	}
	jwtKeys := []json.RawMessage{}
	if len(jwks) > 0 {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(jwks, &set); err != nil {
			return Document{}, nil, fmt.Errorf("bundle: read JWT-SVID keys: %w", err)
		}
		for _, k := range set.Keys {
			if k.KeyID == "" || k.Algorithm != "ES256" || !k.IsPublic() {
				continue
			}
			raw, err := jose.JSONWebKey{Key: k.Key, KeyID: k.KeyID, Use: UseJWTSVID}.MarshalJSON()
			if err != nil {
				return Document{}, nil, fmt.Errorf("bundle: encode JWT authority %s: %w", k.KeyID, err)
			}
			keys = append(keys, raw)
			jwtKeys = append(jwtKeys, raw)
			d.JWTAuthorities[k.KeyID] = k.Key
		}
	}
	var err error
	if d.JWTJWKS, err = json.Marshal(struct {
		Keys []json.RawMessage `json:"keys"`
	}{jwtKeys}); err != nil {
		return Document{}, nil, fmt.Errorf("bundle: encode: %w", err)
	}
	return d, keys, nil
}

// sameCerts reports whether two lists hold the same certificates in the
// same order.
func sameCerts(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !bytes.Equal(a[i].Raw, b[i].Raw) {
			return false
		}
	}
	return true
}

// ETag is a strong entity tag of the document (RFC 9110 §8.8.3): its
// sequence and a digest of its JSON.
func (d Document) ETag() string {
	sum := sha256.Sum256(d.JSON)
	return `"` + strconv.FormatUint(d.Sequence, 10) + "-" + fmt.Sprintf("%x", sum[:8]) + `"`
}
