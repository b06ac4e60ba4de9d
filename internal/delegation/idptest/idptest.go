// Package idptest is an identity provider for tests: a real HTTPS server
// (httptest, its own CA) publishing an OpenID Connect discovery document
// and a JWKS, and minting signed JWTs for people with RS256 and ES256
// keys, so that subject-token verification is tested against real TLS,
// real discovery and real signatures.
package idptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Audience is the aud the IdP puts in tokens by default.
const Audience = "agentid"

// IdP is one test identity provider. Its URL is the issuer.
type IdP struct {
	URL string
	// CAFile is a PEM file of the TLS server's certificate, for
	// tls_ca_file.
	CAFile string

	t   testing.TB
	srv *httptest.Server

	mu           sync.Mutex
	keys         []key
	cacheControl string
	jwksFetches  atomic.Int64
	down         atomic.Bool
}

type key struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv any
}

// New starts an IdP with one RS256 key ("rs1") and one ES256 key ("es1");
// it stops when t ends.
func New(t testing.TB) *IdP {
	t.Helper()
	idp := &IdP{t: t, cacheControl: "max-age=300"}
	idp.AddKey("rs1", jose.RS256)
	idp.AddKey("es1", jose.ES256)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if idp.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": idp.URL, "jwks_uri": idp.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		idp.jwksFetches.Add(1)
		if idp.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		idp.mu.Lock()
		w.Header().Set("Cache-Control", idp.cacheControl)
		b, err := json.Marshal(idp.jwksLocked())
		idp.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(b)
	})
	idp.srv = httptest.NewTLSServer(mux)
	t.Cleanup(idp.srv.Close)
	idp.URL = idp.srv.URL
	idp.CAFile = filepath.Join(t.TempDir(), "idp-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idp.srv.Certificate().Raw})
	if err := os.WriteFile(idp.CAFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return idp
}

// AddKey generates a key with kid and alg (RS256 or ES256) and publishes
// it.
func (idp *IdP) AddKey(kid string, alg jose.SignatureAlgorithm) {
	idp.t.Helper()
	var priv any
	var err error
	switch alg {
	case jose.RS256, jose.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		idp.t.Fatal(err)
	}
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.keys = append(idp.keys, key{kid: kid, alg: alg, priv: priv})
}

// SetCacheControl sets the JWKS response's Cache-Control.
func (idp *IdP) SetCacheControl(v string) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.cacheControl = v
}

// SetDown makes discovery and the JWKS answer 503 (or serve again).
func (idp *IdP) SetDown(down bool) { idp.down.Store(down) }

// JWKSFetches counts the JWKS requests served.
func (idp *IdP) JWKSFetches() int64 { return idp.jwksFetches.Load() }

// JWKS is the published key set.
func (idp *IdP) JWKS() jose.JSONWebKeySet {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return idp.jwksLocked()
}

func (idp *IdP) jwksLocked() jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range idp.keys {
		var pub any
		switch p := k.priv.(type) {
		case *rsa.PrivateKey:
			pub = &p.PublicKey
		case *ecdsa.PrivateKey:
			pub = &p.PublicKey
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	return set
}

// Claims are the default claims of a person's token: iss, sub, aud
// Audience, email (verified), iat now, exp in 10 minutes.
func (idp *IdP) Claims(sub string, now time.Time) map[string]any {
	return map[string]any{
		"iss": idp.URL, "sub": sub, "aud": Audience, "email": sub + "@example.com",
		"email_verified": true, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}

// Mint signs claims with the key kid (its algorithm).
func (idp *IdP) Mint(kid string, claims map[string]any) string {
	idp.t.Helper()
	idp.mu.Lock()
	var k *key
	for i := range idp.keys {
		if idp.keys[i].kid == kid {
			k = &idp.keys[i]
		}
	}
	idp.mu.Unlock()
	if k == nil {
		idp.t.Fatalf("idptest: no key %q", kid)
	}
	return Sign(idp.t, k.alg, k.priv, kid, claims)
}

// Sign signs claims as a JWT with any key (for forged tokens).
func Sign(t testing.TB, alg jose.SignatureAlgorithm, priv any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
