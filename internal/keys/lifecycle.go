package keys

import (
	"context"
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
	CreatedAt  time.Time
}

func infoOf(k store.SigningKey, now time.Time) KeyInfo {
	return KeyInfo{
		ID: k.ID, Algorithm: k.Algorithm, Purpose: k.Purpose, State: StateAt(k, now),
		PublishAt: k.PublishAt, ActivateAt: k.ActivateAt, RetireAt: k.RetireAt, RemoveAt: k.RemoveAt,
		CreatedAt: k.CreatedAt,
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
)

// Rotation triggers, recorded in the "trigger" detail.
const (
	TriggerInitial   = "initial"
	TriggerScheduled = "scheduled"
	TriggerManual    = "manual"
)

// Event is a key change to record in the audit trail.
type Event struct {
	Type     string // EventKeyCreated or EventKeyRotated
	Origin   Origin
	Trigger  string
	Holder   string   // the replica that made the change
	Key      KeyInfo  // the new key
	Previous *KeyInfo // the key it retires (key.rotated)
}

// Details returns the event's facts for the audit "details" object: ids,
// algorithm and times, never key material.
func (e Event) Details() map[string]any {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	d := map[string]any{
		"kid": e.Key.ID, "alg": e.Key.Algorithm, "purpose": e.Key.Purpose,
		"publish_at": ts(e.Key.PublishAt), "activate_at": ts(e.Key.ActivateAt),
		"trigger": e.Trigger, "replica": e.Holder,
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
