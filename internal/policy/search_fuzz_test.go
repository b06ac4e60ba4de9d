package policy

import (
	"errors"
	"testing"
)

// FuzzPageToken drives untrusted search page tokens through the decoder:
// whatever the string, the answer is a ValidationError or the cursor of a
// token of this very search, never a panic; a token this package issued
// round-trips.
func FuzzPageToken(f *testing.F) {
	good := encodePageToken(pageToken{Kind: SearchAction, Query: "q1", Cursor: "read"})
	for _, s := range []string{good, "", "%%%", "e30", "eyJrIjoiYWN0aW9uIn0", good + "x", good[:len(good)-2]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		cursor, err := decodePageToken(tok, SearchAction, "q1")
		var ve *ValidationError
		switch {
		case err != nil && !errors.As(err, &ve):
			t.Fatalf("error %v is not a ValidationError", err)
		case err == nil && tok != "" && cursor == "":
			t.Fatalf("token %q accepted without a cursor", tok)
		}
		if c, err := decodePageToken(good, SearchAction, "q1"); err != nil || c != "read" {
			t.Fatalf("own token = %q, %v", c, err)
		}
		if _, err := decodePageToken(good, SearchAction, "q2"); err == nil {
			t.Fatal("a token of another search was accepted")
		}
	})
}
