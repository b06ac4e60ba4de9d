package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Paths of the Shared Signals transmitter's stream management endpoints
// (OpenID Shared Signals Framework 1.0 §8; ADR 0026). They sit at the
// server's root, not under /v1.
const (
	SSFStreamPath = "/ssf/stream"
	SSFStatusPath = "/ssf/status"
	SSFVerifyPath = "/ssf/verify"
)

// Delivery methods (SSF 1.0 §6.1.1): poll (RFC 8936), where the receiver
// fetches its events from the transmitter's endpoint, and push (RFC 8935),
// where the transmitter POSTs each event to the receiver's endpoint.
const (
	SSFDeliveryPoll = "urn:ietf:rfc:8936"
	SSFDeliveryPush = "urn:ietf:rfc:8935"
)

// Statuses of a stream (SSF 1.0 §8.1.2).
const (
	SSFStatusEnabled  = "enabled"
	SSFStatusPaused   = "paused"
	SSFStatusDisabled = "disabled"
)

// Event types the transmitter delivers. Verification and stream-updated
// events concern the stream itself.
const (
	SSFEventSessionRevoked  = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	SSFEventAccountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	SSFEventAccountEnabled  = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
	SSFEventAccountPurged   = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	SSFEventVerification    = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	SSFEventStreamUpdated   = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
)

// SSFAudience is a stream's "aud": a JSON string when it has one value,
// an array otherwise (SSF 1.0 §8.1.1). Both forms decode.
type SSFAudience []string

// MarshalJSON implements json.Marshaler.
func (a SSFAudience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *SSFAudience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = SSFAudience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("admin: aud: want a string or an array of strings: %w", err)
	}
	*a = many
	return nil
}

// SSFDelivery is how a stream's events reach the receiver. For poll
// delivery EndpointURL is the transmitter's poll endpoint of the stream;
// what a request sends there is ignored. For push delivery EndpointURL is
// the receiver's endpoint (https, or http on a loopback host) and
// AuthorizationHeader, when set, the Authorization header every delivery
// carries: it is sealed at rest and never returned, so a request that
// changes the delivery must give it again.
type SSFDelivery struct {
	Method              string `json:"method"`
	EndpointURL         string `json:"endpoint_url,omitempty"`
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

// SSFPushState is how a push stream's delivery fares (an agentid
// extension of the stream configuration).
type SSFPushState struct {
	// Failures counts the failed attempts since the last success.
	Failures int `json:"failures"`
	// LastError is why the last attempt failed, or why the receiver
	// refused the last SET it refused (a refused SET is not sent again).
	LastError string `json:"last_error,omitempty"`
	// NextAttemptAt is when the next attempt is due after a failure.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// LastDeliveredAt is when the receiver last accepted a SET.
	LastDeliveredAt *time.Time `json:"last_delivered_at,omitempty"`
	// AuthorizationHeader reports whether deliveries carry one.
	AuthorizationHeader bool `json:"authorization_header"`
}

// SSFStream is a stream's configuration (SSF 1.0 §8.1.1). EventsDelivered
// is the part of EventsRequested the transmitter supports.
type SSFStream struct {
	StreamID                string      `json:"stream_id"`
	Iss                     string      `json:"iss"`
	Aud                     SSFAudience `json:"aud"`
	EventsSupported         []string    `json:"events_supported"`
	EventsRequested         []string    `json:"events_requested"`
	EventsDelivered         []string    `json:"events_delivered"`
	Delivery                SSFDelivery `json:"delivery"`
	MinVerificationInterval int         `json:"min_verification_interval"`
	Description             string      `json:"description,omitempty"`
	// PushState is set for push streams.
	PushState *SSFPushState `json:"push_state,omitempty"`
}

// SSFStreamRequest is the body of a stream creation or update. Nil
// members are left out: on creation they take their defaults (poll
// delivery, no events, no description), on update the stream keeps them.
// Aud is required when an administrator creates a stream and cannot
// change afterwards; StreamID is set by UpdateSSFStream.
type SSFStreamRequest struct {
	StreamID        string       `json:"stream_id,omitempty"`
	EventsRequested *[]string    `json:"events_requested,omitempty"`
	Delivery        *SSFDelivery `json:"delivery,omitempty"`
	Description     *string      `json:"description,omitempty"`
	Aud             SSFAudience  `json:"aud,omitempty"`
}

// SSFStatus is a stream's status (SSF 1.0 §8.1.2): one of the SSFStatus*
// constants and, optionally, why.
type SSFStatus struct {
	StreamID string `json:"stream_id"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// CreateSSFStream creates a stream (POST /ssf/stream). It starts enabled
// and delivers what happens from then on.
func (c *Client) CreateSSFStream(ctx context.Context, r SSFStreamRequest) (SSFStream, error) {
	var s SSFStream
	return s, c.do(ctx, http.MethodPost, SSFStreamPath, nil, r, &s)
}

// ListSSFStreams returns the caller's streams (an administrator's: every
// stream) in creation order. The list is not paged.
func (c *Client) ListSSFStreams(ctx context.Context) ([]SSFStream, error) {
	var l []SSFStream
	if err := c.do(ctx, http.MethodGet, SSFStreamPath, nil, nil, &l); err != nil {
		return nil, err
	}
	if l == nil {
		l = []SSFStream{}
	}
	return l, nil
}

// GetSSFStream returns the stream id (ssf_…). The problem is not-found
// (404) for a stream that does not exist or is not the caller's.
func (c *Client) GetSSFStream(ctx context.Context, id string) (SSFStream, error) {
	var s SSFStream
	return s, c.do(ctx, http.MethodGet, SSFStreamPath, streamIDQuery(id), nil, &s)
}

// UpdateSSFStream changes the members set in r of the stream id (PATCH
// /ssf/stream); r.StreamID is overwritten with id.
func (c *Client) UpdateSSFStream(ctx context.Context, id string, r SSFStreamRequest) (SSFStream, error) {
	r.StreamID = id
	var s SSFStream
	return s, c.do(ctx, http.MethodPatch, SSFStreamPath, nil, r, &s)
}

// DeleteSSFStream deletes the stream id; its undelivered events are lost.
func (c *Client) DeleteSSFStream(ctx context.Context, id string) error {
	return c.doNoAnswer(ctx, http.MethodDelete, SSFStreamPath, streamIDQuery(id), nil)
}

// SSFStreamStatus returns the status of the stream id.
func (c *Client) SSFStreamStatus(ctx context.Context, id string) (SSFStatus, error) {
	var s SSFStatus
	return s, c.do(ctx, http.MethodGet, SSFStatusPath, streamIDQuery(id), nil, &s)
}

// SetSSFStreamStatus sets the status of the stream r.StreamID. Events that
// happen while a stream is paused are held and delivered once it is
// enabled again; those that happen while it is disabled are dropped.
func (c *Client) SetSSFStreamStatus(ctx context.Context, r SSFStatus) (SSFStatus, error) {
	var s SSFStatus
	return s, c.do(ctx, http.MethodPost, SSFStatusPath, nil, r, &s)
}

// VerifySSFStream asks for a verification event on the stream id,
// carrying state when it is not empty (SSF 1.0 §8.1.4.2). A request
// within min_verification_interval seconds of the stream's previous one
// is refused with the rate-limited problem (429).
func (c *Client) VerifySSFStream(ctx context.Context, id, state string) error {
	body := struct {
		StreamID string `json:"stream_id"`
		State    string `json:"state,omitempty"`
	}{id, state}
	return c.doNoAnswer(ctx, http.MethodPost, SSFVerifyPath, nil, body)
}

// streamIDQuery is ?stream_id=id, sent even when id is empty so that the
// server refuses it rather than answering a list.
func streamIDQuery(id string) url.Values {
	return url.Values{"stream_id": {id}}
}

// doNoAnswer sends a request, with a JSON body when in is not nil, and
// expects a 2xx answer whose body, if any, is ignored.
func (c *Client) doNoAnswer(ctx context.Context, method, path string, q url.Values, in any) error {
	resp, err := c.send(ctx, method, path, q, in)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
