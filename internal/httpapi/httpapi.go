// Package httpapi is agentid's HTTP transport for the admin API (/v1/…),
// the OpenID AuthZEN decision endpoints (/access/v1/…), the SPIFFE bundle
// endpoint (/spiffe/bundle), SCIM 2.0 provisioning of owners (/scim/v2/…,
// over internal/scim), health (/healthz, /readyz)
// and metrics (/metrics): routing, JSON in and out, admin authentication,
// W3C trace context, and the mapping of domain errors to RFC 9457 problem
// details. It holds no business rules; those live in the domain packages
// it calls.
package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/bundle"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/internal/ssf"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/svid"
)

// DefaultMaxBodyBytes bounds a request body unless Params says otherwise.
const DefaultMaxBodyBytes = 1 << 20

// Params are the dependencies of the handler.
type Params struct {
	Identity *identity.Service
	Auth     *adminauth.Service
	// OAuth serves the token, introspection and revocation endpoints;
	// nil leaves them out.
	OAuth *oauth.Server
	// Keys publishes the JWKS and serves the signing-key admin endpoints;
	// Issuer is the issuer URL the discovery documents name (required
	// with Keys). Nil Keys leaves the discovery documents, the JWKS and
	// /v1/keys out.
	Keys   Keys
	Issuer string
	// CA serves the certificate authority's admin endpoints (/v1/ca);
	// nil leaves them out.
	CA CA
	// SVIDs issues and lists agents' SVIDs (/v1/agents/{ref}/svids); nil
	// leaves those endpoints out.
	SVIDs *svid.Service
	// Bundle is the trust domain's SPIFFE bundle, served at
	// /spiffe/bundle; nil leaves the endpoint out.
	Bundle *bundle.Bundle
	// Federation serves the federated trust domains' admin endpoints
	// (/v1/federation); nil leaves them out.
	Federation Federation
	// Nodes serves join tokens, the node registry (/v1/node-tokens,
	// /v1/nodes) and node attestation (/v1/node/attest); nil leaves them
	// out.
	Nodes *noderegistry.Service
	// Policy serves the decision point: the AuthZEN endpoints
	// (/access/v1/…, /.well-known/authzen-configuration; Issuer names
	// them) and the policy admin endpoints (/v1/policies,
	// /v1/action-classes); nil leaves them out.
	Policy *policy.Service
	// Grants serves the delegation grants (/v1/grants, /v1/me/grants);
	// nil leaves them out.
	Grants Grants
	// SSF is the Shared Signals transmitter (/.well-known/ssf-configuration,
	// /ssf/…; ADR 0026); nil leaves it out.
	SSF *ssf.Service
	// Audit reads the trail for the audit endpoints.
	Audit store.AuditReader
	// PruneAudit prunes the trail (POST /v1/audit/prune, ADR 0018); nil
	// leaves the endpoint out.
	PruneAudit func(ctx context.Context, o audit.Origin, before time.Time) (audit.PruneReport, error)
	// Ready reports whether the server can serve (store reachable,
	// migrations applied); /readyz calls it.
	Ready func(ctx context.Context) error
	// Registerer receives the HTTP metrics; Gatherer serves /metrics.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer

	// TrustedProxies are the load balancers and reverse proxies whose
	// X-Forwarded-For the server believes for the client address on logs
	// and audit events. Empty: the TCP peer is the client.
	TrustedProxies []netip.Prefix
	// FailedAuth limits failed authentications per client address
	// (ADR 0022); the zero value turns the limit off. Recorder writes its
	// auth.rate_limited events and is required when FailedAuth.Rate > 0.
	FailedAuth FailedAuthLimits
	Recorder   Recorder

	Logger       *slog.Logger
	Clock        func() time.Time
	Rand         io.Reader
	TrustDomain  string
	Version      string
	MaxBodyBytes int64 // 0: DefaultMaxBodyBytes
}

// handler serves the API. Construct it with New.
type handler struct {
	p       Params
	mux     *http.ServeMux
	m       *metrics
	limiter *failureLimiter // nil: failed authentications are not limited
}

// New returns the HTTP handler of the admin API, health and metrics.
func New(p Params) (http.Handler, error) {
	switch {
	case p.Identity == nil, p.Auth == nil, p.Audit == nil, p.Ready == nil:
		return nil, errors.New("httpapi: Identity, Auth, Audit and Ready are required")
	case p.Registerer == nil, p.Gatherer == nil:
		return nil, errors.New("httpapi: Registerer and Gatherer are required")
	case p.Logger == nil, p.Clock == nil, p.Rand == nil:
		return nil, errors.New("httpapi: Logger, Clock and Rand are required")
	case (p.Keys != nil || p.Policy != nil) && p.Issuer == "":
		return nil, errors.New("httpapi: Issuer is required with Keys and Policy")
	}
	if p.MaxBodyBytes <= 0 {
		p.MaxBodyBytes = DefaultMaxBodyBytes
	}
	m, err := newMetrics(p.Registerer)
	if err != nil {
		return nil, err
	}
	limiter, err := newFailureLimiter(p.FailedAuth)
	if err != nil {
		return nil, err
	}
	if limiter != nil && p.Recorder == nil {
		return nil, errors.New("httpapi: Recorder is required with FailedAuth")
	}
	h := &handler{p: p, mux: http.NewServeMux(), m: m, limiter: limiter}
	h.routes()
	return h.recoverer(h.traced(h.measured(h.limitFailures(h.mux)))), nil
}

func (h *handler) routes() {
	admin, auditor := store.RoleAdmin, store.RoleAuditor
	// paths matches a request's path alone, so that a known path asked
	// with the wrong method gets 405 and the methods it allows.
	paths, allowed := http.NewServeMux(), map[string][]string{}
	handle := func(pattern string, role store.Role, fn func(http.ResponseWriter, *http.Request, *principal)) {
		h.mux.Handle(pattern, h.authenticated(role, fn))
		method, path, _ := strings.Cut(pattern, " ")
		if allowed[path] == nil {
			paths.Handle(path, http.NotFoundHandler())
		}
		allowed[path] = append(allowed[path], method)
	}

	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(h.p.Gatherer, promhttp.HandlerOpts{}))
	h.mux.HandleFunc("GET /v1/version", h.version)

	handle("POST /v1/agents", admin, h.createAgent)
	handle("GET /v1/agents", admin, h.listAgents)
	handle("GET /v1/agents/{ref}", admin, h.getAgent)
	handle("PATCH /v1/agents/{ref}", admin, h.updateAgent)
	handle("POST /v1/agents/{ref}/suspend", admin, h.suspendAgent)
	handle("POST /v1/agents/{ref}/resume", admin, h.resumeAgent)
	handle("POST /v1/agents/{ref}/deprovision", admin, h.deprovisionAgent)
	handle("POST /v1/agents/{ref}/keys", admin, h.addClientKey)
	handle("GET /v1/agents/{ref}/keys", admin, h.listClientKeys)
	handle("DELETE /v1/agents/{ref}/keys/{kid}", admin, h.removeClientKey)
	handle("POST /v1/agents/{ref}/secrets", admin, h.createClientSecret)
	handle("GET /v1/agents/{ref}/secrets", admin, h.listClientSecrets)
	handle("DELETE /v1/agents/{ref}/secrets/{id}", admin, h.removeClientSecret)
	handle("POST /v1/tokens/revoke", admin, h.revokeTokens)
	handle("GET /v1/agents/{ref}/instances", admin, h.listInstances)
	handle("GET /v1/instances/{id}", admin, h.getInstance)
	handle("POST /v1/instances/{id}/revoke", admin, h.revokeInstance)
	if h.p.OAuth != nil && h.p.OAuth.SupportsJoinTokens() {
		handle("POST /v1/agents/{ref}/join-tokens", admin, h.createAgentJoinToken)
		handle("GET /v1/agents/{ref}/join-tokens", admin, h.listAgentJoinTokens)
		handle("POST /v1/join-tokens/{id}/revoke", admin, h.revokeAgentJoinToken)
	}
	if h.p.SVIDs != nil {
		handle("POST /v1/agents/{ref}/svids", admin, h.issueSVID)
		handle("GET /v1/agents/{ref}/svids", admin, h.listSVIDs)
	}

	handle("POST /v1/owners", admin, h.createOwner)
	handle("GET /v1/owners", admin, h.listOwners)
	handle("GET /v1/owners/{ref}", admin, h.getOwner)
	handle("PATCH /v1/owners/{ref}", admin, h.updateOwner)
	handle("POST /v1/owners/{ref}/deactivate", admin, h.deactivateOwner)
	handle("POST /v1/owners/{ref}/reactivate", admin, h.reactivateOwner)

	handle("GET /v1/inventory", admin, h.inventory)

	handle("POST /v1/admin-tokens", admin, h.createAdminToken)
	handle("GET /v1/admin-tokens", admin, h.listAdminTokens)
	handle("POST /v1/admin-tokens/{id}/revoke", admin, h.revokeAdminToken)

	handle("GET /v1/audit/events", auditor, h.listAuditEvents)
	handle("GET /v1/audit/export", auditor, h.exportAudit)
	handle("GET /v1/audit/checkpoints", auditor, h.listCheckpoints)
	handle("GET /v1/audit/keys", auditor, h.listAuditKeys)
	if h.p.PruneAudit != nil {
		handle("POST /v1/audit/prune", admin, h.pruneAudit)
	}

	if h.p.Keys != nil {
		handle("GET /v1/keys", admin, h.listSigningKeys)
		handle("POST /v1/keys/rotate", admin, h.rotateSigningKey)
	}
	if h.p.CA != nil {
		handle("GET /v1/ca", admin, h.getCA)
		handle("POST /v1/ca/rotate", admin, h.rotateCA)
		handle("POST /v1/ca/{kid}/taint", admin, h.taintCA)
	}
	if h.p.Federation != nil {
		handle("GET /v1/federation", admin, h.listFederation)
		handle("POST /v1/federation/{td}/refresh", admin, h.refreshFederation)
		handle("GET /v1/federation/{td}/bundle", admin, h.federatedBundle)
	}
	if h.p.Nodes != nil {
		handle("POST /v1/node-tokens", admin, h.createJoinToken)
		handle("GET /v1/node-tokens", admin, h.listJoinTokens)
		handle("POST /v1/node-tokens/{id}/revoke", admin, h.revokeJoinToken)
		handle("GET /v1/nodes", admin, h.listNodes)
		handle("GET /v1/nodes/{id}", admin, h.getNode)
		handle("POST /v1/nodes/{id}/evict", admin, h.evictNode)
	}
	h.policyRoutes(handle)
	h.grantRoutes(handle)
	h.approvalRoutes(handle)
	h.authzenRoutes()
	h.oauthMetaRoutes()
	h.oauthRoutes()
	h.bundleRoutes()
	h.nodeAttestRoute()
	h.scimRoutes()
	h.ssfRoutes()

	// Anything else under /v1/ is a problem+json 405 or 404, not the mux's
	// text.
	h.mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := paths.Handler(r); pattern != "" {
			w.Header().Set("Allow", strings.Join(allowed[pattern], ", "))
			h.problem(w, r, errMethod)
			return
		}
		h.problem(w, r, errNoRoute)
	})
}

func (h *handler) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.p.Ready(ctx); err != nil {
		h.p.Logger.WarnContext(r.Context(), "not ready", "err", err)
		h.problem(w, r, errUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ready\n")
}
