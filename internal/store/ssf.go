package store

import (
	"context"
	"time"
)

// SSF stream statuses (OpenID Shared Signals Framework 1.0 §8.1.2).
const (
	SSFStreamEnabled  = "enabled"
	SSFStreamPaused   = "paused"
	SSFStreamDisabled = "disabled"
)

// MaxSSFAcked bounds SSFStream.Acked: the acknowledgements a receiver
// may hold above its cursor (SETs it acknowledged while an earlier one
// stays unacknowledged).
const MaxSSFAcked = 1000

// SSFStream is one Shared Signals event stream of a receiver (ADR 0026).
//
// The stream reads the SSF outbox in sequence order. Cursor and Acked are
// its delivery state: every outbox event at or below Cursor is
// acknowledged (or was collected), and Acked lists, ascending, the
// sequence numbers above Cursor the receiver acknowledged out of order.
type SSFStream struct {
	ID string // ssf_…
	// ReceiverID is the agent that manages the stream with its own
	// access token; "" for a stream an administrator made.
	ReceiverID string
	// Audience is the SETs' aud (never empty).
	Audience []string
	// EventsRequested is what the receiver asked for; EventsDelivered
	// the event type URIs the stream delivers (requested ∩ supported).
	EventsRequested []string
	EventsDelivered []string
	// DeliveryMethod is the delivery method URI (urn:ietf:rfc:8936 for
	// poll, urn:ietf:rfc:8935 for push); EndpointURL is the receiver's
	// push endpoint, "" for poll.
	DeliveryMethod string
	EndpointURL    string
	Description    string
	Status         string // SSFStreamEnabled, SSFStreamPaused or SSFStreamDisabled
	StatusReason   string
	Cursor         int64
	Acked          []int64
	// LastVerificationAt is when the receiver last asked for a
	// verification event; zero when it never did.
	LastVerificationAt time.Time
	// AuthorizationSealed is the Authorization header value a push
	// stream's deliveries carry, sealed under the root key by the ssf
	// package (the store never sees it in clear); nil for none.
	AuthorizationSealed []byte
	// Push delivery state (RFC 8935 streams; zero for poll): PushFailures
	// counts the failed attempts since the last success, NextPushAt is
	// the earliest time of the next attempt (zero: at once),
	// LastPushError says why the last attempt failed or a SET was
	// refused ("" after a success), LastPushAt is when a SET was last
	// accepted.
	PushFailures  int
	NextPushAt    time.Time
	LastPushError string
	LastPushAt    time.Time
	CreatedAt     time.Time
	CreatedBy     string // actor id
	UpdatedAt     time.Time
	// Version starts at 1 and increments with every update
	// (compare-and-swap in UpdateSSFStream).
	Version int64
}

// SSFEvent is one event in the SSF outbox: what every stream delivers,
// or one stream only when StreamID is set (verification and
// stream-updated events). Seq is the sequence number of the audit event
// recorded in the same transaction, so the outbox's order is its commit
// order on every backend (the audit head is locked until commit).
type SSFEvent struct {
	Seq      int64
	StreamID string // "" for every stream
	Type     string // the event type URI
	Time     time.Time
	// Body is the JSON of the SET's claims beyond iss, aud, iat and jti
	// (sub_id, txn, events), as the ssf package encodes them.
	Body []byte
}

// SSFReader reads SSF streams and the outbox.
type SSFReader interface {
	// GetSSFStream returns ErrNotFound when no stream has the id.
	GetSSFStream(ctx context.Context, id string) (SSFStream, error)
	// ListSSFStreams returns the streams of receiverID ("" for every
	// stream, administrators' too) in id (creation) order.
	ListSSFStreams(ctx context.Context, receiverID string) ([]SSFStream, error)
	// CountSSFStreams counts the streams of receiverID ("" for every
	// stream).
	CountSSFStreams(ctx context.Context, receiverID string) (int64, error)
	// ListSSFEvents returns at most limit (1–1000) outbox events with a
	// sequence number above after that are for every stream or for
	// streamID, in sequence order.
	ListSSFEvents(ctx context.Context, streamID string, after int64, limit int) ([]SSFEvent, error)
	// SSFHead returns the highest sequence number in the outbox, 0 when
	// it is empty.
	SSFHead(ctx context.Context) (int64, error)
}

// SSFWriter changes SSF streams and appends to the outbox.
type SSFWriter interface {
	// CreateSSFStream stores s with Version 1. ErrAlreadyExists when the
	// id is taken; ErrInvalid when a required field (id, audience,
	// delivery method, status, times) is missing, Acked is longer than
	// MaxSSFAcked or PushFailures is negative.
	CreateSSFStream(ctx context.Context, s SSFStream) error
	// UpdateSSFStream replaces the stream with s.ID if its version is
	// still s.Version, and stores it with Version+1; it returns the
	// stored stream. ErrNotFound for an unknown id, ErrConflict when the
	// version moved, ErrInvalid as for CreateSSFStream. ID, ReceiverID,
	// CreatedAt and CreatedBy are kept from the stored stream.
	UpdateSSFStream(ctx context.Context, s SSFStream) (SSFStream, error)
	// DeleteSSFStream deletes the stream and the outbox events for it
	// alone; ErrNotFound for an unknown id.
	DeleteSSFStream(ctx context.Context, id string) error
	// AppendSSFEvent stores e. ErrAlreadyExists when e.Seq is taken;
	// ErrInvalid when Seq, Type, Time or Body is missing. An event for a
	// stream that does not exist is ErrInvalid.
	AppendSSFEvent(ctx context.Context, e SSFEvent) error
	// CollectSSFEvents deletes outbox events whose Time is before
	// before and reports how many went.
	CollectSSFEvents(ctx context.Context, before time.Time) (int64, error)
}
