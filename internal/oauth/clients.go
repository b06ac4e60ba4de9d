package oauth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/agentid/agentid/internal/store"
)

// maxCachedClients bounds the client cache; past it an arbitrary entry
// makes room.
const maxCachedClients = 10_000

// clientCache keeps what client authentication reads about an agent (its
// record, its parsed public keys, its secret hashes), keyed by the agent's
// version. A request reads the version (one primary-key lookup) and
// reloads only when it moved, or, for client_credentials, checks it in the
// transaction that records its outcome (findClient, commitIssued); every
// change to an agent or to its client credentials bumps the version
// (internal/identity), so a suspension or a removed key takes effect at
// once, on every replica. Safe for concurrent use.
type clientCache struct {
	mu sync.Mutex
	m  map[string]*client
}

// client is one agent as client authentication sees it. agent is
// immutable; keys and secrets are loaded on first use, under mu.
type client struct {
	agent store.Agent

	mu        sync.Mutex
	keys      []clientKey
	keysOK    bool
	secrets   []store.ClientSecret
	secretsOK bool
}

// clientKey is a registered public key, parsed once.
type clientKey struct {
	id        string
	alg       string
	expiresAt time.Time
	key       any
}

// lookupClient returns the current view of the agent whose client_id is
// id; ok is false when there is none.
func (s *Server) lookupClient(ctx context.Context, id string) (c *client, e *Error, ok bool) {
	if id == "" || len(id) > 64 {
		return nil, nil, false
	}
	v, err := s.store.GetAgentVersion(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil, false
	case err != nil:
		return nil, serverError(err), false
	}
	s.clients.mu.Lock()
	c = s.clients.m[id]
	s.clients.mu.Unlock()
	if c != nil && c.agent.Version == v {
		return c, nil, true
	}
	a, err := s.store.GetAgent(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil, false
	case err != nil:
		return nil, serverError(err), false
	}
	c = &client{agent: a}
	s.clients.mu.Lock()
	defer s.clients.mu.Unlock()
	if old := s.clients.m[id]; old != nil && old.agent.Version > a.Version {
		return old, nil, true // a concurrent reload saw a newer version
	}
	if len(s.clients.m) >= maxCachedClients {
		for k := range s.clients.m {
			delete(s.clients.m, k)
			break
		}
	}
	s.clients.m[id] = c
	return c, nil, true
}

// findClient is lookupClient; with deferCheck, a cached agent record is
// returned without reading the stored version (cached is then true), for a
// caller that checks the version in the transaction recording the
// request's outcome (authClient.version).
func (s *Server) findClient(ctx context.Context, id string, deferCheck bool) (c *client, cached bool, e *Error, ok bool) {
	if deferCheck {
		s.clients.mu.Lock()
		c = s.clients.m[id]
		s.clients.mu.Unlock()
		if c != nil {
			return c, true, nil, true
		}
	}
	c, e, ok = s.lookupClient(ctx, id)
	return c, false, e, ok
}

// versionIf is a's version when cached, else 0 (nothing left to check).
func versionIf(cached bool, a store.Agent) int64 {
	if cached {
		return a.Version
	}
	return 0
}

// publicKeys returns the agent's registered keys, parsed.
func (c *client) publicKeys(ctx context.Context, st store.Reader) ([]clientKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keysOK {
		return c.keys, nil
	}
	ks, err := st.ListClientKeys(ctx, c.agent.ID)
	if err != nil {
		return nil, err
	}
	keys := make([]clientKey, 0, len(ks))
	for _, k := range ks {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(k.JWK); err != nil || !jwk.IsPublic() {
			return nil, fmt.Errorf("oauth: agent %s: stored client key %q is unusable", c.agent.ID, k.KeyID)
		}
		keys = append(keys, clientKey{id: k.KeyID, alg: k.Algorithm, expiresAt: k.ExpiresAt, key: jwk.Key})
	}
	c.keys, c.keysOK = keys, true
	return keys, nil
}

// clientSecrets returns the agent's secrets (hashes).
func (c *client) clientSecrets(ctx context.Context, st store.Reader) ([]store.ClientSecret, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.secretsOK {
		return c.secrets, nil
	}
	ss, err := st.ListClientSecrets(ctx, c.agent.ID)
	if err != nil {
		return nil, err
	}
	c.secrets, c.secretsOK = ss, true
	return ss, nil
}
