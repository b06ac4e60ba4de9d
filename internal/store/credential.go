package store

import (
	"context"
	"time"
)

// Credential kinds recorded by the store.
const (
	CredentialX509SVID = "x509_svid"
	CredentialJWTSVID  = "jwt_svid"
)

// IssuedCredential records one credential issued to an agent, so that an
// operator can list what an agent holds and a node can re-issue
// everything a tainted CA signed. Access tokens are not recorded here (ADR
// 0007: the audit trail records them); SVIDs are.
type IssuedCredential struct {
	Kind       string   // CredentialX509SVID or CredentialJWTSVID
	ID         string   // X.509: the serial number in lowercase hex; JWT: the jti
	AgentID    string   // agt_…
	InstanceID string   // ins_…, "" when not attested
	SPIFFEID   string   // the SVID's subject
	Audience   []string // JWT-SVID audiences; nil for X.509
	KeyID      string   // the CA key (X.509) or signing key (JWT) that signed it
	IssuedAt   time.Time
	ExpiresAt  time.Time
}

// CredentialFilter narrows ListCredentials. Zero fields do not filter.
type CredentialFilter struct {
	Kind    string
	AgentID string
	KeyID   string
	// LiveAt keeps credentials with ExpiresAt after it.
	LiveAt time.Time
}

// CredentialReader reads issued credentials.
type CredentialReader interface {
	// ListCredentials returns matching credentials in (IssuedAt, Kind, ID)
	// order and the next page token.
	ListCredentials(ctx context.Context, f CredentialFilter, p Page) ([]IssuedCredential, string, error)
}

// CredentialWriter records issued credentials.
type CredentialWriter interface {
	// RecordCredential stores c; ErrAlreadyExists when (Kind, ID) is taken,
	// ErrInvalid when a required field (Kind, ID, AgentID, SPIFFEID,
	// KeyID, IssuedAt, ExpiresAt) is missing or the agent does not exist.
	RecordCredential(ctx context.Context, c IssuedCredential) error
	// CollectCredentials deletes credentials that expired before now and
	// reports how many went.
	CollectCredentials(ctx context.Context, now time.Time) (int64, error)
}
