package federation_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	agentfed "github.com/agentid/agentid/internal/federation"
)

func TestParseBundle(t *testing.T) {
	good := newForeignCA(t, partner, partnerTD, "k1")
	noURI := newForeignCA(t, partner, "", "k1") // an upstream CA without a SPIFFE ID
	withPath := newForeignCA(t, partner, "partner.example/ca", "k1")
	jwtOnly := spiffebundle.New(partner)
	if err := jwtOnly.AddJWTAuthority("k1", good.jwtKey.Public()); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		raw     []byte
		wantErr string
		is      error
	}{
		"good":                 {raw: marshal(t, good.bundle(t, 7, time.Minute))},
		"CA without SPIFFE ID": {raw: marshal(t, noURI.bundle(t, 1, 0))},
		"JWT authorities only": {raw: marshal(t, jwtOnly)},
		"CA of another TD":     {raw: marshal(t, newForeignCA(t, partner, "wrong.example", "k").bundle(t, 1, 0)), is: agentfed.ErrWrongTrustDomain},
		"CA ID with a path":    {raw: marshal(t, withPath.bundle(t, 1, 0)), is: agentfed.ErrWrongTrustDomain},
		"no authorities":       {raw: []byte(`{"keys":[],"spiffe_sequence":1}`), wantErr: "no X.509 or JWT authorities"},
		"no keys member":       {raw: []byte(`{"spiffe_sequence":1}`), wantErr: "no authorities"},
		"empty":                {raw: nil, wantErr: "empty"},
		"not JSON":             {raw: []byte("<html>"), wantErr: "unable to parse JWKS"},
		"too large":            {raw: []byte(`{"keys":[` + strings.Repeat(" ", agentfed.MaxBundleBytes) + `]}`), wantErr: "larger than"},
		"two certs in one key": {raw: []byte(`{"keys":[{"use":"x509-svid","kty":"EC","x5c":["a","b"]}]}`), wantErr: "unable to parse JWKS"},
	} {
		b, err := agentfed.ParseBundle(partnerTD, tc.raw)
		switch {
		case tc.wantErr == "" && tc.is == nil:
			if err != nil || b.TrustDomain() != partner {
				t.Errorf("%s: ParseBundle = %v, %v", name, b, err)
			}
		case tc.is != nil && !errors.Is(err, tc.is):
			t.Errorf("%s: ParseBundle error %v, want %v", name, err, tc.is)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: ParseBundle error %v, want one saying %q", name, err, tc.wantErr)
		}
	}
	if _, err := agentfed.ParseBundle("Not A TD", marshal(t, good.bundle(t, 1, 0))); err == nil {
		t.Error("ParseBundle accepted a malformed trust domain")
	}
}

// FuzzParseBundle feeds ParseBundle, which decodes both what a foreign
// endpoint sends and the copy the store keeps, arbitrary bytes: it never
// panics, and a bundle it accepts has an authority, names no other trust
// domain, and survives a round trip through go-spiffe's encoding.
func FuzzParseBundle(f *testing.F) {
	f.Add([]byte(`{"keys":[{"use":"jwt-svid","kty":"EC","kid":"k","crv":"P-256","x":"AAAA","y":"AAAA"}],"spiffe_refresh_hint":300,"spiffe_sequence":1}`))
	f.Add([]byte(`{"keys":[{"use":"x509-svid","kty":"EC","x5c":["MIIB"]}]}`))
	f.Add([]byte(`{"keys":[],"spiffe_refresh_hint":-9223372036854775808,"spiffe_sequence":18446744073709551615}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := agentfed.ParseBundle(partnerTD, raw)
		if err != nil {
			return
		}
		if len(b.X509Authorities()) == 0 && len(b.JWTAuthorities()) == 0 {
			t.Fatal("accepted a bundle without authorities")
		}
		for _, c := range b.X509Authorities() {
			for _, u := range c.URIs {
				if id, err := spiffeid.FromURI(u); u.Scheme == "spiffe" && (err != nil || id.TrustDomain() != partner) {
					t.Fatalf("accepted an authority naming %s", u)
				}
			}
		}
		again, err := b.Marshal()
		if err != nil {
			t.Fatalf("Marshal of an accepted bundle: %v", err)
		}
		b2, err := agentfed.ParseBundle(partnerTD, again)
		if err != nil {
			t.Fatalf("re-parse of an accepted bundle: %v\n%s", err, again)
		}
		if len(b2.X509Authorities()) != len(b.X509Authorities()) || len(b2.JWTAuthorities()) != len(b.JWTAuthorities()) {
			t.Fatalf("round trip changed the authorities: %s", again)
		}
	})
}
