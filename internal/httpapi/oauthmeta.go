package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/sdk/dpop"
)

// Keys is what the HTTP API needs of the token signing keys: the JWKS and
// the admin endpoints. *keys.Manager implements it.
type Keys interface {
	// JWKS returns the JWK Set document of the published keys and when it
	// was built; callers must not modify it.
	JWKS() ([]byte, time.Time)
	// MaxAge is how long a verifier may cache the JWKS.
	MaxAge() time.Duration
	// SigningAlgorithms are the algorithms of the published keys, the
	// configured one first.
	SigningAlgorithms() []string
	// List returns every key with its state now.
	List(ctx context.Context) ([]keys.KeyInfo, error)
	// Rotate creates a successor key (keys.ErrBusy: retry).
	Rotate(ctx context.Context, o keys.Origin) (keys.KeyInfo, error)
}

var _ Keys = (*keys.Manager)(nil)

// Discovery paths: RFC 8414 §3 and OpenID Connect Discovery 1.0 §4.
const (
	asMetadataPath   = "/.well-known/oauth-authorization-server"
	oidcMetadataPath = "/.well-known/openid-configuration"
)

// ServiceDocumentation is the service_documentation of the metadata.
const ServiceDocumentation = "https://github.com/agentid/agentid/blob/main/docs/tokens.md"

// serverMetadata is the authorization server metadata of RFC 8414 §2, and,
// with the OpenID members set, the OpenID Provider metadata of OpenID
// Connect Discovery 1.0 §3. agentid has no authorization endpoint (its only
// grant is client_credentials), so response_types_supported, which both
// documents require, is empty.
type serverMetadata struct {
	Issuer                                             string   `json:"issuer"`
	TokenEndpoint                                      string   `json:"token_endpoint"`
	JWKSURI                                            string   `json:"jwks_uri"`
	ResponseTypesSupported                             []string `json:"response_types_supported"`
	GrantTypesSupported                                []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported                  []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported         []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	ServiceDocumentation                               string   `json:"service_documentation"`
	RevocationEndpoint                                 string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethodsSupported             []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgValuesSupported    []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpoint                              string   `json:"introspection_endpoint"`
	IntrospectionEndpointAuthMethodsSupported          []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	// RFC 9449 §5.1.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
	// RFC 8705 §3.3: set with an x509 attestor.
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	// OpenID Connect Discovery 1.0 §3 (openid-configuration only).
	SubjectTypesSupported            []string `json:"subject_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported,omitempty"`
}

// metadata builds the discovery document; openID adds the members OpenID
// Connect Discovery requires.
func (h *handler) metadata(openID bool) serverMetadata {
	iss := h.p.Issuer
	var assertionAlgs []string
	for _, a := range oauth.AssertionAlgorithms {
		assertionAlgs = append(assertionAlgs, string(a))
	}
	authMethods := []string{"private_key_jwt", "client_secret_basic", "client_secret_post"}
	m := serverMetadata{
		Issuer:                            iss,
		TokenEndpoint:                     iss + oauth.TokenPath,
		JWKSURI:                           iss + oauth.JWKSPath,
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               []string{oauth.GrantClientCredentials},
		TokenEndpointAuthMethodsSupported: authMethods,
		TokenEndpointAuthSigningAlgValuesSupported:         assertionAlgs,
		ServiceDocumentation:                               ServiceDocumentation,
		RevocationEndpoint:                                 iss + oauth.RevokePath,
		RevocationEndpointAuthMethodsSupported:             authMethods,
		RevocationEndpointAuthSigningAlgValuesSupported:    assertionAlgs,
		IntrospectionEndpoint:                              iss + oauth.IntrospectPath,
		IntrospectionEndpointAuthMethodsSupported:          authMethods,
		IntrospectionEndpointAuthSigningAlgValuesSupported: assertionAlgs,
		DPoPSigningAlgValuesSupported:                      dpop.DefaultAlgorithms(),
	}
	if h.p.Grants != nil {
		m.GrantTypesSupported = append(m.GrantTypesSupported, oauth.GrantTokenExchange) // RFC 8693 §2.1
	}
	if h.p.OAuth != nil && h.p.OAuth.SupportsJWTBearer() {
		m.GrantTypesSupported = append(m.GrantTypesSupported, oauth.GrantJWTBearer) // RFC 7523 §2.1, ADR 0015
	}
	if h.p.OAuth != nil && h.p.OAuth.SupportsJoinTokens() {
		m.GrantTypesSupported = append(m.GrantTypesSupported, oauth.GrantJoinToken) // RFC 6749 §4.5, ADR 0015 addendum C
	}
	if h.p.OAuth != nil && h.p.OAuth.SupportsTLSClientAuth() {
		// RFC 8705 §2.1 and §3.3, ADR 0015 addendum A.
		m.TokenEndpointAuthMethodsSupported = append(slices.Clone(m.TokenEndpointAuthMethodsSupported), oauth.MethodTLSClientAuth)
		m.TLSClientCertificateBoundAccessTokens = true
	}
	if h.p.OAuth != nil && h.p.OAuth.SupportsSPIFFE() {
		// draft-ietf-oauth-spiffe-client-auth-02 §4, ADR 0015 addendum B.
		m.TokenEndpointAuthMethodsSupported = append(slices.Clone(m.TokenEndpointAuthMethodsSupported), oauth.MethodSPIFFEJWT, oauth.MethodSPIFFEX509)
	}
	if openID {
		m.SubjectTypesSupported = []string{"public"}
		m.IDTokenSigningAlgValuesSupported = h.p.Keys.SigningAlgorithms()
	}
	return m
}

// oauthMetaRoutes mounts the discovery documents and the JWKS: public,
// unauthenticated and cacheable.
func (h *handler) oauthMetaRoutes() {
	if h.p.Keys == nil {
		return
	}
	h.mux.HandleFunc("GET "+oauth.JWKSPath, h.jwks)
	h.mux.HandleFunc("GET "+asMetadataPath, h.asMetadata)
	h.mux.HandleFunc("GET "+oidcMetadataPath, h.oidcMetadata)
	// RFC 8414 §3.1: for an issuer with a path, the metadata is at the
	// well-known prefix followed by that path (a reverse proxy that strips
	// the path from everything else forwards this one as is).
	if u, err := url.Parse(h.p.Issuer); err == nil && strings.Trim(u.Path, "/") != "" {
		h.mux.HandleFunc("GET "+asMetadataPath+"/"+strings.Trim(u.Path, "/"), h.asMetadata)
	}
}

func (h *handler) jwks(w http.ResponseWriter, r *http.Request) {
	body, _ := h.p.Keys.JWKS()
	h.publicDocument(w, r, "application/jwk-set+json", body)
}

func (h *handler) asMetadata(w http.ResponseWriter, r *http.Request) {
	h.writeMetadata(w, r, false)
}

func (h *handler) oidcMetadata(w http.ResponseWriter, r *http.Request) {
	h.writeMetadata(w, r, true)
}

func (h *handler) writeMetadata(w http.ResponseWriter, r *http.Request, openID bool) {
	body, err := json.Marshal(h.metadata(openID))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.publicDocument(w, r, "application/json", body)
}

// publicDocument writes a document any client may fetch and cache for the
// JWKS max-age (RFC 9111 §5.2.2.1), from any origin (CORS), with a strong
// ETag so caches can revalidate it (RFC 9110 §13.1.2).
func (h *handler) publicDocument(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	sum := sha256.Sum256(body)
	servePublic(w, r, contentType, body, `"`+hex.EncodeToString(sum[:16])+`"`, h.p.Keys.MaxAge())
}

// servePublic writes a public, cacheable document with its entity tag:
// Cache-Control max-age, CORS for browsers, 304 for a matching
// If-None-Match, no body for HEAD.
func servePublic(w http.ResponseWriter, r *http.Request, contentType string, body []byte, tag string, maxAge time.Duration) {
	hd := w.Header()
	hd.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
	hd.Set("ETag", tag)
	hd.Set("Access-Control-Allow-Origin", "*")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", contentType)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 §13.1.2).
func etagMatches(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}
