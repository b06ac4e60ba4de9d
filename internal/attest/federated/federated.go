// Package federated is the spiffe attestor (ADR 0015 addendum B): an
// instance of a federated SPIFFE trust domain proves itself with its SVID,
// checked against the trust domain's bundle as the federation manager
// holds it (internal/federation) — a JWT-SVID as client assertion of type
// urn:ietf:params:oauth:client-assertion-type:jwt-spiffe, or an
// X.509-SVID by mutual TLS (draft-ietf-oauth-spiffe-client-auth-02 §3.1,
// §3.2). Its facts are the SPIFFE ID and trust domain that agents' rules
// match (spiffe:id:spiffe://partner.example/payments/*).
package federated

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/federation"
)

// AssertionType is the client_assertion_type of a JWT-SVID
// (draft-ietf-oauth-spiffe-client-auth-02 §3.1).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"

// Leeway is the clock skew allowed on exp and iat.
const Leeway = time.Minute

// Bundles hands out the federated trust domains' bundles in use
// (*federation.Manager).
type Bundles interface {
	BundlesFor(tds []string) map[string]federation.Bundle
}

// Config is one spiffe attestor.
type Config struct {
	// Name is referenced by agents' attestation rules; a DNS label.
	Name string
	// TrustDomain is the federated trust domain whose SVIDs it accepts;
	// it must be one of the server's federation: domains.
	TrustDomain string
	// Audience is agentid's issuer identifier: a JWT-SVID's aud must be
	// exactly it (draft-ietf-oauth-spiffe-client-auth-02 §3.1 item 3).
	Audience string
}

// Attestor verifies the SVIDs of one federated trust domain. Safe for
// concurrent use.
type Attestor struct {
	name    string
	td      spiffeid.TrustDomain
	aud     string
	bundles Bundles
	clock   func() time.Time
}

var _ attest.SVIDAttestor = (*Attestor)(nil)

// New validates c; bundles may be nil until the server has its federation
// manager (then every SVID is refused as unavailable). clock is required.
func New(c Config, bundles Bundles, clock func() time.Time) (*Attestor, error) {
	if err := attest.CheckName(c.Name); err != nil {
		return nil, fmt.Errorf("federated: %w", err)
	}
	td, err := spiffeid.TrustDomainFromString(c.TrustDomain)
	if err != nil || c.TrustDomain != td.Name() {
		return nil, fmt.Errorf("federated: trust_domain %q is not a trust domain name", c.TrustDomain)
	}
	if c.Audience == "" {
		return nil, errors.New("federated: the audience (the issuer) is required")
	}
	return &Attestor{name: c.Name, td: td, aud: c.Audience, bundles: bundles, clock: clock}, nil
}

// Name is the configured name.
func (a *Attestor) Name() string { return a.name }

// TrustDomain is the federated trust domain's name.
func (a *Attestor) TrustDomain() string { return a.td.Name() }

// Anchors is nil: the trust domain's authorities change with its bundle,
// so a TLS server names no acceptable CA for them.
func (a *Attestor) Anchors() []*x509.Certificate { return nil }

func (a *Attestor) refuse(kind error, format string, args ...any) *attest.Error {
	return &attest.Error{Kind: kind, Reason: fmt.Sprintf(format, args...), Attestor: a.name, Method: attest.MethodSPIFFE, Issuer: a.td.IDString()}
}

func (a *Attestor) bundle() (federation.Bundle, *attest.Error) {
	if a.bundles == nil {
		return federation.Bundle{}, a.refuse(attest.ErrUnavailable, "no bundle of trust domain %s yet", a.td.Name())
	}
	b, ok := a.bundles.BundlesFor([]string{a.td.Name()})[a.td.Name()]
	if !ok {
		return federation.Bundle{}, a.refuse(attest.ErrUnavailable, "no bundle of trust domain %s yet", a.td.Name())
	}
	return b, nil
}

// AttestChain verifies an X.509-SVID chain (draft-ietf-oauth-spiffe-
// client-auth-02 §3.2): exactly one URI SAN, a SPIFFE ID of the trust
// domain (else ErrUntrusted: another attestor's), path validation against
// the bundle's X.509 authorities at the clock's time (go-spiffe's
// x509svid.Verify: not a CA, no keyCertSign or cRLSign), and the
// digitalSignature key usage.
func (a *Attestor) AttestChain(_ context.Context, chain []*x509.Certificate) (attest.Evidence, error) {
	if len(chain) == 0 || len(chain) > attest.MaxChainLen {
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, "want 1 to %d client certificates", attest.MaxChainLen)
	}
	leaf := chain[0]
	id, err := x509svid.IDFromCert(leaf)
	if err != nil || id.TrustDomain() != a.td {
		return attest.Evidence{}, a.refuse(attest.ErrUntrusted, "the client certificate is not an X.509-SVID of trust domain %s", a.td.Name())
	}
	b, e := a.bundle()
	if e != nil {
		return attest.Evidence{}, e
	}
	if _, _, err := x509svid.Verify(chain, x509bundle.FromX509Authorities(a.td, b.X509Authorities), x509svid.WithTime(a.clock())); err != nil {
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, "the X.509-SVID does not verify with the bundle of %s: %s", a.td.Name(), bounded(strings.TrimPrefix(err.Error(), "x509svid: ")))
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, "the X.509-SVID lacks the digitalSignature key usage")
	}
	sum := sha256.Sum256(leaf.Raw)
	x5t := base64.RawURLEncoding.EncodeToString(sum[:])
	ev := a.evidence(id, leaf.NotAfter)
	ev.CertThumbprint = x5t
	ev.Summary["svid"], ev.Summary["x5t#S256"] = "x509", x5t
	ev.Summary["serial"] = strings.ToLower(leaf.SerialNumber.Text(16))
	return ev, nil
}

// AttestJWT verifies a JWT-SVID client assertion (draft-ietf-oauth-spiffe-
// client-auth-02 §3.1): signed by a JWT authority of the bundle (go-spiffe's
// jwtsvid.ParseAndValidate), sub a SPIFFE ID of the trust domain, aud
// exactly the issuer, exp not passed and iat not ahead at the clock's
// time.
func (a *Attestor) AttestJWT(_ context.Context, raw string) (attest.Evidence, error) {
	if len(raw) > attest.MaxTokenBytes {
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, "the JWT-SVID is longer than %d bytes", attest.MaxTokenBytes)
	}
	b, e := a.bundle()
	if e != nil {
		return attest.Evidence{}, e
	}
	svid, err := jwtsvid.ParseAndValidate(raw, jwtbundle.FromJWTAuthorities(a.td, b.JWTAuthorities), []string{a.aud})
	if err != nil {
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, "the JWT-SVID is not valid: %s", bounded(strings.TrimPrefix(err.Error(), "jwtsvid: ")))
	}
	now := a.clock()
	switch {
	case svid.ID.TrustDomain() != a.td:
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, "the JWT-SVID names another trust domain")
	case len(svid.Audience) != 1 || svid.Audience[0] != a.aud:
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, "the JWT-SVID's aud must be the issuer %s alone", a.aud)
	case !now.Before(svid.Expiry.Add(Leeway)):
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, "the JWT-SVID has expired")
	}
	if iat, ok := svid.Claims["iat"].(float64); ok && time.Unix(int64(iat), 0).After(now.Add(Leeway)) {
		return attest.Evidence{}, a.refuse(attest.ErrInvalid, "the JWT-SVID's iat is in the future")
	}
	ev := a.evidence(svid.ID, svid.Expiry)
	ev.Summary["svid"] = "jwt"
	return ev, nil
}

func (a *Attestor) evidence(id spiffeid.ID, exp time.Time) attest.Evidence {
	return attest.Evidence{
		Attestor: a.name, Method: attest.MethodSPIFFE, Issuer: a.td.IDString(), Subject: id.String(),
		Key:     id.String(),
		Facts:   map[string]string{"spiffe:id": id.String()},
		Summary: map[string]string{"spiffe_id": id.String()},
		Expiry:  exp.UTC(),
	}
}

// UnverifiedTrustDomain returns the trust domain of a JWT-SVID's sub
// without verifying it, "" when raw is not a JWS whose sub is a SPIFFE ID:
// it routes an assertion to the attestor of its trust domain.
func UnverifiedTrustDomain(raw string) string {
	if len(raw) > attest.MaxTokenBytes {
		return ""
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256,
		jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512})
	if err != nil {
		return ""
	}
	var c struct {
		Sub any `json:"sub"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return ""
	}
	s, _ := c.Sub.(string)
	id, err := spiffeid.FromString(s)
	if err != nil {
		return ""
	}
	return id.TrustDomain().Name()
}

// bounded keeps a library's error text short and printable for a reason.
func bounded(s string) string {
	if len(s) > 160 {
		s = s[:160]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
