package keys

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// KeyState is where a key is in its life at a given time.
type KeyState string

// Key states.
const (
	// StatePending: published in the JWKS, not yet signing.
	StatePending KeyState = "pending"
	// StateActive: the key that signs.
	StateActive KeyState = "active"
	// StateRetired: a newer key signs; still published until its tokens
	// have expired.
	StateRetired KeyState = "retired"
	// StateRemoved: no longer published.
	StateRemoved KeyState = "removed"
)

// StateAt derives the state of k at now.
func StateAt(k store.SigningKey, now time.Time) KeyState {
	switch {
	case !k.RemoveAt.IsZero() && !now.Before(k.RemoveAt):
		return StateRemoved
	case !k.RetireAt.IsZero() && !now.Before(k.RetireAt):
		return StateRetired
	case !now.Before(k.ActivateAt):
		return StateActive
	default:
		return StatePending
	}
}

// KeyInfo describes a signing key without any key material.
type KeyInfo struct {
	ID         string
	Algorithm  string
	Purpose    string
	State      KeyState
	PublishAt  time.Time
	ActivateAt time.Time
	RetireAt   time.Time // zero: the newest key
	RemoveAt   time.Time // zero: no removal scheduled
	// TaintedAt is when the key was found compromised (Manager.Taint);
	// zero: not tainted.
	TaintedAt time.Time
	// CertChain is the key's certificate chain (DER, its own first) when
	// the Manager has a Certifier; certificates are public.
	CertChain [][]byte
	CreatedAt time.Time
}

func infoOf(k store.SigningKey, now time.Time) KeyInfo {
	return KeyInfo{
		ID: k.ID, Algorithm: k.Algorithm, Purpose: k.Purpose, State: StateAt(k, now),
		PublishAt: k.PublishAt, ActivateAt: k.ActivateAt, RetireAt: k.RetireAt, RemoveAt: k.RemoveAt,
		TaintedAt: k.TaintedAt, CertChain: k.CertChain, CreatedAt: k.CreatedAt,
	}
}

// Origin says who asked for a key change, for its audit event. Transports
// fill it from the request (httpapi converts its audit.Origin).
type Origin struct {
	ActorType string // "admin" or "system"
	ActorID   string
	IP        string
	UserAgent string
	TraceID   string
}

// Audit event types of the key lifecycle (family "admin").
const (
	EventKeyCreated = "key.created" // the first key of a purpose
	EventKeyRotated = "key.rotated" // a successor key was created
	EventKeyTainted = "key.tainted" // a key was marked compromised
)

// Rotation triggers, recorded in the "trigger" detail.
const (
	TriggerInitial   = "initial"
	TriggerScheduled = "scheduled"
	TriggerManual    = "manual"
	// TriggerTaint: a successor created because the key that signed, or
	// would have, was tainted.
	TriggerTaint = "taint"
)

// Event is a key change to record in the audit trail.
type Event struct {
	Type     string // EventKeyCreated, EventKeyRotated or EventKeyTainted
	Origin   Origin
	Trigger  string
	Holder   string   // the replica that made the change
	Key      KeyInfo  // the new key (the tainted key for key.tainted)
	Previous *KeyInfo // the key it retires (key.rotated)
}

// Details returns the event's facts for the audit "details" object: ids,
// algorithm and times, and for a key with a certificate its SHA-256
// fingerprint and validity; never key material.
func (e Event) Details() map[string]any {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	d := map[string]any{
		"kid": e.Key.ID, "alg": e.Key.Algorithm, "purpose": e.Key.Purpose,
		"publish_at": ts(e.Key.PublishAt), "activate_at": ts(e.Key.ActivateAt),
		"trigger": e.Trigger, "replica": e.Holder,
	}
	if !e.Key.TaintedAt.IsZero() {
		d["tainted_at"] = ts(e.Key.TaintedAt)
		d["state"] = string(e.Key.State)
	}
	if len(e.Key.CertChain) > 0 {
		sum := sha256.Sum256(e.Key.CertChain[0])
		d["cert_sha256"] = hex.EncodeToString(sum[:])
		if c, err := x509.ParseCertificate(e.Key.CertChain[0]); err == nil {
			d["cert_not_before"], d["cert_not_after"] = ts(c.NotBefore), ts(c.NotAfter)
		}
	}
	if e.Previous != nil {
		d["retired_kid"] = e.Previous.ID
		d["retire_at"] = ts(e.Previous.RetireAt)
		d["remove_at"] = ts(e.Previous.RemoveAt)
	}
	return d
}

// Recorder appends the audit event of a key change in the transaction that
// makes it, so both commit or neither does. The server adapts the audit
// package's Recorder to it (audit imports keys, so keys cannot import
// audit).
type Recorder interface {
	RecordKeyEvent(ctx context.Context, tx store.Tx, ev Event) error
}
