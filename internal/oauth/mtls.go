package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/federated"
)

// MethodTLSClientAuth is the client authentication method of RFC 8705
// §2.1 (PKI mutual TLS): the client presents a certificate of the
// deployment's PKI on the TLS connection and names itself with client_id;
// an x509 attestor verifies the chain and the agent's attestation rules
// match the certificate's attributes (ADR 0015 addendum). The tokens
// issued are bound to the certificate (cnf x5t#S256, RFC 8705 §3).
const MethodTLSClientAuth = "tls_client_auth"

// Client authentication methods of draft-ietf-oauth-spiffe-client-auth-02
// §4: a JWT-SVID as client assertion, an X.509-SVID by mutual TLS, of a
// federated trust domain that a spiffe attestor trusts.
const (
	MethodSPIFFEJWT  = "spiffe_jwt"
	MethodSPIFFEX509 = "spiffe_x509"
)

// CertThumbprint is the x5t#S256 of a certificate (RFC 8705 §3.1): the
// base64url SHA-256 of its DER.
func CertThumbprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authCertificate authenticates a client by its TLS client certificate
// (RFC 8705 §2.1): client_id names the agent (id or name), an x509
// attestor verifies the chain, and one of the agent's rules matches.
// Refusals are invalid_client with the precise reason in the audit event
// (RFC 8705 §2: "the authorization server returns invalid_client").
func (s *Server) authCertificate(ctx context.Context, r *Request, now time.Time) (*authClient, authAttempt, *Error) {
	ref := param(r.Form, "client_id")
	at := authAttempt{method: MethodTLSClientAuth, clientID: printable(ref)}
	at.attest = &attestedClient{ev: attest.Evidence{Method: attest.MethodX509}}
	if ref == "" {
		return nil, at, clientFailed(false, "client_id (the agent) is required with a client certificate")
	}
	ev, err := s.attestors.AttestChain(ctx, r.PeerCertificates)
	if err != nil {
		var ae *attest.Error
		if !errors.As(err, &ae) {
			return nil, at, serverError(err)
		}
		if ae.Method != "" {
			at.attest.ev.Method = ae.Method
		}
		at.attest.ev.Attestor, at.attest.ev.Issuer = ae.Attestor, ae.Issuer
		if ae.Method == attest.MethodSPIFFE {
			at.method = MethodSPIFFEX509
		}
		if errors.Is(err, attest.ErrUnavailable) {
			return nil, at, &Error{Code: CodeTemporarilyUnavailable, Status: http.StatusServiceUnavailable,
				Description: "the trust domain's bundle is unavailable; retry later", Reason: ae.Reason}
		}
		return nil, at, clientFailed(false, "attestation: %s", ae.Reason)
	}
	if ev.Method == attest.MethodSPIFFE {
		at.method = MethodSPIFFEX509
	}
	return s.attestedClient(ctx, at, ref, ev, r.Origin.Source.IP, now)
}

// authJWTSVID authenticates a client by a JWT-SVID of a federated trust
// domain as client assertion (draft-ietf-oauth-spiffe-client-auth-02
// §3.1, client_assertion_type jwt-spiffe): the spiffe attestor of the
// SVID's trust domain verifies it against the bundle, client_id names the
// agent (id or name), and one of the agent's rules matches. Refusals are
// invalid_client; no bundle yet is temporarily_unavailable.
func (s *Server) authJWTSVID(ctx context.Context, r *Request, now time.Time) (*authClient, authAttempt, *Error) {
	f := r.Form
	ref := param(f, "client_id")
	at := authAttempt{method: MethodSPIFFEJWT, clientID: printable(ref)}
	at.attest = &attestedClient{ev: attest.Evidence{Method: attest.MethodSPIFFE}}
	raw := param(f, "client_assertion")
	switch {
	case !s.attestors.HasSVIDs():
		return nil, at, clientFailed(false, "JWT-SVID client assertions are not accepted: no spiffe attestor")
	case raw == "":
		return nil, at, clientFailed(false, "client_assertion is missing")
	case ref == "":
		return nil, at, clientFailed(false, "client_id (the agent) is required with a JWT-SVID")
	}
	ev, err := s.attestors.AttestJWTSVID(ctx, federated.UnverifiedTrustDomain(raw), raw)
	if err != nil {
		var ae *attest.Error
		if !errors.As(err, &ae) {
			return nil, at, serverError(err)
		}
		at.attest.ev.Attestor, at.attest.ev.Issuer = ae.Attestor, ae.Issuer
		if errors.Is(err, attest.ErrUnavailable) {
			return nil, at, &Error{Code: CodeTemporarilyUnavailable, Status: http.StatusServiceUnavailable,
				Description: "the trust domain's bundle is unavailable; retry later", Reason: ae.Reason}
		}
		return nil, at, clientFailed(false, "attestation: %s", ae.Reason)
	}
	return s.attestedClient(ctx, at, ref, ev, r.Origin.Source.IP, now)
}

// certThumbprint is the x5t#S256 the tokens of an authenticated client
// are bound to: its certificate's, "" when it did not authenticate with
// one.
func (c *authClient) certThumbprint() string {
	if c.attest == nil {
		return ""
	}
	return c.attest.ev.CertThumbprint
}

// SupportsTLSClientAuth reports whether the token endpoint takes RFC 8705
// tls_client_auth: an x509 attestor is configured.
func (s *Server) SupportsTLSClientAuth() bool { return s.attestors.HasPKI() }

// RequestsClientCerts reports whether a TLS server in front of the token
// endpoint should request client certificates: an x509 or spiffe
// attestor is configured.
func (s *Server) RequestsClientCerts() bool { return s.attestors.HasChains() }

// ClientCertAnchors are the trust anchors of the x509 attestors: the
// acceptable CAs a TLS server names when it requests client certificates.
func (s *Server) ClientCertAnchors() []*x509.Certificate { return s.attestors.ChainAnchors() }

// SupportsSPIFFE reports whether the token endpoint takes SVIDs of
// federated trust domains (spiffe_jwt, spiffe_x509): a spiffe attestor is
// configured.
func (s *Server) SupportsSPIFFE() bool { return s.attestors.HasSVIDs() }
