package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentid/agentid/internal/nodeapi"
)

// Upstream is the node API as the node uses it (ADR 0012):
// *nodeapi.Client implements it. Errors wrap nodeapi.ErrEvicted when the
// server refuses the node (evicted or unknown) and
// nodeapi.ErrAgentUnavailable when it refuses an agent (unknown, not
// active, no selectors); anything else is worth a retry.
type Upstream interface {
	// Renew returns a new X.509-SVID of the node for the key of csrDER.
	Renew(ctx context.Context, csrDER []byte) (nodeapi.X509SVID, error)
	// X509SVID returns an X.509-SVID of the agent for the key of csrDER.
	X509SVID(ctx context.Context, agentID string, csrDER []byte) (nodeapi.X509SVID, error)
	// JWTSVIDs returns JWT-SVIDs, one result per item (each a JWT-SVID or
	// an error wrapping nodeapi.ErrAgentUnavailable or
	// nodeapi.ErrRejected); its own error concerns the whole batch.
	JWTSVIDs(ctx context.Context, items []nodeapi.JWTSVIDsItem) ([]nodeapi.JWTSVIDResult, error)
	// Watch calls fn with each snapshot of the watch stream, one at a
	// time, until ctx ends, the stream fails or ends, or fn fails.
	Watch(ctx context.Context, fn func(nodeapi.Snapshot) error) error
	// CloseIdleConnections closes idle connections, so that the next
	// requests make new TLS handshakes (with a renewed node SVID).
	CloseIdleConnections()
}

var _ Upstream = (*nodeapi.Client)(nil)

// isEvicted reports whether the server refused the node.
func isEvicted(err error) bool { return errors.Is(err, nodeapi.ErrEvicted) }

// upstream returns Params.Upstream, or a nodeapi.Client of the node API
// that presents the node's current SVID and verifies the server with the
// node's current trust bundle, both read per handshake.
func (n *Node) upstream() (Upstream, error) {
	if n.p.Upstream != nil {
		return n.p.Upstream, nil
	}
	td, _ := n.cache.identity()
	c, err := nodeapi.NewClient(nodeapi.ClientParams{
		Addr:        n.p.NodeAPIAddr,
		TrustDomain: td,
		Authorities: n.cache.authorities,
		Certificate: n.cache.nodeCertificate,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return c, nil
}
