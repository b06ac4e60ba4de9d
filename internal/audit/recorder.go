package audit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// ErrInvalidEvent is returned (wrapped) by Append and Record for an event
// that cannot be recorded: an unknown family, outcome or decision, an empty
// type, a malformed id, details that do not encode as JSON, or a body larger
// than MaxBodySize.
var ErrInvalidEvent = errors.New("audit: invalid event")

// MaxBodySize bounds the canonical encoding of one event. Larger events are
// refused by the Recorder, so every stored event fits in an export line.
const MaxBodySize = 64 << 10

// RecorderParams configures a Recorder.
type RecorderParams struct {
	// Store is where Record runs its transactions. Required.
	Store store.Store
	// Checkpoints signs a checkpoint in the appending transaction whenever
	// the new sequence number is a multiple of its interval. Nil means no
	// count-based checkpoints.
	Checkpoints *Checkpointer
	// Clock stamps events without a time; default time.Now.
	Clock func() time.Time
	// Rand is the source of event ids; default crypto/rand.Reader.
	Rand io.Reader
	// Logger receives diagnostics (never event contents); default
	// slog.Default().
	Logger *slog.Logger
	// OnAppend, when set, is called in the appending transaction after
	// each event is appended, with the stored record and the event as
	// completed; an error fails the append (and so the transaction). It
	// keeps data derived from events, such as the SSF outbox (ADR 0026),
	// committed exactly with them.
	OnAppend func(ctx context.Context, tx store.Tx, rec store.AuditRecord, ev Event) error
}

// Recorder seals events into the hash chain. It is safe for concurrent use.
type Recorder struct {
	store  store.Store
	cp     *Checkpointer
	clock  func() time.Time
	rand   io.Reader
	logger *slog.Logger
	hook   func(ctx context.Context, tx store.Tx, rec store.AuditRecord, ev Event) error
}

// NewRecorder returns a Recorder. It fails only when p.Store is nil.
func NewRecorder(p RecorderParams) (*Recorder, error) {
	if p.Store == nil {
		return nil, errors.New("audit: recorder needs a store")
	}
	r := &Recorder{store: p.Store, cp: p.Checkpoints, clock: p.Clock, rand: p.Rand, logger: p.Logger, hook: p.OnAppend}
	if r.clock == nil {
		r.clock = time.Now
	}
	if r.rand == nil {
		r.rand = rand.Reader
	}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	return r, nil
}

// Append records ev inside tx, so the event commits if and only if the state
// change made in the same transaction commits.
//
// An empty ev.ID is replaced by a new evt_… id and a zero ev.Time by the
// Recorder's clock; the time is then converted to UTC and truncated to the
// microsecond (the precision of the canonical encoding and of every
// backend). The event is validated (ErrInvalidEvent), encoded canonically,
// sealed at the head of the chain and appended. When the new sequence number
// is a multiple of the Checkpointer's interval, a signed checkpoint of it is
// stored in the same transaction.
//
// Errors from the store are returned wrapped; a non-nil error means the
// caller must fail its transaction (returning the error from the Update
// function does that).
func (r *Recorder) Append(ctx context.Context, tx store.Tx, ev Event) (store.AuditRecord, error) {
	if ev.ID == "" {
		id, err := recordid.New(recordid.Event, r.clock(), r.rand)
		if err != nil {
			return store.AuditRecord{}, fmt.Errorf("audit: event id: %w", err)
		}
		ev.ID = id
	}
	if ev.Time.IsZero() {
		ev.Time = r.clock()
	}
	ev.Time = ev.Time.UTC().Truncate(time.Microsecond)
	if err := ev.Validate(); err != nil {
		return store.AuditRecord{}, err
	}
	body, err := ev.Canonical()
	if err != nil {
		return store.AuditRecord{}, err
	}
	if len(body) > MaxBodySize {
		return store.AuditRecord{}, fmt.Errorf("%w: encoded event is %d bytes, limit %d", ErrInvalidEvent, len(body), MaxBodySize)
	}
	rec, err := tx.AppendAudit(ctx, func(seq int64, prevHash []byte) (store.AuditRecord, error) {
		return Seal(ev, body, seq, prevHash), nil
	})
	if err != nil {
		return store.AuditRecord{}, fmt.Errorf("audit: append event: %w", err)
	}
	if r.hook != nil {
		if err := r.hook(ctx, tx, rec, ev); err != nil {
			return store.AuditRecord{}, fmt.Errorf("audit: after appending event %d: %w", rec.Seq, err)
		}
	}
	if r.cp != nil && rec.Seq%int64(r.cp.every) == 0 {
		if err := r.cp.put(ctx, tx, rec.Seq, rec.Hash); err != nil {
			return store.AuditRecord{}, err
		}
	}
	return rec, nil
}

// Record appends ev in its own store.Update transaction, for events that
// record no state change (a failed authentication, a denied request). When
// it returns nil the event is durable. See Append for how ev is completed
// and validated.
func (r *Recorder) Record(ctx context.Context, ev Event) (store.AuditRecord, error) {
	var (
		rec       store.AuditRecord
		appendErr error
	)
	err := r.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		rec, appendErr = r.Append(ctx, tx, ev)
		return appendErr
	})
	switch {
	case err == nil:
		return rec, nil
	case appendErr != nil && errors.Is(err, appendErr):
		return store.AuditRecord{}, err // already says "audit: …"
	default:
		return store.AuditRecord{}, fmt.Errorf("audit: record event: %w", err)
	}
}
