package cli

import (
	"testing"
)

// FuzzSummarizeBundle feeds summarizeBundle what a server (or something
// posing as one) might send: it never panics, and every row it returns
// has the five columns of the table.
func FuzzSummarizeBundle(f *testing.F) {
	f.Add([]byte(`{"keys":[{"use":"jwt-svid","kty":"EC","kid":"k","crv":"P-256"}],"spiffe_refresh_hint":300,"spiffe_sequence":1}`))
	f.Add([]byte(`{"keys":[{"use":"x509-svid","kty":"EC","x5c":["MIIB"]}]}`))
	f.Add([]byte(`{"keys":[{"x5c":["!!"]}],"spiffe_refresh_hint":-9223372036854775808}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := summarizeBundle(raw)
		if err != nil {
			return
		}
		for _, row := range s.rows {
			if len(row) != 5 {
				t.Fatalf("row of %d columns", len(row))
			}
		}
	})
}
