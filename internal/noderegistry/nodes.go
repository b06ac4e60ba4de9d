package noderegistry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Get returns the node with the id.
//
// Errors: *ValidationError for a malformed id; ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (store.Node, error) {
	if recordid.Valid(recordid.Node, id) != nil {
		return store.Node{}, invalid("id", "must be a node id (%s_…)", recordid.Node)
	}
	n, err := s.store.GetNode(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Node{}, fmt.Errorf("noderegistry: node %s: %w", id, ErrNotFound)
	case err != nil:
		return store.Node{}, fmt.Errorf("noderegistry: get node: %w", err)
	}
	return n, nil
}

// List returns one page of nodes in attestation order and the next page
// token; f.State, when set, is store.NodeActive or store.NodeEvicted.
//
// Errors: *ValidationError for an unknown state or a bad page token.
func (s *Service) List(ctx context.Context, f store.NodeFilter, p store.Page) ([]store.Node, string, error) {
	switch f.State {
	case "", store.NodeActive, store.NodeEvicted:
	default:
		return nil, "", invalid("state", "must be %s or %s", store.NodeActive, store.NodeEvicted)
	}
	ns, next, err := s.store.ListNodes(ctx, f, p)
	switch {
	case errors.Is(err, store.ErrBadPageToken):
		return nil, "", invalid("page_token", "is not a token this server issued")
	case err != nil:
		return nil, "", fmt.Errorf("noderegistry: list nodes: %w", err)
	}
	return ns, next, nil
}

// Evict evicts the node with the id for good, naming o's actor, and records
// EventNodeEvicted with the reason (optional: at most
// identity.MaxReasonLen bytes of text) in the same transaction. An evicted
// node cannot renew its SVID; the SVIDs it holds are not revoked and stay
// valid until they expire (Node.SVIDExpiresAt).
//
// Errors: *ValidationError for a malformed id or reason; ErrNotFound;
// ErrEvicted when the node is already evicted. On any error nothing
// changes.
func (s *Service) Evict(ctx context.Context, o audit.Origin, id, reason string) (store.Node, error) {
	if recordid.Valid(recordid.Node, id) != nil {
		return store.Node{}, invalid("id", "must be a node id (%s_…)", recordid.Node)
	}
	reason, err := normalizeReason(reason)
	if err != nil {
		return store.Node{}, err
	}
	now := s.now()
	var out store.Node
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		n, err := tx.UpdateNode(ctx, id, func(n store.Node) (store.Node, error) {
			if n.State() == store.NodeEvicted {
				return n, evictedError(n)
			}
			n.EvictedAt, n.EvictedBy = now, o.Actor.ID
			return n, nil
		})
		switch {
		case errors.Is(err, ErrEvicted):
			return err
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("noderegistry: node %s: %w", id, ErrNotFound)
		case err != nil:
			return fmt.Errorf("noderegistry: evict node: %w", err)
		}
		ev := o.Event(audit.Admin, EventNodeEvicted)
		ev.Time = now
		ev.Reason = reason
		ev.Details = map[string]any{
			"node_id": n.ID, "spiffe_id": n.SPIFFEID, "svid_serial": n.SVIDSerial,
			"svid_expires_at": n.SVIDExpiresAt.UTC().Format(time.RFC3339),
		}
		if _, err := s.rec.Append(ctx, tx, ev); err != nil {
			return fmt.Errorf("noderegistry: record %s: %w", EventNodeEvicted, err)
		}
		out = n
		return nil
	})
	if err != nil {
		return store.Node{}, err
	}
	return out, nil
}

// normalizeReason trims a reason and checks that it is at most
// identity.MaxReasonLen bytes of UTF-8 text without control or format
// characters (no bidirectional overrides in an audit trail).
func normalizeReason(r string) (string, error) {
	r = strings.TrimSpace(r)
	switch {
	case len(r) > identity.MaxReasonLen:
		return "", invalid("reason", "must be at most %d bytes", identity.MaxReasonLen)
	case !utf8.ValidString(r):
		return "", invalid("reason", "must be UTF-8 text")
	}
	for _, c := range r {
		if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) {
			return "", invalid("reason", "must not contain control or formatting characters")
		}
	}
	return r, nil
}
