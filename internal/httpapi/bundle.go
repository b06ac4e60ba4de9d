package httpapi

import (
	"net/http"

	"github.com/agentid/agentid/sdk/admin"
)

// bundleRoutes mounts the SPIFFE bundle endpoint (SPIFFE Trust Domain and
// Bundle §5): public, unauthenticated, served over the server's TLS (the
// https_web profile of SPIFFE Federation), cacheable for the bundle's
// refresh hint.
func (h *handler) bundleRoutes() {
	if h.p.Bundle == nil {
		return
	}
	h.mux.HandleFunc("GET "+admin.BundlePath, h.trustBundle)
}

func (h *handler) trustBundle(w http.ResponseWriter, r *http.Request) {
	d, err := h.p.Bundle.Current()
	if err != nil {
		h.problem(w, r, err)
		return
	}
	servePublic(w, r, "application/json", d.JSON, d.ETag(), d.RefreshHint)
}
