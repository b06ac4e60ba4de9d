package noderegistry_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/noderegistry"
)

// FuzzWellFormed: the join token shape check, which sees every attest
// request's token before anything else, never panics and accepts exactly
// SecretPrefix and the canonical unpadded base64url of 32 bytes.
func FuzzWellFormed(f *testing.F) {
	for _, s := range []string{
		"", "aidjt_", "aidjt_" + strings.Repeat("A", 43), "aidjt_" + strings.Repeat("_", 43),
		"aidjt_" + strings.Repeat("A", 42) + "B", "aida_" + strings.Repeat("A", 43), "aidjt_" + strings.Repeat("A", 44),
		"aidjt_" + strings.Repeat("A", 42) + "=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !noderegistry.WellFormed(s) {
			return
		}
		rest, ok := strings.CutPrefix(s, noderegistry.SecretPrefix)
		b, err := base64.RawURLEncoding.DecodeString(rest)
		if !ok || len(s) != noderegistry.SecretLen || err != nil || len(b) != 32 ||
			noderegistry.SecretPrefix+base64.RawURLEncoding.EncodeToString(b) != s {
			t.Fatalf("WellFormed accepted %q", s)
		}
	})
}
