package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"
)

// SVID types of IssueSVIDRequest.Type.
const (
	SVIDTypeX509 = "x509"
	SVIDTypeJWT  = "jwt"
)

// Kinds of an issued SVID record (SVIDRecord.Kind).
const (
	SVIDKindX509 = "x509_svid"
	SVIDKindJWT  = "jwt_svid"
)

// IssueSVIDRequest is the body of POST /v1/agents/{ref}/svids. Type is
// "x509" (then CSR, a PEM PKCS #10 request whose key the SVID certifies;
// the names it asks for are ignored) or "jwt" (then Audience, at least
// one). TTL is a Go duration ("1h", "5m"); empty: 1 h for X.509, 5 min
// for JWT, and never longer than the agent's max TTL.
type IssueSVIDRequest struct {
	Type     string   `json:"type"`
	CSR      string   `json:"csr,omitempty"`
	Audience []string `json:"audience,omitempty"`
	TTL      string   `json:"ttl,omitempty"`
}

// IssuedSVID is the answer to POST /v1/agents/{ref}/svids: for an X.509-SVID
// its serial and certificate chain (PEM, the SVID first, without the
// root), for a JWT-SVID its jti and the token itself.
type IssuedSVID struct {
	Type         string    `json:"type"`
	SPIFFEID     string    `json:"spiffe_id"`
	Serial       string    `json:"serial,omitempty"`
	JTI          string    `json:"jti,omitempty"`
	ExpiresAt    time.Time `json:"expires_at"`
	CertChainPEM string    `json:"cert_chain_pem,omitempty"`
	Token        string    `json:"token,omitempty"`
}

// SVIDRecord is an SVID issued to an agent as GET /v1/agents/{ref}/svids
// lists it: never the SVID itself. Serial is set for an X.509-SVID, JTI
// and Audience for a JWT-SVID; KeyID is the CA key or JWT signing key that
// signed it.
type SVIDRecord struct {
	Kind       string    `json:"kind"`
	Serial     string    `json:"serial,omitempty"`
	JTI        string    `json:"jti,omitempty"`
	SPIFFEID   string    `json:"spiffe_id"`
	InstanceID string    `json:"instance_id,omitempty"`
	Audience   []string  `json:"audience,omitempty"`
	KeyID      string    `json:"key_id"`
	IssuedAt   time.Time `json:"issued_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Expired    bool      `json:"expired"`
}

// IssueSVID mints an SVID for an agent.
func (c *Client) IssueSVID(ctx context.Context, ref string, r IssueSVIDRequest) (IssuedSVID, error) {
	var s IssuedSVID
	return s, c.do(ctx, http.MethodPost, agentPath(ref, "svids"), nil, r, &s)
}

// ListSVIDs returns one page of the SVIDs issued to an agent, oldest
// first, kept until a day after they expire.
func (c *Client) ListSVIDs(ctx context.Context, ref string, pageSize int, pageToken string) (List[SVIDRecord], error) {
	q := url.Values{}
	page(q, pageSize, pageToken)
	var l List[SVIDRecord]
	return l, c.do(ctx, http.MethodGet, agentPath(ref, "svids"), q, nil, &l)
}

// BundlePath is the path of the SPIFFE bundle endpoint.
const BundlePath = "/spiffe/bundle"

// TrustBundle returns the trust domain's SPIFFE bundle document (SPIFFE
// Trust Domain and Bundle §4) as the bundle endpoint serves it, unparsed.
// The endpoint needs no admin token.
func (c *Client) TrustBundle(ctx context.Context) (json.RawMessage, error) {
	resp, err := c.send(ctx, http.MethodGet, BundlePath, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, &Problem{Status: resp.StatusCode, Title: "Bad answer", Detail: "the bundle endpoint did not answer JSON"}
	}
	return json.RawMessage(b), nil
}
