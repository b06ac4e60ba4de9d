package dpop

import (
	"container/heap"
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultReplayCacheSize is the capacity of NewReplayCache(0).
const DefaultReplayCacheSize = 100_000

// ReplayCache remembers the proof ids (jti) a resource server has seen, so
// that a proof is accepted once (RFC 9449 §11.1). It lives in memory: a
// resource server with several replicas needs sticky sessions or a shared
// store to catch a proof replayed to another replica.
//
// The cache is bounded: it holds at most its capacity of unexpired ids and
// fails closed (Use reports false) when full, so size it for the proofs one
// replica sees in VerifyParams.MaxAge. An id costs about 80 bytes. A
// ReplayCache is safe for concurrent use.
type ReplayCache struct {
	mu       sync.Mutex
	max      int
	seen     map[[32]byte]time.Time
	byExpiry expiryHeap
}

// NewReplayCache returns a cache of at most max ids (max <= 0:
// DefaultReplayCacheSize).
func NewReplayCache(max int) *ReplayCache {
	if max <= 0 {
		max = DefaultReplayCacheSize
	}
	return &ReplayCache{max: max, seen: map[[32]byte]time.Time{}}
}

// Use records jti until expiresAt and reports whether this is its first use
// at time now. It reports false for an id seen before and not yet expired,
// and when the cache is full. Give an expiresAt later than the last moment
// Verify accepts the proof, Proof.IssuedAt + MaxAge: for instance
// IssuedAt + MaxAge + Leeway. Ids are kept hashed, so jti may be a
// composite such as thumbprint + " " + jti.
func (c *ReplayCache) Use(jti string, expiresAt, now time.Time) bool {
	k := sha256.Sum256([]byte(jti))
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.byExpiry) > 0 && !c.byExpiry[0].at.After(now) {
		e := heap.Pop(&c.byExpiry).(expiry)
		delete(c.seen, e.key)
	}
	if _, ok := c.seen[k]; ok {
		return false
	}
	if !expiresAt.After(now) {
		return true // nothing to remember: the proof is no longer accepted
	}
	if len(c.seen) >= c.max {
		return false
	}
	c.seen[k] = expiresAt
	heap.Push(&c.byExpiry, expiry{key: k, at: expiresAt})
	return true
}

// Len returns the number of ids held.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

type expiry struct {
	key [32]byte
	at  time.Time
}

// expiryHeap is a min-heap of ids by expiry; each id in seen has exactly
// one entry.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
