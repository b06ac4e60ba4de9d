package ssf

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzAckedSeq: an acknowledged jti from a receiver names an outbox event
// of the stream only when it is exactly "<stream>.<seq>" with a positive
// canonical seq, and never panics.
func FuzzAckedSeq(f *testing.F) {
	for _, s := range []string{"ssf_a.1", "ssf_a.01", "ssf_a.-1", "ssf_a.", "ssf_b.2", "ssf_a.9223372036854775808", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, jti string) {
		n, ok := ackedSeq("ssf_a", jti)
		if !ok {
			return
		}
		if n <= 0 || setJTI("ssf_a", n) != jti || !strings.HasPrefix(jti, "ssf_a.") {
			t.Fatalf("ackedSeq(%q) = %d, true", jti, n)
		}
		if _, err := strconv.ParseInt(strings.TrimPrefix(jti, "ssf_a."), 10, 64); err != nil {
			t.Fatal(err)
		}
	})
}
