package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// maxRedirects bounds the redirects one fetch follows.
const maxRedirects = 3

// newClient returns the HTTP client of the https_web profile (SPIFFE
// Federation §5.2.1.4): TLS 1.2 or later, the server certificate verified
// against roots (nil: the system's) for the URL's host, redirects followed
// only to valid bundle endpoint URLs (https, no user information) and
// verified alike, each request bounded by timeout.
func newClient(roots *x509.CertPool, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			if err := checkEndpoint(req.URL); err != nil {
				return fmt.Errorf("redirected to a URL that is not a bundle endpoint: %w", err)
			}
			return nil
		},
	}
}

// fetch GETs the bundle of d from its endpoint and parses it for d's trust
// domain. It returns the document as received.
func (m *Manager) fetch(ctx context.Context, d *Domain) ([]byte, *spiffebundle.Bundle, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.EndpointURL, http.NoBody)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, nil, fmt.Errorf("the endpoint answered %s", resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxBundleBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read the bundle: %w", err)
	}
	b, err := ParseBundle(d.TrustDomain, raw)
	if err != nil {
		return nil, nil, err
	}
	return raw, b, nil
}

// ParseBundle parses a SPIFFE bundle document of trustDomain (SPIFFE Trust
// Domain and Bundle §4) from untrusted bytes: at most MaxBundleBytes,
// parsed by go-spiffe's spiffebundle.Parse, with at least one X.509 or JWT
// authority, and no X.509 authority naming another trust domain (a CA
// certificate whose URI SANs hold a SPIFFE ID must hold only
// spiffe://<trustDomain>). It wraps ErrWrongTrustDomain for the latter.
// Safe on any input.
func ParseBundle(trustDomain string, raw []byte) (*spiffebundle.Bundle, error) {
	if len(raw) > MaxBundleBytes {
		return nil, fmt.Errorf("the bundle is larger than %d bytes", MaxBundleBytes)
	}
	if len(raw) == 0 {
		return nil, errors.New("the bundle is empty")
	}
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return nil, fmt.Errorf("trust domain %q: %w", trustDomain, err)
	}
	b, err := spiffebundle.Parse(td, raw)
	if err != nil {
		return nil, err
	}
	if len(b.X509Authorities()) == 0 && len(b.JWTAuthorities()) == 0 {
		return nil, errors.New("the bundle has no X.509 or JWT authorities")
	}
	for _, c := range b.X509Authorities() {
		for _, u := range c.URIs {
			if u.Scheme != "spiffe" {
				continue
			}
			if id, err := spiffeid.FromURI(u); err != nil || id.TrustDomain() != td || id.Path() != "" {
				return nil, fmt.Errorf("%w: an X.509 authority (%s) names %s, not spiffe://%s",
					ErrWrongTrustDomain, c.Subject.String(), u.Redacted(), trustDomain)
			}
		}
	}
	return b, nil
}

// view is the Bundle of a parsed bundle document.
func view(td string, raw []byte, b *spiffebundle.Bundle, fetchedAt time.Time) (Bundle, error) {
	jwks, err := b.JWTBundle().Marshal()
	if err != nil {
		return Bundle{}, fmt.Errorf("federation: encode the JWT authorities of %s: %w", td, err)
	}
	v := Bundle{
		TrustDomain: td, JSON: raw, X509Authorities: b.X509Authorities(), JWTAuthorities: b.JWTAuthorities(),
		JWTJWKS: jwks, FetchedAt: fetchedAt, parsed: b,
	}
	v.Sequence, _ = b.SequenceNumber()
	if h, ok := b.RefreshHint(); ok && h > 0 {
		v.RefreshHint = h
	}
	return v, nil
}

// interval is how long after a successful fetch of b the next is due: its
// refresh hint (DefaultRefresh without one) within [MinRefresh,
// MaxRefresh].
func interval(b *spiffebundle.Bundle) time.Duration {
	d := DefaultRefresh
	if b != nil {
		if h, ok := b.RefreshHint(); ok {
			d = h
		}
	}
	return min(max(d, MinRefresh), MaxRefresh)
}

// backoff is how long after the n-th failed fetch in a row the next is
// tried: MinRefresh doubling with every failure, at most the refresh
// interval of the bundle in use (b, nil for none).
func backoff(n int, b *spiffebundle.Bundle) time.Duration {
	limit := interval(b)
	d := MinRefresh
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// storedSequence is a bundle's sequence as the store keeps it.
func storedSequence(b *spiffebundle.Bundle) int64 {
	s, _ := b.SequenceNumber()
	if s > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(s)
}
