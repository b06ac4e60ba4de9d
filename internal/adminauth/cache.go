package adminauth

import (
	"sync"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// DefaultCacheTTL is how long Authenticate trusts a token it read from
// the store without reading it again: the bound on how long a token
// revoked on another replica keeps working here. A revocation made
// through this Service takes effect at once.
const DefaultCacheTTL = time.Second

// tokenCacheSize bounds the tokens a Service keeps; when it is reached the
// cache starts afresh.
const tokenCacheSize = 1024

// tokenCache keeps the tokens Authenticate found usable, by the SHA-256 of
// their secret (never the secret itself). gen counts the revocations made
// through the Service: a read that began before one is not cached, so a
// token revoked here cannot come back from a read in flight.
type tokenCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]cachedToken // key: string(hash)
}

type cachedToken struct {
	tok    store.AdminToken // without its hash
	readAt time.Time
}

// get returns the cached token of hash when it was read less than ttl
// before now.
func (c *tokenCache) get(hash []byte, now time.Time, ttl time.Duration) (store.AdminToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[string(hash)]
	if !ok || now.Sub(e.readAt) >= ttl || now.Before(e.readAt) {
		return store.AdminToken{}, false
	}
	return e.tok, true
}

// generation returns the revocation count, read before a store read whose
// result put may cache.
func (c *tokenCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches tok, read at readAt, unless a revocation happened since gen
// was read.
func (c *tokenCache) put(hash []byte, tok store.AdminToken, readAt time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.m == nil || len(c.m) >= tokenCacheSize {
		c.m = make(map[string]cachedToken)
	}
	c.m[string(hash)] = cachedToken{tok: tok, readAt: readAt}
}

// revoked forgets token id; called once its revocation has committed.
func (c *tokenCache) revoked(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.m {
		if e.tok.ID == id {
			delete(c.m, k)
		}
	}
}
