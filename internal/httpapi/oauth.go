package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/oauth"
)

// maxOAuthBody bounds an OAuth request body; a client assertion is at most
// oauth.MaxAssertionBytes of it.
const maxOAuthBody = 64 << 10

// oauthRoutes mounts the token, introspection and revocation endpoints.
// They answer errors with RFC 6749 §5.2 JSON, not problem+json.
func (h *handler) oauthRoutes() {
	if h.p.OAuth == nil {
		return
	}
	for _, e := range []struct {
		path string
		fn   func(http.ResponseWriter, *http.Request, *oauth.Request)
	}{
		{oauth.TokenPath, h.token},
		{oauth.IntrospectPath, h.introspect},
		{oauth.RevokePath, h.revoke},
	} {
		h.mux.HandleFunc(e.path, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				w.Header().Set("Allow", http.MethodPost)
				h.oauthError(w, r, &oauth.Error{Code: oauth.CodeInvalidRequest,
					Description: "use POST", Status: http.StatusMethodNotAllowed})
				return
			}
			req, oerr := h.oauthRequest(w, r)
			if oerr != nil {
				h.oauthError(w, r, oerr)
				return
			}
			e.fn(w, r, req)
		})
	}
}

// oauthRequest reads the form body (RFC 6749 §4.4.2: only
// application/x-www-form-urlencoded) and the authentication headers.
func (h *handler) oauthRequest(w http.ResponseWriter, r *http.Request) (*oauth.Request, *oauth.Error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &oauth.Error{Code: oauth.CodeInvalidRequest, Status: http.StatusBadRequest,
			Description: "the body must be application/x-www-form-urlencoded"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOAuthBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &oauth.Error{Code: oauth.CodeInvalidRequest, Status: http.StatusRequestEntityTooLarge,
				Description: "the request body is too large"}
		}
		return nil, &oauth.Error{Code: oauth.CodeInvalidRequest, Status: http.StatusBadRequest,
			Description: "the request body could not be read"}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &oauth.Error{Code: oauth.CodeInvalidRequest, Status: http.StatusBadRequest,
			Description: "the body is not valid form encoding"}
	}
	req := &oauth.Request{Form: form, DPoP: r.Header.Values("DPoP"), Origin: h.origin(r)}
	if r.TLS != nil {
		req.PeerCertificates = r.TLS.PeerCertificates // verified by the x509 attestors (RFC 8705 §2.1)
	}
	authz := r.Header.Get("Authorization")
	scheme, _, _ := strings.Cut(authz, " ")
	switch {
	case authz == "":
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := r.BasicAuth()
		if !ok {
			return nil, &oauth.Error{Code: oauth.CodeInvalidClient, Status: http.StatusUnauthorized,
				Description: "malformed basic credentials", Challenge: `Basic realm="agentid", charset="UTF-8"`}
		}
		req.Basic = &oauth.BasicCredentials{User: user, Password: pass}
	case strings.EqualFold(scheme, "Bearer") && r.URL.Path != oauth.TokenPath:
		actor, oerr := h.oauthAdmin(r, req.Origin)
		if oerr != nil {
			return nil, oerr
		}
		req.Admin = actor
	default:
		return nil, &oauth.Error{Code: oauth.CodeInvalidRequest, Status: http.StatusBadRequest,
			Description: "unsupported Authorization scheme"}
	}
	return req, nil
}

// oauthAdmin authenticates an admin bearer token on introspection (admins
// and auditors) and revocation (admins).
func (h *handler) oauthAdmin(r *http.Request, o audit.Origin) (*audit.Actor, *oauth.Error) {
	bearer, _ := bearerToken(r)
	invalid := &oauth.Error{Code: oauth.CodeInvalidToken, Status: http.StatusUnauthorized,
		Description: "the admin token is not valid", Challenge: `Bearer realm="agentid", error="invalid_token"`}
	tok, err := h.p.Auth.Authenticate(r.Context(), o, bearer)
	if err != nil {
		return nil, invalid
	}
	o.Actor = audit.Actor{Type: audit.ActorAdmin, ID: tok.ID}
	if err := h.p.Auth.Check(r.Context(), o, tok, r.URL.Path == oauth.RevokePath); err != nil {
		return nil, &oauth.Error{Code: "insufficient_scope", Status: http.StatusForbidden,
			Description: "the admin token's role may not do this"}
	}
	return &o.Actor, nil
}

func (h *handler) token(w http.ResponseWriter, r *http.Request, req *oauth.Request) {
	resp, oerr := h.p.OAuth.Token(r.Context(), req)
	if oerr != nil {
		h.oauthError(w, r, oerr)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	if resp.Nonce != "" {
		w.Header().Set("DPoP-Nonce", resp.Nonce)
	}
	h.reply(w, http.StatusOK, resp)
}

func (h *handler) introspect(w http.ResponseWriter, r *http.Request, req *oauth.Request) {
	resp, oerr := h.p.OAuth.Introspect(r.Context(), req)
	if oerr != nil {
		h.oauthError(w, r, oerr)
		return
	}
	h.reply(w, http.StatusOK, resp)
}

func (h *handler) revoke(w http.ResponseWriter, r *http.Request, req *oauth.Request) {
	if oerr := h.p.OAuth.Revoke(r.Context(), req); oerr != nil {
		h.oauthError(w, r, oerr)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// oauthError writes an RFC 6749 §5.2 error response. Internal causes are
// logged, never sent.
func (h *handler) oauthError(w http.ResponseWriter, r *http.Request, e *oauth.Error) {
	if e.Err != nil {
		h.p.Logger.ErrorContext(r.Context(), "oauth request failed", "path", r.URL.Path, "err", e.Err)
	}
	if e.Challenge != "" {
		w.Header().Set("WWW-Authenticate", e.Challenge)
	}
	if e.Nonce != "" {
		w.Header().Set("DPoP-Nonce", e.Nonce)
	}
	if e.Code == oauth.CodeInvalidClient || e.Code == oauth.CodeInvalidGrant {
		// invalid_client is answered 400 when the client did not use
		// Basic; invalid_grant is refused evidence or a refused join
		// token, the credential of the grants without client
		// authentication.
		noteAuthFailure(w)
	}
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	h.reply(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description})
}
