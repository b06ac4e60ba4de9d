package nodeapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// Client limits and defaults.
const (
	// DefaultClientTimeout bounds one unary request when
	// ClientParams.Timeout is zero.
	DefaultClientTimeout = 10 * time.Second
	// MaxWatchLine bounds one line of the watch stream (a snapshot).
	MaxWatchLine = 64 << 20
	// maxAnswer bounds a unary answer.
	maxAnswer = 1 << 20
)

// Client errors. Other refusals (4xx) wrap ErrRejected; server failures
// (5xx) and transport errors are plain errors: retry those.
var (
	// ErrEvicted means the server answered 403: the node is evicted or
	// unknown. It needs a new join token.
	ErrEvicted = errors.New("nodeapi: the node is evicted")
	// ErrAgentUnavailable means the agent of an SVID request is unknown
	// (404), not active or expired, or has no selectors (409).
	ErrAgentUnavailable = errors.New("nodeapi: the agent gets no SVID")
	// ErrRejected means the server refused the request as malformed or
	// not allowed (another 4xx); the error says why.
	ErrRejected = errors.New("nodeapi: request rejected")
	// ErrWatchTimeout means the watch stream was silent for the watch
	// timeout (no snapshot nor heartbeat): reconnect.
	ErrWatchTimeout = errors.New("nodeapi: the watch stream is silent")
)

// ClientParams configures a Client.
type ClientParams struct {
	// Addr is host:port of the node API. Required.
	Addr string
	// TrustDomain is the node's trust domain: the server must present
	// spiffe://<TrustDomain>/agentid/server. Required.
	TrustDomain string
	// Authorities gives the X.509 authorities of the node's current trust
	// bundle; read at each handshake. Required.
	Authorities func() []*x509.Certificate
	// Certificate gives the node's current SVID and key; read at each
	// handshake. When it returns another certificate than before, new
	// requests use new connections. Required.
	Certificate func() (*tls.Certificate, error)
	// Timeout bounds one unary request; zero means DefaultClientTimeout.
	Timeout time.Duration
	// WatchTimeout is how long Watch waits for a message before
	// ErrWatchTimeout; zero means WatchTimeout (the constant).
	WatchTimeout time.Duration
}

// Client is the node's side of the node API: HTTP/2 over mutual TLS, the
// server verified as spiffe://<td>/agentid/server against the node's
// bundle with go-spiffe, the node's SVID presented as client certificate.
// It is safe for concurrent use.
type Client struct {
	p        ClientParams
	base     string
	td       spiffeid.TrustDomain
	serverID spiffeid.ID

	mu     sync.Mutex
	tr     *http.Transport
	trCert []byte // the leaf certificate tr's connections were made for
}

// NewClient returns a Client. It connects lazily.
func NewClient(p ClientParams) (*Client, error) {
	if _, _, err := net.SplitHostPort(p.Addr); err != nil || p.Addr == "" {
		return nil, fmt.Errorf("nodeapi: Addr %q is not host:port", p.Addr)
	}
	if p.Authorities == nil || p.Certificate == nil {
		return nil, errors.New("nodeapi: ClientParams.Authorities and Certificate are required")
	}
	if p.Timeout < 0 || p.WatchTimeout < 0 {
		return nil, errors.New("nodeapi: ClientParams.Timeout and WatchTimeout must not be negative")
	}
	td, err := spiffeid.TrustDomainFromString(p.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("nodeapi: trust domain: %w", err)
	}
	serverID, err := spiffeid.FromPath(td, ServerPath)
	if err != nil {
		return nil, fmt.Errorf("nodeapi: server id: %w", err)
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultClientTimeout
	}
	if p.WatchTimeout == 0 {
		p.WatchTimeout = WatchTimeout
	}
	return &Client{p: p, base: "https://" + p.Addr, td: td, serverID: serverID}, nil
}

// authorities is the node's bundle as a go-spiffe bundle source.
type authorities struct {
	td spiffeid.TrustDomain
	f  func() []*x509.Certificate
}

func (a authorities) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != a.td {
		return nil, fmt.Errorf("nodeapi: no bundle of trust domain %q", td)
	}
	return x509bundle.FromX509Authorities(a.td, a.f()), nil
}

// transport returns the transport for the node's current certificate: a
// new one (the old one's idle connections closed) when the certificate
// changed, so that requests stop using connections made with an old SVID.
func (c *Client) transport() (*http.Transport, error) {
	cert, err := c.p.Certificate()
	if err != nil {
		return nil, fmt.Errorf("nodeapi: client certificate: %w", err)
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, errors.New("nodeapi: client certificate: none")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tr != nil && bytes.Equal(c.trCert, cert.Certificate[0]) {
		return c.tr, nil
	}
	if c.tr != nil {
		c.tr.CloseIdleConnections()
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	tlsconfig.HookTLSClientConfig(cfg, authorities{td: c.td, f: c.p.Authorities}, tlsconfig.AuthorizeID(c.serverID))
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.p.Certificate() }
	c.tr = &http.Transport{
		TLSClientConfig:        cfg,
		ForceAttemptHTTP2:      true,
		DialContext:            (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:    10 * time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		HTTP2:                  &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
	c.trCert = bytes.Clone(cert.Certificate[0])
	return c.tr, nil
}

// CloseIdleConnections closes the connections no request uses.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tr != nil {
		c.tr.CloseIdleConnections()
	}
}

func (c *Client) httpClient() (*http.Client, error) {
	tr, err := c.transport()
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// Renew asks for a new SVID of the node for the key of csrDER (a PKCS #10
// request, DER).
func (c *Client) Renew(ctx context.Context, csrDER []byte) (X509SVID, error) {
	var out X509SVID
	return out, c.post(ctx, RenewPath, false, CSRRequest{CSR: csrDER}, &out)
}

// X509SVID asks for an X.509-SVID of the agent (agt_…) for the key of
// csrDER. ErrAgentUnavailable: the agent is unknown, not active or has no
// selectors.
func (c *Client) X509SVID(ctx context.Context, agentID string, csrDER []byte) (X509SVID, error) {
	var out X509SVID
	return out, c.post(ctx, agentPath(AgentX509SVIDPath, agentID), true, CSRRequest{CSR: csrDER}, &out)
}

// JWTSVID asks for a JWT-SVID of the agent (agt_…). ErrAgentUnavailable as
// X509SVID; a missing or bad audience is ErrRejected.
func (c *Client) JWTSVID(ctx context.Context, agentID string, r JWTSVIDRequest) (JWTSVID, error) {
	var out JWTSVID
	return out, c.post(ctx, agentPath(AgentJWTSVIDPath, agentID), true, r, &out)
}

// JWTSVIDs asks for several JWT-SVIDs in one request: one result per
// item, in order, each a JWTSVID or an error wrapping ErrAgentUnavailable
// or ErrRejected. The error JWTSVIDs returns concerns the whole request
// (ErrEvicted, ErrRejected for a malformed batch, or a failure worth a
// retry).
func (c *Client) JWTSVIDs(ctx context.Context, items []JWTSVIDsItem) ([]JWTSVIDResult, error) {
	var out JWTSVIDs
	if err := c.post(ctx, JWTSVIDsPath, false, JWTSVIDsRequest{Requests: items}, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != len(items) {
		return nil, fmt.Errorf("nodeapi: POST %s: %d results for %d requests", JWTSVIDsPath, len(out.Results), len(items))
	}
	res := make([]JWTSVIDResult, len(items))
	for i, r := range out.Results {
		if r.Problem != nil {
			res[i].Err = statusError(r.Problem.Status, r.Problem.Type, r.Problem.Detail, true)
			continue
		}
		res[i].JWTSVID = JWTSVID{Token: r.Token, ExpiresAt: r.ExpiresAt}
	}
	return res, nil
}

// JWTSVIDResult is one result of Client.JWTSVIDs.
type JWTSVIDResult struct {
	JWTSVID
	Err error
}

func agentPath(pattern, id string) string {
	return strings.Replace(pattern, "{id}", url.PathEscape(id), 1)
}

// post sends one unary request and decodes its answer.
func (c *Client) post(ctx context.Context, path string, agent bool, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.p.Timeout)
	defer cancel()
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("nodeapi: encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("nodeapi: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	hc, err := c.httpClient()
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("nodeapi: POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return answerError(resp, agent)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	switch {
	case err != nil:
		return fmt.Errorf("nodeapi: POST %s: read answer: %w", path, err)
	case len(b) > maxAnswer:
		return fmt.Errorf("nodeapi: POST %s: answer larger than %d bytes", path, maxAnswer)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("nodeapi: POST %s: malformed answer: %w", path, err)
	}
	return nil
}

// answerError is the error of a non-2xx answer, with its problem detail.
func answerError(resp *http.Response, agent bool) error {
	var p struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &p) != nil || p.Detail == "" {
		p.Detail = http.StatusText(resp.StatusCode)
	}
	return statusError(resp.StatusCode, p.Type, p.Detail, agent)
}

// statusError is the error of a problem with the status, type and detail;
// agent: the request was about an agent.
func statusError(status int, typ, detail string, agent bool) error {
	switch s := status; {
	case s == http.StatusForbidden:
		return fmt.Errorf("%w: %s", ErrEvicted, detail)
	case agent && (s == http.StatusNotFound || s == http.StatusConflict):
		return fmt.Errorf("%w: %s", ErrAgentUnavailable, detail)
	case s >= 400 && s < 500:
		return fmt.Errorf("%w (%d %s): %s", ErrRejected, s, typ, detail)
	default:
		return fmt.Errorf("nodeapi: the server answered %d: %s", s, detail)
	}
}

// Watch opens the watch stream and calls fn with each snapshot, in order,
// until ctx ends (ctx.Err()), the stream fails or ends (an error: the
// server ends the stream of a node it evicts, and the next call then gets
// ErrEvicted), WatchTimeout passes without a message (ErrWatchTimeout), or
// fn returns an error (that error). A 403 at the start is ErrEvicted.
func (c *Client) Watch(ctx context.Context, fn func(Snapshot) error) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var silent atomic.Bool
	timer := time.AfterFunc(c.p.WatchTimeout, func() { silent.Store(true); cancel() })
	defer timer.Stop()
	fail := func(err error) error {
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case silent.Load():
			return ErrWatchTimeout
		}
		return err
	}
	req, err := http.NewRequestWithContext(wctx, http.MethodGet, c.base+WatchPath, nil)
	if err != nil {
		return fmt.Errorf("nodeapi: %w", err)
	}
	req.Header.Set("Accept", "application/x-ndjson")
	hc, err := c.httpClient()
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fail(fmt.Errorf("nodeapi: GET %s: %w", WatchPath, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answerError(resp, false)
	}
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := readLine(r, MaxWatchLine)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("nodeapi: the watch stream ended: %w", err)
			} else {
				err = fmt.Errorf("nodeapi: watch stream: %w", err)
			}
			return fail(err)
		}
		timer.Reset(c.p.WatchTimeout)
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m, err := decodeWatchLine(line)
		if err != nil {
			return err
		}
		if m.Type == MessageSnapshot {
			if err := fn(*m.Snapshot); err != nil {
				return err
			}
		}
	}
}

// readLine reads one line of at most limit bytes, without its newline.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > limit+1 {
			return nil, fmt.Errorf("a line is longer than %d bytes", limit)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// decodeWatchLine decodes one line of the watch stream. Unknown fields and
// message types are ignored (a newer server); a snapshot message must
// carry a snapshot with a revision and a bundle. Safe on any input.
func decodeWatchLine(line []byte) (WatchMessage, error) {
	var m WatchMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return WatchMessage{}, fmt.Errorf("nodeapi: malformed watch message: %w", err)
	}
	if m.Type == MessageSnapshot {
		switch {
		case m.Snapshot == nil:
			return WatchMessage{}, errors.New("nodeapi: malformed watch message: a snapshot message without a snapshot")
		case m.Snapshot.Revision == "":
			return WatchMessage{}, errors.New("nodeapi: malformed watch message: a snapshot without a revision")
		case len(m.Snapshot.Bundle) == 0 || string(m.Snapshot.Bundle) == "null":
			return WatchMessage{}, errors.New("nodeapi: malformed watch message: a snapshot without a bundle")
		}
	}
	return m, nil
}
