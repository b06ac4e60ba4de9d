package store

import (
	"context"
	"time"
)

// Grant lets one agent act for one subject (a person named by a trusted
// issuer, or an agent named by agentid itself) within bounds: ADR 0014.
// Grants are never deleted; revocation sets RevokedAt once.
type Grant struct {
	ID            string // grt_…
	SubjectIssuer string // the issuer that names the subject
	Subject       string // the subject claim of that issuer
	SubjectEmail  string // "" when not mapped
	AgentID       string // agt_…, the agent that may act
	Scopes        []string
	ActionClasses []string
	Audiences     []string
	ExpiresAt     time.Time // required
	MaxDepth      int       // the longest act chain under the grant, ≥ 1
	// AllowSubdelegation lets an actor exchange its delegated token for
	// another agent.
	AllowSubdelegation bool
	CreatedByType      string // an audit actor type: admin or person
	CreatedBy          string // the admin token id, or the person's subject
	CreatedAt          time.Time
	RevokedAt          time.Time // zero: not revoked
	RevokedBy          string
	RevokeReason       string
	Version            int64 // 1 on create, +1 on every update
}

// GrantFilter narrows ListGrants. Zero fields do not filter.
type GrantFilter struct {
	AgentID string
	// SubjectIssuer and Subject filter on the delegating subject; Subject
	// without SubjectIssuer matches it under any issuer.
	SubjectIssuer string
	Subject       string
	// SubjectEmail keeps grants whose SubjectEmail equals it up to the
	// case of ASCII letters (FoldEmail), under any issuer.
	SubjectEmail string
	// ActiveAt keeps grants that are neither revoked nor expired at it.
	ActiveAt time.Time
}

// FoldEmail is the key emails are matched by: s with its ASCII letters
// lowered. Other letters are kept as they are, so the key is the same in
// Go, SQLite's lower() and a translate() of A–Z on PostgreSQL.
func FoldEmail(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// ExchangedToken records one access token issued by a token exchange, so
// that revoking its grant, an agent of its chain or an ancestor token
// makes it inactive (ADR 0014 §3, §5).
type ExchangedToken struct {
	JTI     string
	GrantID string
	AgentID string   // the actor holding the token
	Chain   []string // agent ids of the act chain, the holder first
	Subject string   // the token's sub
	// ParentJTI, ParentAgentID and ParentIssuedAt describe the subject
	// token when it was one of agentid's own; empty for a person's token.
	ParentJTI      string
	ParentAgentID  string
	ParentIssuedAt time.Time
	IssuedAt       time.Time
	ExpiresAt      time.Time
}

// ExchangedTokenFilter selects exchanged tokens to count. Exactly one of
// GrantID, AgentID and AncestorJTI is set; LiveAt is required.
type ExchangedTokenFilter struct {
	GrantID string
	// AgentID counts the tokens a suspension of the agent makes
	// inactive: those whose chain holds the agent, those exchanged from
	// one of the agent's own tokens (ParentAgentID), and their
	// descendants.
	AgentID string
	// AncestorJTI counts the tokens descending from the jti through
	// ParentJTI, at any depth.
	AncestorJTI string
	// LiveAt counts tokens with ExpiresAt after it.
	LiveAt time.Time
}

// GrantReader reads grants and exchanged-token records.
type GrantReader interface {
	// GetGrant returns ErrNotFound when no grant has the id.
	GetGrant(ctx context.Context, id string) (Grant, error)
	// ListGrants returns matching grants in id (creation) order and the
	// next page token.
	ListGrants(ctx context.Context, f GrantFilter, p Page) ([]Grant, string, error)
	// GetExchangedToken returns ErrNotFound when no exchanged token has
	// the jti (or its record was collected).
	GetExchangedToken(ctx context.Context, jti string) (ExchangedToken, error)
	// CountExchangedTokens counts the live exchanged tokens f selects;
	// ErrInvalid when f does not set exactly one selector and LiveAt.
	CountExchangedTokens(ctx context.Context, f ExchangedTokenFilter) (int64, error)
}

// GrantWriter changes grants and records exchanged tokens.
type GrantWriter interface {
	// CreateGrant stores a new grant with Version 1; ErrAlreadyExists when
	// the id is taken, ErrInvalid when a required field (ID, SubjectIssuer,
	// Subject, AgentID, ExpiresAt, CreatedBy, CreatedAt) is missing,
	// MaxDepth is below 1, or the agent does not exist.
	CreateGrant(ctx context.Context, g Grant) (Grant, error)
	// UpdateGrant has the contract of AgentWriter.UpdateAgent: only
	// RevokedAt, RevokedBy and RevokeReason can change (Version is set by
	// the store).
	UpdateGrant(ctx context.Context, id string, fn func(Grant) (Grant, error)) (Grant, error)
	// RecordExchangedToken stores t; ErrAlreadyExists when the jti is
	// taken, ErrInvalid when a required field (JTI, GrantID, AgentID,
	// Chain, Subject, IssuedAt, ExpiresAt) is missing or the grant does not
	// exist.
	RecordExchangedToken(ctx context.Context, t ExchangedToken) error
	// CollectExchangedTokens deletes the records whose expiry is not after
	// now and reports how many went.
	CollectExchangedTokens(ctx context.Context, now time.Time) (int64, error)
}
