package sqlstore

import (
	"errors"
	"testing"

	"github.com/agentid/agentid/internal/store"
)

// FuzzPageToken: page tokens come from clients. Decoding never panics, a
// rejected token is ErrBadPageToken (and ErrInvalid), and every token the
// store issues decodes to the key it was made from.
func FuzzPageToken(f *testing.F) {
	f.Add("agt_01m82k22s43ammqgb3k64rcgzd", "")
	f.Add("42", encodeToken("audit", "42"))
	f.Add("", "bm9wZQ")
	f.Add("x", "!!!")
	f.Fuzz(func(t *testing.T, key, token string) {
		for _, kind := range []string{"agents", "audit"} {
			if _, err := decodeToken(kind, token); err != nil && (!errors.Is(err, store.ErrBadPageToken) || !errors.Is(err, store.ErrInvalid)) {
				t.Fatalf("decodeToken(%q) = %v, want ErrBadPageToken", token, err)
			}
			if _, err := decodeSeqToken(kind, token); err != nil && !errors.Is(err, store.ErrBadPageToken) {
				t.Fatalf("decodeSeqToken(%q) = %v, want ErrBadPageToken", token, err)
			}
		}
		if key == "" {
			return
		}
		got, err := decodeToken("agents", encodeToken("agents", key))
		if err != nil || got != key {
			t.Fatalf("round trip of %q = %q, %v", key, got, err)
		}
		if _, err := decodeToken("owners", encodeToken("agents", key)); err == nil {
			t.Fatalf("a token for agents was accepted for owners")
		}
	})
}
