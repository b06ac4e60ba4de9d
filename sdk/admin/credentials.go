package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// ClientKey is a public key an agent authenticates with at the token
// endpoint (private_key_jwt, RFC 7523 §2.2). JWK is the public key only,
// with "kid" and "alg".
type ClientKey struct {
	ClientID   string          `json:"client_id"`
	KeyID      string          `json:"kid"`
	Algorithm  string          `json:"algorithm"`
	Thumbprint string          `json:"thumbprint"` // RFC 7638, base64url SHA-256
	JWK        json.RawMessage `json:"jwk"`
	CreatedAt  time.Time       `json:"created_at"`
	ExpiresAt  *time.Time      `json:"expires_at,omitempty"`
	Expired    bool            `json:"expired"`
}

// AddClientKeyRequest is the body of POST /v1/agents/{ref}/keys.
// PublicKey is a JWK (JSON object) or a PEM public key. Algorithm is
// optional: ES256 for P-256, EdDSA for Ed25519, RS256 (or PS256) for RSA.
type AddClientKeyRequest struct {
	PublicKey string     `json:"public_key"`
	Algorithm string     `json:"algorithm,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// ClientSecret describes an agent's client secret. The secret itself is
// returned once, at creation (CreatedClientSecret), and never again.
type ClientSecret struct {
	ID        string     `json:"id"`
	ClientID  string     `json:"client_id"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Expired   bool       `json:"expired"`
}

// CreateClientSecretRequest is the (optional) body of POST
// /v1/agents/{ref}/secrets.
type CreateClientSecretRequest struct {
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// CreatedClientSecret is the answer to POST /v1/agents/{ref}/secrets: the
// record and, this once, the secret.
type CreatedClientSecret struct {
	ClientSecret
	Secret string `json:"client_secret"`
}

// RevokeTokensRequest is the body of POST /v1/tokens/revoke: exactly one
// of JTI (one access token) and Agent (an agent id or name: every token
// issued to it until now).
type RevokeTokensRequest struct {
	JTI   string `json:"jti,omitempty"`
	Agent string `json:"agent,omitempty"`
}

// TokenRevocation is the answer to POST /v1/tokens/revoke. For a JTI,
// KeptUntil is when the revocation record is dropped (every token it could
// name has expired by then). For an agent, Agent is the agent with its new
// tokens_revoked_at.
type TokenRevocation struct {
	JTI       string     `json:"jti,omitempty"`
	Agent     *Agent     `json:"agent,omitempty"`
	RevokedAt time.Time  `json:"revoked_at"`
	KeptUntil *time.Time `json:"kept_until,omitempty"`
	// TokensAffected is, for a revocation by jti, how many live delegated
	// tokens exchanged from the token it made inactive (ADR 0014 §5).
	TokensAffected int64 `json:"tokens_affected,omitempty"`
}

// AddClientKey registers a public key of an agent.
func (c *Client) AddClientKey(ctx context.Context, ref string, r AddClientKeyRequest) (ClientKey, error) {
	var k ClientKey
	return k, c.do(ctx, http.MethodPost, agentPath(ref, "keys"), nil, r, &k)
}

// ListClientKeys returns every public key of an agent, expired ones
// included.
func (c *Client) ListClientKeys(ctx context.Context, ref string) ([]ClientKey, error) {
	var l List[ClientKey]
	return l.Items, c.do(ctx, http.MethodGet, agentPath(ref, "keys"), nil, nil, &l)
}

// RemoveClientKey removes an agent's public key.
func (c *Client) RemoveClientKey(ctx context.Context, ref, kid string) error {
	return c.doNoContent(ctx, http.MethodDelete, agentPath(ref, "keys")+"/"+url.PathEscape(kid))
}

// CreateClientSecret generates a client secret for an agent; the answer
// holds it once.
func (c *Client) CreateClientSecret(ctx context.Context, ref string, r CreateClientSecretRequest) (CreatedClientSecret, error) {
	var s CreatedClientSecret
	return s, c.do(ctx, http.MethodPost, agentPath(ref, "secrets"), nil, r, &s)
}

// ListClientSecrets returns an agent's client secrets (never the secrets
// themselves), expired ones included.
func (c *Client) ListClientSecrets(ctx context.Context, ref string) ([]ClientSecret, error) {
	var l List[ClientSecret]
	return l.Items, c.do(ctx, http.MethodGet, agentPath(ref, "secrets"), nil, nil, &l)
}

// RemoveClientSecret removes an agent's client secret.
func (c *Client) RemoveClientSecret(ctx context.Context, ref, id string) error {
	return c.doNoContent(ctx, http.MethodDelete, agentPath(ref, "secrets")+"/"+url.PathEscape(id))
}

// RevokeTokens revokes one access token or every token of an agent.
func (c *Client) RevokeTokens(ctx context.Context, r RevokeTokensRequest) (TokenRevocation, error) {
	var rev TokenRevocation
	return rev, c.do(ctx, http.MethodPost, "/v1/tokens/revoke", nil, r, &rev)
}

func agentPath(ref, sub string) string { return "/v1/agents/" + url.PathEscape(ref) + "/" + sub }

// doNoContent sends a request without a body and expects a 2xx answer
// whose body, if any, is ignored.
func (c *Client) doNoContent(ctx context.Context, method, path string) error {
	resp, err := c.send(ctx, method, path, nil, nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
