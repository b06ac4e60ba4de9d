package authzen

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// Cache bounds.
const (
	// MaxCacheSize bounds the decisions a Cache holds.
	MaxCacheSize = 1 << 20
	// MaxCacheTTL bounds how long a cached decision is used: a policy
	// change, a suspended agent or a revoked grant reaches a cached
	// decision at most this late.
	MaxCacheTTL = 5 * time.Minute
)

// CacheParams bounds a Cache.
type CacheParams struct {
	// Size is how many decisions it holds (1..MaxCacheSize); the least
	// recently used goes first.
	Size int
	// TTL is how long a decision is used (0 < TTL <= MaxCacheTTL).
	TTL time.Duration
	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
}

// Cache is a bounded decision cache for Middleware or CachedEvaluate.
// Only allow and plain deny answers are kept: a conditional decision, an
// item error or an answer without agentid's context.decision is never
// cached, so a conditional is always asked again (its approval may have
// come) and never served as an allow. It is safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	clock func() time.Time
	ll    *list.List // front: most recently used
	items map[[32]byte]*list.Element
}

type cacheEntry struct {
	key     [32]byte
	d       Decision
	expires time.Time
}

// NewCache returns an empty cache.
func NewCache(p CacheParams) (*Cache, error) {
	switch {
	case p.Size < 1 || p.Size > MaxCacheSize:
		return nil, errors.New("authzen: cache size must be between 1 and 1048576")
	case p.TTL <= 0 || p.TTL > MaxCacheTTL:
		return nil, errors.New("authzen: cache TTL must be positive and at most 5m")
	}
	if p.Clock == nil {
		p.Clock = time.Now
	}
	return &Cache{size: p.Size, ttl: p.TTL, clock: p.Clock, ll: list.New(), items: map[[32]byte]*list.Element{}}, nil
}

// Len returns how many decisions the cache holds (expired ones included
// until they are looked up or pushed out).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// keyOf is the SHA-256 of the request's JSON (map keys sorted by
// encoding/json), so equal questions share an entry.
func keyOf(r Request) ([32]byte, bool) {
	b, err := json.Marshal(r)
	if err != nil {
		return [32]byte{}, false
	}
	return sha256.Sum256(b), true
}

func (c *Cache) get(k [32]byte) (Decision, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return Decision{}, false
	}
	ent := e.Value.(*cacheEntry)
	if !c.clock().Before(ent.expires) {
		c.ll.Remove(e)
		delete(c.items, k)
		return Decision{}, false
	}
	c.ll.MoveToFront(e)
	return ent.d, true
}

// cacheable reports whether a decision may be kept: agentid's allow or
// deny, nothing conditional or failed.
func cacheable(d Decision) bool {
	switch d.Context["decision"] {
	case "allow":
		return d.Decision
	case "deny":
		return !d.Decision && d.Context["error"] == nil
	}
	return false
}

func (c *Cache) put(k [32]byte, d Decision) {
	if !cacheable(d) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp := c.clock().Add(c.ttl)
	if e, ok := c.items[k]; ok {
		e.Value = &cacheEntry{key: k, d: d, expires: exp}
		c.ll.MoveToFront(e)
		return
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{key: k, d: d, expires: exp})
	for c.ll.Len() > c.size {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

// CachedEvaluate answers from the cache when it holds the same question,
// unexpired; otherwise it asks the PDP and keeps a cacheable answer. A
// nil cache always asks. cached reports whether the answer came from the
// cache (the PDP recorded no new audit event for it).
func (c *Client) CachedEvaluate(ctx context.Context, cache *Cache, r Request) (d Decision, cached bool, err error) {
	if cache == nil {
		d, err = c.Evaluate(ctx, r)
		return d, false, err
	}
	k, ok := keyOf(r)
	if ok {
		if d, hit := cache.get(k); hit {
			return d, true, nil
		}
	}
	if d, err = c.Evaluate(ctx, r); err != nil {
		return Decision{}, false, err
	}
	if ok {
		cache.put(k, d)
	}
	return d, false, nil
}
