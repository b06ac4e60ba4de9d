package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agentid/agentid/internal/httpapi"
	"github.com/agentid/agentid/internal/urlcheck"
)

// Config is the whole server configuration, read from YAML by LoadConfig.
// Unknown keys are rejected. Durations are Go durations ("15m", "24h").
type Config struct {
	// Listen is the address of the HTTP listener (host:port).
	Listen string `yaml:"listen"`
	// TrustDomain is the SPIFFE trust domain agents' ids live in.
	TrustDomain string `yaml:"trust_domain"`
	// Issuer is the OAuth issuer identifier (RFC 8414 §2): the URL clients
	// and resource servers reach this server at, https unless the host is
	// loopback, without query or fragment; a trailing slash is dropped.
	// Default: http://<listen> on loopback without TLS, https://<listen>
	// with TLS (required when listen names no host, e.g. 0.0.0.0).
	Issuer string `yaml:"issuer"`
	// DataDir holds the SQLite database and the root key file by default.
	DataDir string `yaml:"data_dir"`
	// RootKeyFile is the 0600 file of the root key that encrypts keys at
	// rest (default <data_dir>/root.key, created if absent). The
	// AGENTID_ROOT_KEY environment variable (base64) overrides it.
	RootKeyFile string `yaml:"root_key_file"`
	// TrustedProxies are the addresses or CIDR ranges of load balancers
	// whose X-Forwarded-For header names the client on logs and audit
	// events. Empty (the default): the TCP peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`

	Store       StoreConfig       `yaml:"store"`
	TLS         TLSConfig         `yaml:"tls"`
	Credentials CredentialsConfig `yaml:"credentials"`
	Audit       AuditConfig       `yaml:"audit"`
	Keys        KeysConfig        `yaml:"keys"`
	CA          CAConfig          `yaml:"ca"`
	Bundle      BundleConfig      `yaml:"bundle"`
	// Federation lists the foreign trust domains this one federates with
	// (docs/spiffe.md#federation).
	Federation []FederationConfig `yaml:"federation"`
	// Delegation configures token exchange: trusted issuers of people's
	// tokens and the chain depth cap (docs/delegation.md).
	Delegation DelegationConfig `yaml:"delegation"`
	// Attestors are the sources of attestation evidence the JWT bearer
	// grant accepts (ADR 0015, docs/attestation.md).
	Attestors []AttestorConfig `yaml:"attestors"`
	// NodeAPI configures the listener `agentid node` talks to
	// (docs/spiffe.md#node-api).
	NodeAPI NodeAPIConfig `yaml:"node_api"`
	// Approvals configures the approvals of conditional decisions.
	Approvals ApprovalsConfig `yaml:"approvals"`
	// Limits bounds failed authentications per client address (ADR 0022).
	Limits LimitsConfig `yaml:"limits"`
	// SSF configures the Shared Signals transmitter (docs/ssf.md).
	SSF SSFConfig `yaml:"ssf"`
	Log LogConfig `yaml:"log"`

	// Dev marks the development server: plain HTTP is allowed (on
	// loopback only). Not settable from YAML.
	Dev bool `yaml:"-"`
}

// StoreConfig selects the storage backend.
type StoreConfig struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `yaml:"driver"`
	// Path is the SQLite database file (default <data_dir>/agentid.db).
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string (or env AGENTID_POSTGRES_DSN).
	DSN string `yaml:"dsn"`
}

// TLSConfig configures HTTPS on the listener.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// CredentialsConfig bounds credential lifetimes.
type CredentialsConfig struct {
	// DefaultTTL is an agent's credential max TTL when it sets none.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// MaxTTL caps every agent's credential max TTL.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// TokenTTL is an access token's lifetime when the request asks for
	// none; an agent's max TTL caps it. Default 5m: an offline verifier
	// sees a revocation only at expiry.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// DPoPNonce makes the token endpoint require a server nonce in DPoP
	// proofs (RFC 9449 §8). Default false.
	DPoPNonce bool `yaml:"dpop_nonce"`
}

// AuditConfig configures the audit trail's checkpoints.
type AuditConfig struct {
	// CheckpointEvery signs a checkpoint every this many events.
	CheckpointEvery int `yaml:"checkpoint_every"`
	// CheckpointInterval signs a checkpoint of the head this often if it
	// advanced since the last one.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// IndexInterval is how often the trail's agent and trace lookup
	// tables are brought up to date (ADR 0017).
	IndexInterval time.Duration `yaml:"index_interval"`
	// Retention prunes, hourly, the events older than this, up to a
	// signed checkpoint (ADR 0018); 0 keeps every event.
	Retention time.Duration `yaml:"retention"`
}

// KeysConfig configures the token signing keys.
type KeysConfig struct {
	// Algorithm of new signing keys: ES256 (default) or EdDSA. A change
	// takes effect at the next rotation.
	Algorithm string `yaml:"algorithm"`
	// RotationPeriod is how long a key signs before its successor does.
	RotationPeriod time.Duration `yaml:"rotation_period"`
	// JWKSMaxAge is the Cache-Control max-age of the JWKS; a new key is
	// published this long (plus two refresh intervals) before it signs.
	JWKSMaxAge time.Duration `yaml:"jwks_max_age"`
}

// CAConfig configures the X.509 certificate authority of the trust domain
// (docs/spiffe.md).
type CAConfig struct {
	// TTL is a CA certificate's lifetime: each CA signs for half of it;
	// its successor is published at half and signs at five sixths.
	TTL time.Duration `yaml:"ttl"`
	// UpstreamCertFile, UpstreamKeyFile and UpstreamBundleFile are PEM
	// files of the deployment's CA that signs agentid's CA (agentid is
	// then an intermediate): its certificate followed by any intermediates
	// toward the root, its private key, and the root certificates trust
	// bundles list. All three, or none (self-signed roots).
	UpstreamCertFile   string `yaml:"upstream_cert_file"`
	UpstreamKeyFile    string `yaml:"upstream_key_file"`
	UpstreamBundleFile string `yaml:"upstream_bundle_file"`
}

// Upstream reports whether an upstream CA is configured.
func (c CAConfig) Upstream() bool { return c.UpstreamCertFile != "" }

func (c CAConfig) validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: ca.%s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	if c.TTL < time.Hour || c.TTL > 365*24*time.Hour {
		return bad("ttl", "%s must be between 1h and 8760h", c.TTL)
	}
	n := 0
	for _, f := range []string{c.UpstreamCertFile, c.UpstreamKeyFile, c.UpstreamBundleFile} {
		if f != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return bad("upstream_cert_file", "upstream_cert_file, upstream_key_file and upstream_bundle_file go together")
	}
	return nil
}

// BundleConfig configures the SPIFFE trust bundle served at /spiffe/bundle
// (docs/spiffe.md).
type BundleConfig struct {
	// RefreshHint is the bundle's spiffe_refresh_hint and Cache-Control
	// max-age: how often consumers fetch it again. JWT-SVID keys are
	// published twice this long (+1m) before they sign.
	RefreshHint time.Duration `yaml:"refresh_hint"`
}

// validate checks the hint, and that JWT-SVID keys, rotating every
// rotation (keys.rotation_period), can be published their
// 2×refresh_hint + 2×KeyRefreshInterval ahead with room to spare.
func (c BundleConfig) validate(rotation time.Duration) error {
	if c.RefreshHint < 10*time.Second || c.RefreshHint > time.Hour || c.RefreshHint%time.Second != 0 {
		return fmt.Errorf("%w: bundle.refresh_hint: %s must be whole seconds from 10s to 1h", ErrConfig, c.RefreshHint)
	}
	if prepublish := 2*c.RefreshHint + 2*KeyRefreshInterval; rotation < 2*prepublish {
		return fmt.Errorf("%w: bundle.refresh_hint: %s needs keys.rotation_period of at least %s", ErrConfig, c.RefreshHint, 2*prepublish)
	}
	return nil
}

// NodeAPIConfig configures the node API: mutual TLS between `agentid node`
// and the server on a listener of its own (docs/adr/0012-node-api.md).
type NodeAPIConfig struct {
	// Listen is the node API's address (host:port); empty (the default)
	// disables it. It is always TLS 1.3 with node certificates required,
	// so any interface may be named.
	Listen string `yaml:"listen"`
	// SyncInterval is how often the snapshot nodes watch is rebuilt when
	// no change of this replica pokes it (changes of other replicas, CA
	// rotations): 100ms to 1m, default 1s.
	SyncInterval time.Duration `yaml:"sync_interval"`
	// Attestation are the node attestation rules: which evidence, besides
	// join tokens, attests an `agentid node` (ADR 0015 addendum D). Each
	// names a kubernetes or x509 attestor of the attestors section and
	// matchers its evidence must satisfy; none: only join tokens.
	Attestation []NodeAttestationRule `yaml:"attestation"`
}

// NodeAttestationRule is one node attestation rule: an attestor and its
// matchers (k8s:ns:agentid-system, x509:san-dns:*.nodes.example.com, …).
type NodeAttestationRule struct {
	Attestor string   `yaml:"attestor"`
	Matchers []string `yaml:"matchers"`
}

func (c NodeAPIConfig) validate(listen string) error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: node_api.%s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return bad("listen", "%q is not host:port", c.Listen)
		}
		if _, port, _ := net.SplitHostPort(c.Listen); c.Listen == listen && port != "0" {
			return bad("listen", "%q is also the admin API's listen address", c.Listen)
		}
	}
	if c.SyncInterval < 100*time.Millisecond || c.SyncInterval > time.Minute {
		return bad("sync_interval", "%s must be between 100ms and 1m", c.SyncInterval)
	}
	return nil
}

// LimitsConfig bounds what unauthenticated clients may cost the server
// (ADR 0022). The limits are kept in each replica's memory.
type LimitsConfig struct {
	// FailedAuthRate is how many failed authentications per second a
	// client address (an IPv6 address's /64) regains; when its allowance
	// is spent its requests to the authenticated endpoints get 429.
	// Unset: DefaultFailedAuthRate; 0 turns the limit off.
	FailedAuthRate *float64 `yaml:"failed_auth_rate"`
	// FailedAuthBurst is how many failed authentications an address may
	// make in a row (unset or 0: DefaultFailedAuthBurst).
	FailedAuthBurst int `yaml:"failed_auth_burst"`
}

func (l LimitsConfig) validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: limits.%s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	if r := l.FailedAuthRate; r != nil && (math.IsNaN(*r) || *r < 0 || *r > maxFailedAuthRate) {
		return bad("failed_auth_rate", "%v must be between 0 (off) and %d failures per second", *r, maxFailedAuthRate)
	}
	if l.FailedAuthBurst < 0 || l.FailedAuthBurst > maxFailedAuthBurst {
		return bad("failed_auth_burst", "%d must be between 1 and %d", l.FailedAuthBurst, maxFailedAuthBurst)
	}
	return nil
}

// failedAuth is the limit the HTTP API applies; an unset rate (a Config
// not through setDefaults) is the default.
func (l LimitsConfig) failedAuth() httpapi.FailedAuthLimits {
	out := httpapi.FailedAuthLimits{Rate: DefaultFailedAuthRate, Burst: l.FailedAuthBurst}
	if l.FailedAuthRate != nil {
		out.Rate = *l.FailedAuthRate
	}
	if out.Burst == 0 {
		out.Burst = DefaultFailedAuthBurst
	}
	return out
}

// Bounds of the limits.
const (
	maxFailedAuthRate  = 1_000_000
	maxFailedAuthBurst = 1_000_000
)

// LogConfig configures the structured log on stderr.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}

// Defaults.
const (
	DefaultListen             = "127.0.0.1:8080"
	DefaultTrustDomain        = "example.org"
	DefaultDataDir            = "./agentid-data"
	DefaultCredentialTTL      = 15 * time.Minute
	DefaultCredentialMaxTTL   = time.Hour
	DefaultTokenTTL           = 5 * time.Minute
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 10 * time.Second
	DefaultAuditIndexInterval = 500 * time.Millisecond
	// MinAuditRetention is the shortest audit.retention accepted.
	MinAuditRetention        = 24 * time.Hour
	DefaultKeyAlgorithm      = "ES256"
	DefaultKeyRotation       = 24 * time.Hour
	DefaultJWKSMaxAge        = 5 * time.Minute
	DefaultCATTL             = 24 * time.Hour
	DefaultBundleRefreshHint = 5 * time.Minute
	DefaultNodeAPISync       = time.Second
	DefaultFailedAuthRate    = 10.0
	DefaultFailedAuthBurst   = 100
	// KeyRefreshInterval is how often every replica reloads the signing
	// keys from the store (and rotates them when due).
	KeyRefreshInterval = 30 * time.Second
)

// maxConfigBytes bounds a config file.
const maxConfigBytes = 1 << 20

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("server: config")

// LoadConfig reads a YAML config file strictly: an unknown key is an error
// naming the key, and every value is validated. Unset values get defaults.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path) //nolint:gosec // the operator names the config file
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return Config{}, fmt.Errorf("%w: read %s: %w", ErrConfig, path, err)
	}
	if len(b) > maxConfigBytes {
		return Config{}, fmt.Errorf("%w: %s is larger than %d bytes", ErrConfig, path, maxConfigBytes)
	}
	return ParseConfig(b, filepath.Dir(path))
}

// ParseConfig parses YAML config bytes. Relative paths in the config are
// relative to baseDir (the config file's directory).
func ParseConfig(b []byte, baseDir string) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: %s", ErrConfig, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: the file must hold exactly one YAML document", ErrConfig)
	}
	for _, p := range []*string{&c.DataDir, &c.RootKeyFile, &c.Store.Path, &c.TLS.CertFile, &c.TLS.KeyFile,
		&c.CA.UpstreamCertFile, &c.CA.UpstreamKeyFile, &c.CA.UpstreamBundleFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(baseDir, *p)
		}
	}
	c.resolveFederationPaths(baseDir)
	c.resolveDelegationPaths(baseDir)
	c.resolveAttestorPaths(baseDir)
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// DevConfig is the configuration of `agentid dev`.
func DevConfig(dataDir, listen string) Config {
	c := Config{Listen: listen, DataDir: dataDir, Dev: true}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.TrustDomain == "" {
		c.TrustDomain = DefaultTrustDomain
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.RootKeyFile == "" {
		c.RootKeyFile = filepath.Join(c.DataDir, "root.key")
	}
	if c.Store.Driver == "" {
		c.Store.Driver = "sqlite"
	}
	if c.Store.Driver == "sqlite" && c.Store.Path == "" {
		c.Store.Path = filepath.Join(c.DataDir, "agentid.db")
	}
	if c.Credentials.DefaultTTL == 0 {
		c.Credentials.DefaultTTL = DefaultCredentialTTL
	}
	if c.Credentials.MaxTTL == 0 {
		c.Credentials.MaxTTL = DefaultCredentialMaxTTL
	}
	if c.Credentials.TokenTTL == 0 {
		c.Credentials.TokenTTL = min(DefaultTokenTTL, c.Credentials.MaxTTL)
	}
	if c.Audit.CheckpointEvery == 0 {
		c.Audit.CheckpointEvery = DefaultCheckpointEvery
	}
	if c.Audit.CheckpointInterval == 0 {
		c.Audit.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.Audit.IndexInterval == 0 {
		c.Audit.IndexInterval = DefaultAuditIndexInterval
	}
	if c.Issuer == "" {
		c.Issuer = defaultIssuer(c.Listen, c.TLS.CertFile != "")
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	if c.Keys.Algorithm == "" {
		c.Keys.Algorithm = DefaultKeyAlgorithm
	}
	if c.Keys.RotationPeriod == 0 {
		c.Keys.RotationPeriod = DefaultKeyRotation
	}
	if c.Keys.JWKSMaxAge == 0 {
		c.Keys.JWKSMaxAge = DefaultJWKSMaxAge
	}
	if c.CA.TTL == 0 {
		c.CA.TTL = DefaultCATTL
	}
	if c.Bundle.RefreshHint == 0 {
		c.Bundle.RefreshHint = DefaultBundleRefreshHint
	}
	c.federationDefaults()
	c.delegationDefaults()
	if c.NodeAPI.SyncInterval == 0 {
		c.NodeAPI.SyncInterval = DefaultNodeAPISync
	}
	if c.Limits.FailedAuthRate == nil {
		r := DefaultFailedAuthRate
		c.Limits.FailedAuthRate = &r
	}
	if c.Limits.FailedAuthBurst == 0 {
		c.Limits.FailedAuthBurst = DefaultFailedAuthBurst
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// Validate checks the configuration, including the rule that plain HTTP is
// only served on a loopback address.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return bad("listen", "%q is not host:port", c.Listen)
	}
	switch c.Store.Driver {
	case "sqlite", "postgres":
	default:
		return bad("store.driver", "%q is not sqlite or postgres", c.Store.Driver)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return bad("tls", "cert_file and key_file go together")
	}
	if c.TLS.CertFile == "" && !urlcheck.Loopback(host) {
		return bad("listen", "%q is not a loopback address and tls is not configured: "+
			"refusing to serve admin tokens over plain HTTP (set tls.cert_file and tls.key_file, or listen on 127.0.0.1)", c.Listen)
	}
	if c.Credentials.DefaultTTL < 0 || c.Credentials.MaxTTL < 0 || c.Credentials.DefaultTTL > c.Credentials.MaxTTL {
		return bad("credentials", "default_ttl (%s) must be positive and at most max_ttl (%s)", c.Credentials.DefaultTTL, c.Credentials.MaxTTL)
	}
	if c.Credentials.TokenTTL < time.Second || c.Credentials.TokenTTL > c.Credentials.MaxTTL {
		return bad("credentials.token_ttl", "%s must be at least 1s and at most max_ttl (%s)", c.Credentials.TokenTTL, c.Credentials.MaxTTL)
	}
	if c.Credentials.MaxTTL > 24*time.Hour {
		return bad("credentials.max_ttl", "%s is longer than 24h; credentials are short-lived", c.Credentials.MaxTTL)
	}
	if c.Audit.CheckpointEvery < 1 || c.Audit.CheckpointEvery > 1_000_000 {
		return bad("audit.checkpoint_every", "must be between 1 and 1000000")
	}
	if c.Audit.CheckpointInterval < time.Second {
		return bad("audit.checkpoint_interval", "must be at least 1s")
	}
	if c.Audit.IndexInterval < 10*time.Millisecond || c.Audit.IndexInterval > time.Minute {
		return bad("audit.index_interval", "must be between 10ms and 1m")
	}
	if c.Audit.Retention != 0 && c.Audit.Retention < MinAuditRetention {
		return bad("audit.retention", "must be 0 (keep every event) or at least %s", MinAuditRetention)
	}
	if _, err := c.Proxies(); err != nil {
		return bad("trusted_proxies", "%v", err)
	}
	if err := validateIssuer(c.Issuer); err != nil {
		return bad("issuer", "%v", err)
	}
	if err := c.Keys.validate(); err != nil {
		return err
	}
	if err := c.CA.validate(); err != nil {
		return err
	}
	if err := c.Bundle.validate(c.Keys.RotationPeriod); err != nil {
		return err
	}
	if err := c.validateFederation(); err != nil {
		return err
	}
	if err := c.validateDelegation(); err != nil {
		return err
	}
	if err := c.validateAttestors(); err != nil {
		return err
	}
	if err := c.validateNodeRules(); err != nil {
		return err
	}
	if err := c.NodeAPI.validate(c.Listen); err != nil {
		return err
	}
	if err := c.Approvals.validate(len(c.Delegation.Issuers)); err != nil {
		return err
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if err := c.SSF.validate(); err != nil {
		return err
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", "%q is not text or json", c.Log.Format)
	}
	return nil
}

// Proxies parses TrustedProxies: each entry a CIDR range or a single
// address.
func (c *Config) Proxies() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, s := range c.TrustedProxies {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR range", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// defaultIssuer is http://<listen> (https:// with TLS), or "" when listen
// names no host (all interfaces), which Validate then rejects: the operator
// must say which URL clients use.
func defaultIssuer(listen string, tls bool) string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil || host == "" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return ""
	}
	if tls {
		return "https://" + listen
	}
	return "http://" + listen
}

// validateIssuer applies RFC 8414 §2 (a URL with scheme https, no query or
// fragment), allowing http for a loopback host only (development).
func validateIssuer(s string) error {
	if s == "" {
		return errors.New("is required when listen names no host: set it to the https URL clients reach this server at")
	}
	if err := urlcheck.HTTPS(s, true); err != nil {
		return err
	}
	if u, _ := url.Parse(s); strings.HasSuffix(u.Path, "/") {
		return fmt.Errorf("%q must not end with a slash", s)
	}
	return nil
}

func (k KeysConfig) validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: keys.%s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	if k.Algorithm != "ES256" && k.Algorithm != "EdDSA" {
		return bad("algorithm", "%q is not ES256 or EdDSA", k.Algorithm)
	}
	if k.JWKSMaxAge < time.Minute || k.JWKSMaxAge > time.Hour {
		return bad("jwks_max_age", "%s must be between 1m and 1h", k.JWKSMaxAge)
	}
	if k.RotationPeriod > 90*24*time.Hour {
		return bad("rotation_period", "%s is longer than 90 days (2160h)", k.RotationPeriod)
	}
	// A new key is published jwks_max_age + 2 refresh intervals before it
	// signs; a rotation period must leave room for two such delays.
	if minimum := max(time.Hour, 2*(k.JWKSMaxAge+2*KeyRefreshInterval)); k.RotationPeriod < minimum {
		return bad("rotation_period", "%s must be at least %s (1h, and twice jwks_max_age + 1m)", k.RotationPeriod, minimum)
	}
	return nil
}

// SampleConfig is the commented config `agentid init` writes.
const SampleConfig = `# agentid server configuration. Unknown keys are rejected.
# Relative paths are relative to this file's directory.

listen: 127.0.0.1:8080        # a non-loopback address requires tls below
trust_domain: example.org     # SPIFFE trust domain: spiffe://example.org/agent/<name>
# issuer: https://agentid.example.org   # OAuth issuer URL clients reach; default http(s)://<listen>
data_dir: ./agentid-data      # SQLite database and root key live here by default
# root_key_file: ./agentid-data/root.key   # or env AGENTID_ROOT_KEY (base64, 32 bytes)
# trusted_proxies: [10.0.0.0/8]            # load balancers whose X-Forwarded-For names the client

store:
  driver: sqlite              # sqlite or postgres
  # path: ./agentid-data/agentid.db
  # dsn: postgres://agentid@db.internal:5432/agentid?sslmode=verify-full   # or env AGENTID_POSTGRES_DSN

# tls:
#   cert_file: /etc/agentid/tls.crt
#   key_file: /etc/agentid/tls.key

credentials:
  default_ttl: 15m            # an agent's credential max TTL unless it sets one
  max_ttl: 1h                 # the cap on every agent's credential max TTL
  token_ttl: 5m               # an access token's lifetime unless the request asks for less
  dpop_nonce: false           # require a server nonce in DPoP proofs (RFC 9449 §8)

audit:
  checkpoint_every: 1000      # sign a checkpoint every N events
  checkpoint_interval: 10s    # and the head this often if it moved
  index_interval: 500ms       # update the agent and trace lookup tables this often
  retention: 0s               # prune events older than this (at least 24h; 0 keeps every event)

keys:                         # token signing keys, sealed under the root key
  algorithm: ES256            # ES256 or EdDSA (takes effect at the next rotation)
  rotation_period: 24h        # a new key signs this often
  jwks_max_age: 5m            # JWKS Cache-Control max-age; new keys are published this long (+1m) before they sign

ca:                           # the X.509 CA that signs X.509-SVIDs, its keys sealed under the root key
  ttl: 24h                    # CA certificate lifetime: the next CA is published at 1/2, signs at 5/6
  # upstream_cert_file: /etc/agentid/upstream-ca.crt     # sign as an intermediate of your PKI: its CA
  # upstream_key_file: /etc/agentid/upstream-ca.key      #   certificate (+ intermediates), its key,
  # upstream_bundle_file: /etc/agentid/upstream-roots.crt #   and the roots bundles list

bundle:                       # the SPIFFE trust bundle served at /spiffe/bundle
  refresh_hint: 5m            # spiffe_refresh_hint and Cache-Control max-age

# federation:                 # foreign SPIFFE trust domains whose bundles agents' workloads get
#   - trust_domain: partner.example
#     bundle_endpoint_url: https://spire.partner.example/bundle
#     bundle_endpoint_profile: https_web       # the only profile supported: Web PKI TLS
#     initial_bundle_file: ./partner.bundle.json # optional SPIFFE bundle used until the first fetch

# node_api:                   # mutual TLS for agentid node (docs/spiffe.md#node-api)
#   listen: 0.0.0.0:8081      # host:port; unset: off. Always TLS 1.3 with node SVIDs required
#   sync_interval: 1s         # rebuild the snapshot nodes watch this often (other replicas' changes)
#   # attestation:            # evidence that attests nodes besides join tokens (docs/attestation.md#node-attestation)
#   #   - {attestor: prod-cluster, matchers: ["k8s:ns:agentid-system", "k8s:sa:agentid-node"]}

limits:                       # failed authentications per client address (an IPv6 /64), in each replica's memory
  failed_auth_rate: 10        # failures per second an address regains; 0 turns the limit off
  failed_auth_burst: 100      # failures in a row before its requests get 429 with Retry-After

# delegation:                 # token exchange (RFC 8693): agents acting for people (docs/delegation.md)
#   max_chain_depth: 5        # the cap on every grant's max_depth (1..10)
#   issuers:                  # identity providers whose tokens name people
#     - issuer: https://login.example.com
#       audience: agentid     # the aud their tokens carry for agentid
#       # jwks_url: https://login.example.com/keys   # default: OpenID discovery
#       # tls_ca_file: ./idp-ca.pem                  # roots for a private IdP
#       # subject_claim: sub
#       # email_claim: email
#       # trust_email: false      # true: use the email without email_verified (a workforce IdP only; ADR 0027)

# attestors:                  # evidence for the JWT bearer grant: no stored secret (docs/attestation.md)
#   - name: prod-cluster      # referenced by agents' attestation rules
#     kind: kubernetes        # projected service-account tokens of one cluster
#     issuer: https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE
#     audience: agentid       # the projected token's audience (never the API server's)
#     # jwks_file: ./cluster-jwks.json               # air-gapped: a static JWKS instead of discovery
#     # token_review: {api_server: https://10.0.0.1:6443, ca_file: ./apiserver-ca.pem, cache_ttl: 0s}  # refuse deleted pods' tokens
#   - name: github
#     kind: oidc              # an external OIDC issuer (CI, cloud workload identity)
#     issuer: https://token.actions.githubusercontent.com
#     audience: https://agentid.example.com
#     # instance_claims: [sub, run_id, run_attempt] # what identifies one run (default [sub])
#   - name: prod-aws
#     kind: aws               # AWS STS web identity tokens (IAM outbound identity federation) of one account
#     issuer: https://abc123-def456-ghi789-jkl012.tokens.sts.global.api.aws  # aws iam get-outbound-web-identity-federation-info
#     audience: https://agentid.example.com
#     # accounts: ["123456789012"]                  # the token's aws_account must be one of these
#   # - name: corp-pki        # client certificates of the deployment's PKI by mutual TLS (needs tls:)
#   #   kind: x509
#   #   trust_anchor_files: [./corp-root.pem]
#   #   crl_files: [./corp-issuing.crl]

log:
  level: info                 # debug, info, warn, error
  format: text                # text or json
`
