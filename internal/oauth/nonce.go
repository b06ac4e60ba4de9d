package oauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Nonces is a stateless DPoP nonce source (RFC 9449 §8): a nonce names a
// time window and carries an HMAC of it, so every replica sharing the
// secret accepts every other's nonces without shared state. A nonce is
// valid in its window and the next.
type Nonces struct {
	secret []byte
	window time.Duration
}

var _ NonceSource = (*Nonces)(nil)

// NewNonces returns a nonce source; secret must be at least 32 bytes and
// window at least a second.
func NewNonces(secret []byte, window time.Duration) (*Nonces, error) {
	if len(secret) < 32 || window < time.Second {
		return nil, errors.New("oauth: nonce secret must be ≥ 32 bytes and window ≥ 1s")
	}
	return &Nonces{secret: secret, window: window}, nil
}

func (n *Nonces) index(t time.Time) uint64 { return uint64(t.UnixNano() / int64(n.window)) } //nolint:gosec // times after 1970

func (n *Nonces) encode(i uint64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], i)
	m := hmac.New(sha256.New, n.secret)
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Nonce implements NonceSource.
func (n *Nonces) Nonce(now time.Time) string { return n.encode(n.index(now)) }

// Valid implements NonceSource.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return false
	}
	i := binary.BigEndian.Uint64(b[:8])
	cur := n.index(now)
	if i != cur && i+1 != cur {
		return false
	}
	return hmac.Equal([]byte(n.encode(i)), []byte(nonce))
}
