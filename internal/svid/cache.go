package svid

import (
	"sync"

	"github.com/agentid/agentid/internal/store"
)

// agentCacheSize bounds the agents a Service keeps; when it is reached the
// cache starts afresh.
const agentCacheSize = 4096

// agentCache keeps the agents last read, by id. An entry is only used
// after the store confirms its version, so it is never stale, only
// unused.
type agentCache struct {
	mu sync.Mutex
	m  map[string]store.Agent
}

func (c *agentCache) get(id string) (store.Agent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[id]
	return a, ok
}

func (c *agentCache) put(a store.Agent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= agentCacheSize {
		c.m = make(map[string]store.Agent)
	}
	c.m[a.ID] = a
}
