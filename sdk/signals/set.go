package signals

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/agentid/agentid/sdk/internal/jwks"
	"github.com/go-jose/go-jose/v4"
)

// maxSETBytes bounds one SET.
const maxSETBytes = 64 << 10

// SET error codes (RFC 8935 §2.4), sent back in setErrs (RFC 8936 §2.4.4).
const (
	codeInvalidRequest  = "invalid_request"
	codeInvalidKey      = "invalid_key"
	codeInvalidIssuer   = "invalid_issuer"
	codeInvalidAudience = "invalid_audience"
)

// setErr is why a SET was refused, as sent in setErrs. It is final: the
// transmitter will not deliver the SET again.
type setErr struct {
	Err         string `json:"err"`
	Description string `json:"description"`
}

func (e *setErr) Error() string { return "signals: SET refused: " + e.Err + ": " + e.Description }

func refuse(code, desc string) *setErr { return &setErr{Err: code, Description: desc} }

// effectKind is what a SET does to the revocations.
type effectKind int

const (
	effectNone           effectKind = iota // an event or subject not understood: ignored
	effectRevokeJTI                        // one token, by iss and jti
	effectRevokeSubject                    // an agent's tokens issued at or before at
	effectRevokeInstance                   // an agent instance's tokens
	effectRevokeGrant                      // a grant's tokens
	effectDisable                          // an agent's tokens, until enabled
	effectEnable                           // lifts effectDisable
	effectPurge                            // an agent's tokens, for good
	effectVerification                     // informational
	effectStreamUpdated                    // informational
)

// effect is the meaning of one SET for the receiver.
type effect struct {
	kind effectKind
	// iss and key name the target: key is a jti, a SPIFFE ID, an instance
	// or grant id, or a stream id; iss is the jti's issuer.
	iss, key string
	// at is the event time: event_timestamp, else the SET's iat.
	at time.Time
	// state, status and reason are the verification and stream-updated
	// members.
	state, status, reason string
}

// set is a verified Security Event Token (RFC 8417, SSF §4).
type set struct {
	JTI       string
	Issuer    string
	Audience  []string
	IssuedAt  time.Time
	TXN       string
	EventType string
	effect    effect
}

// keyLookup returns the issuer's keys with a kid.
type keyLookup func(ctx context.Context, kid string) ([]jose.JSONWebKey, error)

// verifySET verifies a SET in compact serialization and decodes it. The
// error is a *setErr when the SET is refused for good, a transient error
// (the keys could not be had) otherwise.
func verifySET(ctx context.Context, token, issuer, audience string, keys keyLookup) (*set, error) {
	if len(token) > maxSETBytes {
		return nil, refuse(codeInvalidRequest, "SET too large")
	}
	// RFC 8417 §2.3, SSF §4.1.1: explicit typing.
	payload, err := jwks.Verify(ctx, token, jwks.VerifyParams{Typ: "secevent+jwt", Algorithms: algorithms(), Keys: keys})
	var refused *jwks.RefusedError
	switch {
	case errors.As(err, &refused) && errors.Is(err, jwks.ErrSignature):
		return nil, refuse(codeInvalidKey, refused.Reason)
	case errors.As(err, &refused):
		return nil, refuse(codeInvalidRequest, refused.Reason)
	case errors.Is(err, errUnknownKey):
		return nil, refuse(codeInvalidKey, "unknown kid")
	case err != nil:
		return nil, err
	}
	return decodeSET(payload, issuer, audience)
}

// rawSET is a SET payload as received.
type rawSET struct {
	Issuer   string                     `json:"iss"`
	Audience json.RawMessage            `json:"aud"`
	IssuedAt json.RawMessage            `json:"iat"`
	JTI      string                     `json:"jti"`
	TXN      string                     `json:"txn"`
	SubID    json.RawMessage            `json:"sub_id"`
	Events   map[string]json.RawMessage `json:"events"`
}

// subjectID is a subject identifier (RFC 9493 §3, SSF §3.5), with the
// members of the formats used.
type subjectID struct {
	Format string `json:"format"`
	Iss    string `json:"iss"`
	Sub    string `json:"sub"`
	JTI    string `json:"jti"`
	ID     string `json:"id"`
}

// decodeSET decodes and checks a verified SET payload: iss, aud, jti, iat,
// a top-level sub_id and exactly one event (SSF §4.2.1), then reads what
// the event means. exp, sub and unknown members are ignored (SSF §4.2.3).
// The error is a *setErr.
func decodeSET(payload []byte, issuer, audience string) (*set, error) {
	var rs rawSET
	if err := json.Unmarshal(payload, &rs); err != nil {
		return nil, refuse(codeInvalidRequest, "claims are not a JSON object of the right types")
	}
	aud, ok := jwks.Audience(rs.Audience)
	switch {
	case rs.JTI == "":
		return nil, refuse(codeInvalidRequest, "no jti")
	case !ok:
		return nil, refuse(codeInvalidRequest, "aud is neither a string nor an array of strings")
	case len(rs.Events) != 1:
		return nil, refuse(codeInvalidRequest, "events does not hold exactly one event")
	case rs.Issuer != issuer:
		return nil, refuse(codeInvalidIssuer, "iss is not the issuer")
	case !contains(aud, audience):
		return nil, refuse(codeInvalidAudience, "aud does not include this receiver")
	}
	iat, err := jwks.NumericDate(rs.IssuedAt, true)
	if err != nil {
		return nil, refuse(codeInvalidRequest, "iat missing or not a number")
	}
	var sub subjectID
	if len(rs.SubID) == 0 || json.Unmarshal(rs.SubID, &sub) != nil || sub.Format == "" {
		return nil, refuse(codeInvalidRequest, "no sub_id subject identifier")
	}
	s := &set{JTI: rs.JTI, Issuer: rs.Issuer, Audience: aud, IssuedAt: iat, TXN: rs.TXN}
	for typ, ev := range rs.Events {
		if typ == "" {
			return nil, refuse(codeInvalidRequest, "event type is empty")
		}
		s.EventType = typ
		var desc string
		if s.effect, desc = readEvent(typ, ev, sub, iat); desc != "" {
			return nil, refuse(codeInvalidRequest, desc)
		}
	}
	return s, nil
}

// eventMembers are the event members read.
type eventMembers struct {
	EventTimestamp json.RawMessage `json:"event_timestamp"`
	State          json.RawMessage `json:"state"`
	Status         json.RawMessage `json:"status"`
	Reason         json.RawMessage `json:"reason"`
}

// readEvent returns what an event means, or a description of why it does
// not fit its definition.
func readEvent(typ string, raw json.RawMessage, sub subjectID, iat time.Time) (effect, string) {
	var m eventMembers
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return effect{}, "the event is not a JSON object"
	}
	at := iat
	if len(m.EventTimestamp) > 0 && string(m.EventTimestamp) != "null" {
		t, err := jwks.NumericDate(m.EventTimestamp, true)
		if err != nil {
			return effect{}, "event_timestamp is not a number"
		}
		at = t
	}
	switch typ {
	case EventSessionRevoked:
		switch sub.Format {
		case "jwt_id": // SSF §3.5.1
			if sub.Iss == "" || sub.JTI == "" {
				return effect{}, "jwt_id subject without iss or jti"
			}
			return effect{kind: effectRevokeJTI, iss: sub.Iss, key: sub.JTI, at: at}, ""
		case "iss_sub": // RFC 9493 §3.2.3
			if sub.Iss == "" || sub.Sub == "" {
				return effect{}, "iss_sub subject without iss or sub"
			}
			return effect{kind: effectRevokeSubject, iss: sub.Iss, key: sub.Sub, at: at}, ""
		case "opaque": // RFC 9493 §3.2.4
			switch {
			case sub.ID == "":
				return effect{}, "opaque subject without id"
			case strings.HasPrefix(sub.ID, "ins_"):
				return effect{kind: effectRevokeInstance, key: sub.ID, at: at}, ""
			case strings.HasPrefix(sub.ID, "grt_"):
				return effect{kind: effectRevokeGrant, key: sub.ID, at: at}, ""
			}
		}
		return effect{}, "" // a subject this receiver does not track (SSF §9: tolerate)
	case EventAccountDisabled, EventAccountEnabled, EventAccountPurged:
		if sub.Format != "iss_sub" {
			return effect{}, ""
		}
		if sub.Iss == "" || sub.Sub == "" {
			return effect{}, "iss_sub subject without iss or sub"
		}
		kind := map[string]effectKind{EventAccountDisabled: effectDisable, EventAccountEnabled: effectEnable, EventAccountPurged: effectPurge}[typ]
		return effect{kind: kind, iss: sub.Iss, key: sub.Sub, at: at}, ""
	case EventVerification: // SSF §8.1.4.1
		if sub.Format != "opaque" || sub.ID == "" {
			return effect{}, "verification event without an opaque stream subject"
		}
		state, ok := optString(m.State)
		if !ok {
			return effect{}, "state is not a string"
		}
		return effect{kind: effectVerification, key: sub.ID, at: at, state: state}, ""
	case EventStreamUpdated: // SSF §8.1.5
		if sub.Format != "opaque" || sub.ID == "" {
			return effect{}, "stream-updated event without an opaque stream subject"
		}
		status, ok := optString(m.Status)
		if !ok || status == "" {
			return effect{}, "stream-updated event without a status"
		}
		reason, _ := optString(m.Reason)
		return effect{kind: effectStreamUpdated, key: sub.ID, at: at, status: status, reason: reason}, ""
	}
	return effect{}, "" // an event type not understood (SSF §4.2.3: ignore)
}

// optString reads an optional string member.
func optString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
