// Package federation keeps the trust bundles of the foreign SPIFFE trust
// domains this one federates with (SPIFFE Federation): it fetches each
// foreign trust domain's bundle from its bundle endpoint, keeps it fresh per
// the bundle's refresh hint, and hands the bundles to whoever gives them to
// workloads (the Workload API's federated bundles).
//
// # Endpoint profile
//
// Only the https_web profile of SPIFFE Federation §5.2.1 is supported: the
// bundle endpoint is an https URL whose server certificate is verified
// against the Web PKI (the system's root certificates, or Params.RootCAs),
// and the bundle is the body of a GET (SPIFFE Trust Domain and Bundle §4),
// parsed with go-spiffe's spiffebundle.Parse for the expected trust domain.
// The https_spiffe profile (§5.2.2) is not supported. A fetch is bounded
// in time (Params.Timeout) and size (MaxBundleBytes), follows at most three
// redirects and only to https URLs, and is refused when the bundle has no
// authorities or when an X.509 authority carries a SPIFFE ID of another
// trust domain (an endpoint serving the wrong trust domain's bundle).
//
// # Refresh
//
// A bundle is fetched again after its spiffe_refresh_hint (DefaultRefresh
// when it has none), bounded to [MinRefresh, MaxRefresh]. A failed fetch
// keeps the last good bundle and is retried with exponential backoff from
// MinRefresh, never less often than the refresh interval.
//
// # Replicas
//
// The bundles live in the store (store.FederatedBundle): the bundle as
// fetched, when it was fetched, when the next fetch is due and why the last
// one failed. Replicas sharing a database fetch a trust domain's bundle one
// at a time, under the store lease "federation/<trust domain>", and only
// when the stored refresh time has come, so each refresh is one fetch; the
// others read the stored copy (every PollInterval). At start a Manager
// serves the stored copy, or else the configured initial bundle, until the
// first fetch.
//
// # Audit
//
// A changed foreign bundle is the audit event federation.bundle_updated
// (family admin), recorded in the transaction that stores it, and so is
// seeding a trust domain from its initial bundle; FailureAuditThreshold
// consecutive failed fetches are federation.bundle_refresh_failed (outcome
// failure), once per run of failures.
//
// A Manager is safe for concurrent use; Bundles, BundlesFor and Changed
// read memory only.
package federation

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
)

// ProfileHTTPSWeb is the one bundle endpoint profile supported (SPIFFE
// Federation §5.2.1).
const ProfileHTTPSWeb = "https_web"

// Refresh bounds and defaults.
const (
	// DefaultRefresh is the refresh interval of a bundle without a
	// spiffe_refresh_hint.
	DefaultRefresh = 5 * time.Minute
	// MinRefresh and MaxRefresh bound the refresh interval whatever the
	// hint says; MinRefresh is also the first retry delay after a failure.
	MinRefresh = 30 * time.Second
	MaxRefresh = time.Hour
	// DefaultTimeout bounds one fetch.
	DefaultTimeout = 10 * time.Second
	// DefaultPollInterval is how often Run reloads the stored bundles and
	// fetches those that are due.
	DefaultPollInterval = 5 * time.Second
	// MaxBundleBytes bounds a bundle document.
	MaxBundleBytes = 1 << 20
	// FailureAuditThreshold is how many fetches in a row must fail before
	// the failure is an audit event.
	FailureAuditThreshold = 3
	// LeasePrefix + trust domain names the store lease under which one
	// replica fetches the trust domain's bundle.
	LeasePrefix = "federation/"
	// maxErrorLen bounds a stored LastError.
	maxErrorLen = 1024
)

// Audit event types (family admin).
const (
	// EventBundleUpdated: a foreign trust domain's bundle changed (or was
	// seeded from its initial bundle). Details: trust_domain,
	// endpoint_url, sequence, previous_sequence, x509_authorities,
	// jwt_authorities, trigger, replica.
	EventBundleUpdated = "federation.bundle_updated"
	// EventRefreshFailed: FailureAuditThreshold fetches in a row failed;
	// the last good bundle stays in use. Details: trust_domain,
	// endpoint_url, failures, error, sequence (of the bundle kept),
	// retry_at, trigger, replica.
	EventRefreshFailed = "federation.bundle_refresh_failed"
)

// Triggers, recorded in the "trigger" detail.
const (
	TriggerInitial   = "initial_bundle"
	TriggerScheduled = "scheduled"
	TriggerManual    = "manual"
)

// Sentinel errors.
var (
	// ErrUnknownTrustDomain means the trust domain is not configured for
	// federation.
	ErrUnknownTrustDomain = errors.New("federation: trust domain not configured for federation")
	// ErrBusy means another replica is fetching the trust domain's bundle
	// now; retry shortly.
	ErrBusy = errors.New("federation: another replica is fetching this bundle")
	// ErrFetch means a bundle could not be fetched or was refused; the
	// error is a *FetchError.
	ErrFetch = errors.New("federation: bundle fetch failed")
	// ErrWrongTrustDomain means a bundle names another trust domain.
	ErrWrongTrustDomain = errors.New("federation: the bundle is for another trust domain")
	// ErrNoBundle means no bundle of the trust domain has been obtained
	// yet.
	ErrNoBundle = errors.New("federation: no bundle of this trust domain yet")
)

// FetchError is a failed fetch of one trust domain's bundle. It wraps
// ErrFetch and the cause.
type FetchError struct {
	TrustDomain string
	Err         error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("federation: fetch the bundle of %s: %v", e.TrustDomain, e.Err)
}

// Unwrap returns ErrFetch and the cause.
func (e *FetchError) Unwrap() []error { return []error{ErrFetch, e.Err} }

// Domain configures one foreign trust domain.
type Domain struct {
	// TrustDomain is the foreign trust domain's name. Required; not this
	// server's own.
	TrustDomain string
	// EndpointURL is its bundle endpoint, an https URL. Required.
	EndpointURL string
	// Profile is the endpoint profile: "" or ProfileHTTPSWeb.
	Profile string
	// InitialBundle, when set, is a SPIFFE bundle document of the trust
	// domain used until the first fetch succeeds (when the store holds no
	// bundle of it yet).
	InitialBundle []byte
}

// Params configures a Manager.
type Params struct {
	// Store holds the fetched bundles and the leases. Required.
	Store store.Store
	// Recorder records bundle changes and failures. Required.
	Recorder *audit.Recorder
	// TrustDomain is this server's own trust domain. Required.
	TrustDomain string
	// Domains are the foreign trust domains; none is allowed (a Manager
	// that does nothing).
	Domains []Domain
	// RootCAs verify the bundle endpoints' server certificates (the Web
	// PKI of https_web); nil: the system's roots.
	RootCAs *x509.CertPool
	// Timeout bounds one fetch; default DefaultTimeout.
	Timeout time.Duration
	// PollInterval is how often Run reloads the stored bundles and fetches
	// those due; default DefaultPollInterval.
	PollInterval time.Duration
	// Holder identifies this replica in leases and audit events.
	// Required.
	Holder string
	// Clock is the time source. Required.
	Clock func() time.Time
	// Logger receives Run's failures; nil discards them.
	Logger *slog.Logger
}

// Bundle is a foreign trust domain's bundle in use. Its fields are shared
// by every caller and must not be modified.
type Bundle struct {
	TrustDomain string
	// JSON is the bundle document as fetched (or configured).
	JSON []byte
	// Sequence is its spiffe_sequence, 0 when it has none.
	Sequence uint64
	// RefreshHint is its spiffe_refresh_hint, 0 when it has none.
	RefreshHint time.Duration
	// X509Authorities verify the trust domain's X.509-SVIDs.
	X509Authorities []*x509.Certificate
	// JWTAuthorities verify its JWT-SVIDs, by key id.
	JWTAuthorities map[string]crypto.PublicKey
	// JWTJWKS is a JWK Set of the JWT authorities alone, the form of the
	// Workload API's JWT bundles.
	JWTJWKS []byte
	// FetchedAt is when it was fetched; zero for an initial bundle.
	FetchedAt time.Time

	parsed *spiffebundle.Bundle
}

// Manager keeps the foreign trust domains' bundles. Construct it with New.
type Manager struct {
	st      store.Store
	rec     *audit.Recorder
	td      string
	domains []Domain // sorted by trust domain
	byTD    map[string]*Domain
	client  *http.Client
	timeout time.Duration
	poll    time.Duration
	holder  string
	clock   func() time.Time
	log     *slog.Logger

	mu       sync.Mutex                // guards versions, changed and the publication of bundles
	versions map[string]int64          // the stored version each bundle in use came from
	bundles  atomic.Pointer[bundleMap] // immutable once published
	changed  chan struct{}             // closed at the next change
}

type bundleMap map[string]Bundle

// New validates p, loads the stored bundles of the configured trust
// domains and seeds those without one from their initial bundle (recording
// federation.bundle_updated). It fetches nothing: Run does. It fails on a
// malformed Domain (including an initial bundle that does not parse for its
// trust domain).
func New(ctx context.Context, p Params) (*Manager, error) {
	switch {
	case p.Store == nil, p.Recorder == nil:
		return nil, errors.New("federation: Store and Recorder are required")
	case p.Clock == nil, p.Holder == "":
		return nil, errors.New("federation: Clock and Holder are required")
	case p.Timeout < 0, p.PollInterval < 0:
		return nil, errors.New("federation: Timeout and PollInterval must not be negative")
	}
	if err := identity.ValidateTrustDomain(p.TrustDomain); err != nil {
		return nil, fmt.Errorf("federation: own trust domain: %w", err)
	}
	m := &Manager{
		st: p.Store, rec: p.Recorder, td: p.TrustDomain, byTD: map[string]*Domain{},
		timeout: p.Timeout, poll: p.PollInterval, holder: p.Holder, clock: p.Clock, log: p.Logger,
		versions: map[string]int64{}, changed: make(chan struct{}),
	}
	if m.timeout == 0 {
		m.timeout = DefaultTimeout
	}
	if m.poll == 0 {
		m.poll = DefaultPollInterval
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.domains = slices.Clone(p.Domains)
	slices.SortFunc(m.domains, func(a, b Domain) int {
		switch {
		case a.TrustDomain < b.TrustDomain:
			return -1
		case a.TrustDomain > b.TrustDomain:
			return 1
		}
		return 0
	})
	for i := range m.domains {
		d := &m.domains[i]
		if err := m.checkDomain(d); err != nil {
			return nil, err
		}
		m.byTD[d.TrustDomain] = d
	}
	m.client = newClient(p.RootCAs, m.timeout)
	m.bundles.Store(&bundleMap{})
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// checkDomain validates one configured trust domain and normalises its
// profile.
func (m *Manager) checkDomain(d *Domain) error {
	if err := identity.ValidateTrustDomain(d.TrustDomain); err != nil {
		return fmt.Errorf("federation: %q: %w", d.TrustDomain, err)
	}
	if d.TrustDomain == m.td {
		return fmt.Errorf("federation: %s is this server's own trust domain", d.TrustDomain)
	}
	if _, dup := m.byTD[d.TrustDomain]; dup {
		return fmt.Errorf("federation: %s is configured twice", d.TrustDomain)
	}
	switch d.Profile {
	case "":
		d.Profile = ProfileHTTPSWeb
	case ProfileHTTPSWeb:
	default:
		return fmt.Errorf("federation: %s: bundle endpoint profile %q is not supported (only %s)", d.TrustDomain, d.Profile, ProfileHTTPSWeb)
	}
	if err := CheckEndpointURL(d.EndpointURL); err != nil {
		return fmt.Errorf("federation: %s: %w", d.TrustDomain, err)
	}
	if len(d.InitialBundle) > 0 {
		if _, err := ParseBundle(d.TrustDomain, d.InitialBundle); err != nil {
			return fmt.Errorf("federation: %s: initial bundle: %w", d.TrustDomain, err)
		}
	}
	return nil
}

// CheckEndpointURL reports whether s may be a bundle endpoint of the
// https_web profile (SPIFFE Federation §5.2.1.1): an absolute URL with
// scheme https and a host, without user information.
func CheckEndpointURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("bundle endpoint is not a valid URL") // s may hold a password: not echoed
	}
	return checkEndpoint(u)
}

func checkEndpoint(u *url.URL) error {
	switch {
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("bundle endpoint %q is not an absolute URL", u.Redacted())
	case u.Scheme != "https":
		return fmt.Errorf("bundle endpoint %q must be an https URL (the https_web profile)", u.Redacted())
	case u.User != nil:
		return fmt.Errorf("bundle endpoint %q must not contain user information", u.Redacted())
	}
	return nil
}

// TrustDomains returns the configured foreign trust domains, sorted.
func (m *Manager) TrustDomains() []string {
	out := make([]string, len(m.domains))
	for i, d := range m.domains {
		out[i] = d.TrustDomain
	}
	return out
}

// Bundles returns the bundle in use of every configured trust domain that
// has one, from memory.
func (m *Manager) Bundles() map[string]Bundle {
	cur := *m.bundles.Load()
	out := make(map[string]Bundle, len(cur))
	for td, b := range cur {
		out[td] = b
	}
	return out
}

// BundlesFor returns the bundles in use of those of the trust domains that
// are configured and have one: the federated bundles of an agent whose
// record federates with tds.
func (m *Manager) BundlesFor(tds []string) map[string]Bundle {
	cur := *m.bundles.Load()
	out := make(map[string]Bundle, len(tds))
	for _, td := range tds {
		if b, ok := cur[td]; ok {
			out[td] = b
		}
	}
	return out
}

// Changed returns a channel that is closed at the next change of the
// bundles in use.
func (m *Manager) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// publish makes b the bundle in use of its trust domain (from the stored
// version v) and, when its contents (authorities, sequence, refresh hint)
// differ from the one in use, wakes the watchers. It ignores a version
// older than the one in use.
func (m *Manager) publish(b Bundle, v int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.versions[b.TrustDomain]; ok && old >= v {
		return
	}
	m.versions[b.TrustDomain] = v
	cur := *m.bundles.Load()
	prev, had := cur[b.TrustDomain]
	next := make(bundleMap, len(cur)+1)
	for td, x := range cur {
		next[td] = x
	}
	next[b.TrustDomain] = b
	m.bundles.Store(&next)
	if !had || !prev.parsed.Equal(b.parsed) {
		close(m.changed)
		m.changed = make(chan struct{})
	}
}

// note records that the stored version v of td holds no newer bundle
// than the one in use (a failed fetch was recorded).
func (m *Manager) note(td string, v int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.versions[td]; !ok || old < v {
		m.versions[td] = v
	}
}

// seen reports the stored version the bundle in use of td came from.
func (m *Manager) seen(td string) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.versions[td]
	return v, ok
}

// now is the clock in the store's precision.
func (m *Manager) now() time.Time { return m.clock().UTC().Truncate(time.Microsecond) }

func (m *Manager) systemOrigin() audit.Origin {
	return audit.Origin{Actor: audit.Actor{Type: audit.ActorSystem, ID: m.holder}}
}
