package jwks

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

// sign signs payload with key as a compact JWS with the header members
// given (alg is taken from it).
func sign(t *testing.T, key crypto.Signer, hdr map[string]any, payload string) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	for k, v := range hdr {
		if k != "alg" {
			opts = opts.WithHeader(jose.HeaderKey(k), v)
		}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(hdr["alg"].(string)), Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerify(t *testing.T) {
	ec, ecJWK := ecKey(t, "k1")
	ed, edJWK := edKey(t, "k2")
	_, otherJWK := ecKey(t, "k1")
	noAlg := ecJWK
	noAlg.Algorithm = ""
	lookupFailed := errors.New("lookup failed")
	keys := map[string][]jose.JSONWebKey{"k1": {otherJWK, ecJWK}, "k2": {edJWK}, "k3": {noAlg}, "k4": {ecJWK}}
	p := VerifyParams{
		Typ: "at+jwt", Algorithms: []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA},
		Keys: func(_ context.Context, kid string) ([]jose.JSONWebKey, error) {
			if kid == "fail" {
				return nil, lookupFailed
			}
			return keys[kid], nil
		},
	}
	const payload = `{"sub":"a"}`
	hdr := func(alg, typ, kid string) map[string]any {
		h := map[string]any{"alg": alg, "typ": typ}
		if kid != "" {
			h["kid"] = kid
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		token  string
		want   error  // nil: verifies
		reason string // of a *RefusedError
	}{
		{"ES256", sign(t, ec, hdr("ES256", "at+jwt", "k1"), payload), nil, ""},
		{"EdDSA, media type typ", sign(t, ed, hdr("EdDSA", "Application/AT+JWT", "k2"), payload), nil, ""},
		{"key without alg", sign(t, ec, hdr("ES256", "at+jwt", "k3"), payload), nil, ""},
		{"not compact", "a.b", ErrMalformed, "not a JWS in compact serialization"},
		{"empty part", "a..c", ErrMalformed, "not a JWS in compact serialization"},
		{"header not base64url", "#.b.c", ErrMalformed, "header is not base64url"},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("[")) + ".b.c", ErrMalformed, "header is not a JSON object"},
		{"wrong typ", sign(t, ec, hdr("ES256", "JWT", "k1"), payload), ErrMalformed, "typ is not at+jwt"},
		{"alg not allowed", unsigned(t, hdr("HS256", "at+jwt", "k1"), payload), ErrMalformed, "alg is not allowed"},
		{"alg none", unsigned(t, hdr("none", "at+jwt", "k1"), payload), ErrMalformed, "alg is not allowed"},
		{"no kid", sign(t, ec, hdr("ES256", "at+jwt", ""), payload), ErrSignature, "no kid"},
		{"bad signature part", sign(t, ec, hdr("ES256", "at+jwt", "k1"), payload) + "!", ErrMalformed, "malformed JWS"},
		{"unknown kid", sign(t, ec, hdr("ES256", "at+jwt", "k9"), payload), ErrSignature, "signature does not verify"},
		{"key of another alg", sign(t, ec, hdr("ES256", "at+jwt", "k2"), payload), ErrSignature, "signature does not verify"},
		{"forged", sign(t, ed, hdr("EdDSA", "at+jwt", "k4"), payload), ErrSignature, "signature does not verify"},
		{"lookup fails", sign(t, ec, hdr("ES256", "at+jwt", "fail"), payload), lookupFailed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Verify(context.Background(), tc.token, p)
			if tc.want == nil {
				if err != nil || string(got) != payload {
					t.Fatalf("Verify = %q, %v", got, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			var re *RefusedError
			if errors.As(err, &re) != (tc.reason != "") || (re != nil && re.Reason != tc.reason) {
				t.Fatalf("Verify = %#v, want reason %q", err, tc.reason)
			}
		})
	}
}

// unsigned makes a token with an empty signature.
func unsigned(t *testing.T, hdr map[string]any, payload string) string {
	t.Helper()
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc([]byte(payload)) + ".c2ln"
}

func TestNumericDate(t *testing.T) {
	for _, tc := range []struct {
		raw      string
		required bool
		want     time.Time
		wantErr  bool
	}{
		{"1700000000", true, time.Unix(1_700_000_000, 0), false},
		{"1700000000.5", true, time.Unix(1_700_000_000, 5e8), false},
		{"1.7e9", true, time.Unix(1_700_000_000, 0), false},
		{"", false, time.Time{}, false},
		{"null", false, time.Time{}, false},
		{"", true, time.Time{}, true},
		{"null", true, time.Time{}, true},
		{`"1700000000"`, false, time.Time{}, true},
		{"-1", false, time.Time{}, true},
		{"1e13", false, time.Time{}, true},
		{"true", false, time.Time{}, true},
	} {
		got, err := NumericDate(json.RawMessage(tc.raw), tc.required)
		if (err != nil) != tc.wantErr || !got.Equal(tc.want) {
			t.Errorf("NumericDate(%q, %v) = %v, %v", tc.raw, tc.required, got, err)
		}
	}
}

func TestAudience(t *testing.T) {
	for _, tc := range []struct {
		raw    string
		want   []string
		wantOK bool
	}{
		{`"a"`, []string{"a"}, true},
		{`["a","b"]`, []string{"a", "b"}, true},
		{`[]`, []string{}, true},
		{``, nil, true},
		{`null`, nil, true},
		{`1`, nil, false},
		{`["a",1]`, nil, false},
		{`{"a":1}`, nil, false},
	} {
		got, ok := Audience(json.RawMessage(tc.raw))
		if ok != tc.wantOK || !cmp.Equal(got, tc.want) {
			t.Errorf("Audience(%s) = %q, %v", tc.raw, got, ok)
		}
	}
}
