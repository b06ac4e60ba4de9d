package nodeapi

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/svid"
	"github.com/agentid/agentid/sdk/admin"
)

// Limits and timings of the handler.
const (
	// MaxBodyBytes bounds a request body, MaxBatchBodyBytes that of
	// JWTSVIDsPath.
	MaxBodyBytes      = 64 << 10
	MaxBatchBodyBytes = 1 << 20
	// NodeCacheTTL is how long the handler trusts what it read of a node
	// (that it exists and is not evicted): an eviction stops a node's
	// requests within it.
	NodeCacheTTL = time.Second
	// MaxJWTSVIDTTL bounds JWTSVIDRequest.TTLSeconds (the agent's policy
	// caps it further).
	MaxJWTSVIDTTL = 24 * time.Hour
	// readTimeout bounds the reading of a unary request's body and
	// writeTimeout one write of the watch stream.
	readTimeout  = 30 * time.Second
	writeTimeout = 30 * time.Second
	// nodeCacheSweep is the number of cached nodes above which expired
	// entries are dropped.
	nodeCacheSweep = 4096
)

// NodeRegistry is what the handler needs of the node registry.
// *noderegistry.Service implements it.
type NodeRegistry interface {
	// Get returns the node; noderegistry.ErrNotFound when unknown.
	Get(ctx context.Context, id string) (store.Node, error)
	// Renew issues a new SVID to a node that is not evicted.
	Renew(ctx context.Context, p noderegistry.RenewParams) (noderegistry.NodeSVID, error)
}

// SVIDService issues agents' SVIDs. *svid.Service implements it.
type SVIDService interface {
	IssueX509(ctx context.Context, o audit.Origin, p svid.X509Params) (credential.X509SVID, store.Agent, error)
	IssueJWT(ctx context.Context, o audit.Origin, p svid.JWTParams) (credential.JWTSVID, store.Agent, error)
	IssueJWTs(ctx context.Context, o audit.Origin, ps []svid.JWTParams) ([]svid.JWTResult, error)
}

// Snapshots is the source of the watch stream. *Hub implements it.
type Snapshots interface {
	// For returns the snapshot published last as node n sees it: only
	// the agents n serves (noderegistry.Serves), with its own revision;
	// false before the first.
	For(n store.Node) (Snapshot, bool)
	// Changed is closed when the next snapshot is published.
	Changed() <-chan struct{}
}

// HandlerParams configures a Handler.
type HandlerParams struct {
	// TrustDomain is the trust domain whose nodes may call. Required.
	TrustDomain string
	// Nodes, SVIDs and Hub serve the endpoints. Required.
	Nodes NodeRegistry
	SVIDs SVIDService
	Hub   Snapshots
	// HeartbeatInterval is the watch stream's heartbeat period; zero
	// means HeartbeatInterval (the constant).
	HeartbeatInterval time.Duration
	// Clock is the time source. Required.
	Clock func() time.Time
	// Rand makes trace ids; default crypto/rand.Reader.
	Rand io.Reader
	// Logger receives internal failures; nil discards them.
	Logger *slog.Logger
}

// Handler serves the node API (docs/adr/0012-node-api.md) behind the TLS
// configuration of ServerTLSConfig: the TLS layer has verified the
// client's certificate chain as an X.509-SVID of a node of the trust
// domain, and the handler takes the node id from it. Each request then
// checks that the node exists and is not evicted (read at most
// NodeCacheTTL ago): otherwise 403. A node gets the SVIDs, and sees on
// its watch stream, only of the agents it serves (their node scope, ADR
// 0019); any other agent is answered as unknown (404). Errors are RFC
// 9457 problem+json with the admin API's problem types. A Handler is safe
// for concurrent use.
type Handler struct {
	p       HandlerParams
	td      string
	mux     *http.ServeMux
	closing chan struct{}
	closed  sync.Once

	mu    sync.Mutex
	nodes map[string]nodeEntry

	lineMu sync.Mutex
	lines  map[string][]byte // encoded snapshots by revision
}

type nodeEntry struct {
	node store.Node // as read
	ok   bool       // exists and is not evicted
	at   time.Time
}

// NewHandler returns a Handler.
func NewHandler(p HandlerParams) (*Handler, error) {
	switch {
	case p.TrustDomain == "":
		return nil, errors.New("nodeapi: HandlerParams.TrustDomain is required")
	case p.Nodes == nil, p.SVIDs == nil, p.Hub == nil:
		return nil, errors.New("nodeapi: HandlerParams.Nodes, SVIDs and Hub are required")
	case p.Clock == nil:
		return nil, errors.New("nodeapi: HandlerParams.Clock is required")
	case p.HeartbeatInterval < 0:
		return nil, errors.New("nodeapi: HandlerParams.HeartbeatInterval must not be negative")
	}
	if p.HeartbeatInterval == 0 {
		p.HeartbeatInterval = HeartbeatInterval
	}
	if p.Rand == nil {
		p.Rand = rand.Reader
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{p: p, td: p.TrustDomain, closing: make(chan struct{}), nodes: map[string]nodeEntry{}, lines: map[string][]byte{}}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc(RenewPath, h.method(http.MethodPost, h.renew))
	h.mux.HandleFunc(AgentX509SVIDPath, h.method(http.MethodPost, h.agentX509SVID))
	h.mux.HandleFunc(AgentJWTSVIDPath, h.method(http.MethodPost, h.agentJWTSVID))
	h.mux.HandleFunc(JWTSVIDsPath, h.method(http.MethodPost, h.jwtSVIDs))
	h.mux.HandleFunc(WatchPath, h.method(http.MethodGet, h.watch))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.problem(w, r, &problemError{status: http.StatusNotFound, typ: problemNotFound, title: "Not found", detail: "no such endpoint"})
	})
	return h, nil
}

// CloseWatches ends every watch stream, now and from now on (for a
// shutdown, which does not wait for streams). Nodes reconnect.
func (h *Handler) CloseWatches() { h.closed.Do(func() { close(h.closing) }) }

// request is the authenticated context of one request.
type request struct {
	node   string
	rec    store.Node // the node's record, read at most NodeCacheTTL ago
	leaf   *x509.Certificate
	origin audit.Origin
}

type requestKey struct{}

// ServeHTTP authenticates the node, then serves the endpoint.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	trace := h.traceID(r)
	rq := &request{origin: audit.Origin{TraceID: trace}}
	r = r.WithContext(context.WithValue(r.Context(), requestKey{}, rq))
	rec, leaf, err := h.authenticate(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	node := rec.ID
	rq.node, rq.rec, rq.leaf = node, rec, leaf
	rq.origin = audit.Origin{
		Actor:   audit.Actor{Type: audit.ActorNode, ID: node},
		Source:  audit.Source{IP: remoteIP(r), UserAgent: truncate(r.UserAgent(), 256), Node: node},
		TraceID: trace,
	}
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

func requestOf(r *http.Request) *request {
	rq, _ := r.Context().Value(requestKey{}).(*request)
	if rq == nil {
		rq = &request{}
	}
	return rq
}

// method refuses other methods than m with 405.
func (h *Handler) method(m string, fn func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m {
			w.Header().Set("Allow", m)
			h.problem(w, r, &problemError{status: http.StatusMethodNotAllowed, typ: problemMethodNotAllowed,
				title: "Method not allowed", detail: "this endpoint takes " + m})
			return
		}
		fn(w, r, requestOf(r))
	}
}

// authenticate returns the node record of the client certificate's node,
// checked.
func (h *Handler) authenticate(r *http.Request) (store.Node, *x509.Certificate, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return store.Node{}, nil, errUnauthenticated("a node's X.509-SVID is required as TLS client certificate")
	}
	leaf := r.TLS.PeerCertificates[0]
	if !h.p.Clock().Before(leaf.NotAfter) {
		return store.Node{}, nil, errUnauthenticated("the client certificate has expired; reconnect with the current one")
	}
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return store.Node{}, nil, errUnauthenticated("the client certificate is not an X.509-SVID")
	}
	node, ok := NodeIDOf(id.String(), h.td)
	if !ok {
		return store.Node{}, nil, errUnauthenticated("the client certificate is not a node's X.509-SVID")
	}
	rec, err := h.checkNode(r.Context(), node)
	if err != nil {
		return store.Node{}, nil, err
	}
	return rec, leaf, nil
}

// NodeIDOf returns the node id of a node's SPIFFE ID in trust domain td,
// spiffe://<td>/node/<nod_…>, and whether id is one.
func NodeIDOf(id, td string) (string, bool) {
	rest, ok := strings.CutPrefix(id, "spiffe://"+td+noderegistry.PathPrefix)
	if !ok || recordid.Valid(recordid.Node, rest) != nil {
		return "", false
	}
	return rest, true
}

// checkNode returns the node's record, or errEvicted unless the node
// exists and is not evicted, as read at most NodeCacheTTL ago. (What
// scopes match of the record, its id and evidence, never changes.)
func (h *Handler) checkNode(ctx context.Context, id string) (store.Node, error) {
	now := h.p.Clock()
	h.mu.Lock()
	e, ok := h.nodes[id]
	h.mu.Unlock()
	if !ok || now.Sub(e.at) >= NodeCacheTTL || now.Before(e.at) {
		n, err := h.p.Nodes.Get(ctx, id)
		switch {
		case errors.Is(err, noderegistry.ErrNotFound):
			e = nodeEntry{ok: false, at: now}
		case err != nil:
			return store.Node{}, fmt.Errorf("nodeapi: read node %s: %w", id, err)
		default:
			e = nodeEntry{node: n, ok: n.State() != store.NodeEvicted, at: now}
		}
		h.remember(id, e, now)
	}
	if !e.ok {
		return store.Node{}, errEvicted()
	}
	return e.node, nil
}

func (h *Handler) remember(id string, e nodeEntry, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.nodes) >= nodeCacheSweep {
		for k, v := range h.nodes {
			if now.Sub(v.at) >= NodeCacheTTL {
				delete(h.nodes, k)
			}
		}
	}
	h.nodes[id] = e
}

// forget drops what the cache holds of a node (the registry said it is
// evicted).
func (h *Handler) forget(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.nodes, id)
}

func (h *Handler) renew(w http.ResponseWriter, r *http.Request, rq *request) {
	var in CSRRequest
	if err := decodeBody(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	ns, err := h.p.Nodes.Renew(r.Context(), noderegistry.RenewParams{
		NodeID: rq.node, CSR: in.CSR, Source: rq.origin.Source, TraceID: rq.origin.TraceID,
	})
	if errors.Is(err, noderegistry.ErrEvicted) || errors.Is(err, noderegistry.ErrNotFound) {
		h.forget(rq.node)
		err = errEvicted()
	}
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, X509SVID{SPIFFEID: ns.SVID.SPIFFEID, CertChain: ns.SVID.Chain, ExpiresAt: ns.SVID.ExpiresAt.UTC()})
}

func (h *Handler) agentX509SVID(w http.ResponseWriter, r *http.Request, rq *request) {
	var in CSRRequest
	if err := decodeBody(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	id, err := agentID(r.PathValue("id"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	sv, _, err := h.p.SVIDs.IssueX509(r.Context(), rq.origin, svid.X509Params{Ref: id, CSR: in.CSR, Require: servedBy(rq.rec)})
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, X509SVID{SPIFFEID: sv.SPIFFEID, CertChain: sv.Chain, ExpiresAt: sv.ExpiresAt.UTC()})
}

func (h *Handler) agentJWTSVID(w http.ResponseWriter, r *http.Request, rq *request) {
	var in JWTSVIDRequest
	if err := decodeBody(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	p, err := jwtParams(in)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	if p.Ref, err = agentID(r.PathValue("id")); err != nil {
		h.problem(w, r, err)
		return
	}
	p.Require = servedBy(rq.rec)
	sv, _, err := h.p.SVIDs.IssueJWT(r.Context(), rq.origin, p)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, JWTSVID{Token: sv.Token, ExpiresAt: sv.ExpiresAt()})
}

// jwtSVIDs issues a batch of JWT-SVIDs (svid.Service.IssueJWTs: one
// store transaction) and answers one result per request, a problem for
// each refused one.
func (h *Handler) jwtSVIDs(w http.ResponseWriter, r *http.Request, rq *request) {
	var in JWTSVIDsRequest
	if err := decodeBodyLimit(w, r, &in, MaxBatchBodyBytes); err != nil {
		h.problem(w, r, err)
		return
	}
	if n := len(in.Requests); n == 0 || n > MaxJWTSVIDsBatch {
		h.problem(w, r, badRequest("requests", "requests must hold 1 to %d JWT-SVID requests", MaxJWTSVIDsBatch))
		return
	}
	out := JWTSVIDs{Results: make([]JWTSVIDsResult, len(in.Requests))}
	var ps []svid.JWTParams
	var at []int // index in in.Requests of each of ps
	require := servedBy(rq.rec)
	for i, item := range in.Requests {
		p, err := jwtParams(item.JWTSVIDRequest)
		if err == nil {
			p.Ref, err = agentID(item.AgentID)
		}
		if err != nil {
			out.Results[i].Problem = h.itemProblem(r, err)
			continue
		}
		p.Require = require
		ps, at = append(ps, p), append(at, i)
	}
	if len(ps) > 0 {
		res, err := h.p.SVIDs.IssueJWTs(r.Context(), rq.origin, ps)
		if err != nil {
			h.problem(w, r, err)
			return
		}
		for k, x := range res {
			if x.Err != nil {
				out.Results[at[k]].Problem = h.itemProblem(r, x.Err)
				continue
			}
			out.Results[at[k]].Token, out.Results[at[k]].ExpiresAt = x.SVID.Token, x.SVID.ExpiresAt()
		}
	}
	h.reply(w, out)
}

// itemProblem is the problem of one refused request of a batch; an
// internal failure is logged and shown as such.
func (h *Handler) itemProblem(r *http.Request, err error) *admin.Problem {
	p, internal := problemFor(err)
	if internal {
		rq := requestOf(r)
		h.p.Logger.ErrorContext(r.Context(), "node API batch item failed", "err", err, "node", rq.node, "trace_id", rq.origin.TraceID)
	}
	return &p
}

// jwtParams checks a JWT-SVID request's TTL; the svid service checks the
// audience.
func jwtParams(in JWTSVIDRequest) (svid.JWTParams, error) {
	if in.TTLSeconds < 0 || in.TTLSeconds > int64(MaxJWTSVIDTTL/time.Second) {
		return svid.JWTParams{}, &problemError{status: http.StatusBadRequest, typ: problemValidation, title: "Invalid field",
			field: "ttl_seconds", detail: fmt.Sprintf("invalid ttl_seconds: must be from 0 (the default) to %d", int64(MaxJWTSVIDTTL/time.Second))}
	}
	return svid.JWTParams{Audience: in.Audience, TTL: time.Duration(in.TTLSeconds) * time.Second}, nil
}

// agentID checks the agent id of the path. That the agent may get an
// SVID through the node (it exists, the node serves it, it is active and
// unexpired and has selectors: servedBy) the svid service checks, before
// minting and again in its transaction.
func agentID(id string) (string, error) {
	if recordid.Valid(recordid.Agent, id) != nil {
		return "", &problemError{status: http.StatusBadRequest, typ: problemValidation, title: "Invalid field",
			field: "id", detail: "invalid id: the path must name an agent id (agt_…)"}
	}
	return id, nil
}

// servedBy is the node API's condition on an agent node n asks an SVID
// of: n serves it (its node scope, ADR 0019), else it is answered exactly
// as an unknown agent, so that a node cannot probe for agents it may not
// serve; and it has selectors.
func servedBy(n store.Node) func(store.Agent) error {
	return func(a store.Agent) error {
		if !noderegistry.Serves(a, n) {
			return svid.NotFound(a.ID)
		}
		return hasSelectors(a)
	}
}

// hasSelectors refuses an agent without selectors: it is no workload of
// any node.
func hasSelectors(a store.Agent) error {
	if len(a.Selectors) == 0 {
		return &problemError{status: http.StatusConflict, typ: problemIllegalTransition, title: "Illegal state transition",
			detail: fmt.Sprintf("agent %q has no selectors: it is no workload of any node", a.Name)}
	}
	return nil
}

// decodeBody reads one JSON object of at most MaxBodyBytes into v,
// refusing unknown fields and any other media type than JSON.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeBodyLimit(w, r, v, MaxBodyBytes)
}

// decodeBodyLimit is decodeBody with a limit of limit bytes.
func decodeBodyLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &problemError{status: http.StatusUnsupportedMediaType, typ: problemUnsupportedMediaType,
				title: "Unsupported media type", detail: "the body must be application/json"}
		}
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(readTimeout))
	return decodeJSON(http.MaxBytesReader(w, r.Body, limit), v)
}

// decodeJSON reads exactly one JSON object into v strictly. Its errors
// are problems and never echo the body.
func decodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Anything after the object but whitespace is refused.
		switch _, terr := dec.Token(); {
		case errors.Is(terr, io.EOF):
		case terr == nil:
			return badRequest("", "the body must hold exactly one JSON object")
		default:
			err = terr
		}
	}
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ce base64.CorruptInputError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mbe):
		return &problemError{status: http.StatusRequestEntityTooLarge, typ: problemBodyTooLarge, title: "Body too large",
			detail: fmt.Sprintf("the body exceeds %d bytes", MaxBodyBytes)}
	case errors.Is(err, io.EOF):
		return badRequest("", "the body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "the body is truncated JSON")
	case errors.As(err, &se):
		return badRequest("", "malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return badRequest(te.Field, "field %q must be %s", te.Field, te.Type.String())
	case errors.As(err, &ce):
		return badRequest("csr", "csr must be standard base64 (DER)")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(truncate(f, 64), "unknown field %q", truncate(f, 64))
	default:
		return badRequest("", "the body is not valid JSON for this endpoint")
	}
}

// reply writes v as JSON with status 200.
func (h *Handler) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// watch streams the snapshot as NDJSON WatchMessages: the current one at
// once, each new revision, and a heartbeat every HeartbeatInterval. It
// ends when the node is evicted (checked at every new snapshot and
// heartbeat), its client certificate expires, the request's context ends
// or CloseWatches is called.
func (h *Handler) watch(w http.ResponseWriter, r *http.Request, rq *request) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	expiry := time.NewTimer(rq.leaf.NotAfter.Sub(h.p.Clock()))
	defer expiry.Stop()
	hb := time.NewTicker(h.p.HeartbeatInterval)
	defer hb.Stop()
	var last string
	for {
		changed := h.p.Hub.Changed()
		// The node's own view: a change only to agents it does not serve
		// leaves its revision, and sends nothing.
		if s, ok := h.p.Hub.For(rq.rec); ok && s.Revision != last {
			line, err := h.snapshotLine(s)
			if err != nil {
				h.p.Logger.ErrorContext(ctx, "node API watch: encode snapshot", "err", err)
				return
			}
			if !h.send(rc, w, line) {
				return
			}
			last = s.Revision
		}
		select {
		case <-ctx.Done():
			return
		case <-h.closing:
			return
		case <-expiry.C:
			return
		case <-changed:
			if _, err := h.checkNode(ctx, rq.node); err != nil {
				return
			}
		case <-hb.C:
			if _, err := h.checkNode(ctx, rq.node); err != nil || !h.send(rc, w, []byte(heartbeatLine)) {
				return
			}
		}
	}
}

// heartbeatLine is the watch stream's heartbeat message.
const heartbeatLine = `{"type":"` + MessageHeartbeat + `"}` + "\n"

// maxLines bounds the encoded snapshots the handler keeps: one per
// revision, and nodes scoped alike share one.
const maxLines = 16

// snapshotLine is the NDJSON line of the snapshot, encoded once per
// revision for every watcher that sees that revision.
func (h *Handler) snapshotLine(s Snapshot) ([]byte, error) {
	h.lineMu.Lock()
	defer h.lineMu.Unlock()
	if line, ok := h.lines[s.Revision]; ok {
		return line, nil
	}
	b, err := json.Marshal(WatchMessage{Type: MessageSnapshot, Snapshot: &s})
	if err != nil {
		return nil, fmt.Errorf("nodeapi: encode snapshot: %w", err)
	}
	if len(h.lines) >= maxLines {
		clear(h.lines) // older revisions; the current ones are encoded again
	}
	h.lines[s.Revision] = append(b, '\n')
	return h.lines[s.Revision], nil
}

// send writes one line and flushes it, within writeTimeout.
func (h *Handler) send(rc *http.ResponseController, w http.ResponseWriter, line []byte) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := w.Write(line); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// traceID is the trace id of the request's W3C traceparent, or a new one.
func (h *Handler) traceID(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get("traceparent"))
	if len(v) >= 55 && v[2] == '-' && v[35] == '-' && v[52] == '-' && v[0:2] != "ff" &&
		isLowerHex(v[0:2]) && isLowerHex(v[3:35]) && isLowerHex(v[36:52]) && v[3:35] != strings.Repeat("0", 32) {
		return v[3:35]
	}
	var b [16]byte
	if _, err := io.ReadFull(h.p.Rand, b[:]); err != nil {
		return ""
	}
	return hex.EncodeToString(b[:])
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// truncate bounds a client-supplied string.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
