package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func mustKey(t *testing.T) *RootKey {
	t.Helper()
	k, err := GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := mustKey(t)
	ad := []byte("agentid-audit-key-v1\nack_1")
	pt := []byte("secret material")
	sealed, err := k.Seal(pt, ad)
	if err != nil {
		t.Fatal(err)
	}
	if sealed[0] != sealVersion1 || len(sealed) != 1+nonceSize+len(pt)+tagSize {
		t.Fatalf("sealed format: version %d len %d", sealed[0], len(sealed))
	}
	if bytes.Contains(sealed, pt) {
		t.Fatal("plaintext visible in sealed value")
	}
	got, err := k.Open(sealed, ad)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, want %q", got, pt)
	}
	again, err := k.Seal(pt, ad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals are identical: nonce not random")
	}
}

func TestOpenRejects(t *testing.T) {
	k := mustKey(t)
	ad := []byte("ad")
	sealed, err := k.Seal([]byte("plaintext"), ad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name   string
		key    *RootKey
		sealed []byte
		ad     []byte
	}{
		{"tampered ciphertext", k, flip(1 + nonceSize), ad},
		{"tampered nonce", k, flip(1), ad},
		{"tampered tag", k, flip(len(sealed) - 1), ad},
		{"unknown version", k, flip(0), ad},
		{"truncated", k, sealed[:len(sealed)-1], ad},
		{"too short", k, sealed[:5], ad},
		{"empty", k, nil, ad},
		{"wrong additional data", k, sealed, []byte("other")},
		{"missing additional data", k, sealed, nil},
		{"wrong key", mustKey(t), sealed, ad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.key.Open(tt.sealed, tt.ad); !errors.Is(err, ErrOpen) {
				t.Fatalf("Open error = %v, want ErrOpen", err)
			}
		})
	}
}

func TestLoadOrCreateRootKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	k1, err := LoadOrCreateRootKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("created with mode %04o, want 0600", perm)
	}
	k2, err := LoadOrCreateRootKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("reloaded key differs")
	}
	sealed, err := k1.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Open(sealed, nil); err != nil {
		t.Fatalf("reloaded key cannot open: %v", err)
	}
}

func TestLoadOrCreateRootKeyRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	const n = 8
	keys := make([]*RootKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateRootKey(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("racer %d: %v", i, errs[i])
		}
		final, err := LoadOrCreateRootKey(path)
		if err != nil {
			t.Fatal(err)
		}
		if !keys[i].Equal(final) {
			t.Fatalf("racer %d got a key that is not the stored one", i)
		}
	}
}

func TestLoadRootKeyPermissions(t *testing.T) {
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o666} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "root.key")
			if _, err := LoadOrCreateRootKey(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateRootKey(path)
			if !errors.Is(err, ErrInsecureKeyFile) {
				t.Fatalf("error = %v, want ErrInsecureKeyFile", err)
			}
			if !strings.Contains(err.Error(), "chmod 600") {
				t.Errorf("error %q does not say how to fix it", err)
			}
		})
	}
	t.Run("0400 is fine", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "root.key")
		if _, err := LoadOrCreateRootKey(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o400); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateRootKey(path); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLoadRootKeyBadContents(t *testing.T) {
	for name, contents := range map[string]string{
		"not base64": "not a key!\n",
		"too short":  base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"empty":      "",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "root.key")
			if err := os.WriteFile(path, []byte(contents), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOrCreateRootKey(path); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestRootKeyFromBase64(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb}, RootKeySize)
	want, err := NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		k, err := RootKeyFromBase64(" " + enc.EncodeToString(raw) + "\n")
		if err != nil {
			t.Fatal(err)
		}
		if !k.Equal(want) {
			t.Fatal("decoded key differs")
		}
	}
	secret := "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
	_, err = RootKeyFromBase64(secret)
	if !errors.Is(err, ErrBadRootKey) {
		t.Fatalf("error = %v, want ErrBadRootKey", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatal("error contains the key")
	}
	if _, err := RootKeyFromBase64("%%%"); err == nil || strings.Contains(err.Error(), "%%%") {
		t.Fatalf("error = %v", err)
	}
}

func TestRootKeyNeverFormatted(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, RootKeySize)
	k, err := NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("key", "root", k, "value", *k)
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %x %s %q", k, k, k, k, k, k),
		fmt.Sprintf("%v %+v %#v %x", *k, *k, *k, *k), k.String(), k.GoString(),
		fmt.Sprintf("%v", struct{ K *RootKey }{k}), fmt.Sprintf("%+v", []any{k}),
		logs.String(),
	}
	for _, s := range outs {
		if strings.Contains(strings.ToLower(s), "abab") || strings.Contains(s, "171") ||
			strings.Contains(s, base64.StdEncoding.EncodeToString(raw)[:8]) {
			t.Errorf("key material in %q", s)
		}
		if !strings.Contains(s, "[redacted]") {
			t.Errorf("%q does not say [redacted]", s)
		}
	}
}
