package httpapi

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// Handlers of nodes: join tokens (POST and GET /v1/node-tokens, POST
// /v1/node-tokens/{id}/revoke), the registry of
// nodes (/v1/nodes…) for administrators, and the unauthenticated node
// attestation endpoint (POST /v1/node/attest), where the join token in the
// body is the credential. A join token has 256 bits of entropy and every
// refused attempt is an audit event; its 401s count toward the client
// address's failed-authentication limit (limitFailures, ADR 0022).

// nodeProblem maps the node registry's errors to problems; others go to
// problemFor unchanged. Every refused join token gets the same answer; the
// audit event says which problem it had.
func nodeProblem(err error) error {
	var ve *fault.ValidationError
	switch {
	case errors.As(err, &ve) && ve.Field == "ttl":
		// The registry's ttl is ttl_seconds on the wire; problemFor maps
		// validation errors.
		renamed := *ve
		renamed.Field = "ttl_seconds"
		return &renamed
	case errors.Is(err, noderegistry.ErrEvidenceRefused):
		return &requestError{status: http.StatusUnauthorized, typ: admin.ProblemUnauthenticated, title: "Unauthenticated",
			detail: "the attestation evidence (Kubernetes token or client certificate) is not trusted, not valid, or matches no node attestation rule"}
	case errors.Is(err, attest.ErrUnavailable):
		return &requestError{status: http.StatusServiceUnavailable, typ: admin.ProblemUnavailable, title: "Unavailable",
			detail: "the attestor's trust material could not be fetched; retry later"}
	case errors.Is(err, noderegistry.ErrUnauthenticated):
		return &requestError{status: http.StatusUnauthorized, typ: admin.ProblemUnauthenticated, title: "Unauthenticated",
			detail: "the join token is malformed, unknown, expired, revoked or already used; ask an administrator for a new one"}
	case errors.Is(err, noderegistry.ErrJoinTokenNotFound):
		return &requestError{status: http.StatusNotFound, typ: admin.ProblemNotFound, title: "Not found",
			detail: strings.TrimPrefix(err.Error(), "noderegistry: ")}
	case errors.Is(err, noderegistry.ErrJoinTokenSpent):
		return &requestError{status: http.StatusConflict, typ: admin.ProblemIllegalTransition, title: "Illegal state transition",
			detail: strings.TrimPrefix(err.Error(), "noderegistry: ")}
	case errors.Is(err, noderegistry.ErrNotFound):
		return &requestError{status: http.StatusNotFound, typ: admin.ProblemNotFound, title: "Not found",
			detail: strings.TrimPrefix(err.Error(), "noderegistry: ")}
	case errors.Is(err, noderegistry.ErrEvicted):
		return &requestError{status: http.StatusConflict, typ: admin.ProblemIllegalTransition, title: "Illegal state transition",
			detail: strings.TrimPrefix(err.Error(), "noderegistry: ")}
	case errors.Is(err, credential.ErrNoCA):
		return &requestError{status: http.StatusServiceUnavailable, typ: admin.ProblemUnavailable, title: "Unavailable",
			detail: "node SVIDs cannot be issued: the server has no usable X.509 CA"}
	}
	return err
}

// nodeOut is the wire form of a node.
func (h *handler) nodeOut(n store.Node) admin.Node {
	return admin.Node{
		ID: n.ID, SPIFFEID: n.SPIFFEID, State: string(n.State()), AttestationMethod: n.AttestationMethod,
		Attestor: n.Attestor, Facts: n.Facts, FactValues: n.FactValues,
		AttestedAt: n.AttestedAt.UTC(), LastSeenAt: n.LastSeenAt.UTC(),
		SVIDSerial: n.SVIDSerial, SVIDKeyID: n.SVIDKeyID, SVIDExpiresAt: n.SVIDExpiresAt.UTC(),
		SVIDExpired: !h.p.Clock().Before(n.SVIDExpiresAt),
		EvictedAt:   optTime(n.EvictedAt), EvictedBy: n.EvictedBy, Version: n.Version,
	}
}

func (h *handler) createJoinToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.CreateJoinTokenRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	ttl, err := ttlParam("ttl_seconds", in.TTLSeconds)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	tok, secret, err := h.p.Nodes.CreateJoinToken(r.Context(), p.origin, ttl)
	if err != nil {
		h.problem(w, r, nodeProblem(err))
		return
	}
	h.reply(w, http.StatusCreated, admin.CreatedJoinToken{ID: tok.ID, Token: secret, ExpiresAt: tok.ExpiresAt.UTC()})
}

// revokeJoinToken handles POST /v1/node-tokens/{id}/revoke: the unused
// node join token id can no longer attest a node. 404 for an unknown id,
// 409 for a token used, revoked or expired.
func (h *handler) revokeJoinToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var in struct{}
	if r.ContentLength != 0 {
		if err := h.decode(w, r, &in); err != nil {
			h.problem(w, r, err)
			return
		}
	}
	t, err := h.p.Nodes.RevokeJoinToken(r.Context(), p.origin, r.PathValue("id"))
	if err != nil {
		h.problem(w, r, nodeProblem(err))
		return
	}
	h.reply(w, http.StatusOK, admin.RevokedNodeJoinToken{ID: t.ID, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt.UTC(),
		ExpiresAt: t.ExpiresAt.UTC(), RevokedAt: t.RevokedAt.UTC(), RevokedBy: t.RevokedBy})
}

// listJoinTokens handles GET /v1/node-tokens: one page of the node join
// tokens kept, in creation order, with their states; ?state= keeps one
// state (400 for another value). Never the tokens or their hashes.
func (h *handler) listJoinTokens(w http.ResponseWriter, r *http.Request, _ *principal) {
	pg, err := pageOf(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	ts, next, err := h.p.Nodes.ListJoinTokens(r.Context(), r.URL.Query().Get("state"), pg)
	if err != nil {
		h.problem(w, r, nodeProblem(err))
		return
	}
	out := listOf(ts, func(t store.ListedJoinToken) admin.NodeJoinTokenStatus {
		return admin.NodeJoinTokenStatus{ID: t.ID, State: string(t.State), CreatedAt: t.CreatedAt.UTC(), CreatedBy: t.CreatedBy,
			ExpiresAt: t.ExpiresAt.UTC(), UsedAt: optTime(t.UsedAt), NodeID: t.NodeID}
	})
	out.NextPageToken = next
	h.reply(w, http.StatusOK, out)
}

func (h *handler) listNodes(w http.ResponseWriter, r *http.Request, _ *principal) {
	pg, err := pageOf(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	state := r.URL.Query().Get("state")
	if state != "" && state != admin.NodeStateActive && state != admin.NodeStateEvicted {
		h.problem(w, r, badRequest("state", "state must be %s or %s", admin.NodeStateActive, admin.NodeStateEvicted))
		return
	}
	ns, next, err := h.p.Nodes.List(r.Context(), store.NodeFilter{State: store.NodeState(state)}, pg)
	if err != nil {
		h.problem(w, r, nodeProblem(err))
		return
	}
	out := listOf(ns, h.nodeOut)
	out.NextPageToken = next
	h.reply(w, http.StatusOK, out)
}

func (h *handler) getNode(w http.ResponseWriter, r *http.Request, _ *principal) {
	n, err := h.p.Nodes.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		h.problem(w, r, nodeProblem(err))
		return
	}
	h.reply(w, http.StatusOK, h.nodeOut(n))
}

func (h *handler) evictNode(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.EvictNodeRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	n, err := h.p.Nodes.Evict(r.Context(), p.origin, r.PathValue("id"), in.Reason)
	if err != nil {
		h.problem(w, r, nodeProblem(err))
		return
	}
	h.reply(w, http.StatusOK, h.nodeOut(n))
}

// nodeAttestRoute mounts POST /v1/node/attest when the server has a node
// registry. It takes no admin token: the join token in the body
// authenticates the node.
func (h *handler) nodeAttestRoute() {
	if h.p.Nodes == nil {
		return
	}
	h.mux.HandleFunc(admin.NodeAttestPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			h.problem(w, r, errMethod)
			return
		}
		h.attestNode(w, r)
	})
}

// parseAttestRequest turns a decoded attestation body into the registry's
// parameters. The join token and the CSR are the registry's to judge, so
// that every problem with them is answered alike and recorded; only their
// sizes are bounded here. Safe on any input.
func parseAttestRequest(in admin.AttestNodeRequest) (noderegistry.AttestParams, error) {
	if len(in.JoinToken) > maxJoinTokenLen {
		in.JoinToken = "x" // longer than any token: refused as malformed, never hashed
	}
	if len(in.KubernetesToken) > attest.MaxTokenBytes {
		return noderegistry.AttestParams{}, badRequest("kubernetes_token", "kubernetes_token is longer than %d bytes", attest.MaxTokenBytes)
	}
	if len(in.CSR) > maxAttestCSRLen {
		return noderegistry.AttestParams{}, badRequest("csr", "csr is longer than %d bytes", maxAttestCSRLen)
	}
	return noderegistry.AttestParams{JoinToken: in.JoinToken, KubernetesToken: in.KubernetesToken, CSR: []byte(in.CSR)}, nil
}

// Bounds of an attestation body's fields.
const (
	maxJoinTokenLen = 256
	// maxAttestCSRLen is the PEM encoding of credential.MaxCSRBytes of DER
	// with room to spare; ParseCSR bounds the request itself.
	maxAttestCSRLen = 2 * credential.MaxCSRBytes
)

func (h *handler) attestNode(w http.ResponseWriter, r *http.Request) {
	var in admin.AttestNodeRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	p, err := parseAttestRequest(in)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	o := h.origin(r)
	p.Source, p.TraceID = o.Source, o.TraceID
	if r.TLS != nil {
		// Asked for, not verified, by the listener when an x509 attestor
		// is configured: the registry verifies the chain.
		p.PeerCertificates = r.TLS.PeerCertificates
	}
	got, err := h.p.Nodes.Attest(r.Context(), p)
	if err != nil {
		h.problem(w, r, nodeProblem(err))
		return
	}
	var chain strings.Builder
	for _, der := range got.SVID.Chain {
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	out := admin.AttestedNode{NodeID: got.Node.ID, SPIFFEID: got.Node.SPIFFEID, CertChainPEM: chain.String(),
		ExpiresAt: got.SVID.ExpiresAt.UTC()}
	// The node exists now and its token is spent: the answer must not fail
	// for want of the bundle, which the node can also fetch from the bundle
	// endpoint.
	if h.p.Bundle != nil {
		if d, err := h.p.Bundle.Current(); err != nil {
			h.p.Logger.WarnContext(r.Context(), "attested node answered without the trust bundle", "err", err, "node", got.Node.ID)
		} else {
			out.Bundle = json.RawMessage(d.JSON)
		}
	}
	h.reply(w, http.StatusCreated, out)
}
