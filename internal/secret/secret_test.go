package secret_test

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/secret"
)

func TestNewAndWellFormed(t *testing.T) {
	s, err := secret.New("aidx_", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != secret.Len("aidx_") || !secret.WellFormed("aidx_", s) {
		t.Fatalf("%q is not well formed", s)
	}
	for _, bad := range []string{"", "aidx_", s[:len(s)-1], s + "A", "aidy_" + s[5:], strings.Replace(s, s[5:6], "+", 1), s[:len(s)-1] + "B"} {
		if secret.WellFormed("aidx_", bad) {
			t.Errorf("WellFormed(%q) = true", bad)
		}
	}
	if bytes.Equal(secret.Hash(s), secret.Hash(s+"x")) || len(secret.Hash(s)) != 32 {
		t.Error("Hash")
	}
}

func FuzzWellFormed(f *testing.F) {
	f.Add("aidx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if secret.WellFormed("aidx_", s) && len(s) != secret.Len("aidx_") {
			t.Fatalf("accepted %q", s)
		}
	})
}
