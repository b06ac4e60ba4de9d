// Package ca is the X.509 certificate authority of the trust domain: it
// signs X.509-SVIDs (through internal/credential, which takes the key that
// signs now from CurrentCA) and gives the trust anchors that trust bundles
// list (X509Authorities).
//
// The CA's keys are signing keys of purpose "x509-ca", ES256 (P-256) only,
// managed by a keys.Manager: sealed under the root key in the store,
// created under the store lease so that replicas sharing a database rotate
// once, every change an audit event. Each key has a certificate, issued
// when the key is created:
//
//   - by default a self-signed root: subject O=agentid, CN="<trust domain>
//     CA <kid>" (CN="CA <kid>" when that would pass the 64 bytes RFC 5280
//     allows), the trust domain's SPIFFE ID spiffe://<trust domain> as its
//     only URI SAN, basic constraints CA=true with path length 0 (it signs
//     SVIDs only), key usage keyCertSign and cRLSign;
//   - with an Upstream, the same certificate signed by the deployment's
//     upstream CA, so agentid signs as an intermediate; the chain is then
//     the agentid CA certificate followed by the upstream intermediates,
//     and the trust anchors are the upstream roots.
//
// # Schedule
//
// With a CA lifetime TTL (default 24 h), each CA key signs for TTL/2 and is
// published TTL/3 before it signs, so a key created at c signs from
// c + TTL/3, its successor is created (and published) at c + TTL/2 and
// signs at c + 5·TTL/6, SPIRE's schedule. The first key signs at once.
// A certificate is valid from its creation (backdated by Backdate) until
// max(c + TTL, latest scheduled retirement + MaxSVIDTTL +
// keys.RemovalLeeway), so it outlives every SVID it signs on schedule, and
// a retired CA stays among the authorities until every SVID it could have
// signed has expired. SVIDs are never valid past their CA's NotAfter.
//
// Taint marks a CA key compromised; if it signs, a successor signs at
// once. A Manager is safe for concurrent use; CurrentCA, X509Authorities
// and TaintedCAs read memory only.
package ca

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
)

// Purpose is the signing-key purpose of CA keys.
const Purpose = "x509-ca"

// Lifetimes.
const (
	// DefaultTTL is a CA certificate's nominal lifetime.
	DefaultTTL = 24 * time.Hour
	// MinTTL and MaxTTL bound Params.TTL.
	MinTTL = time.Hour
	MaxTTL = 365 * 24 * time.Hour
	// Backdate is how far before its creation a CA certificate's
	// NotBefore lies, for verifiers and replicas whose clocks lag.
	Backdate = time.Minute
)

// Sentinel errors.
var (
	// ErrUpstream means the upstream CA cannot be used: unreadable or
	// malformed files, a key that does not match the certificate, a
	// certificate that is not a CA, may not sign CAs, has expired or does
	// not chain to the upstream bundle.
	ErrUpstream = errors.New("ca: unusable upstream CA")
)

// Params configures a Manager.
type Params struct {
	// Store holds the CA keys (sealed) and the rotation lease. Required.
	Store store.Store
	// Root seals the CA private keys at rest. Required.
	Root *keys.RootKey
	// TrustDomain is the SPIFFE trust domain the CA signs for. Required.
	TrustDomain string
	// TTL is a CA certificate's nominal lifetime; default DefaultTTL,
	// between MinTTL and MaxTTL.
	TTL time.Duration
	// MaxSVIDTTL is the longest lifetime of an SVID the CA signs: a
	// retired CA stays in the bundle this long (plus
	// keys.RemovalLeeway). Required.
	MaxSVIDTTL time.Duration
	// Upstream, when set, signs the CA certificates (agentid is then an
	// intermediate); nil: self-signed roots.
	Upstream *Upstream
	// RefreshInterval is how often Run reloads the keys and rotates when
	// due; default keys.DefaultRefreshInterval.
	RefreshInterval time.Duration
	// Holder identifies this replica in the lease and audit events;
	// default a random one.
	Holder string
	// Recorder records CA key creation, rotation and taint; nil records
	// nothing.
	Recorder keys.Recorder
	// Clock is the time source; default time.Now.
	Clock func() time.Time
	// Rand is the source of key ids and serial numbers; default
	// crypto/rand.Reader.
	Rand io.Reader
	// Logger receives Run's errors; default slog.Default().
	Logger *slog.Logger
}

// Manager is the trust domain's CA. Construct it with New.
type Manager struct {
	keys *keys.Manager
	td   string
	up   *Upstream
}

var _ credential.CA = (*Manager)(nil)

// New validates p, checks the upstream CA (if any) and loads the CA keys,
// creating the first one (it signs at once) when there is none. It fails
// when the key that signs now cannot be unsealed with p.Root.
func New(ctx context.Context, p Params) (*Manager, error) {
	if err := identity.ValidateTrustDomain(p.TrustDomain); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if p.TTL == 0 {
		p.TTL = DefaultTTL
	}
	switch {
	case p.TTL < MinTTL || p.TTL > MaxTTL:
		return nil, fmt.Errorf("ca: TTL %s must be between %s and %s", p.TTL, MinTTL, MaxTTL)
	case p.MaxSVIDTTL <= 0:
		return nil, errors.New("ca: Params.MaxSVIDTTL is required")
	}
	if p.Clock == nil {
		p.Clock = time.Now
	}
	if p.Upstream != nil {
		if err := p.Upstream.check(p.Clock()); err != nil {
			return nil, err
		}
	}
	c, err := newCertifier(p)
	if err != nil {
		return nil, err
	}
	km, err := keys.NewManager(ctx, keys.ManagerParams{
		Store: p.Store, Root: p.Root, Purpose: Purpose, Algorithm: keys.ES256,
		RotationPeriod: p.TTL / 2, PrepublishDelay: p.TTL / 3, RefreshInterval: p.RefreshInterval,
		MaxTokenTTL: p.MaxSVIDTTL, Certifier: c, Holder: p.Holder, Recorder: p.Recorder,
		Clock: p.Clock, Rand: p.Rand, Logger: p.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	m := &Manager{keys: km, td: p.TrustDomain, up: p.Upstream}
	if err := m.followConfig(ctx, p.Holder); err != nil {
		return nil, err
	}
	return m, nil
}

// followConfig rotates when the newest CA key's certificate does not fit
// the configuration (another trust domain, self-signed where an upstream
// CA is configured or the reverse, another upstream CA), so that a CA
// that fits is published now and signs after the prepublication delay.
// Until then the old CA signs; X509Authorities keeps listing it when it is
// self-signed. A replica that finds another one rotating leaves it to it.
func (m *Manager) followConfig(ctx context.Context, holder string) error {
	pub := m.keys.Published()
	if len(pub) == 0 || len(pub[len(pub)-1].Chain) == 0 || m.fits(pub[len(pub)-1].Chain[0]) {
		return nil
	}
	if holder == "" {
		holder = "ca"
	}
	_, err := m.keys.Rotate(ctx, keys.Origin{ActorType: "system", ActorID: holder})
	if err != nil && !errors.Is(err, keys.ErrBusy) {
		return fmt.Errorf("ca: rotate to follow the configuration: %w", err)
	}
	return nil
}

// fits reports whether a CA certificate is one this configuration issues.
func (m *Manager) fits(c *x509.Certificate) bool {
	if len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://"+m.td {
		return false
	}
	if m.up != nil {
		return c.CheckSignatureFrom(m.up.Cert) == nil
	}
	return selfSigned(c) && c.CheckSignatureFrom(c) == nil
}

// String describes the Manager without any key material.
func (m *Manager) String() string { return "ca.Manager(" + m.td + ")" }

// Format writes String for every verb, so printing a Manager never reaches
// the private keys it holds.
func (m *Manager) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, m.String()) }

// TrustDomain is the trust domain the CA signs for.
func (m *Manager) TrustDomain() string { return m.td }

// Upstream reports whether an upstream CA signs the CA certificates.
func (m *Manager) Upstream() bool { return m.up != nil }

// CurrentCA returns the CA key that signs now, from memory. Errors wrap
// credential.ErrNoCA (and keys.ErrNoKey or keys.ErrStale).
func (m *Manager) CurrentCA() (credential.CAKey, error) {
	k, err := m.keys.Current()
	if err != nil {
		return credential.CAKey{}, fmt.Errorf("%w: %w", credential.ErrNoCA, err)
	}
	if len(k.Chain) == 0 {
		return credential.CAKey{}, fmt.Errorf("%w: key %s has no certificate", credential.ErrNoCA, k.ID)
	}
	return credential.CAKey{ID: k.ID, Signer: k.Signer(), Chain: k.Chain}, nil
}

// X509Authorities returns the trust anchors a bundle of the trust domain
// lists for X.509-SVIDs, from memory: the upstream roots, if an upstream
// CA is configured, then the self-signed certificate of every CA key
// published now (pending, active, and retired or tainted until every SVID
// it signed has expired), in activation order. (With an upstream CA, such
// certificates are left from before it was configured.) Callers must not
// modify the certificates.
func (m *Manager) X509Authorities() []*x509.Certificate {
	var out []*x509.Certificate
	if m.up != nil {
		out = append(out, m.up.Roots...)
	}
	for _, k := range m.keys.Published() {
		if len(k.Chain) > 0 && selfSigned(k.Chain[0]) {
			out = append(out, k.Chain[0])
		}
	}
	return out
}

// TaintedCAs returns the certificates of the published CA keys that are
// tainted, from memory: an SVID whose chain contains one (its issuer's key
// id matches one's subject key id) must be re-issued now.
func (m *Manager) TaintedCAs() []*x509.Certificate {
	var out []*x509.Certificate
	for _, k := range m.keys.Published() {
		if !k.TaintedAt.IsZero() && len(k.Chain) > 0 {
			out = append(out, k.Chain[0])
		}
	}
	return out
}

// Info describes a CA key: its life and certificate, never its private
// key.
type Info struct {
	keys.KeyInfo
	// Chain is the CA's certificate first, then the upstream
	// intermediates; nil when the stored chain cannot be parsed.
	Chain []*x509.Certificate
}

// Certificate is the CA's own certificate, nil if unknown.
func (i Info) Certificate() *x509.Certificate {
	if len(i.Chain) == 0 {
		return nil
	}
	return i.Chain[0]
}

// Fingerprint is the lowercase hex SHA-256 of the CA certificate's DER,
// "" if unknown.
func (i Info) Fingerprint() string {
	if len(i.CertChain) == 0 {
		return ""
	}
	sum := sha256.Sum256(i.CertChain[0])
	return hex.EncodeToString(sum[:])
}

func infoOf(k keys.KeyInfo) Info {
	i := Info{KeyInfo: k}
	for _, der := range k.CertChain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			i.Chain = nil
			break
		}
		i.Chain = append(i.Chain, c)
	}
	return i
}

// List returns every CA key as the store holds it now, removed ones
// included, in activation order, with its state at now.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	ks, err := m.keys.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	out := make([]Info, len(ks))
	for i, k := range ks {
		out[i] = infoOf(k)
	}
	return out, nil
}

// Rotate creates and certifies a successor CA key now: it is published (in
// X509Authorities) at once and signs after TTL/3. keys.ErrBusy: another
// replica is changing the CA keys; retry.
func (m *Manager) Rotate(ctx context.Context, o keys.Origin) (Info, error) {
	k, err := m.keys.Rotate(ctx, o)
	if err != nil {
		return Info{}, fmt.Errorf("ca: rotate: %w", err)
	}
	return infoOf(k), nil
}

// Taint marks the CA key kid compromised (keys.Manager.Taint): if it signs
// now, a successor signs at once; it stays among the authorities until
// every SVID it signed has expired, so holders of its SVIDs must re-issue
// them (TaintedCAs). keys.ErrUnknownKey: no CA key has the id;
// keys.ErrBusy: retry.
func (m *Manager) Taint(ctx context.Context, o keys.Origin, kid string) (Info, error) {
	k, err := m.keys.Taint(ctx, o, kid)
	if err != nil {
		return Info{}, fmt.Errorf("ca: taint: %w", err)
	}
	return infoOf(k), nil
}

// Refresh reloads the CA keys from the store and rotates when due.
func (m *Manager) Refresh(ctx context.Context) error {
	if err := m.keys.Refresh(ctx); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}

// Run calls Refresh every RefreshInterval until ctx is done.
func (m *Manager) Run(ctx context.Context) { m.keys.Run(ctx) }
