// Package secret makes and checks the bearer secrets agentid hands out once
// (admin tokens, client secrets, join tokens): a recognisable prefix and
// 256 random bits in unpadded base64url. They are stored only as their
// SHA-256: with 256 bits of entropy there is nothing for a slow password
// KDF to protect, and a fast hash lets the store look a secret up by hash.
package secret

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// Bytes is the number of random bytes in a secret.
const Bytes = 32

// encodedLen is the length of the encoded random part.
const encodedLen = 43 // base64.RawURLEncoding.EncodedLen(Bytes)

// Len is the length of a secret with the prefix.
func Len(prefix string) int { return len(prefix) + encodedLen }

// New returns a fresh secret with the prefix, reading Bytes from rand,
// which must be a cryptographic source.
func New(prefix string, rand io.Reader) (string, error) {
	var b [Bytes]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("secret: read random: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// WellFormed reports whether s has the shape of a secret with the prefix.
// Safe on any input; it does not say that the secret exists.
func WellFormed(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(s) != Len(prefix) {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	return err == nil && len(b) == Bytes
}

// Hash is what the store keeps of a secret.
func Hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
