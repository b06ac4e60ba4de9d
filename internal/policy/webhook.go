package policy

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// Webhook headers. The signature is HMAC-SHA256, keyed with the
// configured secret, over the timestamp, a dot and the body
// ("<X-Agentid-Timestamp>.<body>"), hex-encoded after "sha256=": a
// receiver recomputes it, compares in constant time and refuses a
// timestamp far from its clock (a replayed delivery).
const (
	WebhookTimestampHeader = "X-Agentid-Timestamp"
	WebhookSignatureHeader = "X-Agentid-Signature"
	WebhookEventHeader     = "X-Agentid-Event"
)

// Webhook defaults.
const (
	DefaultWebhookAttempts = 5
	DefaultWebhookBackoff  = time.Second
	DefaultWebhookTimeout  = 10 * time.Second
	// DefaultWebhookQueue bounds the notifications waiting for delivery;
	// beyond it new ones are dropped (and logged), never waited for.
	DefaultWebhookQueue = 1024
	maxWebhookBackoff   = time.Minute
	webhookWorkers      = 4
)

// WebhookParams configures a Webhook.
type WebhookParams struct {
	// URL receives a POST per approval event. Required: https, or http on
	// a loopback host.
	URL string
	// Secret keys the signature. Required (at least 16 bytes); it is never
	// logged.
	Secret []byte
	// Client sends the requests; nil means one with DefaultWebhookTimeout.
	Client *http.Client
	// Attempts is how many times a delivery is tried
	// (DefaultWebhookAttempts); Backoff the wait before the first retry,
	// doubled each time up to a minute (DefaultWebhookBackoff).
	Attempts int
	Backoff  time.Duration
	// Queue bounds the pending notifications (DefaultWebhookQueue).
	Queue int
	// Clock stamps the deliveries. Required.
	Clock func() time.Time
	// Logger receives delivery failures; nil discards them.
	Logger *slog.Logger
}

// Webhook delivers approval notifications in the background: Notify
// never blocks, deliveries are retried with backoff, and none holds up a
// decision. It is safe for concurrent use; Run delivers until its
// context ends.
type Webhook struct {
	p     WebhookParams
	queue chan webhookPayload
}

// NewWebhook checks p and returns a Webhook; deliveries start with Run.
func NewWebhook(p WebhookParams) (*Webhook, error) {
	u, err := url.Parse(p.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, errors.New("policy: the webhook URL must be an absolute http(s) URL")
	case len(p.Secret) < 16:
		return nil, errors.New("policy: the webhook secret must be at least 16 bytes")
	case p.Clock == nil:
		return nil, errors.New("policy: the webhook needs a Clock")
	case p.Attempts < 0, p.Backoff < 0, p.Queue < 0:
		return nil, errors.New("policy: webhook attempts, backoff and queue must not be negative")
	}
	if p.Client == nil {
		p.Client = &http.Client{Timeout: DefaultWebhookTimeout}
	}
	if p.Attempts == 0 {
		p.Attempts = DefaultWebhookAttempts
	}
	if p.Backoff == 0 {
		p.Backoff = DefaultWebhookBackoff
	}
	if p.Queue == 0 {
		p.Queue = DefaultWebhookQueue
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	return &Webhook{p: p, queue: make(chan webhookPayload, p.Queue)}, nil
}

// webhookPayload is one notification: the event type and the approval.
type webhookPayload struct {
	Type     string         `json:"type"`
	Time     time.Time      `json:"time"`
	Approval admin.Approval `json:"approval"`
}

// ApprovalJSON is the wire form of an approval, as the admin API shows it
// and the webhook sends it.
func ApprovalJSON(a store.Approval) admin.Approval {
	out := admin.Approval{
		ID: a.ID, State: string(a.State), User: a.User, Person: a.Person,
		Action: a.Action, ActionClass: a.ActionClass, RiskTier: a.RiskTier,
		Resource: admin.ApprovalResource{Type: a.ResourceType, ID: a.ResourceID}, Obligations: nonNil(a.Obligations),
		Limits: a.Limits, PolicyVersion: a.PolicyVersion, PolicyIDs: nonNil(a.PolicyIDs), Reason: a.Reason,
		CreatedAt: a.CreatedAt.UTC(), ExpiresAt: a.ExpiresAt.UTC(), Decider: a.Decider, DeciderType: a.DeciderType,
		DecideReason: a.DecideReason,
	}
	if a.AgentID != "" {
		out.Agent = admin.ApprovalAgent{ID: a.AgentID, Name: a.AgentName}
	}
	if !a.DecidedAt.IsZero() {
		t := a.DecidedAt.UTC()
		out.DecidedAt = &t
	}
	return out
}

// eventOf is the event type of an approval's current state.
func eventOf(a store.Approval) string {
	switch a.State {
	case store.ApprovalApproved:
		return EventApprovalApproved
	case store.ApprovalDenied:
		return EventApprovalDenied
	case store.ApprovalExpired:
		return EventApprovalExpired
	}
	return EventApprovalRequested
}

// Notify queues a notification of a's new state; when the queue is full
// it is dropped and logged.
func (w *Webhook) Notify(a store.Approval) {
	p := webhookPayload{Type: eventOf(a), Time: w.p.Clock().UTC(), Approval: ApprovalJSON(a)}
	select {
	case w.queue <- p:
	default:
		w.p.Logger.Warn("approval webhook queue full; notification dropped", "approval_id", a.ID, "event", p.Type)
	}
}

// Run delivers queued notifications until ctx ends.
func (w *Webhook) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range webhookWorkers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case p := <-w.queue:
					w.deliver(ctx, p)
				}
			}
		})
	}
	wg.Wait()
}

// deliver posts p, retrying on a transport error or a status other than
// 2xx with exponential backoff.
func (w *Webhook) deliver(ctx context.Context, p webhookPayload) {
	body, err := json.Marshal(p)
	if err != nil {
		w.p.Logger.Error("approval webhook: encode", "err", err)
		return
	}
	wait := w.p.Backoff
	for attempt := 1; ; attempt++ {
		err := w.post(ctx, p.Type, body)
		if err == nil {
			return
		}
		if attempt >= w.p.Attempts || ctx.Err() != nil {
			w.p.Logger.Warn("approval webhook delivery failed", "approval_id", p.Approval.ID, "event", p.Type,
				"attempts", attempt, "err", err)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, maxWebhookBackoff)
	}
}

// Sign returns the signature header value of body sent at ts.
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (w *Webhook) post(ctx context.Context, typ string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.p.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(w.p.Clock().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "agentid-webhook/1")
	req.Header.Set(WebhookEventHeader, typ)
	req.Header.Set(WebhookTimestampHeader, ts)
	req.Header.Set(WebhookSignatureHeader, Sign(w.p.Secret, ts, body))
	resp, err := w.p.Client.Do(req) //nolint:gosec // G704: the operator configures the URL
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
