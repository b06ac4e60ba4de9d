package node

import (
	"context"
	"time"

	"github.com/agentid/agentid/internal/nodeapi"
)

// backoff is exponential backoff with jitter: the n-th wait (from 0) is
// base·2ⁿ capped at max, of which a random half is taken off, so that
// nodes that lost the server together do not come back together.
type backoff struct {
	base, max time.Duration
	jitter    func(n int64) int64 // uniform in [0, n)
}

// delay is the wait before attempt+1, after attempt failures.
func (b backoff) delay(attempt int) time.Duration {
	d := b.base
	for i := 0; i < attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	half := d / 2
	return d - half + time.Duration(b.jitter(int64(half)+1))
}

// next records one more failure of r at now.
func (b backoff) next(r retry, now time.Time, err error) retry {
	return retry{failures: r.failures + 1, at: now.Add(b.delay(r.failures)), err: err}
}

// watchLoop keeps the watch stream open: each snapshot is applied; when
// the stream fails or ends it reconnects after a backoff, which a
// snapshot resets. It returns when ctx ends or the node is evicted.
func (n *Node) watchLoop(ctx context.Context) {
	attempt := 0
	for {
		got := false
		err := n.up.Watch(ctx, func(s nodeapi.Snapshot) error {
			if !got && attempt > 0 {
				n.log.Info("watch stream reconnected", "revision", s.Revision)
			}
			got, attempt = true, 0
			n.cache.applySnapshot(s)
			return nil
		})
		switch {
		case ctx.Err() != nil:
			return
		case isEvicted(err):
			n.cache.evict()
			return
		}
		d := n.bo.delay(attempt)
		attempt++
		if attempt == 1 {
			n.log.Warn("watch stream lost; reconnecting", "error", err, "retry_in", d)
		} else {
			n.log.Debug("watch stream: reconnection failed", "error", err, "retry_in", d)
		}
		if node, _, _ := n.cache.nodeState(); node != nil && !node.validAt(n.clock()) && attempt == 1 {
			n.log.Error("the node SVID has expired: the node cannot reach the server until it attests again "+
				"with a new join token; serving the cached SVIDs until they expire", "expired_at", node.notAfter())
		}
		select {
		case <-ctx.Done():
			return
		case <-n.after(d):
		}
	}
}

// maintainLoop renews what is due (the node SVID, the agents' X.509-SVIDs)
// and drops what expired, then sleeps until the next thing is due or it
// is woken.
func (n *Node) maintainLoop(ctx context.Context) {
	for {
		next := n.cache.maintain()
		next = earliest(next, n.maintainNode(ctx))
		if ctx.Err() != nil || n.cache.isEvicted() {
			return
		}
		wait := maxWait
		if !next.IsZero() {
			wait = min(max(next.Sub(n.clock()), 0), maxWait)
		}
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		case <-n.after(wait):
		}
	}
}

// maintainNode renews the node SVID when it is due: at half its lifetime,
// at once when a tainted CA signed it or the bundle no longer verifies
// it, on the backoff after failures. After a renewal the idle
// connections are closed, so that new handshakes present the new SVID.
// It returns when it is next due (zero: not while the node has no valid
// SVID).
func (n *Node) maintainNode(ctx context.Context) time.Time {
	s, status, r := n.cache.nodeState()
	now := n.clock()
	if s == nil || !s.validAt(now) {
		return time.Time{}
	}
	due := now
	if status == trusted {
		due = s.renewAt()
	}
	if r.at.After(due) {
		due = r.at
	}
	if due.After(now) {
		return due
	}
	td, id := n.cache.identity()
	ns, err := n.renewNode(ctx, "spiffe://"+td+"/node/"+id)
	switch {
	case err == nil:
		n.cache.setNode(td, id, ns, nil)
		n.up.CloseIdleConnections()
		n.log.Info("node SVID renewed", "node_id", id, "expires_at", ns.notAfter())
		if _, status, _ := n.cache.nodeState(); status != trusted {
			// Signed by a tainted or unknown CA: again, after a backoff.
			return n.cache.nodeFailed(errTaintedIssuer)
		}
		return ns.renewAt()
	case ctx.Err() != nil:
		return time.Time{}
	case isEvicted(err):
		n.cache.evict()
		return time.Time{}
	}
	at := n.cache.nodeFailed(err)
	n.log.Warn("node SVID not renewed", "error", err, "retry_at", at, "expires_at", s.notAfter())
	return at
}

// renewNode asks the server for a new node SVID for a new key.
func (n *Node) renewNode(ctx context.Context, spiffeID string) (*svid, error) {
	key, csr, err := newKeyAndCSR()
	if err != nil {
		return nil, err
	}
	resp, err := n.up.Renew(ctx, csr)
	if err != nil {
		return nil, err
	}
	return newSVID(spiffeID, resp.CertChain, key, n.clock())
}
