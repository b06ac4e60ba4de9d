package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/secret"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Audit event types of agents' client credentials, all in family
// audit.Issuance. Their details name keys by kid, algorithm and RFC 7638
// thumbprint and secrets by id; never key material, a secret or its hash.
const (
	EventClientKeyAdded      = "client_key.added"
	EventClientKeyRemoved    = "client_key.removed"
	EventClientSecretCreated = "client_secret.created" //nolint:gosec // an event type, not a credential
	EventClientSecretRemoved = "client_secret.removed" //nolint:gosec // an event type, not a credential
)

// Bounds of client credentials.
const (
	// MaxClientKeys is the most public keys one agent may have registered,
	// expired ones included.
	MaxClientKeys = 16
	// MaxClientSecrets is the most unexpired client secrets one agent may
	// have at once: two, so a secret can be rotated without downtime.
	MaxClientSecrets = 2
	// ClientSecretPrefix starts every client secret, so secret scanners can
	// recognise one.
	ClientSecretPrefix = "aidcs_"
)

// AddClientKeyParams registers a public key an agent authenticates with
// (private_key_jwt, RFC 7523 §2.2).
type AddClientKeyParams struct {
	// Ref is the agent's id or name.
	Ref string
	// PublicKey is a JWK or a PEM public key; see ParseClientKey.
	PublicKey []byte
	// Algorithm is the JWS algorithm the key signs with; empty: the JWK's
	// "alg", else the key type's default (ES256, EdDSA, RS256).
	Algorithm string
	// ExpiresAt, when not zero, is when the key stops being accepted; it
	// must be in the future.
	ExpiresAt time.Time
}

// AddClientKey registers a public key of an agent that is not
// deprovisioned and records client_key.added. The key's id is the JWK's
// "kid" when it has one, else its RFC 7638 thumbprint; only the public JWK
// (with "kid" and "alg") is stored. Adding a key increments the agent's
// version, so concurrent changes of its credentials serialise.
//
// Errors: *ValidationError for bad input (see ParseClientKey); ErrNotFound;
// ErrIllegalTransition when the agent is deprovisioned; ErrAlreadyExists
// when the agent has a key with the kid or the same key under another kid;
// ErrLimitExceeded when it has MaxClientKeys keys. On any error nothing is
// stored.
func (s *Service) AddClientKey(ctx context.Context, o audit.Origin, p AddClientKeyParams) (store.ClientKey, error) {
	now := s.now()
	pk, err := ParseClientKey(p.PublicKey, p.Algorithm)
	if err != nil {
		return store.ClientKey{}, err
	}
	exp, err := checkExpiry(p.ExpiresAt, now)
	if err != nil {
		return store.ClientKey{}, err
	}
	var out store.ClientKey
	err = s.updateAgents(ctx, func(ctx context.Context, tx store.Tx) error {
		a, err := s.touchForCredentials(ctx, tx, p.Ref, now)
		if err != nil {
			return err
		}
		keys, err := tx.ListClientKeys(ctx, a.ID)
		if err != nil {
			return fmt.Errorf("identity: list client keys: %w", err)
		}
		if len(keys) >= MaxClientKeys {
			return fmt.Errorf("identity: agent %q has %d keys, the most allowed; remove one first: %w", a.Name, len(keys), ErrLimitExceeded)
		}
		for _, k := range keys {
			if ClientKeyThumbprint(k) == pk.Thumbprint {
				return fmt.Errorf("identity: agent %q already has this key, as kid %q: %w", a.Name, k.KeyID, ErrAlreadyExists)
			}
		}
		created, err := tx.CreateClientKey(ctx, store.ClientKey{
			AgentID: a.ID, KeyID: pk.KeyID, Algorithm: pk.Algorithm, JWK: pk.JWK, CreatedAt: now, ExpiresAt: exp,
		})
		switch {
		case errors.Is(err, store.ErrAlreadyExists):
			return fmt.Errorf("identity: agent %q already has a key with kid %q: %w", a.Name, pk.KeyID, ErrAlreadyExists)
		case err != nil:
			return fmt.Errorf("identity: create client key: %w", err)
		}
		details := keyDetails(created, pk.Thumbprint)
		details["version"] = a.Version
		if err := s.appendCredentialEvent(ctx, tx, o, EventClientKeyAdded, a, now, details); err != nil {
			return err
		}
		out = created
		return nil
	})
	if err != nil {
		return store.ClientKey{}, err
	}
	return out, nil
}

// ListClientKeys returns the agent's public keys, expired ones included,
// in key id order.
//
// Errors: *ValidationError for a bad ref; ErrNotFound.
func (s *Service) ListClientKeys(ctx context.Context, ref string) ([]store.ClientKey, error) {
	a, err := getAgent(ctx, s.store, ref)
	if err != nil {
		return nil, err
	}
	keys, err := s.store.ListClientKeys(ctx, a.ID)
	if err != nil {
		return nil, fmt.Errorf("identity: list client keys: %w", err)
	}
	return keys, nil
}

// RemoveClientKey removes the agent's key with the id and records
// client_key.removed. It is allowed in every state of the agent and does
// not change the agent's version.
//
// Errors: *ValidationError for a bad ref or kid; ErrNotFound when there is
// no such agent or key. On any error nothing is stored.
func (s *Service) RemoveClientKey(ctx context.Context, o audit.Origin, ref, kid string) error {
	if err := ValidateKeyID(kid); err != nil {
		return err
	}
	now := s.now()
	return s.updateAgents(ctx, func(ctx context.Context, tx store.Tx) error {
		a, err := getAgent(ctx, tx, ref)
		if err != nil {
			return err
		}
		k, err := tx.GetClientKey(ctx, a.ID, kid)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("identity: agent %q has no key %q: %w", a.Name, kid, ErrNotFound)
		case err != nil:
			return fmt.Errorf("identity: get client key: %w", err)
		}
		if err := tx.DeleteClientKey(ctx, a.ID, kid); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("identity: agent %q has no key %q: %w", a.Name, kid, ErrNotFound)
			}
			return fmt.Errorf("identity: delete client key: %w", err)
		}
		if err := bumpVersion(ctx, tx, a.ID, now); err != nil {
			return err
		}
		return s.appendCredentialEvent(ctx, tx, o, EventClientKeyRemoved, a, now, keyDetails(k, ClientKeyThumbprint(k)))
	})
}

func keyDetails(k store.ClientKey, thumbprint string) map[string]any {
	return map[string]any{
		"kid":        k.KeyID,
		"alg":        k.Algorithm,
		"thumbprint": thumbprint,
		"expires_at": optRFC3339(k.ExpiresAt),
	}
}

// CreateClientSecretParams asks for a new client secret of an agent.
type CreateClientSecretParams struct {
	// Ref is the agent's id or name.
	Ref string
	// ExpiresAt, when not zero, is when the secret stops being accepted;
	// it must be in the future.
	ExpiresAt time.Time
}

// CreateClientSecret generates a client secret for an agent that is not
// deprovisioned and records client_secret.created. The secret is
// ClientSecretPrefix followed by 256 random bits in base64url; only its
// SHA-256 is stored (see HashClientSecret), so the returned string is the
// only copy. The returned record has no Hash. Creating a secret increments
// the agent's version, so concurrent creations serialise and the limit
// holds.
//
// Errors: *ValidationError for a bad ref or expiry; ErrNotFound;
// ErrIllegalTransition when the agent is deprovisioned; ErrLimitExceeded
// when the agent already has MaxClientSecrets unexpired secrets. On any
// error nothing is stored.
func (s *Service) CreateClientSecret(ctx context.Context, o audit.Origin, p CreateClientSecretParams) (store.ClientSecret, string, error) {
	now := s.now()
	exp, err := checkExpiry(p.ExpiresAt, now)
	if err != nil {
		return store.ClientSecret{}, "", err
	}
	id, err := s.newID(recordid.ClientSecret, now)
	if err != nil {
		return store.ClientSecret{}, "", err
	}
	plain, err := secret.New(ClientSecretPrefix, s.rand)
	if err != nil {
		return store.ClientSecret{}, "", err
	}
	var out store.ClientSecret
	err = s.updateAgents(ctx, func(ctx context.Context, tx store.Tx) error {
		a, err := s.touchForCredentials(ctx, tx, p.Ref, now)
		if err != nil {
			return err
		}
		secrets, err := tx.ListClientSecrets(ctx, a.ID)
		if err != nil {
			return fmt.Errorf("identity: list client secrets: %w", err)
		}
		var live []string
		for _, cs := range secrets {
			if !secretExpired(cs, now) {
				live = append(live, cs.ID)
			}
		}
		if len(live) >= MaxClientSecrets {
			return fmt.Errorf("identity: agent %q already has %d unexpired client secrets (%s), the most allowed; remove one first: %w",
				a.Name, len(live), strings.Join(live, ", "), ErrLimitExceeded)
		}
		created, err := tx.CreateClientSecret(ctx, store.ClientSecret{
			ID: id, AgentID: a.ID, Hash: HashClientSecret(plain), CreatedAt: now, ExpiresAt: exp,
		})
		if err != nil {
			return fmt.Errorf("identity: create client plain: %w", err)
		}
		details := map[string]any{
			"secret_id":  created.ID,
			"expires_at": optRFC3339(created.ExpiresAt),
			"version":    a.Version,
		}
		if err := s.appendCredentialEvent(ctx, tx, o, EventClientSecretCreated, a, now, details); err != nil {
			return err
		}
		out = created
		return nil
	})
	if err != nil {
		return store.ClientSecret{}, "", err
	}
	out.Hash = nil
	return out, plain, nil
}

// ListClientSecrets returns the agent's client secrets, expired ones
// included, in id order, without their hashes.
//
// Errors: *ValidationError for a bad ref; ErrNotFound.
func (s *Service) ListClientSecrets(ctx context.Context, ref string) ([]store.ClientSecret, error) {
	a, err := getAgent(ctx, s.store, ref)
	if err != nil {
		return nil, err
	}
	secrets, err := s.store.ListClientSecrets(ctx, a.ID)
	if err != nil {
		return nil, fmt.Errorf("identity: list client secrets: %w", err)
	}
	for i := range secrets {
		secrets[i].Hash = nil
	}
	return secrets, nil
}

// RemoveClientSecret removes the agent's secret with the id (sec_…) and
// records client_secret.removed. It is allowed in every state of the agent
// and does not change the agent's version.
//
// Errors: *ValidationError for a bad ref or id; ErrNotFound when there is
// no such agent or secret. On any error nothing is stored.
func (s *Service) RemoveClientSecret(ctx context.Context, o audit.Origin, ref, id string) error {
	if recordid.Valid(recordid.ClientSecret, id) != nil {
		return invalid("id", "must be a client secret id (%s_…)", recordid.ClientSecret)
	}
	now := s.now()
	return s.updateAgents(ctx, func(ctx context.Context, tx store.Tx) error {
		a, err := getAgent(ctx, tx, ref)
		if err != nil {
			return err
		}
		err = tx.DeleteClientSecret(ctx, a.ID, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("identity: agent %q has no client secret %q: %w", a.Name, id, ErrNotFound)
		case err != nil:
			return fmt.Errorf("identity: delete client secret: %w", err)
		}
		if err := bumpVersion(ctx, tx, a.ID, now); err != nil {
			return err
		}
		return s.appendCredentialEvent(ctx, tx, o, EventClientSecretRemoved, a, now, map[string]any{"secret_id": id})
	})
}

// HashClientSecret returns the SHA-256 of a client secret, the form in
// which it is stored. A secret is 256 random bits, so a fast hash is as
// strong as a slow password KDF here: there is nothing to guess.
func HashClientSecret(s string) []byte { return secret.Hash(s) }

// MatchClientSecret returns the unexpired secret among secrets whose hash
// is that of secret. It compares the hash with every candidate in constant
// time and does not stop at a match, so its timing does not tell which
// candidate matched, or whether one did.
func MatchClientSecret(secrets []store.ClientSecret, secret string, now time.Time) (store.ClientSecret, bool) {
	h := HashClientSecret(secret)
	idx := -1
	for i, cs := range secrets {
		live := 1
		if secretExpired(cs, now) {
			live = 0
		}
		idx = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(cs.Hash, h)&live, i, idx)
	}
	if idx < 0 {
		return store.ClientSecret{}, false
	}
	return secrets[idx], true
}

// secretExpired reports whether cs has expired at now.
func secretExpired(cs store.ClientSecret, now time.Time) bool {
	return !cs.ExpiresAt.IsZero() && !now.Before(cs.ExpiresAt)
}

// touchForCredentials resolves ref inside tx and bumps the agent's version
// (UpdatedAt = now), refusing a deprovisioned agent. Because the update
// locks the agent, concurrent credential changes of one agent serialise,
// and a credential is never added to an agent being deprovisioned.
func (s *Service) touchForCredentials(ctx context.Context, tx store.Tx, ref string, now time.Time) (store.Agent, error) {
	cur, err := getAgent(ctx, tx, ref)
	if err != nil {
		return store.Agent{}, err
	}
	a, err := tx.UpdateAgent(ctx, cur.ID, func(a store.Agent) (store.Agent, error) {
		if a.State == store.AgentDeprovisioned {
			return a, fmt.Errorf("identity: agent %q is deprovisioned and gets no new credentials: %w", a.Name, ErrIllegalTransition)
		}
		a.UpdatedAt = now
		return a, nil
	})
	if err != nil {
		return store.Agent{}, mapUpdateErr("agent", err)
	}
	return a, nil
}

// bumpVersion increments the agent's version in tx, whatever its state:
// every change to what an agent authenticates with changes its version, so
// that a cache of its credentials keyed by version (internal/oauth) sees
// removals too.
func bumpVersion(ctx context.Context, tx store.Tx, id string, now time.Time) error {
	_, err := tx.UpdateAgent(ctx, id, func(a store.Agent) (store.Agent, error) {
		a.UpdatedAt = now
		return a, nil
	})
	if err != nil {
		return mapUpdateErr("agent", err)
	}
	return nil
}

// appendCredentialEvent records an event about an agent's credentials.
func (s *Service) appendCredentialEvent(ctx context.Context, tx store.Tx, o audit.Origin, typ string, a store.Agent, now time.Time, details map[string]any) error {
	ev := o.Event(audit.Issuance, typ)
	ev.Time = now
	ev.Agent = &audit.Agent{ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID}
	ev.Details = details
	if _, err := s.rec.Append(ctx, tx, ev); err != nil {
		return fmt.Errorf("identity: record %s: %w", typ, err)
	}
	return nil
}

// optRFC3339 is an optional time as an audit detail: JSON null when zero.
func optRFC3339(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}
