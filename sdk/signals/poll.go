package signals

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"
)

// pollRequest is an RFC 8936 §2.4 poll request.
type pollRequest struct {
	Ack               []string          `json:"ack,omitempty"`
	SetErrs           map[string]setErr `json:"setErrs,omitempty"`
	MaxEvents         int               `json:"maxEvents"`
	ReturnImmediately bool              `json:"returnImmediately"`
}

// pollResponse is an RFC 8936 §2.5 poll response.
type pollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable"`
}

// PollOnce polls the stream once without waiting for events
// (returnImmediately), verifies and applies the SETs received, then
// acknowledges them and reports the refused ones in a second, ack-only
// request (maxEvents 0). applied counts the SETs applied for the first
// time (a redelivered SET is acknowledged again, not applied again). On
// the first call it finds the stream (see Stream). A SET whose keys could
// not be had is left for the transmitter to deliver again, and the error
// says so; applied is then still meaningful. On a push receiver
// (Config.PushEndpoint) it fails with an error wrapping ErrStream.
func (r *Receiver) PollOnce(ctx context.Context) (applied int, err error) {
	if r.method() == DeliveryPush {
		return 0, fmt.Errorf("%w: the stream delivers by push (%s): serve PushHandler instead of polling", ErrStream, DeliveryPush)
	}
	if err := r.lock(ctx); err != nil {
		return 0, err
	}
	defer r.unlock()
	applied, _, err = r.poll(ctx, true, r.cfg.MaxEvents)
	if isStatus(err, http.StatusNotFound) {
		return applied, err
	}
	if ackErr := r.flush(ctx); ackErr != nil {
		err = errors.Join(err, ackErr)
	}
	return applied, err
}

// Run polls the stream until ctx ends, with long polls that carry the
// acknowledgements and setErrs of the previous poll (RFC 8936 §2.4.3,
// §2.4.4). It waits after a failed poll, from Config.Backoff doubling up to
// a minute, and logs the failure. It returns ctx's error when ctx ends
// (after trying to send the last acknowledgements), or an error wrapping
// ErrMetadata or ErrStream at once, since retrying cannot mend those.
//
// On a push receiver (Config.PushEndpoint) Run finds or creates the stream
// (see Stream), retrying with the same backoff, so that the transmitter
// starts pushing to PushHandler; then it waits for ctx to end and returns
// its error.
func (r *Receiver) Run(ctx context.Context) error {
	if r.method() == DeliveryPush {
		return r.runPush(ctx)
	}
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.unlock()
	wait := r.cfg.Backoff
	for {
		_, _, err := r.poll(ctx, false, r.cfg.MaxEvents)
		if ctx.Err() != nil {
			// Tell the transmitter what was applied, so that it is not
			// delivered again to the next Run.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = r.flush(fctx)
			cancel()
			return ctx.Err()
		}
		if errors.Is(err, ErrMetadata) || errors.Is(err, ErrStream) {
			return err
		}
		if err == nil {
			wait = r.cfg.Backoff
			continue
		}
		if r.log != nil {
			r.log.WarnContext(ctx, "signals: poll failed; retrying", "err", err, "in", wait)
		}
		sleep(ctx, wait)
		wait = min(2*wait, maxBackoff)
	}
}

// runPush is Run for a push receiver.
func (r *Receiver) runPush(ctx context.Context) error {
	wait := r.cfg.Backoff
	for {
		_, err := r.Stream(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			break
		}
		if errors.Is(err, ErrMetadata) || errors.Is(err, ErrStream) {
			return err
		}
		if r.log != nil {
			r.log.WarnContext(ctx, "signals: finding the push stream failed; retrying", "err", err, "in", wait)
		}
		sleep(ctx, wait)
		wait = min(2*wait, maxBackoff)
	}
	<-ctx.Done()
	return ctx.Err()
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// lock makes polls serial.
func (r *Receiver) lock(ctx context.Context) error {
	select {
	case r.pollLock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Receiver) unlock() { <-r.pollLock }

// flush sends the pending acknowledgements and setErrs, if any, in an
// ack-only request. SETs the transmitter returns anyway are left
// unacknowledged: it delivers them again.
func (r *Receiver) flush(ctx context.Context) error {
	r.mu.Lock()
	pending := len(r.acks) > 0 || len(r.errs) > 0
	r.mu.Unlock()
	if !pending {
		return nil
	}
	_, _, err := r.exchange(ctx, 0, true)
	return err
}

// poll makes one poll and processes its SETs; more reports moreAvailable.
func (r *Receiver) poll(ctx context.Context, immediately bool, maxEvents int) (applied int, more bool, err error) {
	if _, err := r.Stream(ctx); err != nil {
		return 0, false, err
	}
	resp, st, err := r.exchange(ctx, maxEvents, immediately)
	if err != nil {
		return 0, false, err
	}
	applied, err = r.process(ctx, st, resp.Sets)
	r.state.expire()
	r.mu.Lock()
	r.status.LastPoll = r.clock()
	r.mu.Unlock()
	return applied, resp.MoreAvailable, err
}

// exchange sends one poll request with the pending acknowledgements and
// setErrs, which are settled when it succeeds.
func (r *Receiver) exchange(ctx context.Context, maxEvents int, immediately bool) (*pollResponse, Stream, error) {
	st, err := r.Stream(ctx)
	if err != nil {
		return nil, Stream{}, err
	}
	r.mu.Lock()
	req := pollRequest{Ack: r.acks, MaxEvents: maxEvents, ReturnImmediately: immediately}
	if len(r.errs) > 0 {
		req.SetErrs = make(map[string]setErr, len(r.errs))
		for k, v := range r.errs {
			req.SetErrs[k] = v
		}
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	var resp pollResponse
	err = r.call(ctx, "poll", http.MethodPost, st.EndpointURL, req, http.StatusOK, &resp)
	if isStatus(err, http.StatusNotFound) {
		r.forgetStream() // the stream is gone: find or create it again
	}
	if err != nil {
		return nil, Stream{}, err
	}
	r.mu.Lock()
	r.acks = r.acks[len(req.Ack):]
	for k := range req.SetErrs {
		delete(r.errs, k)
	}
	r.mu.Unlock()
	return &resp, st, nil
}

// process verifies and applies SETs, oldest first (so that a disable and
// an enable in one batch end as they happened), and queues their
// acknowledgements or setErrs.
func (r *Receiver) process(ctx context.Context, st Stream, sets map[string]string) (applied int, err error) {
	type item struct {
		jti string
		s   *set
	}
	var ok []item
	var acks []string
	errs := map[string]setErr{}
	var transient []error
	keys, err := r.lookupKeys(ctx)
	if err != nil {
		return 0, err
	}
	for jti, token := range sets {
		if r.state.seen(jti) {
			acks = append(acks, jti) // delivered again: our acknowledgement was lost
			continue
		}
		s, verr := verifySET(ctx, token, r.cfg.Issuer, r.cfg.Audience, keys)
		var se *setErr
		switch {
		case errors.As(verr, &se):
			errs[jti] = *se
		case verr != nil:
			transient = append(transient, fmt.Errorf("SET %s: %w", jti, verr))
		case s.JTI != jti:
			errs[jti] = setErr{Err: codeInvalidRequest, Description: "jti is not the one the SET was delivered under"}
		default:
			ok = append(ok, item{jti, s})
		}
	}
	sort.Slice(ok, func(i, j int) bool {
		a, b := ok[i].s, ok[j].s
		if !a.IssuedAt.Equal(b.IssuedAt) {
			return a.IssuedAt.Before(b.IssuedAt)
		}
		return a.JTI < b.JTI
	})
	for _, it := range ok {
		if r.applySET(st.ID, it.s) {
			applied++
		}
		acks = append(acks, it.jti)
	}
	r.mu.Lock()
	r.acks = append(r.acks, acks...)
	for k, v := range errs {
		r.errs[k] = v
	}
	r.mu.Unlock()
	if len(transient) > 0 {
		return applied, fmt.Errorf("signals: SETs left to be delivered again: %w", errors.Join(transient...))
	}
	return applied, nil
}

// applySET applies a verified SET, polled or pushed, unless a SET with its
// jti was applied already: it records the revocations (or account states)
// and, for streamID, a verification or stream-updated event. It reports
// whether the SET was applied now. Concurrent calls are serialised, so a
// SET delivered twice at once is applied once.
func (r *Receiver) applySET(streamID string, s *set) bool {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if r.state.seen(s.JTI) {
		return false
	}
	r.state.apply(s.JTI, s.effect)
	r.inform(streamID, s.effect)
	return true
}

// inform records a verification or stream-updated event of this stream.
func (r *Receiver) inform(streamID string, ef effect) {
	if (ef.kind != effectVerification && ef.kind != effectStreamUpdated) || streamID == "" || ef.key != streamID {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ef.kind == effectVerification {
		r.status.VerificationState, r.status.VerifiedAt = ef.state, r.clock()
		return
	}
	r.status.StreamStatus, r.status.StreamReason = ef.status, ef.reason
}

// Status returns what the Receiver learned about its stream.
func (r *Receiver) Status() Status {
	r.mu.Lock()
	s := r.status
	r.mu.Unlock()
	s.Entries = r.state.size()
	return s
}
