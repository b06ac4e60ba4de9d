package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// Handlers of agents' client credentials (/v1/agents/{ref}/keys,
// /v1/agents/{ref}/secrets) and of token revocation (/v1/tokens/revoke).
// No answer carries a secret's hash, and only the answer that creates a
// secret carries the secret.

func (h *handler) clientKeyOut(k store.ClientKey) admin.ClientKey {
	return admin.ClientKey{
		ClientID:   k.AgentID,
		KeyID:      k.KeyID,
		Algorithm:  k.Algorithm,
		Thumbprint: identity.ClientKeyThumbprint(k),
		JWK:        json.RawMessage(k.JWK),
		CreatedAt:  k.CreatedAt.UTC(),
		ExpiresAt:  optTime(k.ExpiresAt),
		Expired:    h.expired(k.ExpiresAt),
	}
}

func (h *handler) clientSecretOut(s store.ClientSecret) admin.ClientSecret {
	return admin.ClientSecret{
		ID:        s.ID,
		ClientID:  s.AgentID,
		CreatedAt: s.CreatedAt.UTC(),
		ExpiresAt: optTime(s.ExpiresAt),
		Expired:   h.expired(s.ExpiresAt),
	}
}

// expired reports whether an optional expiry (zero: never) has passed.
func (h *handler) expired(exp time.Time) bool {
	return !exp.IsZero() && !h.p.Clock().Before(exp)
}

func (h *handler) addClientKey(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.AddClientKeyRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	params := identity.AddClientKeyParams{
		Ref: r.PathValue("ref"), PublicKey: []byte(in.PublicKey), Algorithm: in.Algorithm,
	}
	if in.ExpiresAt != nil {
		params.ExpiresAt = *in.ExpiresAt
	}
	k, err := h.p.Identity.AddClientKey(r.Context(), p.origin, params)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusCreated, h.clientKeyOut(k))
}

func (h *handler) listClientKeys(w http.ResponseWriter, r *http.Request, _ *principal) {
	keys, err := h.p.Identity.ListClientKeys(r.Context(), r.PathValue("ref"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, listOf(keys, h.clientKeyOut))
}

func (h *handler) removeClientKey(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := h.p.Identity.RemoveClientKey(r.Context(), p.origin, r.PathValue("ref"), r.PathValue("kid")); err != nil {
		h.problem(w, r, err)
		return
	}
	noContent(w)
}

func (h *handler) createClientSecret(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.CreateClientSecretRequest
	if r.ContentLength != 0 {
		if err := h.decode(w, r, &in); err != nil {
			h.problem(w, r, err)
			return
		}
	}
	params := identity.CreateClientSecretParams{Ref: r.PathValue("ref")}
	if in.ExpiresAt != nil {
		params.ExpiresAt = *in.ExpiresAt
	}
	s, secret, err := h.p.Identity.CreateClientSecret(r.Context(), p.origin, params)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusCreated, admin.CreatedClientSecret{ClientSecret: h.clientSecretOut(s), Secret: secret})
}

func (h *handler) listClientSecrets(w http.ResponseWriter, r *http.Request, _ *principal) {
	secrets, err := h.p.Identity.ListClientSecrets(r.Context(), r.PathValue("ref"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, listOf(secrets, h.clientSecretOut))
}

func (h *handler) removeClientSecret(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := h.p.Identity.RemoveClientSecret(r.Context(), p.origin, r.PathValue("ref"), r.PathValue("id")); err != nil {
		h.problem(w, r, err)
		return
	}
	noContent(w)
}

func (h *handler) revokeTokens(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.RevokeTokensRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	rev, err := h.p.Identity.RevokeTokens(r.Context(), p.origin, identity.RevokeTokensParams{JTI: in.JTI, AgentRef: in.Agent})
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.TokenRevocation{JTI: rev.JTI, RevokedAt: rev.RevokedAt.UTC(), KeptUntil: optTime(rev.ExpiresAt),
		TokensAffected: rev.TokensAffected}
	if rev.Agent.ID != "" {
		a := h.agentOut(rev.Agent)
		out.Agent = &a
	}
	h.reply(w, http.StatusOK, out)
}

// noContent answers 204 with no body.
func noContent(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
