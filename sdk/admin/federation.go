package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"
)

// FederatedTrustDomain is a foreign SPIFFE trust domain this one federates
// with, as GET /v1/federation lists it: its bundle endpoint, and the
// bundle last obtained from it (docs/spiffe.md#federation).
type FederatedTrustDomain struct {
	TrustDomain           string `json:"trust_domain"`
	BundleEndpointURL     string `json:"bundle_endpoint_url"`
	BundleEndpointProfile string `json:"bundle_endpoint_profile"`
	// HasBundle is false until a bundle was fetched (or configured as
	// initial bundle); the fields below describe the bundle in use.
	HasBundle          bool   `json:"has_bundle"`
	Sequence           uint64 `json:"sequence"`
	RefreshHintSeconds int64  `json:"refresh_hint_seconds,omitempty"`
	X509Authorities    int    `json:"x509_authorities"`
	JWTAuthorities     int    `json:"jwt_authorities"`
	// FetchedAt is when the bundle was last fetched (absent: the initial
	// bundle, or none); RefreshAt when the next fetch is due.
	FetchedAt *time.Time `json:"fetched_at,omitempty"`
	RefreshAt *time.Time `json:"refresh_at,omitempty"`
	// LastError is why the last fetch failed (absent when it succeeded);
	// Failures counts the failures since the last success.
	LastError string `json:"last_error,omitempty"`
	Failures  int    `json:"failures"`
}

func federationPath(td, sub string) string {
	return "/v1/federation/" + url.PathEscape(td) + "/" + sub
}

// ListFederation returns every foreign trust domain configured for
// federation, in trust domain order.
func (c *Client) ListFederation(ctx context.Context) (List[FederatedTrustDomain], error) {
	var l List[FederatedTrustDomain]
	return l, c.do(ctx, http.MethodGet, "/v1/federation", nil, nil, &l)
}

// RefreshFederatedBundle fetches the bundle of the foreign trust domain td
// now and returns its status. A failed fetch is a *Problem of type
// ProblemBundleFetchFailed; the last good bundle stays in use.
func (c *Client) RefreshFederatedBundle(ctx context.Context, td string) (FederatedTrustDomain, error) {
	var f FederatedTrustDomain
	return f, c.do(ctx, http.MethodPost, federationPath(td, "refresh"), nil, struct{}{}, &f)
}

// FederatedBundle returns the stored bundle document of the foreign trust
// domain td (SPIFFE Trust Domain and Bundle §4) as it was fetched,
// unparsed.
func (c *Client) FederatedBundle(ctx context.Context, td string) (json.RawMessage, error) {
	resp, err := c.send(ctx, http.MethodGet, federationPath(td, "bundle"), nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, &Problem{Status: resp.StatusCode, Title: "Bad answer", Detail: "the server did not answer a JSON bundle"}
	}
	return json.RawMessage(b), nil
}
