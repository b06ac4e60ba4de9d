// Package signals is the receiving side of agentid's OpenID Shared Signals
// Framework (SSF 1.0) stream: a resource server learns revocations of
// access tokens before they expire, and refuses those tokens.
//
// A Receiver discovers the transmitter (SSF §7.2, checking the metadata
// names the configured issuer, §7.2.4), finds or creates a poll stream
// (SSF §8.1.1, RFC 8936 delivery), and polls it. Each Security Event Token
// (RFC 8417, SSF §4) is verified (typ secevent+jwt, ES256 or EdDSA, a key of
// the issuer's JWKS, iss, aud, one event) and applied, then acknowledged; a
// SET that fails verification is reported back in setErrs (RFC 8936 §2.4.4)
// and changes nothing. The events understood, and what they revoke:
//
//   - CAEP session-revoked with a jwt_id subject: the token with that jti.
//   - session-revoked with an iss_sub subject (an agent's SPIFFE ID): every
//     token of that agent (sub, or any act.sub of a delegated token) issued
//     at or before the event_timestamp.
//   - session-revoked with an opaque subject: every token of that agent
//     instance (ins_…) or of that grant (grt_…).
//   - RISC account-disabled / account-enabled / account-purged with an
//     iss_sub subject: the agent's tokens are refused until it is enabled
//     again, or for good.
//   - SSF verification and stream-updated: reported by Status.
//
// Revoked (or Check, which fits resource.VerifierParams.RevocationCheck)
// then tells whether a verified token is revoked. Revocations are kept in
// memory for a horizon (default 24 h, longer than any token lives) after
// they were learned, and at most MaxEntries of them, the oldest dropped
// first. A Receiver is safe for concurrent use: one goroutine runs Run (or
// calls PollOnce) while request handlers call Revoked.
//
// The package imports nothing from agentid's internal packages.
package signals

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Event types understood (CAEP 1.0 §3.1, RISC 1.0 §2.2–2.4, SSF 1.0
// §8.1.4.1 and §8.1.5).
const (
	EventSessionRevoked  = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	EventAccountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	EventAccountEnabled  = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
	EventAccountPurged   = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	EventVerification    = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	EventStreamUpdated   = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
)

// DeliveryPoll is the RFC 8936 poll delivery method (SSF §6.1.2).
const DeliveryPoll = "urn:ietf:rfc:8936"

// Defaults of Config.
const (
	DefaultHorizon            = 24 * time.Hour
	DefaultMaxEntries         = 100_000
	DefaultMaxEvents          = 100
	DefaultMinRefetchInterval = 30 * time.Second
	DefaultBackoff            = time.Second
	// maxBackoff caps the wait between failed polls.
	maxBackoff = time.Minute
	// fetchTimeout bounds one metadata, JWKS or stream management call.
	fetchTimeout = 30 * time.Second
	// pollTimeout bounds one poll; the transmitter holds a long poll for
	// up to 20 s.
	pollTimeout = 60 * time.Second
	// maxBody bounds a response body.
	maxBody = 4 << 20
)

// EventTypes returns the event types a Receiver requests when it creates
// a stream.
func EventTypes() []string {
	return []string{EventSessionRevoked, EventAccountDisabled, EventAccountEnabled, EventAccountPurged, EventVerification, EventStreamUpdated}
}

// Errors. errors.Is matches them through the wrapping.
var (
	// ErrMetadata: the transmitter's metadata is unusable: it names another
	// issuer (SSF §7.2.4), lacks an endpoint the receiver needs, or does
	// not offer poll delivery. Retrying does not help.
	ErrMetadata = errors.New("signals: unusable transmitter metadata")
	// ErrStream: the stream is unusable: another iss or aud (SSF
	// §8.1.1.1.1), not poll delivery, or no endpoint_url. Retrying does
	// not help.
	ErrStream = errors.New("signals: unusable stream")
	// ErrTransmitter: the transmitter answered an unexpected HTTP status;
	// the error is an *HTTPError.
	ErrTransmitter = errors.New("signals: transmitter error")
)

// HTTPError is an unexpected answer of the transmitter. errors.Is matches
// ErrTransmitter.
type HTTPError struct {
	// Op is the call: "metadata", "jwks", "create stream", "poll"…
	Op string
	// StatusCode is the HTTP status.
	StatusCode int
	// Problem is the RFC 9457 title and detail, when the body had them.
	Problem string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("signals: %s: HTTP %d", e.Op, e.StatusCode)
	if e.Problem != "" {
		msg += ": " + e.Problem
	}
	return msg
}

// Unwrap returns ErrTransmitter.
func (e *HTTPError) Unwrap() error { return ErrTransmitter }

// Config configures a Receiver. Issuer, Client and Audience are required.
type Config struct {
	// Issuer is agentid's issuer URL: the transmitter's issuer and the
	// iss of its SETs.
	Issuer string
	// Client makes the authenticated calls (stream management, poll,
	// verification): it must add "Authorization: Bearer <token>" with an
	// agentid access token of an agent holding the "subscribe" permission,
	// e.g. oauth2.NewClient(ctx, ts) with an agent.TokenSource. Its Timeout,
	// if any, must exceed the 20 s a long poll may be held.
	Client *http.Client
	// PublicClient fetches the metadata and the JWKS, which need no token
	// (default: a client with a 30 s timeout). Keeping them apart means the
	// token is sent only to the endpoints the metadata names.
	PublicClient *http.Client
	// Audience is the receiver's client_id: the stream's aud and the aud
	// of every SET must include it.
	Audience string
	// StreamID is the stream to poll. When empty, the Receiver polls the
	// first poll stream the transmitter lists for it (so that a restarted
	// receiver keeps its stream and the events queued on it), and creates
	// one requesting EventTypes when there is none.
	StreamID string
	// Description is the description of a stream the Receiver creates.
	Description string
	// Horizon is how long a revocation is remembered after it was learned
	// (default 24 h). It must exceed the lifetime of the tokens checked.
	Horizon time.Duration
	// MaxEntries caps the entries remembered (default 100,000); past it the
	// oldest are dropped.
	MaxEntries int
	// MaxEvents is the most SETs asked for in one poll (default 100).
	MaxEvents int
	// MinRefetchInterval is the least time between two JWKS fetches
	// (default 30 s), however many unknown kids arrive.
	MinRefetchInterval time.Duration
	// Backoff is the first wait after a failed poll in Run (default 1 s);
	// it doubles up to a minute.
	Backoff time.Duration
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// Logger logs what Run retries (default: nothing is logged).
	Logger *slog.Logger
}

// Stream is the stream configuration a Receiver polls (SSF §8.1.1).
type Stream struct {
	ID              string
	Issuer          string
	Audience        []string
	EventsSupported []string
	EventsRequested []string
	EventsDelivered []string
	// EndpointURL is the poll endpoint (delivery.endpoint_url).
	EndpointURL string
	// MinVerificationInterval is the least time between two verification
	// requests; zero when the transmitter sets none.
	MinVerificationInterval time.Duration
	Description             string
}

// Status is what the Receiver learned about its stream.
type Status struct {
	// StreamID is the stream polled; empty before the first poll.
	StreamID string
	// StreamStatus is the status of the last stream-updated event ("" when
	// none came), StreamReason its reason.
	StreamStatus string
	StreamReason string
	// VerificationState is the state of the last verification event,
	// VerifiedAt when it arrived (zero when none came).
	VerificationState string
	VerifiedAt        time.Time
	// LastPoll is when the last poll succeeded.
	LastPoll time.Time
	// Entries is the number of entries remembered.
	Entries int
}

// Receiver receives SETs from agentid and answers whether a token is
// revoked. Construct it with New. It is safe for concurrent use; polls
// (Run, PollOnce) wait for each other. Call Stream once before starting
// Run alongside other calls that may find the stream, so that two do not
// each create one.
type Receiver struct {
	cfg   Config
	clock func() time.Time
	log   *slog.Logger
	keys  *keySet
	state *revocations

	mu       sync.Mutex // guards what follows
	md       *metadata
	stream   *Stream
	acks     []string
	errs     map[string]setErr
	status   Status
	pollLock chan struct{}
}

// New returns a Receiver. It does no I/O: the transmitter is discovered on
// the first poll (or Stream call).
func New(cfg Config) (*Receiver, error) {
	if cfg.Issuer == "" || cfg.Client == nil || cfg.Audience == "" {
		return nil, errors.New("signals: Issuer, Client and Audience are required")
	}
	if _, err := metadataURL(cfg.Issuer); err != nil {
		return nil, err
	}
	if cfg.PublicClient == nil {
		cfg.PublicClient = &http.Client{Timeout: fetchTimeout}
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = DefaultHorizon
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	if cfg.MinRefetchInterval <= 0 {
		cfg.MinRefetchInterval = DefaultMinRefetchInterval
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	r := &Receiver{
		cfg:      cfg,
		clock:    cfg.Clock,
		log:      cfg.Logger,
		state:    newRevocations(cfg.Horizon, cfg.MaxEntries, cfg.Clock),
		errs:     map[string]setErr{},
		pollLock: make(chan struct{}, 1),
	}
	r.keys = &keySet{http: cfg.PublicClient, clock: cfg.Clock, minInterval: cfg.MinRefetchInterval}
	return r, nil
}

// algorithms are the SET signature algorithms accepted.
func algorithms() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}
}

// httpURL reports whether s is an absolute http(s) URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
