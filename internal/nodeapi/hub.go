package nodeapi

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/agentid/agentid/internal/bundle"
	"github.com/agentid/agentid/internal/federation"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/store"
)

// DefaultSyncInterval is how often a Hub rebuilds its snapshot when
// nothing pokes it: what another replica changed, CA rotations and expired
// agents reach nodes within it.
const DefaultSyncInterval = time.Second

// AgentLister lists agents. store.Store implements it.
type AgentLister interface {
	// ListAgents returns agents in id order and the next page token.
	ListAgents(ctx context.Context, f store.AgentFilter, p store.Page) ([]store.Agent, string, error)
}

// BundleSource gives the trust domain's bundle. *bundle.Bundle implements
// it.
type BundleSource interface {
	// Current returns the bundle now; it does no I/O.
	Current() (bundle.Document, error)
}

// FederatedBundles gives the foreign trust domains' bundles.
// *federation.Manager implements it.
type FederatedBundles interface {
	// BundlesFor returns the bundles in use of those of tds that have one.
	BundlesFor(tds []string) map[string]federation.Bundle
	// Changed is closed at the next change of the bundles in use.
	Changed() <-chan struct{}
}

// TaintSource gives the tainted CA certificates. *ca.Manager implements
// it.
type TaintSource interface {
	// TaintedCAs returns the published CA certificates that are tainted.
	TaintedCAs() []*x509.Certificate
}

// HubParams configures a Hub.
type HubParams struct {
	// Agents lists the agents. Required.
	Agents AgentLister
	// Bundle is the trust domain's bundle. Required.
	Bundle BundleSource
	// Federation gives federated bundles; nil: none.
	Federation FederatedBundles
	// CA gives the tainted CA certificates; nil: none.
	CA TaintSource
	// SyncInterval is how often Run rebuilds unpoked; zero means
	// DefaultSyncInterval.
	SyncInterval time.Duration
	// Clock is the time source that decides which agents have expired.
	// Required.
	Clock func() time.Time
	// Logger receives rebuild failures; nil discards them.
	Logger *slog.Logger
}

// Hub keeps the snapshot nodes watch (docs/adr/0012-node-api.md): the
// active, unexpired agents with selectors, the trust domain's bundle, the
// federated bundles those agents need and the tainted CA fingerprints.
// Run rebuilds it when poked, when the federated bundles change and every
// SyncInterval, and publishes it only when its revision or an agent's
// node scope changes. Each node sees it through For: only the agents it
// serves (ADR 0019). A Hub is safe for concurrent use.
type Hub struct {
	p    HubParams
	poke chan struct{}

	syncMu sync.Mutex // serialises Sync

	mu      sync.Mutex
	cur     *published
	changed chan struct{}
}

// published is a built snapshot with what For needs besides it.
type published struct {
	snap Snapshot
	// scopes are the node scopes of snap.Agents, by index; nil when no
	// agent is scoped (every node sees snap).
	scopes []store.NodeScope
	// key identifies the content: the revision, and the scopes.
	key string
}

// NewHub returns a Hub without a snapshot: Sync or Run builds the first.
func NewHub(p HubParams) (*Hub, error) {
	switch {
	case p.Agents == nil, p.Bundle == nil:
		return nil, errors.New("nodeapi: HubParams.Agents and Bundle are required")
	case p.Clock == nil:
		return nil, errors.New("nodeapi: HubParams.Clock is required")
	case p.SyncInterval < 0:
		return nil, errors.New("nodeapi: HubParams.SyncInterval must not be negative")
	}
	if p.SyncInterval == 0 {
		p.SyncInterval = DefaultSyncInterval
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	return &Hub{p: p, poke: make(chan struct{}, 1), changed: make(chan struct{})}, nil
}

// Poke asks Run to rebuild the snapshot now. It never blocks; pokes that
// arrive while one is pending are merged.
func (h *Hub) Poke() {
	select {
	case h.poke <- struct{}{}:
	default:
	}
}

// Current returns the snapshot published last, with every agent (what
// no node sees when agents are scoped: see For), and false before the
// first. The snapshot is shared: callers must not modify it.
func (h *Hub) Current() (Snapshot, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cur == nil {
		return Snapshot{}, false
	}
	return h.cur.snap, true
}

// For returns the snapshot published last as node n sees it, and false
// before the first: only the agents n serves (noderegistry.Serves) and
// the federated bundles those need, with the revision of that content.
// When n serves every agent it is Current's snapshot; a change to agents
// n does not serve leaves its revision. The snapshot is shared: callers
// must not modify it.
func (h *Hub) For(n store.Node) (Snapshot, bool) {
	h.mu.Lock()
	p := h.cur
	h.mu.Unlock()
	if p == nil {
		return Snapshot{}, false
	}
	if p.scopes == nil {
		return p.snap, true
	}
	keep := make([]Agent, 0, len(p.snap.Agents))
	for i, a := range p.snap.Agents {
		if noderegistry.Serves(store.Agent{NodeScope: p.scopes[i]}, n) {
			keep = append(keep, a)
		}
	}
	if len(keep) == len(p.snap.Agents) {
		return p.snap, true
	}
	s := p.snap
	s.Agents = keep
	s.FederatedBundles = nil
	for _, a := range keep {
		for _, td := range a.FederatesWith {
			if b, ok := p.snap.FederatedBundles[td]; ok {
				if s.FederatedBundles == nil {
					s.FederatedBundles = map[string]json.RawMessage{}
				}
				s.FederatedBundles[td] = b
			}
		}
	}
	var err error
	if s.Revision, err = Revision(s); err != nil {
		// Cannot happen: the whole snapshot encoded.
		h.p.Logger.Error("node API snapshot of a node", "node", n.ID, "err", err)
		return Snapshot{}, false
	}
	return s, true
}

// Changed returns a channel that is closed when the next snapshot is
// published. Take it before reading Current so that no change is missed.
func (h *Hub) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// Run builds the snapshot at once, then again on Poke, on a change of the
// federated bundles and every SyncInterval, until ctx is done. Failures
// are logged; the last snapshot stays published.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(h.p.SyncInterval)
	defer t.Stop()
	for {
		var fed <-chan struct{}
		if h.p.Federation != nil {
			fed = h.p.Federation.Changed()
		}
		if _, err := h.Sync(ctx); err != nil && ctx.Err() == nil {
			h.p.Logger.WarnContext(ctx, "node API snapshot rebuild failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-h.poke:
		case <-fed:
		case <-t.C:
		}
	}
}

// Sync rebuilds the snapshot now and publishes it if its revision
// changed, reporting whether it did.
func (h *Hub) Sync(ctx context.Context) (bool, error) {
	h.syncMu.Lock()
	defer h.syncMu.Unlock()
	p, err := h.build(ctx)
	if err != nil {
		return false, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cur != nil && h.cur.key == p.key {
		return false, nil
	}
	h.cur = p
	close(h.changed)
	h.changed = make(chan struct{})
	return true, nil
}

// build reads every source and returns the snapshot with its revision
// and the agents' node scopes.
func (h *Hub) build(ctx context.Context) (*published, error) {
	now := h.p.Clock()
	s := Snapshot{Agents: []Agent{}}
	var scopes []store.NodeScope
	scoped := false
	fedTDs := map[string]bool{}
	for page := (store.Page{PageSize: store.MaxPageSize}); ; {
		as, next, err := h.p.Agents.ListAgents(ctx, store.AgentFilter{State: store.AgentActive}, page)
		if err != nil {
			return nil, fmt.Errorf("nodeapi: list agents: %w", err)
		}
		for _, a := range as {
			if a.State != store.AgentActive || len(a.Selectors) == 0 || (!a.ExpiresAt.IsZero() && !a.ExpiresAt.After(now)) {
				continue
			}
			s.Agents = append(s.Agents, agentOf(a))
			scopes = append(scopes, a.NodeScope)
			scoped = scoped || !a.NodeScope.IsZero()
			for _, td := range a.FederatesWith {
				fedTDs[td] = true
			}
		}
		if next == "" {
			break
		}
		page.PageToken = next
	}
	doc, err := h.p.Bundle.Current()
	if err != nil {
		return nil, fmt.Errorf("nodeapi: trust bundle: %w", err)
	}
	s.Bundle = json.RawMessage(doc.JSON)
	if h.p.Federation != nil && len(fedTDs) > 0 {
		tds := make([]string, 0, len(fedTDs))
		for td := range fedTDs {
			tds = append(tds, td)
		}
		slices.Sort(tds)
		for td, b := range h.p.Federation.BundlesFor(tds) {
			if len(b.JSON) == 0 || !json.Valid(b.JSON) {
				continue
			}
			if s.FederatedBundles == nil {
				s.FederatedBundles = map[string]json.RawMessage{}
			}
			s.FederatedBundles[td] = json.RawMessage(b.JSON)
		}
	}
	if h.p.CA != nil {
		for _, c := range h.p.CA.TaintedCAs() {
			s.TaintedAuthorities = append(s.TaintedAuthorities, Fingerprint(c))
		}
		slices.Sort(s.TaintedAuthorities)
		s.TaintedAuthorities = slices.Compact(s.TaintedAuthorities)
	}
	if s.Revision, err = Revision(s); err != nil {
		return nil, err
	}
	p := &published{snap: s, key: s.Revision}
	if scoped {
		// A change of a scope alone changes what nodes see, not the
		// revision: it is published too.
		b, err := json.Marshal(scopes)
		if err != nil {
			return nil, fmt.Errorf("nodeapi: encode node scopes: %w", err)
		}
		sum := sha256.Sum256(b)
		p.scopes, p.key = scopes, s.Revision+"/"+hex.EncodeToString(sum[:])
	}
	return p, nil
}

// agentOf is the node's view of an agent record.
func agentOf(a store.Agent) Agent {
	out := Agent{
		ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID, Selectors: slices.Clone(a.Selectors),
		FederatesWith: slices.Clone(a.FederatesWith), Version: a.Version,
	}
	if !a.ExpiresAt.IsZero() {
		t := a.ExpiresAt.UTC()
		out.ExpiresAt = &t
	}
	return out
}

// Revision is the revision of s: the lowercase hex SHA-256 of its JSON
// encoding with Revision empty. encoding/json writes struct fields in
// order, map keys sorted and raw documents compacted, so equal contents
// give equal revisions.
func Revision(s Snapshot) (string, error) {
	s.Revision = ""
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("nodeapi: encode snapshot: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Fingerprint is the lowercase hex SHA-256 of a certificate's DER, the
// form of Snapshot.TaintedAuthorities.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
