package ssf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/urlcheck"
)

// Push delivery (RFC 8935; ADR 0026 addendum "push delivery").
const (
	// MaxEndpointURL bounds a push stream's endpoint_url, in bytes.
	MaxEndpointURL = 2048
	// MaxAuthorizationHeader bounds a push stream's authorization header,
	// in bytes.
	MaxAuthorizationHeader = 4096
	// PushLease names the store lease under which one replica pushes.
	PushLease = "ssf-push"
	// MaxPushBackoff is the longest wait between two attempts on a
	// failing stream.
	MaxPushBackoff = 5 * time.Minute
	// pushTimeout bounds one push request.
	pushTimeout = 10 * time.Second
	// pushBatch is the most SETs read for one stream at a time.
	pushBatch = 20
	// pushRoundBudget bounds the time one round spends on one stream, so
	// that a slow receiver cannot hold the lease for long.
	pushRoundBudget = 20 * time.Second
	// pushLeaseTTL is how long the pushing replica holds the lease after
	// it last renewed it.
	pushLeaseTTL = time.Minute
	// pushParallel is how many streams one replica pushes to at once.
	pushParallel = 4
	// maxPushReason bounds the receiver-supplied text kept in LastError.
	maxPushReason = 200
)

// refusesTransmitter reports whether an RFC 8935 §2.4 error code says the
// receiver did not accept the transmitter rather than the SET: a 400
// with one of them is retried.
func refusesTransmitter(code string) bool {
	return code == "authentication_failed" || code == "access_denied"
}

// pushOrigin is the actor of the deliverer's reads and writes (never
// recorded: deliveries are not audited, like polls).
func pushOrigin() audit.Origin {
	return audit.Origin{Actor: audit.Actor{Type: audit.ActorSystem, ID: "ssf-push"}}
}

// DeliveryMethods returns the delivery methods the transmitter offers
// (SSF 1.0 §7.1 delivery_methods_supported): poll, and push when a Sealer
// is configured.
func (s *Service) DeliveryMethods() []string {
	if s.p.Sealer == nil {
		return []string{DeliveryPoll}
	}
	return []string{DeliveryPoll, DeliveryPush}
}

// authorizationAD binds a sealed authorization header to its stream.
func authorizationAD(streamID string) []byte {
	return []byte("agentid ssf push authorization " + streamID)
}

// applyPush sets push delivery d on st: endpoint_url is the receiver's,
// checked (https, or http on a loopback host; for a receiver agent, a
// host the operator allows); the authorization header is sealed. A new
// endpoint starts with a clean delivery state; any new push delivery
// ends a pending backoff.
func (s *Service) applyPush(st *store.SSFStream, d Delivery, isAdmin bool) error {
	if s.p.Sealer == nil {
		return invalid("delivery.method", "push delivery is not enabled on this server; use %s", DeliveryPoll)
	}
	if err := s.checkEndpoint(d.EndpointURL, isAdmin); err != nil {
		return err
	}
	h := d.AuthorizationHeader
	if len(h) > MaxAuthorizationHeader || strings.ContainsFunc(h, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) {
		return invalid("delivery.authorization_header", "at most %d bytes without control characters", MaxAuthorizationHeader)
	}
	var sealed []byte
	if h != "" {
		var err error
		if sealed, err = s.p.Sealer.Seal([]byte(h), authorizationAD(st.ID)); err != nil {
			return fmt.Errorf("ssf: seal authorization header: %w", err)
		}
	}
	if st.DeliveryMethod != DeliveryPush || st.EndpointURL != d.EndpointURL {
		st.PushFailures, st.LastPushError, st.LastPushAt = 0, "", time.Time{}
	}
	// A receiver that reconfigures its delivery (a new header, say) has
	// likely fixed what failed: the next round tries at once.
	st.NextPushAt = time.Time{}
	st.DeliveryMethod, st.EndpointURL, st.AuthorizationSealed = DeliveryPush, d.EndpointURL, sealed
	return nil
}

// checkEndpoint checks a push endpoint_url.
func (s *Service) checkEndpoint(raw string, isAdmin bool) error {
	const field = "delivery.endpoint_url"
	if raw == "" {
		return invalid(field, "is required for push delivery: the receiver's endpoint")
	}
	if len(raw) > MaxEndpointURL {
		return invalid(field, "at most %d bytes", MaxEndpointURL)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return invalid(field, "not an absolute URL")
	}
	host := u.Hostname()
	switch {
	case u.User != nil:
		return invalid(field, "must not carry user information")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return invalid(field, "must not have a fragment")
	case u.Scheme == "http" && !urlcheck.Loopback(host):
		return invalid(field, "must be https (http only on a loopback host)")
	case u.Scheme != "https" && u.Scheme != "http":
		return invalid(field, "must be https")
	}
	if !isAdmin && !s.pushAllowed(host) {
		return invalid(field, "the host %q is not one receivers may push to (ssf.push_allowed_hosts); ask an administrator", host)
	}
	return nil
}

// pushAllowed reports whether a receiver agent may push to host.
func (s *Service) pushAllowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range s.p.PushAllowedHosts {
		p = strings.ToLower(p)
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

// RunPush pushes the SETs of push streams (RFC 8935) every PushInterval
// until ctx ends. With several replicas, the one holding the push lease
// delivers; holder names this replica.
func (s *Service) RunPush(ctx context.Context, holder string) {
	t := time.NewTicker(s.p.PushInterval)
	defer t.Stop()
	for {
		if _, err := s.Push(ctx, holder); err != nil && ctx.Err() == nil {
			s.p.Logger.WarnContext(ctx, "shared signals push round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Push runs one delivery round: every enabled or paused push stream with
// events after its cursor and no attempt pending is pushed to, in
// sequence order, until its events run out, one fails or the round's
// budget per stream is spent. It returns the number of streams it
// pushed to. It reads only, and takes the lease, when a stream has
// something to push, so an idle server writes nothing.
func (s *Service) Push(ctx context.Context, holder string) (int, error) {
	sts, err := s.p.Store.ListSSFStreams(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("ssf: list streams: %w", err)
	}
	head, err := s.p.Store.SSFHead(ctx)
	if err != nil {
		return 0, fmt.Errorf("ssf: outbox head: %w", err)
	}
	now := s.now()
	var due []string
	for _, st := range sts {
		if st.DeliveryMethod != DeliveryPush || st.Status == store.SSFStreamDisabled || now.Before(st.NextPushAt) ||
			st.Cursor >= head {
			continue
		}
		// An event after the cursor is one to push or to step over (a
		// type the stream does not deliver): pushStream settles both.
		// Other streams' own events do not count; a paused stream holds
		// every event but its own.
		limit := 1
		if st.Status == store.SSFStreamPaused {
			limit = pushBatch
		}
		evs, err := s.p.Store.ListSSFEvents(ctx, st.ID, st.Cursor, limit)
		if err != nil {
			return 0, fmt.Errorf("ssf: read outbox: %w", err)
		}
		if slices.ContainsFunc(evs, func(e store.SSFEvent) bool {
			return st.Status != store.SSFStreamPaused || (delivers(st, e) && !slices.Contains(st.Acked, e.Seq))
		}) {
			due = append(due, st.ID)
		}
	}
	if len(due) == 0 {
		return 0, nil
	}
	var held bool
	err = s.p.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		held, err = tx.AcquireLease(ctx, PushLease, holder, now, now.Add(pushLeaseTTL))
		return err
	})
	if err != nil || !held {
		return 0, err
	}
	sem := make(chan struct{}, pushParallel)
	var wg sync.WaitGroup
	for _, id := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.pushStream(ctx, id)
		})
	}
	wg.Wait()
	return len(due), nil
}

// pushOutcome is what an attempt on a stream came to.
type pushOutcome struct {
	delivered  bool          // the receiver accepted a SET
	refused    string        // why the receiver refused a SET for good (RFC 8935 §2.3)
	failed     string        // why the attempt failed: to be retried
	retryAfter time.Duration // the receiver's Retry-After, if any
}

// pushStream delivers stream id's pending SETs in order. Each batch's
// acknowledgements and outcome are recorded before the next is read, so
// a crash delivers at most one batch again (at least once, same jtis).
// Every request is counted; a batch's accepted and refused SETs are
// counted once recorded, so a SET pushed again counts once.
func (s *Service) pushStream(ctx context.Context, id string) {
	deadline := time.Now().Add(pushRoundBudget)
	var (
		acks              []int64
		out               pushOutcome
		accepted, refused int // SETs of acks, by outcome
	)
	for {
		var (
			target   store.SSFStream
			readMore bool
		)
		evs, aud, _, err := s.settleAndRead(ctx, pushOrigin(), id, acks, pushBatch, func(st *store.SSFStream) (bool, bool, error) {
			changed := s.record(st, out)
			target = *st
			readMore = st.DeliveryMethod == DeliveryPush && st.Status != store.SSFStreamDisabled &&
				out.failed == "" && time.Now().Before(deadline)
			return changed, readMore, nil
		})
		if err == nil {
			s.m.settled(accepted, refused)
		}
		switch {
		case errors.Is(err, store.ErrConflict):
			return // the stream changed meanwhile: the next round reads it again
		case err != nil:
			if ctx.Err() == nil && !errors.Is(err, identity.ErrNotFound) { // a deleted stream is not a failure
				s.p.Logger.WarnContext(ctx, "shared signals push: recording the delivery failed", "stream_id", id, "err", err)
			}
			return
		case !readMore || len(evs) == 0:
			return
		}
		header, err := s.authorization(target)
		if err != nil {
			s.p.Logger.ErrorContext(ctx, "shared signals push: cannot open the authorization header", "stream_id", id, "err", err)
			return
		}
		acks, out, accepted, refused = nil, pushOutcome{}, 0, 0
		for _, e := range evs {
			jti, set, err := s.signOne(id, aud, e)
			if err != nil {
				out.failed = "signing failed"
				s.p.Logger.ErrorContext(ctx, "shared signals push: signing a SET failed", "stream_id", id, "err", err)
				break
			}
			r := s.post(ctx, target.EndpointURL, header, jti, set)
			s.m.request(r)
			if r.failed != "" {
				out.failed, out.retryAfter = r.failed, r.retryAfter
				s.p.Logger.WarnContext(ctx, "shared signals push failed; will retry", "stream_id", id, "jti", jti,
					"endpoint", target.EndpointURL, "reason", r.failed)
				break
			}
			acks = append(acks, e.Seq)
			if r.refused != "" {
				out.refused = r.refused
				refused++
				s.p.Logger.WarnContext(ctx, "shared signals push: the receiver refused a SET", "stream_id", id, "jti", jti,
					"reason", r.refused)
			} else {
				out.delivered = true
				accepted++
			}
		}
	}
}

// record applies an attempt's outcome to st's delivery state and reports
// whether it changed anything.
func (s *Service) record(st *store.SSFStream, out pushOutcome) bool {
	now := s.now()
	switch {
	case out.failed != "":
		st.PushFailures++
		st.NextPushAt = now.Add(backoff(st.PushFailures, out.retryAfter))
		st.LastPushError = out.failed
	case out.delivered || out.refused != "":
		st.PushFailures, st.NextPushAt, st.LastPushError = 0, time.Time{}, out.refused
	default:
		return false
	}
	if out.delivered {
		st.LastPushAt = now
	}
	return true
}

// backoff is the wait after the n-th consecutive failure: 1 s doubling
// up to MaxPushBackoff, or the receiver's Retry-After when longer.
func backoff(n int, retryAfter time.Duration) time.Duration {
	d := MaxPushBackoff
	if n < 10 {
		d = min(time.Duration(1<<(n-1))*time.Second, MaxPushBackoff)
	}
	return max(d, min(retryAfter, MaxPushBackoff))
}

// authorization opens st's sealed authorization header ("" when none).
func (s *Service) authorization(st store.SSFStream) (string, error) {
	if len(st.AuthorizationSealed) == 0 {
		return "", nil
	}
	if s.p.Sealer == nil {
		return "", errors.New("ssf: no sealer configured")
	}
	h, err := s.p.Sealer.Open(st.AuthorizationSealed, authorizationAD(st.ID))
	if err != nil {
		return "", fmt.Errorf("ssf: open authorization header: %w", err)
	}
	return string(h), nil
}

// pushResult is the receiver's answer to one SET.
type pushResult struct {
	refused    string
	failed     string
	retryAfter time.Duration
}

// post sends one SET (RFC 8935 §2.1) and classifies the answer; no
// answer is a failure to retry.
func (s *Service) post(ctx context.Context, endpoint, header, jti, set string) pushResult {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(set))
	if err != nil {
		return pushResult{failed: "bad endpoint URL"}
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	resp, err := s.p.PushClient.Do(req) //nolint:gosec // G704: the endpoint is checked on configuration (https, allowed hosts)
	if err != nil {
		return pushResult{failed: "no answer: " + transportReason(err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return classify(resp.StatusCode, resp.Header.Get("Retry-After"), body, jti)
}

// classify reads a receiver's answer to the SET with jti: 2xx accepted
// (§2.2: 202); 400 with an RFC 8935 §2.3 error other than the
// transmitter's authentication or authorisation refused for good; 401,
// 403 and anything else a failure to retry (after retryAfter when the
// receiver gave one in seconds).
func classify(code int, retryAfter string, body []byte, jti string) pushResult {
	switch {
	case code >= 200 && code < 300:
		return pushResult{}
	case code == http.StatusBadRequest:
		var e struct {
			Err         string `json:"err"`
			Description string `json:"description"`
		}
		if json.Unmarshal(body, &e) != nil || e.Err == "" {
			return pushResult{failed: "HTTP 400 without an RFC 8935 error"}
		}
		reason := clean(e.Err)
		if e.Description != "" {
			reason += ": " + clean(e.Description)
		}
		if refusesTransmitter(e.Err) {
			return pushResult{failed: "the receiver refused the transmitter: " + reason}
		}
		return pushResult{refused: "SET " + jti + " refused: " + reason}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return pushResult{failed: "HTTP " + strconv.Itoa(code) + ": the receiver refused the authorization header"}
	default:
		r := pushResult{failed: "HTTP " + strconv.Itoa(code)}
		if secs, err := strconv.Atoi(strings.TrimSpace(retryAfter)); err == nil && secs > 0 {
			r.retryAfter = min(time.Duration(secs), 1<<20) * time.Second
		}
		return r
	}
}

// transportReason names a transport failure without echoing the whole
// error (which is safe, but long).
func transportReason(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return clean(err.Error())
}

// clean keeps receiver-supplied text printable and short.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxPushReason {
		s = strings.ToValidUTF8(s[:maxPushReason], "") + "…"
	}
	return s
}
