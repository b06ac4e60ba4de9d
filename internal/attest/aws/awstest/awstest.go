// Package awstest is an AWS IAM outbound identity federation issuer for
// tests: a real HTTPS server (httptest, its own CA) publishing, as an
// account's issuer URL does, an OpenID Connect discovery document at
// /.well-known/openid-configuration and a JWKS at /.well-known/jwks.json,
// and minting GetWebIdentityToken-shaped JWTs (the AWS claims nested under
// "https://sts.amazonaws.com/") signed with ES384 (P-384) or RS256, the two
// algorithms AWS STS signs with.
package awstest

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
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/agentid/agentid/internal/delegation/idptest"
)

// Key ids of the issuer's keys.
const (
	KidES384 = "es384-1"
	KidRS256 = "rs256-1"
)

// Issuer is one account's test issuer. URL is its issuer URL.
type Issuer struct {
	URL string
	// CAFile is a PEM file of the TLS server's certificate, for
	// tls_ca_file.
	CAFile string
	// Account is the 12-digit account id its tokens name.
	Account string

	t   testing.TB
	ec  *ecdsa.PrivateKey
	rsa *rsa.PrivateKey
}

// New starts an issuer for account with one ES384 and one RS256 key; it
// stops when t ends.
func New(t testing.TB, account string) *Issuer {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &Issuer{Account: account, t: t, ec: ec, rsa: rk}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.URL, "jwks_uri": is.URL + "/.well-known/jwks.json",
			"id_token_signing_alg_values_supported": []string{"ES384", "RS256"},
		})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_ = json.NewEncoder(w).Encode(is.JWKS())
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	is.URL = srv.URL
	is.CAFile = filepath.Join(t.TempDir(), "aws-issuer-ca.pem")
	if err := os.WriteFile(is.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return is
}

// JWKS is the published key set.
func (is *Issuer) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &is.ec.PublicKey, KeyID: KidES384, Algorithm: string(jose.ES384), Use: "sig"},
		{Key: &is.rsa.PublicKey, KeyID: KidRS256, Algorithm: string(jose.RS256), Use: "sig"},
	}}
}

// Claims are the claims of a token GetWebIdentityToken issues to the
// principal sub (an ARN of the account) for aud, valid 5 minutes from now
// (the API's default duration), with nested merged into the
// "https://sts.amazonaws.com/" claim, which holds aws_account and
// source_region by default.
func (is *Issuer) Claims(sub, aud string, now time.Time, nested map[string]any) map[string]any {
	ns := map[string]any{"aws_account": is.Account, "source_region": "eu-west-1"}
	for k, v := range nested {
		ns[k] = v
	}
	return map[string]any{
		"iss": is.URL, "aud": aud, "sub": sub, "jti": "00000000-0000-4000-8000-000000000001",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"https://sts.amazonaws.com/": ns,
	}
}

// Mint signs claims with the issuer's key of alg (ES384 or RS256).
func (is *Issuer) Mint(alg jose.SignatureAlgorithm, claims map[string]any) string {
	is.t.Helper()
	switch alg {
	case jose.ES384:
		return idptest.Sign(is.t, alg, is.ec, KidES384, claims)
	case jose.RS256:
		return idptest.Sign(is.t, alg, is.rsa, KidRS256, claims)
	}
	is.t.Fatalf("awstest: AWS STS does not sign with %s", alg)
	return ""
}
