package resource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/agentid/agentid/sdk/resource"
	jose "github.com/go-jose/go-jose/v4"
)

func FuzzVerify(f *testing.F) {
	k := newES256(f, "k1")
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.jwk()}})
	if err != nil {
		f.Fatal(err)
	}
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{"Cache-Control": {"max-age=3600"}},
			Body: io.NopCloser(bytes.NewReader(jwks)), Request: r}, nil
	})}
	const issuer = "https://issuer.example.com"
	v, err := resource.NewVerifier(context.Background(), resource.VerifierParams{
		Issuer: issuer, Audience: audience, JWKSURL: issuer + "/jwks", HTTPClient: hc,
		Clock: (&fakeClock{now: t0}).Now,
	})
	if err != nil {
		f.Fatal(err)
	}
	claims := map[string]any{
		"iss": issuer, "sub": "s", "aud": audience, "client_id": "c", "jti": "j",
		"iat": t0.Unix(), "exp": t0.Unix() + 60, "scope": "a b", "cnf": map[string]any{"jkt": "x"},
	}
	f.Add(mint(f, k, claims, nil))
	claims["aud"] = []any{audience, 1}
	f.Add(mint(f, k, claims, nil))
	f.Add(handMade(f, map[string]any{"alg": "none", "typ": "at+jwt", "kid": "k1"}, claims, nil))
	f.Add("")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(context.Background(), token)
		if err != nil {
			var e *resource.Error
			if !errors.As(err, &e) || e.Kind == nil {
				t.Fatalf("Verify = %v: want an *Error", err)
			}
			return
		}
		if c.Issuer != issuer || !slices.Contains(c.Audience, audience) || c.Expiry.IsZero() || c.Raw == nil {
			t.Fatalf("Verify accepted %q as %+v", token, c)
		}
	})
}
