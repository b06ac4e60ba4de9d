package ssf

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Delivery method URIs (SSF 1.0 §6.1.1).
const (
	DeliveryPoll = "urn:ietf:rfc:8936"
	DeliveryPush = "urn:ietf:rfc:8935"
)

// Audit event types of stream management (family admin).
const (
	EventStreamCreated         = "ssf.stream.created"
	EventStreamChanged         = "ssf.stream.updated"
	EventStreamDeleted         = "ssf.stream.deleted"
	EventStreamStatusChanged   = "ssf.stream.status_changed"
	EventVerificationRequested = "ssf.stream.verification_requested"
)

// Limits.
const (
	// MaxStreamsPerReceiver bounds the streams one receiver agent keeps.
	MaxStreamsPerReceiver = 10
	// MaxStreams bounds every stream, administrators' included.
	MaxStreams = 1000
	// MaxDescription bounds a stream's description, in bytes.
	MaxDescription = 256
	// MaxState bounds a verification request's state, in bytes.
	MaxState = 256
	// MinVerificationInterval is the seconds a receiver waits between
	// two verification requests on one stream.
	MinVerificationInterval = 10
	// Retention is how long the outbox keeps an event: a stream not
	// polled for longer misses what it held.
	Retention = 7 * 24 * time.Hour
)

// Errors, besides *fault.ValidationError (400) and the identity
// sentinels the admin API maps.
var (
	// ErrInvalid is the kind of every ssf validation error.
	ErrInvalid = errors.New("ssf: invalid request")
	// ErrTooSoon means a verification came within MinVerificationInterval
	// of the stream's previous one (HTTP 429).
	ErrTooSoon = errors.New("ssf: verification requested too soon")
)

func invalid(field, format string, args ...any) *fault.ValidationError {
	return fault.Invalid(ErrInvalid, "ssf", field, format, args...)
}

// SETSigner signs Security Event Tokens. *credential.Issuer implements it.
type SETSigner interface {
	IssueSET(p credential.SETParams) (string, error)
}

// Sealer encrypts a push stream's authorization header at rest.
// *keys.RootKey implements it.
type Sealer interface {
	Seal(plaintext, additionalData []byte) ([]byte, error)
	Open(sealed, additionalData []byte) ([]byte, error)
}

// Params configures a Service.
type Params struct {
	Store    store.Store
	Recorder *audit.Recorder
	Signer   SETSigner
	// Issuer is the transmitter's issuer identifier (the SETs' iss).
	Issuer string
	// Clock defaults to time.Now.
	Clock func() time.Time
	// Rand is the source of stream ids; default crypto/rand.Reader.
	Rand io.Reader
	// PollInterval is how often a long poll reads the outbox while it
	// waits; default 500 ms.
	PollInterval time.Duration
	// Sealer seals push streams' authorization headers. Without it push
	// delivery (RFC 8935) is refused.
	Sealer Sealer
	// PushAllowedHosts are the hosts a receiver agent may name in a push
	// stream's endpoint_url: "host" or "*.domain" (any subdomain), matched
	// case-insensitively, without port. Administrators may name any host.
	// Empty: receivers may not configure push delivery.
	PushAllowedHosts []string
	// PushClient sends push deliveries; default: a client with a 10 s
	// timeout that follows no redirect.
	PushClient *http.Client
	// PushInterval is how often RunPush looks for SETs to push; default 1 s.
	PushInterval time.Duration
	// Logger logs push failures; default: discard.
	Logger *slog.Logger
	// Registerer takes the push delivery metrics (agentid_ssf_push_*,
	// docs/ssf.md); nil: none.
	Registerer prometheus.Registerer
}

// Service manages streams and delivers their events. Safe for concurrent
// use.
type Service struct {
	p Params
	m *pushMetrics // nil without a Registerer
}

// New returns a Service.
func New(p Params) (*Service, error) {
	if p.Store == nil || p.Recorder == nil || p.Signer == nil || p.Issuer == "" {
		return nil, errors.New("ssf: store, recorder, signer and issuer are required")
	}
	if p.Clock == nil {
		p.Clock = time.Now
	}
	if p.Rand == nil {
		p.Rand = rand.Reader
	}
	if p.PollInterval <= 0 {
		p.PollInterval = 500 * time.Millisecond
	}
	if p.PushClient == nil {
		p.PushClient = &http.Client{Timeout: pushTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if p.PushInterval <= 0 {
		p.PushInterval = time.Second
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	for _, h := range p.PushAllowedHosts {
		if name := strings.TrimPrefix(h, "*."); name == "" || strings.ContainsAny(name, "/:@ *[]") {
			return nil, fmt.Errorf("ssf: push allowed host %q: a host name or *.domain, without scheme or port", h)
		}
	}
	s := &Service{p: p}
	if p.Registerer != nil {
		var err error
		if s.m, err = newPushMetrics(p.Registerer, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Service) now() time.Time { return s.p.Clock().UTC().Truncate(time.Microsecond) }

// Delivery is a stream's delivery (SSF 1.0 §8.1.1).
type Delivery struct {
	Method      string `json:"method"`
	EndpointURL string `json:"endpoint_url,omitempty"`
	// AuthorizationHeader is what a push delivery's Authorization header
	// carries (SSF 1.0 §8.1.1, receiver-supplied). It is accepted on
	// create and update, sealed at rest, and never returned.
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

// PushState is how a push stream's delivery fares (an agentid extension
// of the stream configuration; absent for poll streams).
type PushState struct {
	// Failures counts the failed attempts since the last success.
	Failures int `json:"failures"`
	// LastError is why the last attempt failed, or why the receiver
	// refused the last SET it refused.
	LastError string `json:"last_error,omitempty"`
	// NextAttemptAt is when the next attempt is due after a failure.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// LastDeliveredAt is when the receiver last accepted a SET.
	LastDeliveredAt *time.Time `json:"last_delivered_at,omitempty"`
	// AuthorizationHeader reports whether deliveries carry one.
	AuthorizationHeader bool `json:"authorization_header"`
}

// Stream is a stream's configuration as SSF 1.0 §8.1.1 shows it.
type Stream struct {
	StreamID                string              `json:"stream_id"`
	Iss                     string              `json:"iss"`
	Aud                     credential.Audience `json:"aud"`
	EventsSupported         []string            `json:"events_supported"`
	EventsRequested         []string            `json:"events_requested"`
	EventsDelivered         []string            `json:"events_delivered"`
	Delivery                Delivery            `json:"delivery"`
	MinVerificationInterval int                 `json:"min_verification_interval"`
	Description             string              `json:"description,omitempty"`
	// PushState is set for push streams.
	PushState *PushState `json:"push_state,omitempty"`
}

// StreamRequest is what a receiver may set on a stream. Pointers tell an
// absent member from an empty one (PATCH keeps absent members).
type StreamRequest struct {
	EventsRequested *[]string `json:"events_requested"`
	Delivery        *Delivery `json:"delivery"`
	Description     *string   `json:"description"`
	// Aud is honoured for an administrator's stream only (a receiver's
	// audience is its client_id).
	Aud *credential.Audience `json:"aud"`
	// StreamID names the stream in PATCH and PUT bodies.
	StreamID string `json:"stream_id"`
	// Transmitter-supplied members a receiver may send back on PATCH and
	// PUT: each must equal the stream's (SSF 1.0 §8.1.1.3).
	Iss                     *string   `json:"iss"`
	EventsSupported         *[]string `json:"events_supported"`
	EventsDelivered         *[]string `json:"events_delivered"`
	MinVerificationInterval *int      `json:"min_verification_interval"`
}

// checkEchoed refuses transmitter-supplied members of an update that
// differ from the stream's current values; absent ones are ignored.
func (s *Service) checkEchoed(st store.SSFStream, req StreamRequest) error {
	cur := s.view(st)
	switch {
	case req.Iss != nil && *req.Iss != cur.Iss:
		return invalid("iss", "is the transmitter's and cannot change")
	case req.Aud != nil && !slices.Equal(*req.Aud, cur.Aud):
		return invalid("aud", "cannot change")
	case req.EventsSupported != nil && !slices.Equal(*req.EventsSupported, cur.EventsSupported):
		return invalid("events_supported", "is the transmitter's and cannot change")
	case req.EventsDelivered != nil && !slices.Equal(*req.EventsDelivered, cur.EventsDelivered):
		return invalid("events_delivered", "does not match the stream's before this update")
	case req.MinVerificationInterval != nil && *req.MinVerificationInterval != cur.MinVerificationInterval:
		return invalid("min_verification_interval", "is the transmitter's and cannot change")
	}
	return nil
}

// Status is a stream's status (SSF 1.0 §8.1.2).
type Status struct {
	StreamID string `json:"stream_id"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// receiver is the stream owner a caller acts as: the agent of an access
// token, or "" with all rights for an administrator.
func receiver(o audit.Origin) (id string, isAdmin bool) {
	if o.Actor.Type == audit.ActorAgent {
		return o.Actor.ID, false
	}
	return "", true
}

// PollPath is the poll endpoint of a stream, under the issuer.
func PollPath(streamID string) string { return "/ssf/poll/" + streamID }

func (s *Service) view(st store.SSFStream) Stream {
	d := Delivery{Method: st.DeliveryMethod, EndpointURL: st.EndpointURL}
	if st.DeliveryMethod == DeliveryPoll {
		d.EndpointURL = s.p.Issuer + PollPath(st.ID)
	}
	v := Stream{
		StreamID: st.ID, Iss: s.p.Issuer, Aud: credential.Audience(st.Audience),
		EventsSupported: Supported(), EventsRequested: nonNil(st.EventsRequested),
		EventsDelivered: nonNil(st.EventsDelivered), Delivery: d,
		MinVerificationInterval: MinVerificationInterval, Description: st.Description,
	}
	if st.DeliveryMethod == DeliveryPush {
		v.PushState = &PushState{Failures: st.PushFailures, LastError: st.LastPushError,
			NextAttemptAt: timeOrNil(st.NextPushAt), LastDeliveredAt: timeOrNil(st.LastPushAt),
			AuthorizationHeader: len(st.AuthorizationSealed) > 0}
	}
	return v
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// get reads a stream the caller may see: a receiver sees its own only
// (another's is not found, so ids do not leak).
func get(ctx context.Context, r store.Reader, o audit.Origin, id string) (store.SSFStream, error) {
	if recordid.Valid(recordid.SSFStream, id) != nil {
		return store.SSFStream{}, invalid("stream_id", "not a stream id (ssf_…)")
	}
	st, err := r.GetSSFStream(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.SSFStream{}, fmt.Errorf("ssf: stream %q: %w", id, identity.ErrNotFound)
	case err != nil:
		return store.SSFStream{}, fmt.Errorf("ssf: read stream: %w", err)
	}
	if rid, isAdmin := receiver(o); !isAdmin && st.ReceiverID != rid {
		return store.SSFStream{}, fmt.Errorf("ssf: stream %q: %w", id, identity.ErrNotFound)
	}
	return st, nil
}

// apply sets the fields of req on st (absent members keep st's values
// when patch, take their defaults otherwise).
func (s *Service) apply(st *store.SSFStream, req StreamRequest, isAdmin, patch, patchOrPut bool) error {
	if req.Delivery != nil || !patch {
		d := Delivery{Method: DeliveryPoll}
		if req.Delivery != nil {
			d = *req.Delivery
		}
		switch d.Method {
		case DeliveryPoll, "":
			// endpoint_url is the transmitter's for poll: what the
			// receiver sends is ignored (SSF 1.0 §8.1.1).
			if d.AuthorizationHeader != "" {
				return invalid("delivery.authorization_header", "is for push delivery only")
			}
			st.DeliveryMethod, st.EndpointURL, st.AuthorizationSealed = DeliveryPoll, "", nil
			st.PushFailures, st.NextPushAt, st.LastPushError, st.LastPushAt = 0, time.Time{}, "", time.Time{}
		case DeliveryPush:
			if err := s.applyPush(st, d, isAdmin); err != nil {
				return err
			}
		default:
			return invalid("delivery.method", "unknown delivery method; supported: %s, %s", DeliveryPoll, DeliveryPush)
		}
	}
	if req.EventsRequested != nil || !patch {
		var ev []string
		if req.EventsRequested != nil {
			ev = *req.EventsRequested
		}
		if len(ev) > 64 {
			return invalid("events_requested", "at most 64 event types")
		}
		req := []string{}
		for i, e := range ev {
			if e == "" || len(e) > 256 {
				return invalid(fmt.Sprintf("events_requested[%d]", i), "an event type URI of 1 to 256 bytes")
			}
			if !slices.Contains(req, e) {
				req = append(req, e)
			}
		}
		st.EventsRequested = req
		st.EventsDelivered = []string{}
		for _, e := range Supported() {
			if slices.Contains(req, e) {
				st.EventsDelivered = append(st.EventsDelivered, e)
			}
		}
	}
	if req.Description != nil || !patch {
		d := ""
		if req.Description != nil {
			d = *req.Description
		}
		if len(d) > MaxDescription || strings.ContainsFunc(d, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return invalid("description", "at most %d bytes without control characters", MaxDescription)
		}
		st.Description = d
	}
	if isAdmin && req.Aud != nil && !patchOrPut {
		if len(*req.Aud) == 0 || len(*req.Aud) > 8 {
			return invalid("aud", "one to 8 audience values")
		}
		for i, a := range *req.Aud {
			if a == "" || len(a) > 256 {
				return invalid(fmt.Sprintf("aud[%d]", i), "an audience of 1 to 256 bytes")
			}
		}
		st.Audience = slices.Clone(*req.Aud)
	}
	return nil
}

// streamEvent is the audit event of a change to st.
func streamEvent(o audit.Origin, typ string, st store.SSFStream, now time.Time, extra map[string]any) audit.Event {
	ev := o.Event(audit.Admin, typ)
	ev.Time = now
	ev.Details = map[string]any{
		"stream_id":        st.ID,
		"receiver_id":      st.ReceiverID,
		"delivery_method":  st.DeliveryMethod,
		"events_delivered": st.EventsDelivered,
		"status":           st.Status,
		"version":          st.Version,
	}
	if st.DeliveryMethod == DeliveryPush {
		ev.Details["endpoint_url"] = st.EndpointURL
		ev.Details["authorization_header"] = len(st.AuthorizationSealed) > 0 // whether set, never the value
	}
	for k, v := range extra {
		ev.Details[k] = v
	}
	return ev
}

// CreateStream makes a stream for the caller (SSF 1.0 §8.1.1.1): a
// receiver's audience is its client_id, an administrator's the aud it
// gives. The stream starts enabled, at the outbox's head: it delivers
// what happens from now on.
func (s *Service) CreateStream(ctx context.Context, o audit.Origin, req StreamRequest) (Stream, error) {
	rid, isAdmin := receiver(o)
	now := s.now()
	id, err := recordid.New(recordid.SSFStream, now, s.p.Rand)
	if err != nil {
		return Stream{}, fmt.Errorf("ssf: stream id: %w", err)
	}
	st := store.SSFStream{ID: id, ReceiverID: rid, Status: store.SSFStreamEnabled, CreatedAt: now,
		CreatedBy: o.Actor.ID, UpdatedAt: now, Version: 1}
	if !isAdmin {
		st.Audience = []string{rid}
	}
	if err := s.apply(&st, req, isAdmin, false, false); err != nil {
		return Stream{}, err
	}
	if len(st.Audience) == 0 {
		return Stream{}, invalid("aud", "an administrator's stream needs the receiver's audience (aud)")
	}
	err = s.p.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		n, err := tx.CountSSFStreams(ctx, rid)
		if err != nil {
			return fmt.Errorf("ssf: count streams: %w", err)
		}
		all := n
		if !isAdmin {
			if all, err = tx.CountSSFStreams(ctx, ""); err != nil {
				return fmt.Errorf("ssf: count streams: %w", err)
			}
		}
		switch {
		case !isAdmin && n >= MaxStreamsPerReceiver:
			return fmt.Errorf("%w: a receiver keeps at most %d streams", identity.ErrLimitExceeded, MaxStreamsPerReceiver)
		case all >= MaxStreams:
			return fmt.Errorf("%w: at most %d streams", identity.ErrLimitExceeded, MaxStreams)
		}
		if st.Cursor, err = tx.SSFHead(ctx); err != nil {
			return fmt.Errorf("ssf: outbox head: %w", err)
		}
		if err := tx.CreateSSFStream(ctx, st); err != nil {
			return fmt.Errorf("ssf: create stream: %w", err)
		}
		_, err = s.p.Recorder.Append(ctx, tx, streamEvent(o, EventStreamCreated, st, now, nil))
		return err
	})
	if err != nil {
		return Stream{}, err
	}
	return s.view(st), nil
}

// GetStream returns one of the caller's streams.
func (s *Service) GetStream(ctx context.Context, o audit.Origin, id string) (Stream, error) {
	st, err := get(ctx, s.p.Store, o, id)
	if err != nil {
		return Stream{}, err
	}
	return s.view(st), nil
}

// ListStreams returns the caller's streams (an administrator's: every
// stream), in creation order.
func (s *Service) ListStreams(ctx context.Context, o audit.Origin) ([]Stream, error) {
	rid, _ := receiver(o)
	sts, err := s.p.Store.ListSSFStreams(ctx, rid)
	if err != nil {
		return nil, fmt.Errorf("ssf: list streams: %w", err)
	}
	out := make([]Stream, 0, len(sts))
	for _, st := range sts {
		out = append(out, s.view(st))
	}
	return out, nil
}

// UpdateStream changes a stream's receiver-supplied members (SSF 1.0
// §8.1.1.3 PATCH when patch, §8.1.1.4 PUT otherwise).
func (s *Service) UpdateStream(ctx context.Context, o audit.Origin, req StreamRequest, patch bool) (Stream, error) {
	_, isAdmin := receiver(o)
	now := s.now()
	var out store.SSFStream
	err := s.update(ctx, o, req.StreamID, func(st *store.SSFStream) error {
		if err := s.checkEchoed(*st, req); err != nil {
			return err
		}
		if err := s.apply(st, req, isAdmin, patch, true); err != nil {
			return err
		}
		st.UpdatedAt = now
		return nil
	}, func(ctx context.Context, tx store.Tx, st store.SSFStream) error {
		out = st
		_, err := s.p.Recorder.Append(ctx, tx, streamEvent(o, EventStreamChanged, st, now, nil))
		return err
	})
	if err != nil {
		return Stream{}, err
	}
	return s.view(out), nil
}

// update reads the caller's stream id, changes it with change and
// stores it, then calls after in the same transaction with the stored
// stream.
func (s *Service) update(ctx context.Context, o audit.Origin, id string, change func(*store.SSFStream) error,
	after func(ctx context.Context, tx store.Tx, st store.SSFStream) error) error {
	return s.p.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		st, err := get(ctx, tx, o, id)
		if err != nil {
			return err
		}
		if err := change(&st); err != nil {
			return err
		}
		stored, err := tx.UpdateSSFStream(ctx, st)
		if err != nil {
			return fmt.Errorf("ssf: update stream: %w", err)
		}
		return after(ctx, tx, stored)
	})
}

// DeleteStream deletes one of the caller's streams (SSF 1.0 §8.1.1.5).
func (s *Service) DeleteStream(ctx context.Context, o audit.Origin, id string) error {
	now := s.now()
	return s.p.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		st, err := get(ctx, tx, o, id)
		if err != nil {
			return err
		}
		if err := tx.DeleteSSFStream(ctx, id); err != nil {
			return fmt.Errorf("ssf: delete stream: %w", err)
		}
		_, err = s.p.Recorder.Append(ctx, tx, streamEvent(o, EventStreamDeleted, st, now, nil))
		return err
	})
}

// GetStatus returns a stream's status (SSF 1.0 §8.1.2.1).
func (s *Service) GetStatus(ctx context.Context, o audit.Origin, id string) (Status, error) {
	st, err := get(ctx, s.p.Store, o, id)
	if err != nil {
		return Status{}, err
	}
	return Status{StreamID: st.ID, Status: st.Status, Reason: st.StatusReason}, nil
}

// SetStatus changes a stream's status (SSF 1.0 §8.1.2.2). Events that
// happen while it is paused are held and delivered when it is enabled
// again; those that happen while it is disabled are not: enabling a
// disabled stream starts it at the outbox's head. A change of status is
// also a stream-updated event on the stream.
func (s *Service) SetStatus(ctx context.Context, o audit.Origin, req Status) (Status, error) {
	switch req.Status {
	case store.SSFStreamEnabled, store.SSFStreamPaused, store.SSFStreamDisabled:
	default:
		return Status{}, invalid("status", "one of enabled, paused and disabled")
	}
	if len(req.Reason) > MaxDescription || strings.ContainsFunc(req.Reason, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return Status{}, invalid("reason", "at most %d bytes without control characters", MaxDescription)
	}
	now := s.now()
	var out store.SSFStream
	var from string
	var changed bool
	err := s.update(ctx, o, req.StreamID, func(st *store.SSFStream) error {
		from = st.Status
		changed = st.Status != req.Status || st.StatusReason != req.Reason
		st.Status, st.StatusReason, st.UpdatedAt = req.Status, req.Reason, now
		return nil
	}, func(ctx context.Context, tx store.Tx, st store.SSFStream) error {
		out = st
		if !changed {
			return nil
		}
		if from == store.SSFStreamDisabled {
			head, err := tx.SSFHead(ctx)
			if err != nil {
				return fmt.Errorf("ssf: outbox head: %w", err)
			}
			st.Cursor, st.Acked = head, nil
			if out, err = tx.UpdateSSFStream(ctx, st); err != nil {
				return fmt.Errorf("ssf: update stream: %w", err)
			}
		}
		rec, err := s.p.Recorder.Append(ctx, tx, streamEvent(o, EventStreamStatusChanged, out, now,
			map[string]any{"from": from, "reason": req.Reason}))
		if err != nil {
			return err
		}
		members := map[string]any{"status": req.Status}
		if req.Reason != "" {
			members["reason"] = req.Reason
		}
		return appendStreamEvent(ctx, tx, rec, st.ID, EventStreamUpdated, members)
	})
	if err != nil {
		return Status{}, err
	}
	return Status{StreamID: out.ID, Status: out.Status, Reason: out.StatusReason}, nil
}

// appendStreamEvent stores an event for stream id alone, keyed by the
// audit record of the same transaction. Its sub_id is the stream
// (SSF 1.0 §8.1.4.1, §8.1.5: format opaque, the stream id).
func appendStreamEvent(ctx context.Context, tx store.Tx, rec store.AuditRecord, id, typ string, members map[string]any) error {
	raw, err := json.Marshal(body{SubID: &Subject{Format: "opaque", ID: id}, Events: map[string]map[string]any{typ: members}})
	if err != nil {
		return fmt.Errorf("ssf: encode event: %w", err)
	}
	if err := tx.AppendSSFEvent(ctx, store.SSFEvent{Seq: rec.Seq, StreamID: id, Type: typ, Time: rec.Time, Body: raw}); err != nil {
		return fmt.Errorf("ssf: outbox: %w", err)
	}
	return nil
}

// Verify queues a verification event on the stream (SSF 1.0 §8.1.4.2),
// delivered whatever the stream's status. A second request within
// MinVerificationInterval seconds is ErrTooSoon.
func (s *Service) Verify(ctx context.Context, o audit.Origin, id, state string) error {
	if len(state) > MaxState || strings.ContainsFunc(state, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalid("state", "at most %d bytes without control characters", MaxState)
	}
	now := s.now()
	return s.update(ctx, o, id, func(st *store.SSFStream) error {
		if !st.LastVerificationAt.IsZero() && now.Sub(st.LastVerificationAt) < MinVerificationInterval*time.Second {
			return ErrTooSoon
		}
		st.LastVerificationAt, st.UpdatedAt = now, now
		return nil
	}, func(ctx context.Context, tx store.Tx, st store.SSFStream) error {
		rec, err := s.p.Recorder.Append(ctx, tx, streamEvent(o, EventVerificationRequested, st, now, nil))
		if err != nil {
			return err
		}
		members := map[string]any{}
		if state != "" {
			members["state"] = state
		}
		return appendStreamEvent(ctx, tx, rec, st.ID, EventVerification, members)
	})
}
