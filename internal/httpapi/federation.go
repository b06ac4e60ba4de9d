package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/federation"
	"github.com/agentid/agentid/sdk/admin"
)

// Federation serves the admin endpoints of the federated trust domains
// (/v1/federation); *federation.Manager implements it.
type Federation interface {
	// Status returns every configured foreign trust domain's status.
	Status(ctx context.Context) ([]federation.Status, error)
	// Refresh fetches a trust domain's bundle now
	// (federation.ErrUnknownTrustDomain, ErrBusy, ErrFetch).
	Refresh(ctx context.Context, o audit.Origin, td string) (federation.Status, error)
	// StoredBundle returns a trust domain's stored bundle document
	// (federation.ErrUnknownTrustDomain, ErrNoBundle).
	StoredBundle(ctx context.Context, td string) ([]byte, error)
}

var _ Federation = (*federation.Manager)(nil)

// federatedOut is the wire form of a trust domain's status.
func federatedOut(s federation.Status) admin.FederatedTrustDomain {
	return admin.FederatedTrustDomain{
		TrustDomain: s.TrustDomain, BundleEndpointURL: s.EndpointURL, BundleEndpointProfile: s.Profile,
		HasBundle: s.HasBundle, Sequence: s.Sequence, RefreshHintSeconds: int64(s.RefreshHint / time.Second),
		X509Authorities: s.X509Authorities, JWTAuthorities: s.JWTAuthorities,
		FetchedAt: optTime(s.FetchedAt), RefreshAt: optTime(s.RefreshAt), LastError: s.LastError, Failures: s.Failures,
	}
}

// federationError turns the federation's errors into problems.
func federationError(err error) error {
	var fe *federation.FetchError
	switch {
	case errors.Is(err, federation.ErrUnknownTrustDomain), errors.Is(err, federation.ErrNoBundle):
		return &requestError{status: http.StatusNotFound, typ: admin.ProblemNotFound, title: "Not found",
			detail: strings.TrimPrefix(err.Error(), "federation: ")}
	case errors.Is(err, federation.ErrBusy):
		return &requestError{status: http.StatusServiceUnavailable, typ: admin.ProblemUnavailable, title: "Unavailable",
			detail: "another replica is fetching this bundle now; retry in a few seconds"}
	case errors.As(err, &fe):
		// The cause is about the foreign endpoint (TLS, HTTP status,
		// parsing): the operator's to see.
		return &requestError{status: http.StatusBadGateway, typ: admin.ProblemBundleFetchFailed, title: "Bundle fetch failed",
			detail: strings.TrimPrefix(fe.Error(), "federation: ") + "; the last good bundle stays in use"}
	}
	return err
}

func (h *handler) federationProblem(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, federation.ErrBusy) {
		w.Header().Set("Retry-After", "5")
	}
	h.problem(w, r, federationError(err))
}

func (h *handler) listFederation(w http.ResponseWriter, r *http.Request, _ *principal) {
	all, err := h.p.Federation.Status(r.Context())
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, listOf(all, federatedOut))
}

// refreshFederation fetches {td}'s bundle now. The body is optional; when
// present it must be an empty JSON object.
func (h *handler) refreshFederation(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := h.emptyBody(w, r); err != nil {
		h.problem(w, r, err)
		return
	}
	s, err := h.p.Federation.Refresh(r.Context(), p.origin, r.PathValue("td"))
	if err != nil {
		h.federationProblem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, federatedOut(s))
}

// federatedBundle answers {td}'s stored bundle document.
func (h *handler) federatedBundle(w http.ResponseWriter, r *http.Request, _ *principal) {
	raw, err := h.p.Federation.StoredBundle(r.Context(), r.PathValue("td"))
	if err != nil {
		h.federationProblem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, json.RawMessage(raw))
}
