package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// metadata is the part of RFC 8414 authorization server metadata the agent
// uses.
type metadata struct {
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
}

// metadataURL returns the RFC 8414 §3.1 metadata URL of an issuer: the
// well-known path goes between the host and the issuer's path.
func metadataURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("agent: issuer %q is not an http(s) URL without query and fragment", issuer)
	}
	u.Path = "/.well-known/oauth-authorization-server" + strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// discover fetches the issuer's metadata and checks that it names the issuer
// (RFC 8414 §3.3) and an http(s) token endpoint.
func discover(ctx context.Context, hc *http.Client, issuer string) (metadata, error) {
	mu, err := metadataURL(issuer)
	if err != nil {
		return metadata{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mu, nil)
	if err != nil {
		return metadata{}, fmt.Errorf("agent: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return metadata{}, fmt.Errorf("agent: discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return metadata{}, fmt.Errorf("agent: discovery: %s answered HTTP %d", mu, resp.StatusCode)
	}
	var md metadata
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&md); err != nil {
		return metadata{}, fmt.Errorf("agent: discovery: metadata: %w", err)
	}
	if strings.TrimRight(md.Issuer, "/") != strings.TrimRight(issuer, "/") {
		return metadata{}, fmt.Errorf("agent: discovery: metadata names issuer %q, want %q", md.Issuer, issuer)
	}
	if !httpURL(md.TokenEndpoint) {
		return metadata{}, fmt.Errorf("agent: discovery: metadata has no http(s) token_endpoint")
	}
	return md, nil
}

// maxNonces bounds the origins whose DPoP nonce is remembered.
const maxNonces = 1024

// nonces remembers the last DPoP-Nonce of each origin (RFC 9449 §8).
type nonces struct {
	mu sync.Mutex
	m  map[string]string
}

// origin returns scheme://host of a URL, the key of a nonce.
func origin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

func (n *nonces) get(rawURL string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m[origin(rawURL)]
}

// update records nonce for the URL's origin. A nonce that is not RFC 9449
// §8.1 syntax (1*NQCHAR) is ignored.
func (n *nonces) update(rawURL, nonce string) {
	if !validNonce(nonce) {
		return
	}
	o := origin(rawURL)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil || (len(n.m) >= maxNonces && n.m[o] == "") {
		n.m = map[string]string{}
	}
	n.m[o] = nonce
}

// validNonce reports whether s is a DPoP nonce: 1*NQCHAR (RFC 9449 §8.1),
// at most 1 KiB.
func validNonce(s string) bool {
	if s == "" || len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
