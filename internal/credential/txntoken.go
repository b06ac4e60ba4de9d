package credential

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentid/agentid/internal/recordid"
)

// Transaction tokens (draft-ietf-oauth-transaction-tokens-10, ADR 0014
// addendum A).
const (
	// TxnTokenType is the JWS "typ" of a transaction token (draft §4.1).
	TxnTokenType = "txntoken+jwt" //nolint:gosec // G101: a media type, not a credential
	// TxnIDPrefix prefixes the txn id agentid assigns to a transaction.
	TxnIDPrefix = "txn"
	// MaxTxnTokenTTL caps a transaction token's lifetime.
	MaxTxnTokenTTL = 5 * time.Minute
)

// TxnClaims is the claim set of a transaction token (draft §4.2), in the
// order it is encoded. See docs/tokens.md.
type TxnClaims struct {
	Issuer    string     `json:"iss"`
	IssuedAt  int64      `json:"iat"`
	Audience  string     `json:"aud"`
	Expiry    int64      `json:"exp"`
	Txn       string     `json:"txn"`
	Subject   string     `json:"sub"`
	SubjectID *SubjectID `json:"sub_id,omitempty"`
	Scope     string     `json:"scope"`
	// TCtx is the immutable transaction context (request_details).
	TCtx json.RawMessage `json:"tctx,omitempty"`
	// RCtx is the request context asserted by agentid.
	RCtx json.RawMessage `json:"rctx,omitempty"`
	// ReqWL is the requesting workload: the agent's SPIFFE ID.
	ReqWL   string          `json:"req_wl"`
	Agent   AgentClaim      `json:"agent"`
	Act     json.RawMessage `json:"act,omitempty"`
	GrantID string          `json:"grant_id,omitempty"`
	TraceID string          `json:"trace_id,omitempty"`
}

// TxnTokenParams describes one transaction token.
type TxnTokenParams struct {
	// Txn is the transaction id; empty assigns a new one (txn_…). A
	// replacement token keeps its predecessor's.
	Txn string
	// Audience is the trust domain name.
	Audience  string
	Subject   string
	SubjectID *SubjectID
	Scopes    []string
	TCtx      json.RawMessage
	RCtx      json.RawMessage
	// Requester is the requesting agent (req_wl is its SPIFFE ID).
	Requester AgentClaim
	ReqWL     string
	Act       json.RawMessage
	GrantID   string
	TraceID   string
	// IssuedAt is truncated to the second; Expiry must be after it and at
	// most MaxTxnTokenTTL later.
	IssuedAt time.Time
	Expiry   time.Time
}

// TxnToken is a minted transaction token.
type TxnToken struct {
	Raw    string
	KeyID  string
	Claims TxnClaims
}

// IssueTxnToken mints a transaction token signed with the current key,
// with the JWS header {"alg", "kid", "typ": "txntoken+jwt"}.
func (i *Issuer) IssueTxnToken(p TxnTokenParams) (TxnToken, error) {
	iat := p.IssuedAt.Unix()
	exp := p.Expiry.Unix()
	switch {
	case p.Audience == "" || p.Subject == "" || p.ReqWL == "" || len(p.Scopes) == 0:
		return TxnToken{}, errors.New("credential: a transaction token needs an audience, a subject, a requesting workload and a scope")
	case exp <= iat || exp-iat > int64(MaxTxnTokenTTL/time.Second):
		return TxnToken{}, fmt.Errorf("credential: a transaction token lives more than 0 and at most %s", MaxTxnTokenTTL)
	}
	key, err := i.keys.Current()
	if err != nil {
		return TxnToken{}, fmt.Errorf("%w: %w", ErrNoKey, err)
	}
	txn := p.Txn
	if txn == "" {
		if txn, err = recordid.New(TxnIDPrefix, p.IssuedAt, i.rand); err != nil {
			return TxnToken{}, fmt.Errorf("credential: txn id: %w", err)
		}
	}
	c := TxnClaims{
		Issuer: i.iss, IssuedAt: iat, Audience: p.Audience, Expiry: exp, Txn: txn,
		Subject: p.Subject, SubjectID: p.SubjectID, Scope: strings.Join(p.Scopes, " "),
		TCtx: p.TCtx, RCtx: p.RCtx, ReqWL: p.ReqWL, Agent: p.Requester, Act: p.Act, GrantID: p.GrantID, TraceID: p.TraceID,
	}
	raw, err := signJWS(key, TxnTokenType, c)
	if err != nil {
		return TxnToken{}, err
	}
	return TxnToken{Raw: raw, KeyID: key.ID, Claims: c}, nil
}

// ParseTxnToken verifies that raw is a transaction token this issuer
// signed with a published key (one signature, ES256 or EdDSA, typ
// txntoken+jwt, a known kid, iss) and returns its claims. Times and the
// audience are the caller's to judge.
func (i *Issuer) ParseTxnToken(raw string) (TxnClaims, error) {
	if len(raw) > MaxTokenBytes {
		return TxnClaims{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, MaxTokenBytes)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		return TxnClaims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if len(tok.Headers) != 1 {
		return TxnClaims{}, fmt.Errorf("%w: want one signature", ErrInvalidToken)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, TxnTokenType) {
		return TxnClaims{}, fmt.Errorf("%w: typ is not %s", ErrInvalidToken, TxnTokenType)
	}
	pub, alg, ok := i.keys.PublicKey(h.KeyID)
	if !ok || alg != h.Algorithm {
		return TxnClaims{}, fmt.Errorf("%w: unknown key", ErrInvalidToken)
	}
	var c TxnClaims
	if err := tok.Claims(pub, &c); err != nil {
		return TxnClaims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	switch {
	case c.Issuer != i.iss:
		return TxnClaims{}, fmt.Errorf("%w: wrong issuer", ErrInvalidToken)
	case c.Txn == "" || c.Subject == "" || c.Audience == "" || c.ReqWL == "":
		return TxnClaims{}, fmt.Errorf("%w: txn, sub, aud and req_wl are required", ErrInvalidToken)
	}
	return c, nil
}
