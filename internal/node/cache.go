package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/workloadapi"
)

// Bounds of the cache.
const (
	// maxJWTSVIDs bounds the cached JWT-SVIDs; past it the expired ones
	// are dropped, and if that is not enough, all of them.
	maxJWTSVIDs = 10000
	// maxMints bounds the X.509-SVID requests in flight at once.
	maxMints = 8
)

// errNotConnected is why nothing can be fetched before the node has a
// connection to the server.
var errNotConnected = errors.New("node: not connected to the server yet")

// Why an SVID received is asked again.
var (
	errTaintedIssuer = errors.New("node: the new X.509-SVID was signed by a tainted CA")
	errUnknownIssuer = errors.New("node: the new X.509-SVID does not verify against the trust bundle the node holds")
)

// errEvictedNode is what the cache answers once the node was evicted.
var errEvictedNode = errors.New("node: evicted")

// cache is the node's state: what the Workload API serves (it implements
// workloadapi.Source) and what the node's loops keep fresh, mirrored to
// the cache file. It is safe for concurrent use.
//
// An agent's X.509-SVID is minted when a workload first asks for it (one
// request in flight per agent: later callers wait for the same one), then
// kept fresh by maintain until the agent leaves the snapshot. JWT-SVIDs
// are fetched on demand and kept per agent and audience until half their
// lifetime. Nothing is ever served at or past its expiry.
type cache struct {
	clock   func() time.Time
	log     *slog.Logger
	disk    disk
	backoff backoff
	kick    func() // wakes the maintenance loop
	onEvict func() // called once, after the node was evicted

	persistMu sync.Mutex // serialises writes of the cache file
	written   uint64     // the generation last written, under persistMu

	mu        sync.Mutex
	gen       uint64 // counts changes worth writing
	changed   chan struct{}
	evicted   bool
	td        string // trust domain
	nodeID    string
	node      *svid
	nodeTrust trustStatus
	nodeRetry retry
	trust     *parsedBundle            // the trust domain's bundle
	federated map[string]*parsedBundle // by trust domain
	taint     map[string]bool          // tainted CA fingerprints
	snap      *nodeapi.Snapshot
	agents    []store.Agent
	byID      map[string]store.Agent
	svids     map[string]*entry   // by agent id
	jwts      map[string]jwtEntry // by jwtKey
	jwtFlight map[string]*flight  // by jwtKey
	jwtBatch  jwtBatcher

	up     Upstream        // nil until connected
	ctx    context.Context // the node's lifetime, for requests to the server
	closed bool            // set by shutdown: no new requests
	sem    chan struct{}   // bounds mints in flight
	bg     sync.WaitGroup  // the requests in flight
}

var _ workloadapi.Source = (*cache)(nil)

// entry is an agent's X.509-SVID, or the wish for one: an entry exists
// once a workload asked for the agent's SVID.
type entry struct {
	svid   *svid // nil: none
	status trustStatus
	retry  retry
	flight *flight // the request in flight
}

// retry is the backoff state of something that failed.
type retry struct {
	failures int
	at       time.Time // not before; zero: now
	err      error
}

// flight is a request in flight; done is closed when it ended, and err is
// its error (readable after done).
type flight struct {
	done chan struct{}
	err  error
	jwt  *jwtEntry // a JWT-SVID flight's result, when it succeeded
}

func newCache(clock func() time.Time, log *slog.Logger, d disk, b backoff) *cache {
	return &cache{
		clock: clock, log: log, disk: d, backoff: b,
		kick: func() {}, onEvict: func() {},
		changed:   make(chan struct{}),
		federated: map[string]*parsedBundle{},
		taint:     map[string]bool{},
		byID:      map[string]store.Agent{},
		svids:     map[string]*entry{},
		jwts:      map[string]jwtEntry{},
		jwtFlight: map[string]*flight{},
		sem:       make(chan struct{}, maxMints),
	}
}

// touch records a change: it bumps the generation to write and wakes the
// Workload API's streams. c.mu is held.
func (c *cache) touch() {
	c.gen++
	close(c.changed)
	c.changed = make(chan struct{})
}

// Agents implements workloadapi.Source: the agents of the last snapshot.
func (c *cache) Agents() []store.Agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.agents
}

// Changed implements workloadapi.Source.
func (c *cache) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// TrustBundle implements workloadapi.Source.
func (c *cache) TrustBundle() (workloadapi.Bundle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.evicted:
		return workloadapi.Bundle{}, errEvictedNode
	case c.trust == nil:
		return workloadapi.Bundle{}, errors.New("node: no trust bundle yet")
	}
	return c.trust.bundle, nil
}

// FederatedBundles implements workloadapi.Source.
func (c *cache) FederatedBundles(a store.Agent) []workloadapi.Bundle {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []workloadapi.Bundle
	for _, td := range a.FederatesWith {
		if b := c.federated[td]; b != nil {
			out = append(out, b.bundle)
		}
	}
	return out
}

// servable reports whether the entry's SVID may be served at now: it has
// one, unexpired, that the bundle verifies.
func (e *entry) servable(now time.Time) bool {
	return e.svid != nil && e.svid.validAt(now) && e.status != untrusted
}

// X509SVID implements workloadapi.Source: the agent's SVID from the
// cache, or one minted now (waiting for a request already in flight).
// Without a valid SVID the error wraps workloadapi.ErrNoSVID.
func (c *cache) X509SVID(ctx context.Context, a store.Agent) (workloadapi.X509SVID, error) {
	c.mu.Lock()
	if c.evicted {
		c.mu.Unlock()
		return workloadapi.X509SVID{}, fmt.Errorf("%w: %w", workloadapi.ErrNoSVID, errEvictedNode)
	}
	now := c.clock()
	e := c.svids[a.ID]
	if e != nil && e.servable(now) {
		defer c.mu.Unlock()
		return e.svid.workload(), nil
	}
	if _, ok := c.byID[a.ID]; !ok {
		c.mu.Unlock()
		return workloadapi.X509SVID{}, fmt.Errorf("%w: agent %s is not in the snapshot", workloadapi.ErrNoSVID, a.ID)
	}
	if e == nil {
		e = &entry{}
		c.svids[a.ID] = e
	}
	f := e.flight
	if f == nil {
		if now.Before(e.retry.at) {
			err := e.retry.err
			c.mu.Unlock()
			return workloadapi.X509SVID{}, fmt.Errorf("%w: agent %s: %w", workloadapi.ErrNoSVID, a.ID, err)
		}
		if f = c.startMint(a.ID, e); f == nil {
			c.mu.Unlock()
			return workloadapi.X509SVID{}, fmt.Errorf("%w: agent %s: %w", workloadapi.ErrNoSVID, a.ID, errNotConnected)
		}
	}
	c.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return workloadapi.X509SVID{}, fmt.Errorf("%w: %w", workloadapi.ErrNoSVID, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.svids[a.ID]; e != nil && e.servable(c.clock()) {
		return e.svid.workload(), nil
	}
	err := f.err
	if err == nil {
		err = errors.New("node: the SVID is gone")
	}
	return workloadapi.X509SVID{}, fmt.Errorf("%w: agent %s: %w", workloadapi.ErrNoSVID, a.ID, err)
}

// startMint starts minting an X.509-SVID for the agent: a new key, a CSR,
// a request to the server. It returns nil when there is no connection
// (or no such agent). c.mu is held.
func (c *cache) startMint(id string, e *entry) *flight {
	a, ok := c.byID[id]
	if c.up == nil || c.closed || !ok {
		return nil
	}
	f := &flight{done: make(chan struct{})}
	e.flight = f
	ctx, up := c.ctx, c.up
	c.bg.Go(func() { c.mint(ctx, up, a, f) })
	return f
}

// mint is the goroutine of one X.509-SVID request.
func (c *cache) mint(ctx context.Context, up Upstream, a store.Agent, f *flight) {
	s, err := c.requestX509(ctx, up, a)
	c.mu.Lock()
	e := c.svids[a.ID]
	if e == nil || e.flight != f || c.evicted {
		// The agent left the snapshot (or the node was evicted) meanwhile.
		c.mu.Unlock()
		f.err = errors.New("node: the agent is gone")
		close(f.done)
		return
	}
	e.flight = nil
	now := c.clock()
	stored := false
	if err == nil {
		// A new SVID the bundle does not verify is not served; one a
		// tainted CA signed is, until a better one comes. Either way it
		// is asked again only after a backoff.
		status := trustOf(s, c.trust.x509Authorities(), c.taint)
		switch status {
		case trusted:
			e.retry = retry{}
		case tainted:
			err = errTaintedIssuer
		case untrusted:
			err = errUnknownIssuer
		}
		if status != untrusted {
			e.svid, e.status, stored = s, status, true
			c.touch()
		}
	}
	if err != nil {
		e.retry = c.backoff.next(e.retry, now, err)
	}
	retryAt := e.retry.at
	c.mu.Unlock()
	if !stored {
		f.err = err
	}
	close(f.done)
	if stored {
		c.log.Debug("X.509-SVID issued", "agent", a.Name, "spiffe_id", s.spiffeID, "expires_at", s.notAfter())
		c.persist()
	}
	switch {
	case err == nil:
	case isEvicted(err):
		c.evict()
		return
	case ctx.Err() != nil:
		return
	case stored:
		c.log.Warn("X.509-SVID issued under a tainted CA; asking again", "agent", a.Name, "retry_at", retryAt)
	default:
		c.log.Warn("X.509-SVID request failed", "agent", a.Name, "error", err, "retry_at", retryAt)
	}
	c.kick()
}

// requestX509 asks the server for an X.509-SVID of the agent for a new
// key and checks what comes back.
func (c *cache) requestX509(ctx context.Context, up Upstream, a store.Agent) (*svid, error) {
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	key, csr, err := newKeyAndCSR()
	if err != nil {
		return nil, err
	}
	resp, err := up.X509SVID(ctx, a.ID, csr)
	if err != nil {
		return nil, err
	}
	now := c.clock()
	s, err := newSVID(a.SPIFFEID, resp.CertChain, key, now)
	if err == nil && !s.validAt(now) {
		err = fmt.Errorf("node: the server sent an X.509-SVID that expired at %s", s.notAfter().UTC().Format(time.RFC3339))
	}
	return s, err
}

// dueAt is when the entry next needs a request: at once when it has no
// servable SVID or its issuer is tainted, at half its SVID's lifetime
// otherwise; never before its retry time.
func (e *entry) dueAt(now time.Time) time.Time {
	due := now
	if e.svid != nil && e.status == trusted {
		due = e.svid.renewAt()
	}
	if e.retry.at.After(due) {
		due = e.retry.at
	}
	return due
}

// maintain renews the agents' X.509-SVIDs that are due (in the
// background), drops expired ones, and returns when it next has work (zero:
// nothing scheduled).
func (c *cache) maintain() time.Time {
	c.mu.Lock()
	now := c.clock()
	var next time.Time
	dropped := false
	for id, e := range c.svids {
		if e.svid != nil && !e.svid.validAt(now) {
			c.log.Warn("X.509-SVID expired", "agent_id", id, "expired_at", e.svid.notAfter())
			e.svid, dropped = nil, true
		}
		if e.flight != nil {
			continue
		}
		if due := e.dueAt(now); due.After(now) {
			next = earliest(next, due)
		} else {
			// Without a connection nothing starts; connecting kicks.
			c.startMint(id, e)
		}
		if e.svid != nil {
			next = earliest(next, e.svid.notAfter())
		}
	}
	if dropped {
		c.touch()
	}
	c.mu.Unlock()
	if dropped {
		c.persist()
	}
	return next
}

// earliest returns the earlier of two times, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// applySnapshot makes a snapshot of the watch stream current: agents,
// bundles and taints; SVIDs of agents that left are dropped, those a
// tainted CA signed are due at once, those the bundle no longer verifies
// are no longer served. Requests that failed are due again at once (the
// server is back). A snapshot whose bundle does not parse is ignored.
func (c *cache) applySnapshot(s nodeapi.Snapshot) {
	c.mu.Lock()
	if c.evicted {
		c.mu.Unlock()
		return
	}
	for _, e := range c.svids {
		e.retry = retry{}
	}
	c.nodeRetry = retry{}
	if c.snap != nil && s.Revision != "" && c.snap.Revision == s.Revision {
		c.mu.Unlock()
		c.kick()
		return
	}
	err := c.setSnapshot(&s)
	if err == nil {
		c.touch()
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Error("snapshot ignored", "revision", s.Revision, "error", err)
		return
	}
	c.log.Debug("snapshot applied", "revision", s.Revision, "agents", len(s.Agents))
	c.persist()
	c.kick()
}

// setSnapshot makes s current. c.mu is held.
func (c *cache) setSnapshot(s *nodeapi.Snapshot) error {
	trust, err := reparse(c.trust, c.td, s.Bundle)
	if err != nil {
		return err
	}
	fed := make(map[string]*parsedBundle, len(s.FederatedBundles))
	for td, raw := range s.FederatedBundles {
		b, err := reparse(c.federated[td], td, raw)
		if err != nil {
			c.log.Warn("federated bundle ignored", "trust_domain", td, "error", err)
			continue
		}
		fed[td] = b
	}
	agents := make([]store.Agent, 0, len(s.Agents))
	byID := make(map[string]store.Agent, len(s.Agents))
	for _, a := range s.Agents {
		sa := store.Agent{
			ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID, Selectors: a.Selectors,
			FederatesWith: a.FederatesWith, Version: a.Version, State: store.AgentActive,
		}
		if a.ExpiresAt != nil {
			sa.ExpiresAt = *a.ExpiresAt
		}
		agents = append(agents, sa)
		byID[a.ID] = sa
	}
	taint := make(map[string]bool, len(s.TaintedAuthorities))
	for _, fp := range s.TaintedAuthorities {
		taint[fp] = true
	}
	retrust := trust != c.trust || !maps.Equal(taint, c.taint)
	c.trust, c.federated, c.taint, c.agents, c.byID, c.snap = trust, fed, taint, agents, byID, s
	for id, e := range c.svids {
		if a, ok := byID[id]; !ok || (e.svid != nil && e.svid.spiffeID != a.SPIFFEID) {
			delete(c.svids, id)
		}
	}
	maps.DeleteFunc(c.jwts, func(_ string, j jwtEntry) bool { _, ok := byID[j.agentID]; return !ok })
	if retrust {
		c.retrust()
	}
	return nil
}

// retrust checks every SVID held against the current bundle and taints.
// c.mu is held.
func (c *cache) retrust() {
	auth := c.trust.x509Authorities()
	if c.node != nil {
		c.nodeTrust = trustOf(c.node, auth, c.taint)
	}
	for _, e := range c.svids {
		if e.svid != nil {
			e.status = trustOf(e.svid, auth, c.taint)
		}
	}
}

// connect gives the cache its connection to the server: from now on it
// requests SVIDs, with ctx, until ctx ends.
func (c *cache) connect(ctx context.Context, up Upstream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ctx, c.up = ctx, up
}

// shutdown starts no more requests and waits for those in flight (whose
// ctx the caller ended) and their writes of the cache file.
func (c *cache) shutdown() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.bg.Wait()
}

// evict forgets everything but the agents (so that callers get
// Unavailable, not PermissionDenied), removes the cache file and calls
// onEvict, once.
func (c *cache) evict() {
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	c.mu.Lock()
	if c.evicted {
		c.mu.Unlock()
		return
	}
	c.evicted = true
	c.node, c.trust, c.snap = nil, nil, nil
	c.federated, c.svids, c.jwts = map[string]*parsedBundle{}, map[string]*entry{}, map[string]jwtEntry{}
	c.touch()
	c.mu.Unlock()
	c.log.Error("the server refused this node: it was evicted (or is unknown); cache removed", "node_id", c.nodeID)
	if err := c.disk.remove(); err != nil {
		c.log.Error("remove the cache file", "error", err)
	}
	c.onEvict()
}

// isEvicted reports whether the node was evicted.
func (c *cache) isEvicted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evicted
}

// nodeCertificate returns the node's SVID as a TLS client certificate
// (nodeapi.ClientParams.Certificate).
func (c *cache) nodeCertificate() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.evicted:
		return nil, errEvictedNode
	case c.node == nil:
		return nil, errors.New("node: no node SVID")
	case !c.node.validAt(c.clock()):
		return nil, fmt.Errorf("node: the node SVID expired at %s; attest again with a new join token",
			c.node.notAfter().UTC().Format(time.RFC3339))
	}
	return c.node.tlsCertificate(), nil
}

// authorities returns the X.509 authorities of the trust bundle
// (nodeapi.ClientParams.Authorities).
func (c *cache) authorities() []*x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trust.x509Authorities()
}

// nodeState returns the node's SVID, what the bundle says of it, and its
// renewal's backoff.
func (c *cache) nodeState() (*svid, trustStatus, retry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.node, c.nodeTrust, c.nodeRetry
}

// nodeFailed records a failed renewal of the node SVID and returns when to
// try again.
func (c *cache) nodeFailed(err error) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodeRetry = c.backoff.next(c.nodeRetry, c.clock(), err)
	return c.nodeRetry.at
}

// setNode makes s the node's SVID, with its node id and trust domain,
// and, when b is not nil, b the trust bundle; then writes the cache file.
// A trust domain other than the cached one starts the cache afresh.
func (c *cache) setNode(td, nodeID string, s *svid, b *parsedBundle) {
	c.mu.Lock()
	if c.td != "" && c.td != td {
		c.snap, c.agents, c.byID, c.federated, c.taint = nil, nil, map[string]store.Agent{}, map[string]*parsedBundle{}, map[string]bool{}
		c.svids, c.jwts = map[string]*entry{}, map[string]jwtEntry{}
	}
	c.td, c.nodeID, c.node, c.nodeRetry = td, nodeID, s, retry{}
	if b != nil {
		c.trust = b
	}
	c.retrust()
	c.touch()
	c.mu.Unlock()
	c.persist()
}

// identity returns the node's trust domain and id.
func (c *cache) identity() (td, nodeID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.td, c.nodeID
}

// hasValidSVIDs reports whether an agent SVID in the cache is valid now.
func (c *cache) hasValidSVIDs() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	for _, e := range c.svids {
		if e.servable(now) {
			return true
		}
	}
	return false
}
