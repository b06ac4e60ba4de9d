package admin

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// CA is the trust domain's X.509 certificate authority as GET /v1/ca
// shows it: its keys in activation order (docs/spiffe.md).
type CA struct {
	TrustDomain string `json:"trust_domain"`
	// Upstream is true when the deployment's upstream CA signs the CA
	// certificates (agentid is an intermediate); false for self-signed
	// roots.
	Upstream bool    `json:"upstream"`
	Items    []CAKey `json:"items"`
}

// CAKey is one key of the CA: its life, whether it is tainted, and its
// certificate. It never holds the private key. ID is the key id that SVID
// issuance records name.
type CAKey struct {
	ID string `json:"id"`
	// State at the time of the answer: pending (in the trust bundle, not
	// yet signing), active (signing), retired (still in the bundle until
	// every SVID it signed has expired) or removed.
	State      string     `json:"state"`
	PublishAt  time.Time  `json:"publish_at"`
	ActivateAt time.Time  `json:"activate_at"`
	RetireAt   *time.Time `json:"retire_at,omitempty"`
	RemoveAt   *time.Time `json:"remove_at,omitempty"`
	// Tainted marks a key found compromised: everything it signed must be
	// re-issued.
	Tainted   bool       `json:"tainted"`
	TaintedAt *time.Time `json:"tainted_at,omitempty"`
	// Subject, Serial (lowercase hex), NotBefore and NotAfter are the CA
	// certificate's.
	Subject   string    `json:"subject"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// Fingerprint is the lowercase hex SHA-256 of the certificate's DER.
	Fingerprint string `json:"fingerprint"`
	// Certificate is the CA certificate in PEM; Chain, in upstream mode,
	// the upstream intermediates that follow it (PEM), else omitted.
	Certificate string    `json:"certificate"`
	Chain       string    `json:"chain,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// GetCA returns the CA and its keys: those published now, and with
// includeRemoved also those no longer in the trust bundle.
func (c *Client) GetCA(ctx context.Context, includeRemoved bool) (CA, error) {
	q := url.Values{}
	if includeRemoved {
		q.Set("include_removed", "true")
	}
	var out CA
	return out, c.do(ctx, http.MethodGet, "/v1/ca", q, nil, &out)
}

// RotateCA creates and certifies a successor CA key now. It is in the
// trust bundle at once and signs only after a third of the CA lifetime;
// the key it replaces stays in the bundle until the SVIDs it signed have
// expired.
func (c *Client) RotateCA(ctx context.Context) (CAKey, error) {
	var k CAKey
	return k, c.do(ctx, http.MethodPost, "/v1/ca/rotate", nil, struct{}{}, &k)
}

// TaintCA marks the CA key kid compromised. If it signs now, a successor
// signs at once, and nodes re-issue every SVID the tainted key signed. It
// returns the tainted key.
func (c *Client) TaintCA(ctx context.Context, kid string) (CAKey, error) {
	var k CAKey
	return k, c.do(ctx, http.MethodPost, "/v1/ca/"+url.PathEscape(kid)+"/taint", nil, struct{}{}, &k)
}
