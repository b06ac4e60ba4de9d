package resource

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCacheLifetime(t *testing.T) {
	for _, tc := range []struct {
		headers []string
		want    time.Duration
	}{
		{nil, DefaultJWKSMaxAge},
		{[]string{"max-age=60"}, time.Minute},
		{[]string{`public, MAX-AGE="120"`}, 2 * time.Minute},
		{[]string{"public", "max-age=30"}, 30 * time.Second},
		{[]string{"max-age=99999999999"}, maxJWKSAge},
		{[]string{"max-age=-1"}, 0},
		{[]string{"max-age="}, 0},
		{[]string{"max-age=60, no-store"}, 0},
		{[]string{"No-Cache"}, 0},
		{[]string{"must-revalidate"}, DefaultJWKSMaxAge},
	} {
		h := http.Header{"Cache-Control": tc.headers}
		if got := cacheLifetime(h); got != tc.want {
			t.Errorf("cacheLifetime(%q) = %v, want %v", tc.headers, got, tc.want)
		}
	}
}

func TestParseKeySet(t *testing.T) {
	doc := `{"keys":[` +
		`{"kty":"EC","crv":"P-256","kid":"ok","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"},` +
		`{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"},` +
		`{"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"},` +
		`{"kty":"EC","crv":"P-256","kid":"hs","alg":"HS256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"},` +
		`{"kty":"oct","kid":"sym","k":"c2VjcmV0"},` +
		`{"kty":"ML-DSA","kid":"future","pub":"AAAA"},` +
		`{"kty":"EC","crv":"P-256","kid":"bad","x":"AA","y":"AA"}` +
		`]}`
	got, err := parseKeySet([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for kid := range got {
		kids = append(kids, kid)
	}
	if diff := cmp.Diff([]string{"ok"}, kids); diff != "" {
		t.Fatalf("kept keys (-want +got):\n%s", diff)
	}
	for _, bad := range []string{``, `[]`, `{}`, `{"keys":{}}`, `null`} {
		if _, err := parseKeySet([]byte(bad)); err == nil {
			t.Errorf("parseKeySet(%q) succeeded", bad)
		}
	}
}

func FuzzCacheLifetime(f *testing.F) {
	f.Add("max-age=60")
	f.Add(`public, max-age="5", no-store`)
	f.Fuzz(func(t *testing.T, v string) {
		d := cacheLifetime(http.Header{"Cache-Control": {v}})
		if d < 0 || d > maxJWKSAge {
			t.Fatalf("cacheLifetime(%q) = %v", v, d)
		}
	})
}

func FuzzParseKeySet(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"ok","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"x","k":"AA"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseKeySet(b)
		if err != nil {
			return
		}
		for kid, ks := range keys {
			for _, k := range ks {
				if kid == "" || k.KeyID != kid || !k.IsPublic() {
					t.Fatalf("parseKeySet kept %+v", k)
				}
			}
		}
	})
}
