package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// ssfStreamCols are the columns scanSSFStream reads, in the order
// CreateSSFStream writes them.
const ssfStreamCols = `id, receiver_id, audience, events_requested, events_delivered, delivery_method,
	endpoint_url, description, status, status_reason, cursor, acked, created_at, created_by, updated_at, last_verification_at,
	authorization_sealed, push_failures, next_push_at, last_push_error, last_push_at, version`

func scanSSFStream(s rowScanner) (store.SSFStream, error) {
	var st store.SSFStream
	if err := s.Scan(&st.ID, &st.ReceiverID, listCol{&st.Audience}, listCol{&st.EventsRequested},
		listCol{&st.EventsDelivered}, &st.DeliveryMethod, &st.EndpointURL, &st.Description, &st.Status,
		&st.StatusReason, &st.Cursor, seqListCol{&st.Acked}, timeCol{&st.CreatedAt}, &st.CreatedBy,
		timeCol{&st.UpdatedAt}, timeCol{&st.LastVerificationAt}, bytesCol{&st.AuthorizationSealed}, &st.PushFailures,
		timeCol{&st.NextPushAt}, &st.LastPushError, timeCol{&st.LastPushAt}, &st.Version); err != nil {
		return store.SSFStream{}, err
	}
	return st, nil
}

// ssfEventCols are the columns scanSSFEvent reads; stream_id is NULL for
// an event of every stream.
const ssfEventCols = `seq, COALESCE(stream_id, ''), type, time, body`

func scanSSFEvent(s rowScanner) (store.SSFEvent, error) {
	var e store.SSFEvent
	if err := s.Scan(&e.Seq, &e.StreamID, &e.Type, timeCol{&e.Time}, bytesCol{&e.Body}); err != nil {
		return store.SSFEvent{}, err
	}
	return e, nil
}

// seqListCol scans a column seqListArg wrote into a []int64, reading an
// empty list as nil, as listCol does.
type seqListCol struct{ l *[]int64 }

func (c seqListCol) Scan(src any) error {
	s, err := textOf(src, "a list of sequence numbers")
	if err != nil {
		return err
	}
	var l []int64
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return fmt.Errorf("decode list of sequence numbers: %w", err)
	}
	if len(l) == 0 {
		l = nil
	}
	*c.l = l
	return nil
}

// seqListArg encodes sequence numbers as a JSON array; nil and empty alike
// as [].
func seqListArg(l []int64) (string, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", fmt.Errorf("encode list of sequence numbers: %w", err)
	}
	return string(b), nil
}

// checkSSFStream enforces what the store requires of a stream.
func checkSSFStream(s store.SSFStream) error {
	switch {
	case s.ID == "" || len(s.Audience) == 0 || s.DeliveryMethod == "":
		return fmt.Errorf("%w: SSF stream id, audience and delivery method are required", store.ErrInvalid)
	case s.CreatedAt.IsZero() || s.UpdatedAt.IsZero():
		return fmt.Errorf("%w: SSF stream creation and update times are required", store.ErrInvalid)
	case len(s.Acked) > store.MaxSSFAcked:
		return fmt.Errorf("%w: SSF stream holds %d acknowledgements above its cursor, more than %d",
			store.ErrInvalid, len(s.Acked), store.MaxSSFAcked)
	case s.PushFailures < 0:
		return fmt.Errorf("%w: SSF stream push failures must not be negative", store.ErrInvalid)
	}
	switch s.Status {
	case store.SSFStreamEnabled, store.SSFStreamPaused, store.SSFStreamDisabled:
		return nil
	case "":
		return fmt.Errorf("%w: SSF stream status is required", store.ErrInvalid)
	}
	return fmt.Errorf("%w: unknown SSF stream status %q", store.ErrInvalid, s.Status)
}

// ssfStreamArgs are the arguments of the columns after id and receiver_id
// up to and including last_push_at, in ssfStreamCols' order ($3 … $21 of
// an INSERT).
func (d *Dialect) ssfStreamArgs(s store.SSFStream) ([]any, error) {
	audience, err := listArg(s.Audience)
	if err != nil {
		return nil, err
	}
	requested, err := listArg(s.EventsRequested)
	if err != nil {
		return nil, err
	}
	delivered, err := listArg(s.EventsDelivered)
	if err != nil {
		return nil, err
	}
	acked, err := seqListArg(s.Acked)
	if err != nil {
		return nil, err
	}
	return []any{audience, requested, delivered, s.DeliveryMethod, s.EndpointURL, s.Description, s.Status,
		s.StatusReason, s.Cursor, acked, d.timeArg(s.CreatedAt), s.CreatedBy, d.timeArg(s.UpdatedAt),
		d.timeArg(s.LastVerificationAt), bytesArg(s.AuthorizationSealed), s.PushFailures, d.timeArg(s.NextPushAt),
		s.LastPushError, d.timeArg(s.LastPushAt)}, nil
}

// GetSSFStream implements store.SSFReader.
func (r *reader) GetSSFStream(ctx context.Context, id string) (store.SSFStream, error) {
	s, err := r.getSSFStream(ctx, id, "")
	if err != nil {
		return store.SSFStream{}, fmt.Errorf("store: get SSF stream %q: %w", id, err)
	}
	return s, nil
}

func (r *reader) getSSFStream(ctx context.Context, id, suffix string) (store.SSFStream, error) {
	return getOne(ctx, r, scanSSFStream, `SELECT `+ssfStreamCols+` FROM ssf_streams WHERE id = $1`+suffix, id)
}

// ListSSFStreams implements store.SSFReader.
func (r *reader) ListSSFStreams(ctx context.Context, receiverID string) ([]store.SSFStream, error) {
	var (
		out []store.SSFStream
		err error
	)
	if receiverID == "" {
		out, err = queryAll(ctx, r, scanSSFStream, `SELECT `+ssfStreamCols+` FROM ssf_streams ORDER BY id`)
	} else {
		out, err = queryAll(ctx, r, scanSSFStream, `SELECT `+ssfStreamCols+` FROM ssf_streams
			WHERE receiver_id = $1 ORDER BY id`, receiverID)
	}
	if err != nil {
		return nil, fmt.Errorf("store: list SSF streams of receiver %q: %w", receiverID, err)
	}
	return out, nil
}

// CountSSFStreams implements store.SSFReader.
func (r *reader) CountSSFStreams(ctx context.Context, receiverID string) (int64, error) {
	scan := func(s rowScanner) (int64, error) {
		var n int64
		err := s.Scan(&n)
		return n, err
	}
	var (
		n   int64
		err error
	)
	if receiverID == "" {
		n, err = getOne(ctx, r, scan, `SELECT COUNT(*) FROM ssf_streams`)
	} else {
		n, err = getOne(ctx, r, scan, `SELECT COUNT(*) FROM ssf_streams WHERE receiver_id = $1`, receiverID)
	}
	if err != nil {
		return 0, fmt.Errorf("store: count SSF streams of receiver %q: %w", receiverID, err)
	}
	return n, nil
}

// maxSSFEvents bounds the limit of ListSSFEvents.
const maxSSFEvents = 1000

// ListSSFEvents implements store.SSFReader. With streamID "" it returns
// the events of every stream only.
func (r *reader) ListSSFEvents(ctx context.Context, streamID string, after int64, limit int) ([]store.SSFEvent, error) {
	if limit < 1 || limit > maxSSFEvents {
		return nil, fmt.Errorf("store: list SSF events of stream %q: %w: limit %d is not within 1–%d",
			streamID, store.ErrInvalid, limit, maxSSFEvents)
	}
	out, err := queryAll(ctx, r, scanSSFEvent, `SELECT `+ssfEventCols+` FROM ssf_events
		WHERE seq > $1 AND (stream_id IS NULL OR stream_id = $2) ORDER BY seq LIMIT $3`, after, streamID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list SSF events of stream %q: %w", streamID, err)
	}
	return out, nil
}

// SSFHead implements store.SSFReader.
func (r *reader) SSFHead(ctx context.Context) (int64, error) {
	seq, err := getOne(ctx, r, func(s rowScanner) (int64, error) {
		var n int64
		err := s.Scan(&n)
		return n, err
	}, `SELECT COALESCE(MAX(seq), 0) FROM ssf_events`)
	if err != nil {
		return 0, fmt.Errorf("store: SSF head: %w", err)
	}
	return seq, nil
}

// CreateSSFStream implements store.SSFWriter.
func (t *txn) CreateSSFStream(ctx context.Context, s store.SSFStream) error {
	err := t.write(ctx, true, func(ctx context.Context) error {
		if err := checkSSFStream(s); err != nil {
			return err
		}
		args, err := t.d.ssfStreamArgs(s)
		if err != nil {
			return err
		}
		_, err = t.q.ExecContext(ctx, `INSERT INTO ssf_streams (`+ssfStreamCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, 1)`,
			append([]any{s.ID, s.ReceiverID}, args...)...)
		return t.d.classify(err)
	})
	if err != nil {
		return fmt.Errorf("store: create SSF stream %q: %w", s.ID, err)
	}
	return nil
}

// UpdateSSFStream implements store.SSFWriter.
func (t *txn) UpdateSSFStream(ctx context.Context, s store.SSFStream) (store.SSFStream, error) {
	var out store.SSFStream
	err := t.write(ctx, false, func(ctx context.Context) error {
		old, err := t.getSSFStream(ctx, s.ID, t.d.ForUpdate)
		if err != nil {
			return err
		}
		if old.Version != s.Version {
			return fmt.Errorf("%w: the stream is at version %d, not %d", store.ErrConflict, old.Version, s.Version)
		}
		s.ReceiverID, s.CreatedAt, s.CreatedBy = old.ReceiverID, old.CreatedAt, old.CreatedBy
		if err := checkSSFStream(s); err != nil {
			return err
		}
		args, err := t.d.ssfStreamArgs(s)
		if err != nil {
			return err
		}
		// $1 id, $2 … $20 the columns from audience to last_push_at
		// (created_at and created_by are written back unchanged), $21 the new
		// version, $22 the old one.
		res, err := t.q.ExecContext(ctx, `UPDATE ssf_streams SET audience = $2, events_requested = $3,
			events_delivered = $4, delivery_method = $5, endpoint_url = $6, description = $7, status = $8,
			status_reason = $9, cursor = $10, acked = $11, created_at = $12, created_by = $13, updated_at = $14,
			last_verification_at = $15, authorization_sealed = $16, push_failures = $17, next_push_at = $18,
			last_push_error = $19, last_push_at = $20, version = $21 WHERE id = $1 AND version = $22`,
			append(append([]any{s.ID}, args...), old.Version+1, old.Version)...)
		if err := checkOne(t.d, res, err); err != nil {
			return err
		}
		out, err = t.getSSFStream(ctx, s.ID, "")
		return err
	})
	if err != nil {
		return store.SSFStream{}, fmt.Errorf("store: update SSF stream %q: %w", s.ID, err)
	}
	return out, nil
}

// DeleteSSFStream implements store.SSFWriter. The stream's own outbox
// events go with it (ON DELETE CASCADE).
func (t *txn) DeleteSSFStream(ctx context.Context, id string) error {
	err := t.write(ctx, true, func(ctx context.Context) error {
		res, err := t.q.ExecContext(ctx, `DELETE FROM ssf_streams WHERE id = $1`, id)
		return checkDeleted(t.d, res, err)
	})
	if err != nil {
		return fmt.Errorf("store: delete SSF stream %q: %w", id, err)
	}
	return nil
}

// AppendSSFEvent implements store.SSFWriter.
func (t *txn) AppendSSFEvent(ctx context.Context, e store.SSFEvent) error {
	err := t.write(ctx, true, func(ctx context.Context) error {
		if e.Seq <= 0 || e.Type == "" || e.Time.IsZero() || len(e.Body) == 0 {
			return fmt.Errorf("%w: SSF event sequence number, type, time and body are required", store.ErrInvalid)
		}
		_, err := t.q.ExecContext(ctx, `INSERT INTO ssf_events (seq, stream_id, type, time, body)
			VALUES ($1, $2, $3, $4, $5)`,
			e.Seq, nullIfEmpty(e.StreamID), e.Type, t.d.timeArg(e.Time), e.Body)
		err = t.d.classify(err)
		if e.StreamID != "" && errors.Is(err, store.ErrInvalid) {
			// Every column is set, so the violation is the stream's
			// foreign key.
			return fmt.Errorf("SSF stream %q does not exist: %w", e.StreamID, err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: append SSF event %d: %w", e.Seq, err)
	}
	return nil
}

// CollectSSFEvents implements store.SSFWriter. A zero before is
// ErrInvalid, as for CollectCredentials.
func (t *txn) CollectSSFEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := t.write(ctx, true, func(ctx context.Context) error {
		if before.IsZero() {
			return fmt.Errorf("%w: the collection time is required", store.ErrInvalid)
		}
		res, err := t.q.ExecContext(ctx, `DELETE FROM ssf_events WHERE time < $1`, t.d.timeArg(before))
		if err != nil {
			return t.d.classify(err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: collect SSF events: %w", err)
	}
	return n, nil
}
