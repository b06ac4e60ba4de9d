package cli

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

// FuzzWireConversion feeds server-supplied checkpoint and key fields (which
// an off-box verifier must not trust) through the conversion: it never
// panics, and what it accepts has the right sizes.
func FuzzWireConversion(f *testing.F) {
	f.Add(strings.Repeat("ab", 32), strings.Repeat("cd", 64), strings.Repeat("ef", 32))
	f.Add("", "", "")
	f.Add("zz", "====", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, hash, sig, pub string) {
		cp, err := checkpointFromWire(admin.AuditCheckpoint{Seq: 1, Hash: hash, Time: time.Unix(0, 0), KeyID: "k", Signature: sig})
		if err == nil && (len(cp.Hash) != 32 || len(cp.Signature) != ed25519.SignatureSize) {
			t.Fatalf("accepted hash %d bytes, signature %d bytes", len(cp.Hash), len(cp.Signature))
		}
		k, err := keyFromWire(admin.AuditKey{ID: "k", Algorithm: "Ed25519", PublicKey: pub})
		if err == nil && len(k.PublicKey) != ed25519.PublicKeySize {
			t.Fatalf("accepted a %d-byte public key", len(k.PublicKey))
		}
	})
}
