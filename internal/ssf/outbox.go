// Package ssf is agentid's OpenID Shared Signals Framework 1.0 transmitter
// (ADR 0026): it tells receivers — resource servers that verify agentid's
// tokens offline — when tokens stop being good before they expire, as
// Security Event Tokens (RFC 8417) delivered by polling (RFC 8936).
//
// The events come from the audit trail: the Outbox turns each revocation,
// suspension, resumption and deprovisioning recorded by the audit.Recorder
// into an outbox event in the same transaction, keyed by the audit
// event's sequence number, so an event is in the outbox exactly when the
// change it reports committed, in commit order.
package ssf

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

// Event type URIs agentid transmits.
const (
	// EventSessionRevoked (CAEP 1.0 §3.1) reports revoked tokens: one
	// token (sub_id format jwt_id), every token issued to an agent until
	// event_timestamp (iss_sub with the agent's SPIFFE ID), the tokens of
	// an instance (opaque, ins_…) or of a delegation grant (opaque,
	// grt_…).
	EventSessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	// EventAccountDisabled (RISC 1.0 §2.3) reports a suspended agent:
	// its tokens are inactive until EventAccountEnabled.
	EventAccountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	// EventAccountEnabled (RISC 1.0 §2.4) reports a resumed agent.
	EventAccountEnabled = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
	// EventAccountPurged (RISC 1.0 §2.2) reports a deprovisioned agent:
	// its tokens are inactive for good.
	EventAccountPurged = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	// EventVerification (SSF 1.0 §8.1.4.1) answers a receiver's
	// verification request on its stream.
	EventVerification = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	// EventStreamUpdated (SSF 1.0 §8.1.5) reports a stream's new status.
	EventStreamUpdated = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
)

// Supported is every event type a stream can deliver, sorted.
func Supported() []string {
	return []string{EventAccountDisabled, EventAccountEnabled, EventAccountPurged, EventSessionRevoked,
		EventStreamUpdated, EventVerification}
}

// Audit event types the outbox reads.
const (
	auditCredentialRevoked  = "credential.revoked" //nolint:gosec // an event type, not a credential
	auditAgentSuspended     = "agent.suspended"
	auditAgentResumed       = "agent.resumed"
	auditAgentDeprovisioned = "agent.deprovisioned"
	auditInstanceRevoked    = "instance.revoked"
	auditGrantRevoked       = "grant.revoked"
)

// Subject is an RFC 9493 subject identifier (sub_id), in the formats
// agentid uses.
type Subject struct {
	Format string `json:"format"`
	Iss    string `json:"iss,omitempty"`
	Sub    string `json:"sub,omitempty"`
	JTI    string `json:"jti,omitempty"`
	ID     string `json:"id,omitempty"`
	URI    string `json:"uri,omitempty"`
}

// body is the part of a SET the outbox keeps: every claim but iss, aud,
// iat and jti, which each stream's delivery adds.
type body struct {
	SubID  *Subject                  `json:"sub_id,omitempty"`
	Txn    string                    `json:"txn,omitempty"`
	Events map[string]map[string]any `json:"events"`
}

// Outbox turns audit events into SSF outbox events. Its OnAppend is an
// audit.RecorderParams.OnAppend hook.
type Outbox struct {
	issuer string
}

// NewOutbox returns the outbox of the transmitter named issuer (the SETs'
// iss, and the iss of the tokens they name).
func NewOutbox(issuer string) *Outbox { return &Outbox{issuer: issuer} }

// OnAppend stores the outbox event for rec, the audit event ev just
// appended in tx, when ev reports tokens that stopped being good. Other
// events, failures and repeated revocations store nothing.
func (o *Outbox) OnAppend(ctx context.Context, tx store.Tx, rec store.AuditRecord, ev audit.Event) error {
	typ, b, ok := o.mapEvent(ev)
	if !ok {
		return nil
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("ssf: encode event: %w", err)
	}
	if err := tx.AppendSSFEvent(ctx, store.SSFEvent{Seq: rec.Seq, Type: typ, Time: rec.Time, Body: raw}); err != nil {
		return fmt.Errorf("ssf: outbox: %w", err)
	}
	return nil
}

// mapEvent is the event type and body reporting ev, if any.
func (o *Outbox) mapEvent(ev audit.Event) (string, body, bool) {
	switch ev.Type {
	case auditCredentialRevoked, auditAgentSuspended, auditAgentResumed, auditAgentDeprovisioned,
		auditInstanceRevoked, auditGrantRevoked:
	default:
		// Every audit event passes here (tokens, decisions): allocate
		// nothing for the ones that report no revocation.
		return "", body{}, false
	}
	if ev.Outcome != audit.Success {
		return "", body{}, false
	}
	if ev.Details != nil && ev.Details["already_revoked_at"] != nil {
		return "", body{}, false // reported by the first revocation
	}
	members := map[string]any{"event_timestamp": ev.Time.Unix()}
	if ev.Actor != nil {
		members["initiating_entity"] = initiatingEntity(ev.Actor.Type)
	}
	if ev.Reason != "" {
		members["reason_admin"] = map[string]string{"en": ev.Reason}
	}
	b := body{Events: map[string]map[string]any{}}
	if ev.Task != nil {
		b.Txn = ev.Task.TraceID
	}
	agent := func() (*Subject, bool) {
		if ev.Agent == nil || ev.Agent.SPIFFEID == "" {
			return nil, false
		}
		return &Subject{Format: "iss_sub", Iss: o.issuer, Sub: ev.Agent.SPIFFEID}, true
	}
	var typ string
	switch ev.Type {
	case auditCredentialRevoked:
		typ = EventSessionRevoked
		if jti, _ := ev.Details["jti"].(string); jti != "" {
			b.SubID = &Subject{Format: "jwt_id", Iss: o.issuer, JTI: jti}
			break
		}
		at, _ := ev.Details["tokens_revoked_at"].(string)
		t, err := time.Parse(time.RFC3339Nano, at)
		s, ok := agent()
		if err != nil || !ok {
			return "", body{}, false
		}
		b.SubID = s
		members["event_timestamp"] = t.Unix()
	case auditAgentSuspended, auditAgentResumed, auditAgentDeprovisioned:
		typ = map[string]string{auditAgentSuspended: EventAccountDisabled, auditAgentResumed: EventAccountEnabled,
			auditAgentDeprovisioned: EventAccountPurged}[ev.Type]
		s, ok := agent()
		if !ok {
			return "", body{}, false
		}
		b.SubID = s
		// RISC's members are the event's own: no CAEP ones.
		members = map[string]any{}
	case auditInstanceRevoked:
		if ev.Instance == nil || ev.Instance.ID == "" {
			return "", body{}, false
		}
		typ = EventSessionRevoked
		b.SubID = &Subject{Format: "opaque", ID: ev.Instance.ID}
	case auditGrantRevoked:
		if ev.Delegation == nil || ev.Delegation.GrantID == "" {
			return "", body{}, false
		}
		typ = EventSessionRevoked
		b.SubID = &Subject{Format: "opaque", ID: ev.Delegation.GrantID}
	default:
		return "", body{}, false
	}
	b.Events[typ] = members
	return typ, b, true
}

// initiatingEntity is CAEP's initiating_entity (§2) for an audit actor
// type.
func initiatingEntity(actorType string) string {
	switch actorType {
	case audit.ActorAdmin:
		return "admin"
	case audit.ActorPerson, audit.ActorAgent:
		return "user"
	default:
		return "system"
	}
}
