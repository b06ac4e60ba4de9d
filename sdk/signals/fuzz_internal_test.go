package signals

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
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

// FuzzVerifySET: the whole SET check never panics, and accepts only what
// the key signed.
func FuzzVerifySET(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: &k.PublicKey, KeyID: "k1", Algorithm: string(jose.ES256)}
	keys := func(context.Context, string) ([]jose.JSONWebKey, error) { return []jose.JSONWebKey{jwk}, nil }
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
		(&jose.SignerOptions{}).WithType("secevent+jwt").WithHeader("kid", "k1"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range fuzzSeeds() {
		jws, err := signer.Sign(s)
		if err != nil {
			f.Fatal(err)
		}
		tok, _ := jws.CompactSerialize()
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
