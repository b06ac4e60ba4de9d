package policy

import (
	"context"
	"fmt"
	"sync"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/agentid/agentid/internal/store"
)

// compiled is the policy set in force: the registry, the active version's
// policies, and the head generation they were read at. It is immutable;
// a change replaces it.
type compiled struct {
	generation int64
	version    int64 // 0: none active, every decision is a default deny
	reg        *registry
	pol        *parsed
	ix         index // built lazily by policies
	ixOnce     sync.Once
}

// policies returns the index of c's policies, building it on first use.
func (c *compiled) policies() index {
	c.ixOnce.Do(func() { c.ix = newIndex(c.reg, c.pol) })
	return c.ix
}

// emptyPolicies is the policy set of a deployment without an active
// version.
func emptyPolicies() *parsed {
	return &parsed{set: cedar.NewPolicySet(), meta: map[cedar.PolicyID]meta{}, text: map[string]string{}, open: map[cedar.PolicyID]*cedar.Policy{}}
}

// current returns the policy set to decide with, checking the head for a
// change made elsewhere when RefreshInterval has passed since the last
// check.
func (s *Service) current(ctx context.Context) (*compiled, error) {
	c := s.cur.Load()
	if c != nil && s.clock().UnixNano()-s.lastCheck.Load() < int64(s.interval) {
		return c, nil
	}
	return s.refresh(ctx, false)
}

// refresh reads the head and, when its generation differs from the one in
// memory, loads the registry and the active version and compiles them.
// force skips the interval check (changes check against the newest head).
func (s *Service) refresh(ctx context.Context, force bool) (*compiled, error) {
	s.reload.Lock()
	defer s.reload.Unlock()
	c := s.cur.Load()
	now := s.clock().UnixNano()
	if !force && c != nil && now-s.lastCheck.Load() < int64(s.interval) {
		return c, nil // refreshed by another caller meanwhile
	}
	h, err := s.store.GetPolicyHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: read the policy head: %w", err)
	}
	if c == nil || c.generation != h.Generation {
		if c, err = s.load(ctx, h); err != nil {
			return nil, err
		}
		s.cur.Store(c)
	}
	s.lastCheck.Store(now)
	return c, nil
}

// load compiles the registry and the active version of head h. The reads
// are not one transaction: if something changed in between, the next
// check sees a newer generation and loads again.
func (s *Service) load(ctx context.Context, h store.PolicyHead) (*compiled, error) {
	classes, err := s.store.ListActionClasses(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: load action classes: %w", err)
	}
	reg, err := newRegistry(classes)
	if err != nil {
		return nil, err
	}
	c := &compiled{generation: h.Generation, version: h.ActiveVersion, reg: reg, pol: emptyPolicies()}
	if h.ActiveVersion == 0 {
		return c, nil
	}
	v, err := s.store.GetPolicyVersion(ctx, h.ActiveVersion)
	if err != nil {
		return nil, fmt.Errorf("policy: load the active version %d: %w", h.ActiveVersion, err)
	}
	if c.pol, err = parse([]byte(v.Text), reg); err != nil {
		// Changes are checked against the active version before they
		// commit, so this means the store was edited behind agentid's
		// back. Fail closed: no decisions until an operator fixes it.
		return nil, fmt.Errorf("policy: the active version %d does not validate: %w", h.ActiveVersion, err)
	}
	return c, nil
}

// install makes c the policy set in force after a change this Service
// committed.
func (s *Service) install(c *compiled) {
	s.reload.Lock()
	defer s.reload.Unlock()
	if old := s.cur.Load(); old == nil || old.generation < c.generation {
		s.cur.Store(c)
	}
	s.lastCheck.Store(s.clock().UnixNano())
}
