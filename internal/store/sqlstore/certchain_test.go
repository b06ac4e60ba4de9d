package sqlstore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func TestCertChainEncoding(t *testing.T) {
	for _, chain := range [][][]byte{nil, {[]byte("leaf")}, {[]byte("a"), bytes.Repeat([]byte{7}, 70000)}} {
		b, err := encodeCertChain(chain)
		if err != nil {
			t.Fatalf("encodeCertChain: %v", err)
		}
		got, err := decodeCertChain(b)
		if err != nil {
			t.Fatalf("decodeCertChain: %v", err)
		}
		if diff := cmp.Diff(chain, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
	if _, err := encodeCertChain([][]byte{[]byte("a"), nil}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("encodeCertChain with an empty certificate = %v, want ErrInvalid", err)
	}
	for _, bad := range [][]byte{{0, 0}, {0, 0, 0, 0}, {0, 0, 0, 5, 1}} {
		if _, err := decodeCertChain(bad); !errors.Is(err, errBadCertChain) {
			t.Errorf("decodeCertChain(%x) = %v, want errBadCertChain", bad, err)
		}
	}
}

// FuzzCertChain: decoding a stored column never panics, and whatever
// decodes re-encodes to the same bytes.
func FuzzCertChain(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 9, 0, 0, 0, 2, 1, 2})
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		chain, err := decodeCertChain(b)
		if err != nil {
			return
		}
		again, err := encodeCertChain(chain)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x = %x, %v", b, again, err)
		}
	})
}
