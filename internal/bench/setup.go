package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentid/agentid/sdk/admin"
)

// Metadata is the part of the RFC 8414 authorization server metadata the
// bench uses.
type Metadata struct {
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
	JWKSURI       string `json:"jwks_uri"`
}

// discover reads the server's RFC 8414 metadata.
func discover(ctx context.Context, hc *http.Client, base string) (Metadata, error) {
	var md Metadata
	if err := getJSON(ctx, hc, base+metadataPath, &md); err != nil {
		return md, err
	}
	if md.Issuer == "" || md.TokenEndpoint == "" || md.JWKSURI == "" {
		return md, fmt.Errorf("bench: %s%s lacks issuer, token_endpoint or jwks_uri: does the server serve the token endpoint?", base, metadataPath)
	}
	return md, nil
}

func getJSON(ctx context.Context, hc *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("bench: GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: GET %s: HTTP %d", u, resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("bench: GET %s: %w", u, err)
	}
	return nil
}

// Names of what the bench registers in agentid.
const (
	benchOwner    = "bench@example.com"
	benchAgent    = "bench-agent"
	benchAudience = "https://api.example.com"
	benchScope    = "tickets:read"
)

// credentials are the bench agent's client credentials.
type credentials struct {
	ClientID string
	KeyID    string
	Secret   string //nolint:gosec // a throwaway secret of a temporary server
}

// register creates, through the admin API, an owner and an agent with one
// audience and one scope, registers the client's ES256 public key and
// creates a client secret.
func register(ctx context.Context, hello Hello, pubPEM []byte) (credentials, error) {
	c, err := admin.New(hello.URL, hello.AdminToken, admin.WithUserAgent("agentid-bench"))
	if err != nil {
		return credentials{}, fmt.Errorf("bench: %w", err)
	}
	if _, err := c.CreateOwner(ctx, admin.CreateOwnerRequest{Email: benchOwner, DisplayName: "Benchmark"}); err != nil {
		return credentials{}, fmt.Errorf("bench: create owner: %w", err)
	}
	a, err := c.CreateAgent(ctx, admin.CreateAgentRequest{
		Name: benchAgent, Purpose: "Token endpoint benchmark", Owners: []string{benchOwner},
		Audiences: []string{benchAudience}, Scopes: []string{benchScope},
	})
	if err != nil {
		return credentials{}, fmt.Errorf("bench: create agent: %w", err)
	}
	k, err := c.AddClientKey(ctx, a.ID, admin.AddClientKeyRequest{PublicKey: string(pubPEM), Algorithm: "ES256"})
	if err != nil {
		return credentials{}, fmt.Errorf("bench: add client key: %w", err)
	}
	s, err := c.CreateClientSecret(ctx, a.ID, admin.CreateClientSecretRequest{})
	if err != nil {
		return credentials{}, fmt.Errorf("bench: create client secret: %w", err)
	}
	id := a.ClientID
	if id == "" {
		id = a.ID
	}
	return credentials{ClientID: id, KeyID: k.KeyID, Secret: s.Secret}, nil
}

// verifyToken checks a sample access token as a resource server would:
// an ES256 signature by a key of the server's JWKS, the issuer, and the
// client_id of the bench client.
func verifyToken(ctx context.Context, hc *http.Client, md Metadata, raw, clientID string) error {
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, hc, md.JWKSURI, &set); err != nil {
		return err
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrToken, err)
	}
	if len(tok.Headers) != 1 {
		return fmt.Errorf("%w: %d signatures", ErrToken, len(tok.Headers))
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) == 0 {
		return fmt.Errorf("%w: kid %q is not in the JWKS", ErrToken, tok.Headers[0].KeyID)
	}
	var claims struct {
		jwt.Claims
		ClientID string `json:"client_id"`
	}
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		return fmt.Errorf("%w: %w", ErrToken, err)
	}
	switch {
	case claims.Issuer != md.Issuer:
		return fmt.Errorf("%w: iss %q, want %q", ErrToken, claims.Issuer, md.Issuer)
	case claims.ClientID != clientID:
		return fmt.Errorf("%w: client_id %q, want %q", ErrToken, claims.ClientID, clientID)
	case !slices.Contains(claims.Audience, benchAudience):
		return fmt.Errorf("%w: aud %v lacks %s", ErrToken, claims.Audience, benchAudience)
	}
	return nil
}
