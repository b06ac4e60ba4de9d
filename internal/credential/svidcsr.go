package credential

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// MaxCSRBytes bounds a certificate signing request ParseCSR reads, PEM or
// DER.
const MaxCSRBytes = 16 << 10

// RSA key sizes an X.509-SVID may certify.
const (
	MinRSABits = 2048
	MaxRSABits = 4096
)

// ErrInvalidCSR means a certificate signing request is malformed, is not
// signed by the key it carries, or carries a key an SVID may not certify.
// It wraps ErrInvalidSVIDParams; the message is safe to show to the client.
var ErrInvalidCSR = fmt.Errorf("%w: bad certificate signing request", ErrInvalidSVIDParams)

// ParseCSR reads a PKCS #10 certificate signing request (RFC 2986), PEM
// ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST", one block, nothing
// else but whitespace around it) or DER, checks that it is signed by the
// key it carries (proof of possession) and that CheckWorkloadKey accepts
// that key, and returns the key. Everything else the request asks for
// (subject, SANs, extensions) is ignored: an SVID names what the server
// decides. Safe on any input; errors wrap ErrInvalidCSR.
func ParseCSR(data []byte) (crypto.PublicKey, error) {
	if len(data) > MaxCSRBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidCSR, MaxCSRBytes)
	}
	der := data
	if trimmed := bytes.TrimSpace(data); bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		block, rest := pem.Decode(trimmed)
		switch {
		case block == nil:
			return nil, fmt.Errorf("%w: malformed PEM", ErrInvalidCSR)
		case block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST":
			return nil, fmt.Errorf("%w: PEM block is %q, want CERTIFICATE REQUEST", ErrInvalidCSR, truncate(block.Type, 40))
		case len(bytes.TrimSpace(rest)) != 0:
			return nil, fmt.Errorf("%w: more than one PEM block", ErrInvalidCSR)
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: not a PKCS #10 request", ErrInvalidCSR)
	}
	// Check the key before the signature, so that an RSA key too large to
	// be worth verifying is refused first.
	if reason := keyProblem(csr.PublicKey); reason != "" {
		return nil, fmt.Errorf("%w: %s", ErrInvalidCSR, reason)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: its signature does not verify with its key", ErrInvalidCSR)
	}
	return csr.PublicKey, nil
}

// CheckWorkloadKey reports whether an X.509-SVID may certify pub: ECDSA on
// P-256 or P-384, Ed25519, or RSA of MinRSABits to MaxRSABits bits. Its
// errors wrap ErrInvalidSVIDParams.
func CheckWorkloadKey(pub crypto.PublicKey) error {
	if reason := keyProblem(pub); reason != "" {
		return fmt.Errorf("%w: %s", ErrInvalidSVIDParams, reason)
	}
	return nil
}

// keyProblem says why an SVID may not certify pub, "" when it may.
func keyProblem(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return "ECDSA keys must be on P-256 or P-384"
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "malformed Ed25519 key"
		}
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return fmt.Sprintf("RSA keys must have %d to %d bits, not %d", MinRSABits, MaxRSABits, n)
		}
	case nil:
		return "a public key is required"
	default:
		return fmt.Sprintf("unsupported key type %T", pub)
	}
	return ""
}

// truncate bounds a client-supplied string quoted in an error.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
