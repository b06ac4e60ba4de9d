package credential

import (
	"encoding/json"
	"fmt"
	"time"
)

// SETType is the JWS "typ" of a Security Event Token (RFC 8417 §2.3).
const SETType = "secevent+jwt"

// SETParams is one Security Event Token to sign.
type SETParams struct {
	Audience []string
	JTI      string
	IssuedAt time.Time
	// SubID, Txn and Events are the SET's sub_id, txn and events claims
	// as JSON (SubID and Txn may be empty).
	SubID  json.RawMessage
	Txn    string
	Events json.RawMessage
}

// setClaims is the claim set of a SET: RFC 8417 §2.2 as profiled by SSF
// 1.0 §4 (sub_id top-level, no exp, no sub).
type setClaims struct {
	Issuer   string          `json:"iss"`
	Audience Audience        `json:"aud"`
	IssuedAt int64           `json:"iat"`
	JTI      string          `json:"jti"`
	SubID    json.RawMessage `json:"sub_id,omitempty"`
	Txn      string          `json:"txn,omitempty"`
	Events   json.RawMessage `json:"events"`
}

// IssueSET signs a Security Event Token with the key that signs access
// tokens now, so receivers verify it with the issuer's JWKS.
func (i *Issuer) IssueSET(p SETParams) (string, error) {
	if len(p.Audience) == 0 || p.JTI == "" || len(p.Events) == 0 {
		return "", fmt.Errorf("credential: a SET needs an audience, a jti and events")
	}
	key, err := i.keys.Current()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoKey, err)
	}
	return signJWS(key, SETType, setClaims{
		Issuer: i.iss, Audience: Audience(p.Audience), IssuedAt: p.IssuedAt.Unix(), JTI: p.JTI,
		SubID: p.SubID, Txn: p.Txn, Events: p.Events,
	})
}
