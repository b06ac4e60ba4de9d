package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/internal/store"
)

// jwtEntry is a cached JWT-SVID.
type jwtEntry struct {
	agentID   string
	token     string
	refreshAt time.Time // half its lifetime: fetch a new one from then on
	expiresAt time.Time
}

// jwtKey is the cache key of a JWT-SVID: the agent and its audience,
// sorted and without duplicates.
func jwtKey(agentID string, aud []string) string {
	return agentID + "\x00" + strings.Join(aud, "\x00")
}

// JWTSVID implements workloadapi.Source: a cached JWT-SVID of the agent
// for the audience until half its lifetime, else a new one from the
// server (one request in flight per agent and audience); if that fails,
// the cached one while it is valid.
func (c *cache) JWTSVID(ctx context.Context, a store.Agent, audience []string) (string, error) {
	aud := slices.Clone(audience)
	slices.Sort(aud)
	aud = slices.Compact(aud)
	key := jwtKey(a.ID, aud)
	c.mu.Lock()
	if c.evicted {
		c.mu.Unlock()
		return "", errEvictedNode
	}
	now := c.clock()
	if j, ok := c.jwts[key]; ok && now.Before(j.refreshAt) {
		c.mu.Unlock()
		return j.token, nil
	}
	if _, ok := c.byID[a.ID]; !ok {
		c.mu.Unlock()
		return "", fmt.Errorf("node: agent %s is not in the snapshot", a.ID)
	}
	f := c.jwtFlight[key]
	if f == nil {
		if c.up == nil || c.closed {
			c.mu.Unlock()
			return c.validJWT(key, nil, errNotConnected)
		}
		f = &flight{done: make(chan struct{})}
		c.jwtFlight[key] = f
		ctx, up := c.ctx, c.up
		c.bg.Go(func() { c.fetchJWT(ctx, up, a.ID, aud, key, f) })
	}
	c.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return c.validJWT(key, f.jwt, f.err)
}

// validJWT returns the JWT-SVID a flight fetched (when not nil) or else
// the cached one under key, if it is still valid; else err (or an error
// saying there is none). The fetched one is handed over directly, not
// looked up in the cache, where a sweep by another flight (a full cache)
// may already have dropped it.
func (c *cache) validJWT(key string, fetched *jwtEntry, err error) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	if fetched != nil && !c.evicted && now.Before(fetched.expiresAt) {
		return fetched.token, nil
	}
	if j, ok := c.jwts[key]; ok && now.Before(j.expiresAt) {
		return j.token, nil
	}
	if err == nil {
		err = errors.New("node: no JWT-SVID")
	}
	return "", err
}

// fetchJWT is the goroutine of one JWT-SVID request.
func (c *cache) fetchJWT(ctx context.Context, up Upstream, agentID string, aud []string, key string, f *flight) {
	resp, err := c.jwtBatch.do(ctx, up, nodeapi.JWTSVIDsItem{AgentID: agentID, JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: aud}},
		func(fn func()) { c.bg.Go(fn) })
	c.mu.Lock()
	delete(c.jwtFlight, key)
	now := c.clock()
	if err == nil && !now.Before(resp.ExpiresAt) {
		err = fmt.Errorf("node: the server sent a JWT-SVID that expired at %s", resp.ExpiresAt.Format(time.RFC3339))
	}
	if _, ok := c.byID[agentID]; err == nil && ok && !c.evicted {
		if len(c.jwts) >= maxJWTSVIDs {
			c.sweepJWTs(now)
		}
		j := jwtEntry{
			agentID: agentID, token: resp.Token,
			refreshAt: now.Add(resp.ExpiresAt.Sub(now) / 2), expiresAt: resp.ExpiresAt,
		}
		c.jwts[key] = j
		f.jwt = &j
	}
	c.mu.Unlock()
	f.err = err
	close(f.done)
	if isEvicted(err) {
		c.evict()
	}
}

// sweepJWTs drops the expired JWT-SVIDs, and every one if that leaves the
// cache full. c.mu is held.
func (c *cache) sweepJWTs(now time.Time) {
	maps.DeleteFunc(c.jwts, func(_ string, j jwtEntry) bool { return !now.Before(j.expiresAt) })
	if len(c.jwts) >= maxJWTSVIDs {
		clear(c.jwts)
	}
}

// jwtBatcher sends JWT-SVID requests to the server in batches, like a
// group commit: one batch is in flight at a time, and the requests made
// meanwhile wait and go together in the next one. A lone request goes at
// once; a burst costs one round trip (TLS records, HTTP/2 frames,
// syscalls on both sides) per batch instead of one per request.
type jwtBatcher struct {
	mu      sync.Mutex
	queue   []*jwtCall
	sending bool
}

// jwtCall is one request of a batch; done is closed when res is set.
type jwtCall struct {
	item nodeapi.JWTSVIDsItem
	res  nodeapi.JWTSVIDResult
	done chan struct{}
}

// do queues the request, starting the sender with spawn if none runs, and
// waits for its result.
func (b *jwtBatcher) do(ctx context.Context, up Upstream, item nodeapi.JWTSVIDsItem, spawn func(func())) (nodeapi.JWTSVID, error) {
	call := &jwtCall{item: item, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, call)
	if !b.sending {
		b.sending = true
		spawn(func() { b.send(ctx, up) })
	}
	b.mu.Unlock()
	<-call.done // the sender completes every call it takes, and takes them all
	return call.res.JWTSVID, call.res.Err
}

// send sends the queued requests, at most nodeapi.MaxJWTSVIDsBatch at a
// time, until the queue is empty.
func (b *jwtBatcher) send(ctx context.Context, up Upstream) {
	for {
		b.mu.Lock()
		n := min(len(b.queue), nodeapi.MaxJWTSVIDsBatch)
		if n == 0 {
			b.sending = false
			b.mu.Unlock()
			return
		}
		calls := b.queue[:n:n]
		b.queue = append([]*jwtCall(nil), b.queue[n:]...)
		b.mu.Unlock()
		items := make([]nodeapi.JWTSVIDsItem, n)
		for i, c := range calls {
			items[i] = c.item
		}
		res, err := up.JWTSVIDs(ctx, items)
		for i, c := range calls {
			if err != nil {
				c.res.Err = err
			} else {
				c.res = res[i]
			}
			close(c.done)
		}
	}
}
