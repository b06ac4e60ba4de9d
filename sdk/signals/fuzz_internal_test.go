package signals

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	fuzzIssuer   = "https://issuer.example.com"
	fuzzAudience = "agt_receiver"
)

func fuzzSeeds() [][]byte {
	var out [][]byte
	for _, ev := range []string{
		`{"iss":"https://issuer.example.com","aud":"agt_receiver","iat":1700000000,"jti":"s1","sub_id":{"format":"jwt_id","iss":"https://issuer.example.com","jti":"t1"},"events":{"` + EventSessionRevoked + `":{}}}`,
		`{"iss":"https://issuer.example.com","aud":["x","agt_receiver"],"iat":1700000000.5,"jti":"s2","sub_id":{"format":"iss_sub","iss":"i","sub":"spiffe://td/agent/a"},"events":{"` + EventSessionRevoked + `":{"event_timestamp":1700000000}}}`,
		`{"iss":"https://issuer.example.com","aud":"agt_receiver","iat":1,"jti":"s3","sub_id":{"format":"opaque","id":"grt_1"},"events":{"` + EventSessionRevoked + `":{}}}`,
		`{"iss":"https://issuer.example.com","aud":"agt_receiver","iat":1,"jti":"s4","sub_id":{"format":"iss_sub","iss":"i","sub":"s"},"events":{"` + EventAccountPurged + `":{}}}`,
		`{"iss":"https://issuer.example.com","aud":"agt_receiver","iat":1,"jti":"s5","sub_id":{"format":"opaque","id":"ssf_1"},"events":{"` + EventStreamUpdated + `":{"status":"paused","reason":"x"}}}`,
		`{"iss":"https://issuer.example.com","aud":"agt_receiver","iat":1,"jti":"s6","sub_id":{"format":"opaque","id":"ssf_1"},"events":{"` + EventVerification + `":{"state":7}}}`,
		`{"events":{"a":{},"b":{}}}`,
		`[]`,
	} {
		out = append(out, []byte(ev))
	}
	return out
}

// FuzzDecodeSET: the claims parser never panics, and what it accepts is
// for this issuer and audience, with a jti.
func FuzzDecodeSET(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		s, err := decodeSET(payload, fuzzIssuer, fuzzAudience)
		if err != nil {
			var se *setErr
			if !errors.As(err, &se) || se.Err == "" {
				t.Fatalf("decodeSET = %v: want a *setErr", err)
			}
			return
		}
		if s.Issuer != fuzzIssuer || !contains(s.Audience, fuzzAudience) || s.JTI == "" || s.EventType == "" {
			t.Fatalf("decodeSET accepted %q as %+v", payload, s)
		}
	})
}

// signedSeeds are fuzzSeeds signed by k as SETs (kid k1).
func signedSeeds(f *testing.F, k *ecdsa.PrivateKey) []string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
		(&jose.SignerOptions{}).WithType("secevent+jwt").WithHeader("kid", "k1"))
	if err != nil {
		f.Fatal(err)
	}
	var out []string
	for _, s := range fuzzSeeds() {
		jws, err := signer.Sign(s)
		if err != nil {
			f.Fatal(err)
		}
		tok, _ := jws.CompactSerialize()
		out = append(out, tok)
	}
	return out
}

// FuzzVerifySET: the whole SET check never panics, and accepts only what
// the key signed.
func FuzzVerifySET(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: &k.PublicKey, KeyID: "k1", Algorithm: string(jose.ES256)}
	keys := func(context.Context, string) ([]jose.JSONWebKey, error) { return []jose.JSONWebKey{jwk}, nil }
	for _, tok := range signedSeeds(f, k) {
		f.Add(tok)
	}
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		s, err := verifySET(context.Background(), token, fuzzIssuer, fuzzAudience, keys)
		if err != nil {
			var se *setErr
			if !errors.As(err, &se) {
				t.Fatalf("verifySET = %v: want a *setErr", err)
			}
			return
		}
		jws, err := jose.ParseSignedCompact(token, algorithms())
		if err != nil {
			t.Fatalf("accepted an unparsable JWS: %v", err)
		}
		if _, err := jws.Verify(&k.PublicKey); err != nil {
			t.Fatalf("accepted a SET the key did not sign: %+v", s)
		}
	})
}

// FuzzPushHandler: the push handler never panics, answers only 202, 400,
// 401 or 503 to a POST, with a JSON error body unless 202, and accepts
// only a SET the key signed, with the right header and media type. The
// Receiver knows its metadata already and fetches its JWKS from a fake
// transport, so no I/O is done.
func FuzzPushHandler(f *testing.F) {
	const auth = "Bearer fuzz-secret"
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	jwk, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: string(jose.ES256)}}})
	if err != nil {
		f.Fatal(err)
	}
	jwksServer := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(jwk)), Request: req}, nil
	})
	r, err := New(Config{
		Issuer: fuzzIssuer, Audience: fuzzAudience, Client: &http.Client{}, PublicClient: &http.Client{Transport: jwksServer},
		PushEndpoint: "https://rcv.example.com/ssf/events", PushAuthorization: auth,
		Clock: func() time.Time { return now },
	})
	if err != nil {
		f.Fatal(err)
	}
	r.md = &metadata{Issuer: fuzzIssuer, JWKSURI: "https://issuer.example.com/jwks"}
	r.keys = r.newKeySet(r.md.JWKSURI) // fetched once: the clock stands still, an unknown kid is retried later
	for _, tok := range signedSeeds(f, k) {
		f.Add([]byte(tok), "application/secevent+jwt", true)
		f.Add([]byte(tok), "application/secevent+jwt; charset=utf-8", false)
	}
	f.Add([]byte("a.b.c"), "APPLICATION/SECEVENT+JWT", true)
	f.Add([]byte(""), "", true)
	f.Add([]byte("x"), "application/secevent+jwt; =", true)
	h := r.PushHandler()
	f.Fuzz(func(t *testing.T, body []byte, contentType string, authorized bool) {
		req := httptest.NewRequest(http.MethodPost, "/ssf/events", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", contentType)
		if authorized {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusAccepted:
			if !authorized || w.Body.Len() != 0 {
				t.Fatalf("202 with authorized %v, body %q", authorized, w.Body)
			}
			jws, err := jose.ParseSignedCompact(strings.TrimSpace(string(body)), algorithms())
			if err != nil {
				t.Fatalf("accepted an unparsable JWS: %v", err)
			}
			if _, err := jws.Verify(&k.PublicKey); err != nil {
				t.Fatal("accepted a SET the key did not sign")
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusServiceUnavailable:
			var e setErr
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Err == "" || e.Description == "" {
				t.Fatalf("%d with body %q", w.Code, w.Body)
			}
			if w.Code == http.StatusUnauthorized && authorized {
				t.Fatal("401 with the right header")
			}
			if strings.Contains(w.Body.String(), auth) {
				t.Fatal("the answer shows the header")
			}
		default:
			t.Fatalf("status %d", w.Code)
		}
	})
}

// TestRevocationsQueueStaysBounded: updating one entry again and again
// does not grow the queue without bound.
func TestRevocationsQueueStaysBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	rv := newRevocations(DefaultHorizon, 10, func() time.Time { return now })
	for i := range 10_000 {
		rv.apply("set", effect{kind: effectRevokeSubject, key: "spiffe://td/agent/a", at: now.Add(time.Duration(i))})
	}
	if len(rv.queue)-rv.head > 200 || len(rv.entries) != 2 {
		t.Fatalf("queue %d, entries %d", len(rv.queue)-rv.head, len(rv.entries))
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
