// Package keys holds agentid's key material: the root key that encrypts
// every other key at rest and the token signing keys (Manager), which it
// generates, seals under the root key, publishes as a JWKS and rotates with
// overlap (see Manager). The CA comes in a later release.
//
// The root key is 32 random bytes kept in a file readable only by its owner
// (mode 0600) or supplied by configuration as base64. It seals other keys
// with AES-256-GCM; see [RootKey.Seal] for the sealed format. A RootKey never
// formats or logs its bytes: String, GoString and LogValue return
// "[redacted]".
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// RootKeySize is the size of a root key in bytes (AES-256).
const RootKeySize = 32

// sealVersion1 is the first byte of every sealed value in format 1:
// version ‖ 12-byte random nonce ‖ AES-256-GCM ciphertext and 16-byte tag.
const (
	sealVersion1 = 0x01
	nonceSize    = 12
	tagSize      = 16
)

// Sentinel errors.
var (
	// ErrInsecureKeyFile means the root key file is readable or writable by
	// group or other; fix it with chmod 600.
	ErrInsecureKeyFile = errors.New("keys: root key file permissions are too open")
	// ErrBadRootKey means the root key is not RootKeySize bytes.
	ErrBadRootKey = errors.New("keys: root key must be 32 bytes")
	// ErrOpen means a sealed value could not be opened: it was tampered
	// with, sealed under another key or additional data, or is malformed.
	ErrOpen = errors.New("keys: cannot open sealed value")
)

// RootKey is the 32-byte key that encrypts other keys at rest. It is safe
// for concurrent use. Its formatting methods never reveal the key.
type RootKey struct {
	aead cipher.AEAD
	raw  [RootKeySize]byte
}

// NewRootKey returns a root key over b, which must be RootKeySize bytes. b
// is copied.
func NewRootKey(b []byte) (*RootKey, error) {
	if len(b) != RootKeySize {
		return nil, ErrBadRootKey
	}
	k := &RootKey{}
	copy(k.raw[:], b)
	block, err := aes.NewCipher(k.raw[:])
	if err != nil {
		return nil, fmt.Errorf("keys: root key cipher: %w", err)
	}
	k.aead, err = cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: root key cipher: %w", err)
	}
	return k, nil
}

// GenerateRootKey returns a new random root key read from rand, which must
// be a cryptographic source.
func GenerateRootKey(rand io.Reader) (*RootKey, error) {
	var b [RootKeySize]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("keys: generate root key: %w", err)
	}
	return NewRootKey(b[:])
}

// RootKeyFromBase64 decodes a root key supplied by configuration or the
// environment: standard or URL base64, padded or not, of exactly
// RootKeySize bytes. Surrounding whitespace is ignored. The error never
// contains s.
func RootKeyFromBase64(s string) (*RootKey, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		if b, err := enc.DecodeString(s); err == nil {
			return NewRootKey(b)
		}
	}
	return nil, errors.New("keys: root key is not valid base64")
}

// LoadOrCreateRootKey reads the root key file at path or, when it does not
// exist, creates it (and no parent directories) with a key from
// crypto/rand at mode 0600. The file holds the key as base64 with a
// trailing newline. A file that group or other may read or write is refused
// with ErrInsecureKeyFile, before its contents are read. Creation is atomic
// (a complete temporary file is linked into place), so processes racing to
// create the file all end with the same key and none reads a partial file.
func LoadOrCreateRootKey(path string) (*RootKey, error) {
	path = filepath.Clean(path)
	k, err := loadRootKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k, err = GenerateRootKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".root-key-*")
	if err != nil {
		return nil, fmt.Errorf("keys: create root key file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	werr := f.Chmod(0o600) // CreateTemp uses 0600 already; be explicit
	if werr == nil {
		_, werr = f.WriteString(base64.StdEncoding.EncodeToString(k.raw[:]) + "\n")
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("keys: write root key file: %w", werr)
	}
	// Link fails if path exists: the first creator wins.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadRootKey(path)
		}
		return nil, fmt.Errorf("keys: create root key file: %w", err)
	}
	return k, nil
}

func loadRootKey(path string) (*RootKey, error) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("keys: open root key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: stat root key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: root key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, want 0600 (chmod 600 %s)", ErrInsecureKeyFile, path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("keys: read root key file: %w", err)
	}
	k, err := RootKeyFromBase64(string(b))
	if err != nil {
		return nil, fmt.Errorf("keys: root key file %s: %w", path, err)
	}
	return k, nil
}

// Seal encrypts plaintext with AES-256-GCM bound to additionalData, which
// is authenticated but not stored: Open must be given the same bytes. Bind
// the purpose and identity of what is sealed (for example a key id) so a
// sealed value cannot be moved to another record. The result is
// 0x01 ‖ 12-byte random nonce ‖ ciphertext ‖ 16-byte tag; its first byte
// is the format version.
func (k *RootKey) Seal(plaintext, additionalData []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = sealVersion1
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return nil, fmt.Errorf("keys: seal nonce: %w", err)
	}
	return k.aead.Seal(out, out[1:1+nonceSize], plaintext, additionalData), nil
}

// Open decrypts a value made by Seal under the same key and additional
// data. Any tampering, a different key or additional data, an unknown
// version or a truncated value yields an error wrapping ErrOpen.
func (k *RootKey) Open(sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+tagSize {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	if sealed[0] != sealVersion1 {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrOpen, sealed[0])
	}
	pt, err := k.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], additionalData)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrOpen)
	}
	return pt, nil
}

// Equal reports whether k and o are the same key, in constant time.
func (k *RootKey) Equal(o *RootKey) bool {
	return subtle.ConstantTimeCompare(k.raw[:], o.raw[:]) == 1
}

// The formatting methods have value receivers so that neither a RootKey nor
// a *RootKey can be printed, whatever the verb.

// String returns "[redacted]".
func (RootKey) String() string { return redacted }

// GoString returns "[redacted]".
func (RootKey) GoString() string { return redacted }

// LogValue returns "[redacted]" so slog never logs the key.
func (RootKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// Format writes "[redacted]" for every verb (%v, %+v, %#v, %x, %s…).
func (RootKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

const redacted = "[redacted]"
