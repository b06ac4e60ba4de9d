package signals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agentid/agentid/sdk/internal/jwks"
)

// metadata is the transmitter configuration metadata (SSF §7.1) used.
type metadata struct {
	SpecVersion              string   `json:"spec_version"`
	Issuer                   string   `json:"issuer"`
	JWKSURI                  string   `json:"jwks_uri"`
	DeliveryMethodsSupported []string `json:"delivery_methods_supported"`
	ConfigurationEndpoint    string   `json:"configuration_endpoint"`
	StatusEndpoint           string   `json:"status_endpoint"`
	VerificationEndpoint     string   `json:"verification_endpoint"`
	DefaultSubjects          string   `json:"default_subjects"`
	AuthorizationSchemes     []struct {
		SpecURN string `json:"spec_urn"`
	} `json:"authorization_schemes"`
}

// metadataURL returns where the issuer's metadata is (SSF §7.2.1): the
// well-known path goes between the host and the issuer's path.
func metadataURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("signals: issuer %q is not an http(s) URL without query and fragment", issuer)
	}
	u.Path = "/.well-known/ssf-configuration" + strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// discover fetches and checks the transmitter's metadata.
func (r *Receiver) discover(ctx context.Context) (*metadata, error) {
	mdURL, err := metadataURL(r.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	b, err := getJSON(ctx, r.cfg.PublicClient, "metadata", mdURL, "application/json")
	if err != nil {
		return nil, err
	}
	var md metadata
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %w", ErrMetadata, err)
	}
	switch {
	case md.Issuer != r.cfg.Issuer: // SSF §7.2.4
		return nil, fmt.Errorf("%w: it names issuer %q, want %q", ErrMetadata, md.Issuer, r.cfg.Issuer)
	case !httpURL(md.JWKSURI):
		return nil, fmt.Errorf("%w: no http(s) jwks_uri", ErrMetadata)
	case !httpURL(md.ConfigurationEndpoint):
		return nil, fmt.Errorf("%w: no http(s) configuration_endpoint", ErrMetadata)
	case md.DeliveryMethodsSupported != nil && !contains(md.DeliveryMethodsSupported, r.method()):
		return nil, fmt.Errorf("%w: delivery method %s is not supported", ErrMetadata, r.method())
	}
	return &md, nil
}

// metadata returns the transmitter's metadata, discovered on the first
// call (one discovery at a time), with the cache of its JWKS.
func (r *Receiver) metadata(ctx context.Context) (*metadata, error) {
	r.mu.Lock()
	md := r.md
	r.mu.Unlock()
	if md != nil {
		return md, nil
	}
	r.mdMu.Lock()
	defer r.mdMu.Unlock()
	r.mu.Lock()
	md = r.md
	r.mu.Unlock()
	if md != nil {
		return md, nil // discovered while we waited
	}
	md, err := r.discover(ctx)
	if err != nil {
		return nil, err
	}
	keys := r.newKeySet(md.JWKSURI)
	r.mu.Lock()
	r.md, r.keys = md, keys
	r.mu.Unlock()
	return md, nil
}

// wireStream is a stream configuration on the wire (SSF §8.1.1).
type wireStream struct {
	StreamID        string          `json:"stream_id"`
	Iss             string          `json:"iss"`
	Aud             json.RawMessage `json:"aud"`
	EventsSupported []string        `json:"events_supported"`
	EventsRequested []string        `json:"events_requested"`
	EventsDelivered []string        `json:"events_delivered"`
	Delivery        struct {
		Method      string `json:"method"`
		EndpointURL string `json:"endpoint_url"`
	} `json:"delivery"`
	MinVerificationInterval int64  `json:"min_verification_interval"`
	Description             string `json:"description"`
}

// method is the delivery method the Receiver uses.
func (r *Receiver) method() string {
	if r.cfg.PushEndpoint != "" {
		return DeliveryPush
	}
	return DeliveryPoll
}

// owned checks a stream is for this receiver (SSF §8.1.1.1.1).
func (r *Receiver) owned(ws wireStream) ([]string, error) {
	aud, ok := jwks.Audience(ws.Aud)
	switch {
	case ws.StreamID == "":
		return nil, fmt.Errorf("%w: no stream_id", ErrStream)
	case ws.Iss != r.cfg.Issuer:
		return nil, fmt.Errorf("%w: stream %s names iss %q, want %q", ErrStream, ws.StreamID, ws.Iss, r.cfg.Issuer)
	case !ok || !contains(aud, r.cfg.Audience):
		return nil, fmt.Errorf("%w: stream %s is not for audience %q", ErrStream, ws.StreamID, r.cfg.Audience)
	}
	return aud, nil
}

// check checks a stream is for this receiver and delivers by its method:
// poll from an http(s) endpoint, or push to Config.PushEndpoint.
func (r *Receiver) check(ws wireStream) (*Stream, error) {
	aud, err := r.owned(ws)
	if err != nil {
		return nil, err
	}
	switch {
	case ws.Delivery.Method != r.method():
		return nil, fmt.Errorf("%w: stream %s delivers by %q, not %s", ErrStream, ws.StreamID, ws.Delivery.Method, r.method())
	case !httpURL(ws.Delivery.EndpointURL):
		return nil, fmt.Errorf("%w: stream %s has no http(s) endpoint_url", ErrStream, ws.StreamID)
	case r.method() == DeliveryPush && ws.Delivery.EndpointURL != r.cfg.PushEndpoint:
		return nil, fmt.Errorf("%w: stream %s pushes to %q, not to PushEndpoint", ErrStream, ws.StreamID, ws.Delivery.EndpointURL)
	}
	return &Stream{
		ID: ws.StreamID, Issuer: ws.Iss, Audience: aud,
		EventsSupported: ws.EventsSupported, EventsRequested: ws.EventsRequested, EventsDelivered: ws.EventsDelivered,
		DeliveryMethod:          ws.Delivery.Method,
		EndpointURL:             ws.Delivery.EndpointURL,
		MinVerificationInterval: time.Duration(max(ws.MinVerificationInterval, 0)) * time.Second,
		Description:             ws.Description,
	}, nil
}

// Stream returns the Receiver's stream. On the first call (and after the
// stream was found gone) it discovers the transmitter and reads
// Config.StreamID, or else reuses the first stream listed for the caller
// with the Receiver's delivery (a poll stream; or a push stream to
// Config.PushEndpoint), or else creates one requesting EventTypes. A push
// stream found rather than created is updated (SSF §8.1.1.3 PATCH) to
// push to PushEndpoint with PushAuthorization, since the transmitter does
// not show the header it holds. The error wraps ErrMetadata or ErrStream
// when retrying cannot help.
func (r *Receiver) Stream(ctx context.Context) (Stream, error) {
	r.mu.Lock()
	st := r.stream
	r.mu.Unlock()
	if st != nil {
		return *st, nil
	}
	md, err := r.metadata(ctx)
	if err != nil {
		return Stream{}, err
	}
	st, err = r.findStream(ctx, md)
	if err != nil {
		return Stream{}, err
	}
	r.mu.Lock()
	r.stream = st
	r.status.StreamID = st.ID
	r.mu.Unlock()
	return *st, nil
}

// findStream reads, reuses or creates the stream.
func (r *Receiver) findStream(ctx context.Context, md *metadata) (*Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	if r.cfg.StreamID != "" {
		var ws wireStream
		u := md.ConfigurationEndpoint + "?stream_id=" + url.QueryEscape(r.cfg.StreamID)
		if err := r.call(ctx, "read stream", http.MethodGet, u, nil, http.StatusOK, &ws); err != nil {
			return nil, err
		}
		if ws.StreamID != r.cfg.StreamID {
			return nil, fmt.Errorf("%w: asked for stream %s, got %q", ErrStream, r.cfg.StreamID, ws.StreamID)
		}
		if r.method() == DeliveryPush {
			return r.claimPush(ctx, md, ws)
		}
		return r.check(ws)
	}
	var list []wireStream
	if err := r.call(ctx, "list streams", http.MethodGet, md.ConfigurationEndpoint, nil, http.StatusOK, &list); err != nil {
		return nil, err
	}
	for _, ws := range list {
		switch {
		case r.method() == DeliveryPoll && ws.Delivery.Method == DeliveryPoll:
			return r.check(ws)
		case r.method() == DeliveryPush && ws.Delivery.Method == DeliveryPush && ws.Delivery.EndpointURL == r.cfg.PushEndpoint:
			return r.claimPush(ctx, md, ws)
		}
	}
	body := map[string]any{
		"events_requested": EventTypes(),
		"delivery":         r.delivery(),
	}
	if r.cfg.Description != "" {
		body["description"] = r.cfg.Description
	}
	var ws wireStream
	if err := r.call(ctx, "create stream", http.MethodPost, md.ConfigurationEndpoint, body, http.StatusCreated, &ws); err != nil {
		return nil, err
	}
	return r.check(ws)
}

// wireDelivery is the delivery the Receiver asks for (SSF §8.1.1). For
// push, endpoint_url and authorization_header are the receiver's (RFC
// 8935 §2); AuthorizationHeader is a secret: never log a wireDelivery.
type wireDelivery struct {
	Method              string `json:"method"`
	EndpointURL         string `json:"endpoint_url,omitempty"`
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

// delivery is the delivery the Receiver asks for.
func (r *Receiver) delivery() wireDelivery {
	if r.method() == DeliveryPoll {
		return wireDelivery{Method: DeliveryPoll}
	}
	return wireDelivery{Method: DeliveryPush, EndpointURL: r.cfg.PushEndpoint, AuthorizationHeader: r.cfg.PushAuthorization}
}

// claimPush makes a push stream found (not created) deliver to
// PushEndpoint with PushAuthorization: a PATCH carrying delivery replaces
// the whole delivery object (SSF §8.1.1.3), and the transmitter never
// shows the header it holds, which a restarted receiver may have
// generated anew. A stream delivering by poll is refused, not switched.
func (r *Receiver) claimPush(ctx context.Context, md *metadata, ws wireStream) (*Stream, error) {
	if _, err := r.owned(ws); err != nil {
		return nil, err
	}
	if ws.Delivery.Method != DeliveryPush {
		return nil, fmt.Errorf("%w: stream %s delivers by %q, not %s", ErrStream, ws.StreamID, ws.Delivery.Method, DeliveryPush)
	}
	body := struct {
		StreamID string       `json:"stream_id"`
		Delivery wireDelivery `json:"delivery"`
	}{ws.StreamID, r.delivery()}
	var updated wireStream
	if err := r.call(ctx, "update stream", http.MethodPatch, md.ConfigurationEndpoint, body, http.StatusOK, &updated); err != nil {
		return nil, err
	}
	if updated.StreamID != ws.StreamID {
		return nil, fmt.Errorf("%w: updated stream %s, got %q", ErrStream, ws.StreamID, updated.StreamID)
	}
	return r.check(updated)
}

// DeleteStream deletes the Receiver's stream (SSF §8.1.1.5), so that the
// transmitter stops queueing (or pushing) events for it. The next poll or
// Stream call finds or creates a stream again.
func (r *Receiver) DeleteStream(ctx context.Context) error {
	st, err := r.Stream(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	md := r.md
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	u := md.ConfigurationEndpoint + "?stream_id=" + url.QueryEscape(st.ID)
	if err := r.call(ctx, "delete stream", http.MethodDelete, u, nil, http.StatusNoContent, nil); err != nil {
		return err
	}
	r.forgetStream()
	return nil
}

// RequestVerification asks the transmitter to send a verification event
// with state on the stream (SSF §8.1.4.2); Status reports it once polled
// or pushed.
// The transmitter may answer 429 when asked more often than the stream's
// MinVerificationInterval.
func (r *Receiver) RequestVerification(ctx context.Context, state string) error {
	st, err := r.Stream(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	md := r.md
	r.mu.Unlock()
	if !httpURL(md.VerificationEndpoint) {
		return fmt.Errorf("%w: no http(s) verification_endpoint", ErrMetadata)
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	body := map[string]string{"stream_id": st.ID}
	if state != "" {
		body["state"] = state
	}
	return r.call(ctx, "verify", http.MethodPost, md.VerificationEndpoint, body, http.StatusNoContent, nil)
}

// forgetStream makes the next poll (or Stream call) find the stream again.
func (r *Receiver) forgetStream() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stream = nil
	r.acks, r.errs = nil, map[string]setErr{} // they were for the old stream
}

// call makes an authenticated JSON call and decodes the answer into out
// (when not nil). Any status but want is an *HTTPError.
func (r *Receiver) call(ctx context.Context, op, method, u string, in any, want int, out any) error {
	var body *bytes.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("signals: %s: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequestWithContext(ctx, method, u, body)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, u, nil)
	}
	if err != nil {
		return fmt.Errorf("signals: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("signals: %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := readBody(resp)
	if err != nil {
		return fmt.Errorf("signals: %s: %w", op, err)
	}
	if resp.StatusCode != want {
		return httpError(op, resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("signals: %s: answer: %w", op, err)
	}
	return nil
}

// isStatus reports whether err is an *HTTPError with the status.
func isStatus(err error, status int) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.StatusCode == status
}
