package node

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentid/agentid/internal/workloadapi"
)

// parsedBundle is a SPIFFE bundle document of a trust domain in the form
// the Workload API serves it, with the document it was parsed from (so
// that an unchanged document is not parsed again).
type parsedBundle struct {
	raw    []byte
	bundle workloadapi.Bundle
}

// parseBundle parses a SPIFFE bundle document (SPIFFE Trust Domain and
// Bundle §4) of the trust domain td with go-spiffe's spiffebundle.Parse.
// The JWT authorities' JWK Set is sorted by key id, so that the same keys
// always give the same bytes.
func parseBundle(td string, raw []byte) (*parsedBundle, error) {
	id, err := spiffeid.TrustDomainFromString(td)
	if err != nil {
		return nil, fmt.Errorf("node: bundle of trust domain %q: %w", td, err)
	}
	b, err := spiffebundle.Parse(id, raw)
	if err != nil {
		return nil, fmt.Errorf("node: bundle of %s: %w", td, err)
	}
	jwt := b.JWTAuthorities()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(jwt))}
	for kid, k := range jwt {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: kid})
	}
	slices.SortFunc(set.Keys, func(a, b jose.JSONWebKey) int { return strings.Compare(a.KeyID, b.KeyID) })
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("node: JWT authorities of %s: %w", td, err)
	}
	return &parsedBundle{
		raw: slices.Clone(raw),
		bundle: workloadapi.Bundle{
			TrustDomain:     td,
			X509Authorities: b.X509Authorities(),
			JWTAuthorities:  jwt,
			JWTJWKS:         jwks,
		},
	}, nil
}

// reparse returns prev when it was parsed from raw, else parses raw.
func reparse(prev *parsedBundle, td string, raw []byte) (*parsedBundle, error) {
	if prev != nil && prev.bundle.TrustDomain == td && string(prev.raw) == string(raw) {
		return prev, nil
	}
	return parseBundle(td, raw)
}

// x509Authorities returns the bundle's X.509 authorities, none for nil.
func (p *parsedBundle) x509Authorities() []*x509.Certificate {
	if p == nil {
		return nil
	}
	return p.bundle.X509Authorities
}
