package keys

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// Derive returns n bytes derived from the root key for one purpose, named
// by label (HKDF-SHA-256, RFC 5869, with the label as info). Every replica
// holding the root key derives the same bytes, so derived keys need no
// storage; different labels give independent keys.
func (k *RootKey) Derive(label string, n int) ([]byte, error) {
	b, err := hkdf.Key(sha256.New, k.raw[:], nil, "agentid/"+label, n)
	if err != nil {
		return nil, fmt.Errorf("keys: derive %q: %w", label, err)
	}
	return b, nil
}
