// Package credential mints and reads the credentials agentid issues: JWT
// access tokens per RFC 9068 carrying the four axes of an agent identity
// (agent, instance, delegation, task), and X.509-SVIDs and JWT-SVIDs per the
// SPIFFE X509-SVID and JWT-SVID specifications (SVIDIssuer). It does no
// I/O: signing keys come from a KeySource or a CA, and callers authorise
// requests and record issuance in the store and the audit trail.
package credential

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// TokenType is the JWS "typ" of an access token (RFC 9068 §2.1).
const TokenType = "at+jwt"

// Sentinel errors.
var (
	// ErrNoKey means no signing key is active.
	ErrNoKey = errors.New("credential: no active signing key")
	// ErrInvalidToken means a token is not one this issuer signed: malformed,
	// wrong type, unknown key, bad signature or wrong issuer.
	ErrInvalidToken = errors.New("credential: invalid token")
)

// KeySource gives the key that signs now and the public keys that verify.
// *keys.Manager implements it.
type KeySource interface {
	// Current is the active signing key; it does no I/O.
	Current() (*keys.ActiveKey, error)
	// PublicKey returns a published key by kid and its JWS algorithm.
	PublicKey(kid string) (crypto.PublicKey, string, bool)
}

// Issuer mints and parses access tokens for one issuer URL. It is safe for
// concurrent use.
type Issuer struct {
	iss  string
	keys KeySource
	rand io.Reader
}

// NewIssuer returns an Issuer. iss is the issuer identifier (RFC 8414 §2);
// rand must be a cryptographic source.
func NewIssuer(iss string, ks KeySource, rand io.Reader) (*Issuer, error) {
	if iss == "" || ks == nil || rand == nil {
		return nil, errors.New("credential: issuer, key source and rand are required")
	}
	return &Issuer{iss: iss, keys: ks, rand: rand}, nil
}

// Name is the issuer identifier.
func (i *Issuer) Name() string { return i.iss }

// Audience is the "aud" claim: a string when it has one value, an array
// otherwise (RFC 7519 §4.1.3).
type Audience []string

// MarshalJSON implements json.Marshaler.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("aud: %w", err)
	}
	*a = many
	return nil
}

// AgentClaim is the "agent" claim: which registered agent.
type AgentClaim struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Confirmation is the "cnf" claim (RFC 7800); JKT binds the token to a DPoP
// key (RFC 9449 §6.1), X5TS256 to a TLS client certificate (RFC 8705
// §3.1).
type Confirmation struct {
	JKT     string `json:"jkt,omitempty"`
	X5TS256 string `json:"x5t#S256,omitempty"`
}

// SubjectID is the "sub_id" claim of RFC 9493 §3.2.3 (format "iss_sub"):
// which issuer named the subject of a delegated token.
type SubjectID struct {
	Format  string `json:"format"`
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
}

// Claims is the claim set of an access token, in the order it is encoded.
// See docs/tokens.md.
type Claims struct {
	Issuer        string          `json:"iss"`
	Subject       string          `json:"sub"`
	SubjectID     *SubjectID      `json:"sub_id,omitempty"`
	Audience      Audience        `json:"aud"`
	ClientID      string          `json:"client_id"`
	IssuedAt      int64           `json:"iat"`
	NotBefore     int64           `json:"nbf"`
	Expiry        int64           `json:"exp"`
	JTI           string          `json:"jti"`
	Scope         string          `json:"scope,omitempty"`
	Agent         AgentClaim      `json:"agent"`
	AgentInstance string          `json:"agent_instance,omitempty"`
	Act           json.RawMessage `json:"act,omitempty"`
	GrantID       string          `json:"grant_id,omitempty"`
	TraceID       string          `json:"trace_id,omitempty"`
	ReasoningRef  string          `json:"reasoning_ref,omitempty"`
	Cnf           *Confirmation   `json:"cnf,omitempty"`
}

// AccessTokenParams describes one access token.
type AccessTokenParams struct {
	Agent    store.Agent
	Audience []string
	Scopes   []string
	// IssuedAt is the issue time; it is truncated to the second, as
	// NumericDate has no fraction here.
	IssuedAt time.Time
	TTL      time.Duration
	// Instance is the attested instance id, empty when not attested.
	Instance     string
	TraceID      string
	ReasoningRef string
	// JKT is the RFC 7638 thumbprint of the DPoP key the token is bound to,
	// empty for a bearer token.
	JKT string
	// X5T is the base64url SHA-256 of the DER of the TLS client
	// certificate the token is bound to (cnf x5t#S256, RFC 8705 §3.1).
	X5T string

	// Delegation (RFC 8693, ADR 0014): Subject, when set, is the sub in
	// place of the agent's SPIFFE ID (the person or delegating agent),
	// SubjectID names its issuer, Act is the actor chain with the agent as
	// the current actor, and GrantID the grant. Expiry, when set, is the
	// exp in place of IssuedAt + TTL (it must not be later).
	Subject   string
	SubjectID *SubjectID
	Act       json.RawMessage
	GrantID   string
	Expiry    time.Time
	// Impersonation issues a delegated token without Act: the agent acts
	// as the subject (ADR 0014 addendum B). Subject and GrantID are still
	// required.
	Impersonation bool
}

// AccessToken is a minted token.
type AccessToken struct {
	Raw    string
	KeyID  string
	Claims Claims
}

// ExpiresAt is the token's exp as a time.
func (t AccessToken) ExpiresAt() time.Time { return time.Unix(t.Claims.Expiry, 0).UTC() }

// IssueAccessToken mints an access token (RFC 9068 §2) signed with the
// current key.
func (i *Issuer) IssueAccessToken(p AccessTokenParams) (AccessToken, error) {
	if len(p.Audience) == 0 {
		return AccessToken{}, errors.New("credential: access token needs an audience")
	}
	if p.TTL < time.Second {
		return AccessToken{}, fmt.Errorf("credential: access token TTL %s is shorter than a second", p.TTL)
	}
	key, err := i.keys.Current()
	if err != nil {
		return AccessToken{}, fmt.Errorf("%w: %w", ErrNoKey, err)
	}
	iat := p.IssuedAt.Unix()
	jti, err := recordid.New(recordid.Token, p.IssuedAt, i.rand)
	if err != nil {
		return AccessToken{}, fmt.Errorf("credential: token id: %w", err)
	}
	exp := iat + int64(p.TTL/time.Second)
	if !p.Expiry.IsZero() {
		if p.Expiry.Unix() > exp || p.Expiry.Unix() <= iat {
			return AccessToken{}, errors.New("credential: access token expiry must be within its TTL and after its issue time")
		}
		exp = p.Expiry.Unix()
	}
	delegated := len(p.Act) > 0 || p.Impersonation
	switch {
	case p.Impersonation && len(p.Act) > 0:
		return AccessToken{}, errors.New("credential: an impersonation token has no act chain")
	case (p.Subject != "") != delegated || (p.GrantID != "") != delegated:
		return AccessToken{}, errors.New("credential: a delegated token needs a subject, an act chain (or impersonation) and a grant id")
	}
	sub := p.Agent.SPIFFEID
	if p.Subject != "" {
		sub = p.Subject
	}
	c := Claims{
		Issuer:        i.iss,
		Subject:       sub,
		SubjectID:     p.SubjectID,
		Audience:      Audience(p.Audience),
		ClientID:      p.Agent.ID,
		IssuedAt:      iat,
		NotBefore:     iat,
		Expiry:        exp,
		JTI:           jti,
		Scope:         strings.Join(p.Scopes, " "),
		Agent:         AgentClaim{ID: p.Agent.ID, Name: p.Agent.Name},
		AgentInstance: p.Instance,
		Act:           p.Act,
		GrantID:       p.GrantID,
		TraceID:       p.TraceID,
		ReasoningRef:  p.ReasoningRef,
	}
	if p.JKT != "" || p.X5T != "" {
		c.Cnf = &Confirmation{JKT: p.JKT, X5TS256: p.X5T}
	}
	raw, err := signJWS(key, TokenType, c)
	if err != nil {
		return AccessToken{}, err
	}
	return AccessToken{Raw: raw, KeyID: key.ID, Claims: c}, nil
}

// signJWS encodes the JWS compact serialisation (RFC 7515 §7.1) of claims,
// a struct that encodes as a JSON object, with the header {"alg", "kid",
// "typ"} signed by key.
func signJWS(key *keys.ActiveKey, typ string, claims any) (string, error) {
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{key.Algorithm, key.ID, typ})
	if err != nil {
		return "", fmt.Errorf("credential: encode header: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("credential: encode claims: %w", err)
	}
	enc := base64.RawURLEncoding
	hl, pl := enc.EncodedLen(len(header)), enc.EncodedLen(len(payload))
	buf := make([]byte, hl+1+pl, hl+1+pl+1+enc.EncodedLen(128))
	enc.Encode(buf, header)
	buf[hl] = '.'
	enc.Encode(buf[hl+1:], payload)
	sig, err := key.Sign(buf)
	if err != nil {
		return "", fmt.Errorf("credential: sign: %w", err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// MaxTokenBytes bounds a token ParseAccessToken reads.
const MaxTokenBytes = 16 << 10

// ParseAccessToken verifies that raw is an access token this issuer signed
// with a published key and returns its claims. It checks the JWS (one
// signature, an allowed algorithm, typ at+jwt, a known kid) and iss; it does
// not check times or revocation, which are the caller's to judge.
func (i *Issuer) ParseAccessToken(raw string) (Claims, error) {
	if len(raw) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, MaxTokenBytes)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if len(tok.Headers) != 1 {
		return Claims{}, fmt.Errorf("%w: want one signature", ErrInvalidToken)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, TokenType) {
		return Claims{}, fmt.Errorf("%w: typ is not %s", ErrInvalidToken, TokenType)
	}
	pub, alg, ok := i.keys.PublicKey(h.KeyID)
	if !ok || alg != h.Algorithm {
		return Claims{}, fmt.Errorf("%w: unknown key", ErrInvalidToken)
	}
	var c Claims
	if err := tok.Claims(pub, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Issuer != i.iss {
		return Claims{}, fmt.Errorf("%w: wrong issuer", ErrInvalidToken)
	}
	if c.JTI == "" || c.ClientID == "" {
		return Claims{}, fmt.Errorf("%w: jti and client_id are required", ErrInvalidToken)
	}
	return c, nil
}
