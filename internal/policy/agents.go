package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
)

// agentCacheSize bounds the agents a Service keeps; when it is reached the
// cache starts afresh.
const agentCacheSize = 4096

// agentCache keeps the subject agents last read (ADR 0013, "Agent
// cache"). A copy is used only after the store confirms its version (one
// primary-key read instead of the agent with its owners), so every field
// stored in the agent's row is as current as a full read. Orphaned is
// derived from the owners, whose changes do not bump the agent's version:
// a copy older than the Service's RefreshInterval is read again in full,
// which bounds how long a stale Orphaned may be used. Names map to ids for
// good: a name is unique in the trust domain forever, deprovisioned agents
// included.
type agentCache struct {
	mu     sync.Mutex
	byID   map[string]cachedAgent
	byName map[string]string // name → id
}

type cachedAgent struct {
	agent  store.Agent
	readAt int64 // clock UnixNano of the full read
}

func (c *agentCache) get(id string) (cachedAgent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	return e, ok
}

func (c *agentCache) idOf(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.byName[name]
	return id, ok
}

func (c *agentCache) put(a store.Agent, readAt int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil || len(c.byID) >= agentCacheSize || len(c.byName) >= agentCacheSize {
		c.byID, c.byName = make(map[string]cachedAgent), make(map[string]string)
	}
	if old, ok := c.byID[a.ID]; ok && old.agent.Version > a.Version {
		return // a concurrent read saw a newer version
	}
	c.byID[a.ID] = cachedAgent{agent: a, readAt: readAt}
	c.byName[a.Name] = a.ID
}

// lookupAgent finds the subject agent by id, SPIFFE ID or name; ok is
// false when there is none. A cached copy is used when its version is the
// stored one and it is younger than RefreshInterval; otherwise the agent
// is read in full and cached.
func (s *Service) lookupAgent(ctx context.Context, ref string) (store.Agent, bool, error) {
	a, found, _, err := s.lookupAgentWith(ctx, ref, false)
	return a, found, err
}

// lookupAgentWith is lookupAgent; with deferCheck, a cached copy younger
// than RefreshInterval is used without reading the stored version, and
// unconfirmed is then true: the caller must check the version in the
// transaction that records the decision (Service.record).
func (s *Service) lookupAgentWith(ctx context.Context, ref string, deferCheck bool) (a store.Agent, found, unconfirmed bool, err error) {
	var (
		id, name string
		spiffeID string
	)
	switch {
	case strings.HasPrefix(ref, "agt_"):
		id = ref
	case strings.HasPrefix(ref, "spiffe://"):
		_, path, perr := identity.ParseSPIFFEID(ref)
		n, isAgent := strings.CutPrefix(path, "/agent/")
		if perr != nil || !isAgent {
			return store.Agent{}, false, false, nil //nolint:nilerr // a malformed SPIFFE ID names no agent: a deny, not an error
		}
		name, spiffeID = n, ref
	default:
		name = ref
	}
	if id == "" {
		id, _ = s.agents.idOf(name)
	}
	a, found, err = s.cachedAgent(ctx, id, deferCheck)
	unconfirmed = found && deferCheck
	if err == nil && !found {
		// Not cached (or gone): read in full.
		if name != "" {
			a, err = s.store.GetAgentByName(ctx, name)
		} else {
			a, err = s.store.GetAgent(ctx, id)
		}
		if err == nil {
			s.agents.put(a, s.clock().UnixNano())
		}
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Agent{}, false, false, nil
	case err != nil:
		return store.Agent{}, false, false, fmt.Errorf("policy: look up agent: %w", err)
	case spiffeID != "" && a.SPIFFEID != spiffeID:
		return store.Agent{}, false, false, nil
	}
	return a, true, unconfirmed, nil
}

// cachedAgent returns the cached copy of agent id when it is younger than
// RefreshInterval and, unless deferCheck, the store's version is the
// copy's; found is false otherwise (and when id is "").
func (s *Service) cachedAgent(ctx context.Context, id string, deferCheck bool) (store.Agent, bool, error) {
	if id == "" {
		return store.Agent{}, false, nil
	}
	e, ok := s.agents.get(id)
	if !ok || s.clock().UnixNano()-e.readAt >= int64(s.interval) {
		return store.Agent{}, false, nil
	}
	if deferCheck {
		return e.agent, true, nil
	}
	v, err := s.store.GetAgentVersion(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Agent{}, false, nil
	case err != nil:
		return store.Agent{}, false, err
	case v != e.agent.Version:
		return store.Agent{}, false, nil
	}
	return e.agent, true, nil
}

// agentMemo is how one decision or batch looks its subject agents up. It
// remembers them by the reference the requests named them with (when
// byRef is not nil), so that a batch about one agent reads it once and
// decides every item on the same copy. With deferCheck, cached copies are
// used without reading their version, which checks collects (agent id →
// version) for the transaction that records the decisions to confirm.
type agentMemo struct {
	byRef      map[string]memoAgent
	deferCheck bool
	checks     map[string]int64
	// grants and instances remember the records a batch's contexts name
	// (checkRecords), so that items sharing a context read them once.
	grants    map[string]memoRecord[store.Grant]
	instances map[string]memoRecord[store.Instance]
}

// memoRecord is a record read for a batch, or why it could not be.
type memoRecord[T any] struct {
	v   T
	err error
}

// memoGet reads the record key with get, through cache when it is not
// nil; a failure other than store.ErrNotFound is not remembered.
func memoGet[T any](cache map[string]memoRecord[T], key string, get func() (T, error)) (T, error) {
	if r, ok := cache[key]; ok {
		return r.v, r.err
	}
	v, err := get()
	if cache != nil && (err == nil || errors.Is(err, store.ErrNotFound)) {
		cache[key] = memoRecord[T]{v: v, err: err}
	}
	return v, err
}

type memoAgent struct {
	agent store.Agent
	found bool
}

// lookup is s.lookupAgentWith through m; a nil m remembers and defers
// nothing.
func (m *agentMemo) lookup(ctx context.Context, s *Service, ref string) (store.Agent, bool, error) {
	if m == nil {
		return s.lookupAgent(ctx, ref)
	}
	if e, ok := m.byRef[ref]; ok {
		return e.agent, e.found, nil
	}
	a, found, unconfirmed, err := s.lookupAgentWith(ctx, ref, m.deferCheck)
	if err != nil {
		return a, found, err
	}
	if unconfirmed {
		if m.checks == nil {
			m.checks = map[string]int64{}
		}
		m.checks[a.ID] = a.Version
	}
	if m.byRef != nil {
		m.byRef[ref] = memoAgent{agent: a, found: found}
	}
	return a, found, nil
}
