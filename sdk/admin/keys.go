package admin

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// SigningKey is a token signing key as GET /v1/keys lists it: its public
// facts and life, never key material (the public key itself is in the
// JWKS). ID is the JWS "kid".
type SigningKey struct {
	ID        string `json:"id"`
	Algorithm string `json:"algorithm"`
	Purpose   string `json:"purpose"`
	// State at the time of the answer: pending (published, not yet
	// signing), active (signing), retired (still published for the tokens
	// it signed) or removed (no longer published).
	State      string     `json:"state"`
	PublishAt  time.Time  `json:"publish_at"`
	ActivateAt time.Time  `json:"activate_at"`
	RetireAt   *time.Time `json:"retire_at,omitempty"`
	RemoveAt   *time.Time `json:"remove_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
}

// Signing key states.
const (
	SigningKeyPending = "pending"
	SigningKeyActive  = "active"
	SigningKeyRetired = "retired"
	SigningKeyRemoved = "removed"
)

// ListSigningKeys returns the token signing keys in activation order:
// those published now, and with includeRemoved also those no longer
// published.
func (c *Client) ListSigningKeys(ctx context.Context, includeRemoved bool) ([]SigningKey, error) {
	q := url.Values{}
	if includeRemoved {
		q.Set("include_removed", "true")
	}
	var l List[SigningKey]
	return l.Items, c.do(ctx, http.MethodGet, "/v1/keys", q, nil, &l)
}

// RotateSigningKey creates a successor of the newest signing key. It is
// published at once and signs only after the JWKS cache lifetime, so no
// verifier meets an unknown kid; the key it replaces stays published until
// the tokens it signed have expired.
func (c *Client) RotateSigningKey(ctx context.Context) (SigningKey, error) {
	var k SigningKey
	return k, c.do(ctx, http.MethodPost, "/v1/keys/rotate", nil, struct{}{}, &k)
}
