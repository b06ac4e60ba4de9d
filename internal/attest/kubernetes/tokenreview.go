package kubernetes

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentid/agentid/internal/attest"
)

// TokenReview configures the TokenReview check (ADR 0015 addendum E):
// after its signature and claims verify, a token is sent to the cluster's
// API server (POST /apis/authentication.k8s.io/v1/tokenreviews), which
// says whether it is still valid — a token of a deleted pod is not,
// although its signature and exp still are.
type TokenReview struct {
	// APIServer is the API server's URL (https).
	APIServer string
	// CAFile is a PEM file of the CA certificates that verify the API
	// server; empty: the system's roots.
	CAFile string
	// ReviewerTokenFile is a file holding the bearer token of the review
	// request (a service account allowed to create tokenreviews, e.g.
	// bound to system:auth-delegator); read at each review, since
	// projected tokens rotate. Empty: the reviewed token itself is the
	// bearer (its service account then needs that permission, and the
	// API server must accept its audience).
	ReviewerTokenFile string
	// Timeout bounds a review; zero: 10 s.
	Timeout time.Duration
	// CacheTTL, when positive, is how long the API server's acceptance of
	// a token is reused (kept by the token's SHA-256, never the token,
	// and never past the token's expiry): a pod deleted meanwhile is
	// noticed up to CacheTTL late. Refusals are never cached. Zero: every
	// attestation asks the API server.
	CacheTTL time.Duration
}

// maxReviewCache bounds the tokens whose acceptance is cached.
const maxReviewCache = 10_000

// maxReviewBody bounds a TokenReview answer.
const maxReviewBody = 64 << 10

// reviewer posts TokenReviews to one API server.
type reviewer struct {
	url       string
	tokenFile string
	audience  string
	client    *http.Client

	ttl   time.Duration
	clock func() time.Time
	mu    sync.Mutex
	ok    map[[sha256.Size]byte]time.Time // accepted token → until when the answer is reused
}

// accepted reports whether the API server accepted the token with hash h
// less than the cache TTL ago.
func (r *reviewer) accepted(h [sha256.Size]byte) bool {
	if r.ttl <= 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.ok[h]
	if ok && !r.clock().Before(until) {
		delete(r.ok, h)
		return false
	}
	return ok
}

// accept remembers that the API server accepted the token with hash h,
// until the cache TTL has passed or the token expires.
func (r *reviewer) accept(h [sha256.Size]byte, expiry time.Time) {
	if r.ttl <= 0 {
		return
	}
	now := r.clock()
	until := now.Add(r.ttl)
	if !expiry.IsZero() && expiry.Before(until) {
		until = expiry
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ok) >= maxReviewCache {
		for k, u := range r.ok {
			if !now.Before(u) {
				delete(r.ok, k)
			}
		}
		if len(r.ok) >= maxReviewCache {
			clear(r.ok)
		}
	}
	r.ok[h] = until
}

func newReviewer(c TokenReview, audience string, clock func() time.Time) (*reviewer, error) {
	u, err := url.Parse(c.APIServer)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("token review: api server %q: want https://host[:port]", c.APIServer)
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 10 * time.Second}
	if c.CAFile != "" {
		b, err := os.ReadFile(filepath.Clean(c.CAFile))
		if err != nil {
			return nil, fmt.Errorf("token review: ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("token review: ca file %s holds no PEM certificate", c.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if c.ReviewerTokenFile != "" {
		if _, err := readBearer(c.ReviewerTokenFile); err != nil {
			return nil, err
		}
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if c.CacheTTL < 0 {
		return nil, fmt.Errorf("token review: cache ttl %s is negative", c.CacheTTL)
	}
	return &reviewer{
		url: strings.TrimSuffix(u.String(), "/") + "/apis/authentication.k8s.io/v1/tokenreviews", tokenFile: c.ReviewerTokenFile,
		audience: audience, client: &http.Client{Transport: tr, Timeout: timeout},
		ttl: c.CacheTTL, clock: clock, ok: map[[sha256.Size]byte]time.Time{},
	}, nil
}

// readBearer reads a bearer token file.
func readBearer(path string) (string, error) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return "", fmt.Errorf("token review: reviewer token: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, attest.MaxTokenBytes+1))
	switch tok := strings.TrimSpace(string(b)); {
	case err != nil:
		return "", fmt.Errorf("token review: reviewer token: %w", err)
	case len(b) > attest.MaxTokenBytes || tok == "":
		return "", fmt.Errorf("token review: reviewer token file %s is empty or too long", path)
	default:
		return tok, nil
	}
}

// tokenReview is the authentication.k8s.io/v1 TokenReview object.
type tokenReview struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Spec       tokenReviewSpec   `json:"spec"`
	Status     tokenReviewStatus `json:"status,omitzero"`
}

type tokenReviewSpec struct {
	Token     string   `json:"token"`
	Audiences []string `json:"audiences,omitempty"`
}

type tokenReviewStatus struct {
	Authenticated bool     `json:"authenticated"`
	Audiences     []string `json:"audiences,omitempty"`
	User          struct {
		Username string              `json:"username"`
		Extra    map[string][]string `json:"extra,omitempty"`
	} `json:"user"`
	Error string `json:"error,omitempty"`
}

// podUIDExtra is the user extra the API server sets for a pod-bound token.
const podUIDExtra = "authentication.kubernetes.io/pod-uid"

// review asks the API server about raw, whose verified evidence is ev. A
// token the server does not authenticate, or authenticates as another
// user or pod, is refused (ErrInvalid); a failed request is
// ErrUnavailable (fail closed).
func (a *Attestor) review(ctx context.Context, raw string, ev attest.Evidence) error {
	r := a.reviewer
	h := sha256.Sum256([]byte(raw))
	if r.accepted(h) {
		return nil
	}
	bearer := raw
	if r.tokenFile != "" {
		var err error
		if bearer, err = readBearer(r.tokenFile); err != nil {
			return a.unavailable(err)
		}
	}
	body, err := json.Marshal(tokenReview{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview",
		Spec: tokenReviewSpec{Token: raw, Audiences: []string{r.audience}}})
	if err != nil {
		return a.unavailable(fmt.Errorf("token review: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return a.unavailable(fmt.Errorf("token review: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := r.client.Do(req)
	if err != nil {
		// url.Error names the URL, never the request's headers.
		return a.unavailable(fmt.Errorf("token review: %w", err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReviewBody+1))
	switch {
	case err != nil:
		return a.unavailable(fmt.Errorf("token review: reading the answer: %w", err))
	case len(b) > maxReviewBody:
		return a.unavailable(errors.New("token review: the answer is too long"))
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated:
		return a.unavailable(fmt.Errorf("token review: the API server answered %s", resp.Status))
	}
	if err := a.judge(b, ev); err != nil {
		return err
	}
	r.accept(h, ev.Expiry)
	return nil
}

// judge decides on a TokenReview answer. Safe on any input.
func (a *Attestor) judge(b []byte, ev attest.Evidence) error {
	var tr tokenReview
	if err := json.Unmarshal(b, &tr); err != nil || tr.Kind != "TokenReview" {
		return a.unavailable(errors.New("token review: the answer is not a TokenReview"))
	}
	st := tr.Status
	switch {
	case !st.Authenticated:
		return attest.Refuse(a, "the API server no longer accepts the token (TokenReview: not authenticated; deleted pod or service account?)")
	case st.User.Username != ev.Subject:
		return attest.Refuse(a, "TokenReview authenticated another user than the token's sub")
	case len(st.Audiences) > 0 && !slices.Contains(st.Audiences, a.cfg.Audience):
		return attest.Refuse(a, "TokenReview did not accept the configured audience")
	}
	if uids, ok := st.User.Extra[podUIDExtra]; ok && !slices.Equal(uids, []string{ev.Key}) {
		return attest.Refuse(a, "TokenReview authenticated another pod than the token's")
	}
	return nil
}

// unavailable is an ErrUnavailable *Error of a, with the cause.
func (a *Attestor) unavailable(err error) *attest.Error {
	return &attest.Error{Kind: attest.ErrUnavailable, Reason: "the API server could not review the token", Attestor: a.cfg.Name,
		Method: attest.MethodKubernetes, Issuer: a.cfg.Issuer, Err: err}
}
