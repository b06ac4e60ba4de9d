package ssf

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/store"
)

// Poll bounds (RFC 8936).
const (
	// MaxPollEvents is the most SETs one poll answer holds; more are
	// announced with moreAvailable.
	MaxPollEvents = 100
	// MaxAcks bounds the ack and setErrs members of one poll.
	MaxAcks = 1000
	// MaxPollWait is the longest a long poll (returnImmediately false)
	// is held before it answers with no SETs.
	MaxPollWait = 20 * time.Second
	// walkPages bounds the outbox pages one poll reads past events the
	// stream does not deliver.
	walkPages = 10
)

// PollRequest is an RFC 8936 §2.4 poll request.
type PollRequest struct {
	Ack               []string                   `json:"ack"`
	SetErrs           map[string]json.RawMessage `json:"setErrs"`
	MaxEvents         *int                       `json:"maxEvents"`
	ReturnImmediately bool                       `json:"returnImmediately"`
}

// PollResponse is an RFC 8936 §2.5 poll answer.
type PollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable,omitempty"`
}

// setJTI is the jti of the SET delivering outbox event seq on stream id:
// stable, so a SET delivered again has the same jti and one
// acknowledgement settles it.
func setJTI(id string, seq int64) string { return id + "." + strconv.FormatInt(seq, 10) }

// ackedSeq is the outbox sequence number a jti of stream id names.
func ackedSeq(id, jti string) (int64, bool) {
	rest, ok := strings.CutPrefix(jti, id+".")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return n, err == nil && n > 0 && strconv.FormatInt(n, 10) == rest
}

// delivers reports whether st delivers e now: its own events always
// (verification, stream-updated), others when enabled and of a type in
// events_delivered.
func delivers(st store.SSFStream, e store.SSFEvent) bool {
	if e.StreamID != "" {
		return true
	}
	return st.Status == store.SSFStreamEnabled && slices.Contains(st.EventsDelivered, e.Type)
}

// settled reports whether the stream is done with e without delivering
// it: acknowledged, or an event it will never deliver (another type, or
// one that happened while it was disabled). Held events of a paused
// stream are not settled.
func settled(st store.SSFStream, e store.SSFEvent, acked map[int64]bool) bool {
	if acked[e.Seq] {
		return true
	}
	if e.StreamID != "" {
		return false
	}
	switch st.Status {
	case store.SSFStreamDisabled:
		return true
	case store.SSFStreamPaused:
		return false
	default:
		return !slices.Contains(st.EventsDelivered, e.Type)
	}
}

// Poll answers an RFC 8936 poll on one of the caller's streams: it
// settles the acknowledged SETs (and those in setErrs, which the
// receiver could not use and will not get again), then returns the
// oldest unacknowledged SETs, waiting up to MaxPollWait for one unless
// returnImmediately. Unacknowledged SETs are delivered again by later
// polls, with the same jti.
func (s *Service) Poll(ctx context.Context, o audit.Origin, id string, req PollRequest) (PollResponse, error) {
	max := MaxPollEvents
	if req.MaxEvents != nil {
		if *req.MaxEvents < 0 {
			return PollResponse{}, invalid("maxEvents", "not negative")
		}
		max = min(*req.MaxEvents, MaxPollEvents)
	}
	if len(req.Ack)+len(req.SetErrs) > MaxAcks {
		return PollResponse{}, invalid("ack", "at most %d acknowledgements and errors in one poll", MaxAcks)
	}
	var acks []int64
	for _, jti := range slices.Concat(req.Ack, slices.Collect(maps.Keys(req.SetErrs))) {
		if n, ok := ackedSeq(id, jti); ok {
			acks = append(acks, n) // another stream's or a foreign jti settles nothing
		}
	}
	wait := !req.ReturnImmediately && max > 0
	deadline := time.Now().Add(MaxPollWait)
	for {
		evs, aud, more, err := s.settleAndRead(ctx, o, id, acks, max, pollOnly)
		if err != nil {
			return PollResponse{}, err
		}
		acks = nil
		if len(evs) > 0 || !wait || !time.Now().Before(deadline) {
			return s.sign(id, aud, evs, more)
		}
		t := time.NewTimer(min(s.p.PollInterval, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return PollResponse{Sets: map[string]string{}}, nil
		case <-t.C:
		}
	}
}

// pollOnly is the settleAndRead hook of a poll: it refuses a stream that
// delivers by push.
func pollOnly(st *store.SSFStream) (changed, read bool, err error) {
	if st.DeliveryMethod != DeliveryPoll {
		return false, false, invalid("stream_id", "the stream delivers by push (%s), not poll", DeliveryPush)
	}
	return false, true, nil
}

// settleAndRead applies acks to the stream, moves its cursor past every
// settled event at its head, and returns up to max events to deliver
// and whether more wait. hook sees the stream first: it may change it
// (changed), refuse the call, or ask for no events (read false: acks are
// still applied). The stream is written only when its delivery state or
// hook changed it.
func (s *Service) settleAndRead(ctx context.Context, o audit.Origin, id string, acks []int64, max int,
	hook func(*store.SSFStream) (changed, read bool, err error)) ([]store.SSFEvent, []string, bool, error) {
	var (
		out  []store.SSFEvent
		aud  []string
		more bool
	)
	err := s.p.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		out, more = nil, false
		st, err := get(ctx, tx, o, id)
		if err != nil {
			return err
		}
		changed, read, err := hook(&st)
		if err != nil {
			return err
		}
		if !read {
			max = 0
		}
		aud = st.Audience
		acked := make(map[int64]bool, len(st.Acked)+len(acks))
		for _, n := range st.Acked {
			acked[n] = true
		}
		for _, n := range acks {
			if n > st.Cursor {
				acked[n] = true
			}
		}
		cursor, head, complete := st.Cursor, true, false
		var kept []int64
		after := st.Cursor
	walk:
		for range walkPages {
			evs, err := tx.ListSSFEvents(ctx, id, after, 1000)
			if err != nil {
				return fmt.Errorf("ssf: read outbox: %w", err)
			}
			for _, e := range evs {
				after = e.Seq
				switch {
				case head && settled(st, e, acked):
					cursor = e.Seq
				case acked[e.Seq]:
					head = false
					kept = append(kept, e.Seq)
				default:
					head = false
					if !delivers(st, e) {
						continue
					}
					if len(out) == max {
						more = true
						break walk
					}
					out = append(out, e)
				}
			}
			if len(evs) < 1000 {
				complete = true
				break
			}
		}
		// Acknowledgements of events past the pages read stay recorded;
		// past the outbox's end they name no event and are dropped.
		for n := range acked {
			if n > after && !complete {
				kept = append(kept, n)
			}
		}
		slices.Sort(kept)
		kept = slices.Compact(kept)
		if len(kept) > store.MaxSSFAcked {
			return invalid("ack", "acknowledge the earlier SETs first: at most %d may wait behind an unacknowledged one", store.MaxSSFAcked)
		}
		if !changed && cursor == st.Cursor && slices.Equal(kept, st.Acked) {
			return nil
		}
		st.Cursor, st.Acked = cursor, kept
		if _, err := tx.UpdateSSFStream(ctx, st); err != nil {
			return fmt.Errorf("ssf: update stream: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, false, err
	}
	return out, aud, more, nil
}

// sign makes the SETs of evs for stream id.
func (s *Service) sign(id string, aud []string, evs []store.SSFEvent, more bool) (PollResponse, error) {
	resp := PollResponse{Sets: make(map[string]string, len(evs)), MoreAvailable: more}
	for _, e := range evs {
		jti, set, err := s.signOne(id, aud, e)
		if err != nil {
			return PollResponse{}, err
		}
		resp.Sets[jti] = set
	}
	return resp, nil
}

// signOne makes the SET delivering e on stream id and returns its jti. A
// SET's iat is its event's time, so a SET delivered again is the same
// SET.
func (s *Service) signOne(id string, aud []string, e store.SSFEvent) (jti, set string, err error) {
	var b struct {
		SubID  json.RawMessage `json:"sub_id"`
		Txn    string          `json:"txn"`
		Events json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(e.Body, &b); err != nil {
		return "", "", fmt.Errorf("ssf: outbox event %d: %w", e.Seq, err)
	}
	jti = setJTI(id, e.Seq)
	set, err = s.p.Signer.IssueSET(credential.SETParams{Audience: aud, JTI: jti, IssuedAt: e.Time,
		SubID: b.SubID, Txn: b.Txn, Events: b.Events})
	if err != nil {
		return "", "", fmt.Errorf("ssf: sign SET: %w", err)
	}
	return jti, set, nil
}

// CollectLease names the store lease under which one replica collects
// the outbox.
const CollectLease = "ssf-collect"

// Collect deletes outbox events older than Retention, under a lease held
// by holder so that one replica of several does it.
func (s *Service) Collect(ctx context.Context, holder string) (int64, error) {
	now := s.now()
	var n int64
	err := s.p.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.AcquireLease(ctx, CollectLease, holder, now, now.Add(time.Minute))
		if err != nil || !ok {
			return err
		}
		n, err = tx.CollectSSFEvents(ctx, now.Add(-Retention))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("ssf: collect outbox: %w", err)
	}
	return n, nil
}
