package keys

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Defaults of ManagerParams.
const (
	DefaultRotationPeriod  = 24 * time.Hour
	DefaultJWKSMaxAge      = 5 * time.Minute
	DefaultRefreshInterval = 30 * time.Second
	// RemovalLeeway keeps a retired key published this long after the
	// last token it signed expires, for the clock skew of verifiers and
	// replicas.
	RemovalLeeway = 5 * time.Minute
	// KeyIDPrefix is the record-id prefix of signing key ids (the JWS
	// "kid"): sgk_….
	KeyIDPrefix = "sgk"
	// LeasePrefix + purpose names the store lease under which keys of the
	// purpose are created.
	LeasePrefix = "keys/"
)

// leaseTTL bounds how long a crashed rotation could hold the lease; a
// rotation releases it when its transaction commits.
const leaseTTL = time.Minute

// Sentinel errors.
var (
	// ErrNoKey means no key can sign now: none exists yet, or the one that
	// should sign cannot be unsealed.
	ErrNoKey = errors.New("keys: no usable signing key")
	// ErrStale means the Manager has not reloaded its keys from the store
	// for longer than its prepublication delay (the store is unreachable),
	// so it might sign with a key other replicas have retired. It refuses
	// to sign until a reload succeeds.
	ErrStale = errors.New("keys: signing keys not reloaded recently")
	// ErrBusy means another replica holds the key lease; retry shortly.
	ErrBusy = errors.New("keys: another replica is changing the signing keys")
)

// ManagerParams configures a Manager.
type ManagerParams struct {
	// Store holds the keys (sealed) and the lease. Required.
	Store store.Store
	// Root seals private keys at rest. Required.
	Root *RootKey
	// Purpose names what the keys sign, e.g. "oauth"; lowercase letters,
	// digits and '-'. Required.
	Purpose string
	// Algorithm of new keys: ES256 (default) or EdDSA. Changing it takes
	// effect at the next rotation.
	Algorithm string
	// RotationPeriod is how long a key signs before its successor takes
	// over (its active period); default DefaultRotationPeriod. It must be
	// at least twice the minimum prepublication delay (JWKSMaxAge +
	// 2×RefreshInterval) and longer than PrepublishDelay.
	RotationPeriod time.Duration
	// PrepublishDelay is how long a new key is published before it signs;
	// default, and minimum, JWKSMaxAge + 2×RefreshInterval. A certificate
	// authority sets it longer, so that its next certificate reaches every
	// trust bundle well before it signs.
	PrepublishDelay time.Duration
	// Certifier, when set, issues the certificate chain of every new key
	// (a CA's certificate), stored with the key and handed out with it
	// (ActiveKey.Chain). Nil: keys have no certificate.
	Certifier Certifier
	// JWKSMaxAge is the Cache-Control max-age of the JWKS: how long a
	// verifier may use a copy; default DefaultJWKSMaxAge.
	JWKSMaxAge time.Duration
	// RefreshInterval is how often Run reloads the keys from the store
	// (and rotates when due); default DefaultRefreshInterval. It must be
	// shorter than JWKSMaxAge.
	RefreshInterval time.Duration
	// MaxTokenTTL is the longest lifetime of a token the keys sign: a
	// retired key stays published MaxTokenTTL + RemovalLeeway after it
	// stopped signing. Required.
	MaxTokenTTL time.Duration
	// Holder identifies this replica in the lease and in audit events;
	// default a random one.
	Holder string
	// Recorder records key creation and rotation; nil records nothing.
	Recorder Recorder
	// Clock is the time source; default time.Now.
	Clock func() time.Time
	// Rand is the source of key ids and Ed25519 seeds; default
	// crypto/rand.Reader.
	Rand io.Reader
	// Logger receives Run's errors; default slog.Default().
	Logger *slog.Logger
}

// Manager owns the signing keys of one purpose: it creates them, seals
// them under the root key, publishes them (JWKS), picks the one that signs
// (Current) and rotates them on schedule with overlap, so that no verifier
// ever meets an unknown kid and no token outlives its key's publication:
//
//   - a new key is published (PublishAt = now) and starts signing
//     (ActivateAt) only after the prepublication delay (by default
//     JWKSMaxAge + 2×RefreshInterval), by which time every replica has
//     reloaded it and every verifier's cached JWKS has expired;
//   - its predecessor retires at that instant (RetireAt) and stays
//     published until RemoveAt = RetireAt + MaxTokenTTL + RemovalLeeway;
//   - the first key of a purpose signs at once, and so does the successor
//     of a tainted key (Taint).
//
// With a Certifier, every key also has a certificate chain (a CA's keys);
// a key whose certificate has expired never signs.
//
// Keys are created only inside a store transaction holding the lease
// "keys/<purpose>", which re-reads the keys before deciding, so replicas
// sharing a database never rotate twice. Current, JWKS, Published,
// PublicKey and MaxAge read memory only. A Manager is safe for concurrent
// use.
type Manager struct {
	store    store.Store
	root     *RootKey
	purpose  string
	alg      string
	period   time.Duration
	delay    time.Duration // the prepublication delay
	certify  Certifier
	maxAge   time.Duration
	refresh  time.Duration
	maxTTL   time.Duration
	holder   string
	rec      Recorder
	clock    func() time.Time
	rand     io.Reader
	log      *slog.Logger
	state    atomic.Pointer[keyState]
	reloadMu sync.Mutex // serialises reloads; guards unsealed
	unsealed map[string]*ActiveKey
	jwksMu   sync.Mutex
	jwks     jwksCache
}

// keyState is one loaded view of the store's keys.
type keyState struct {
	keys     []loadedKey // ordered by ActivateAt, then ID
	loadedAt time.Time
}

type loadedKey struct {
	rec    store.SigningKey // Sealed is dropped
	pub    crypto.PublicKey // nil: the stored public key is unusable
	jwk    JWK
	chain  []*x509.Certificate // parsed rec.CertChain; nil: none
	active *ActiveKey          // nil: not needed (retired) or cannot be unsealed
	err    error               // why active is nil for a key that may sign
}

// validPurpose reports whether s is 1 to 32 lowercase letters, digits or
// '-', not starting with '-'.
func validPurpose(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// NewManager validates p, loads the keys of p.Purpose and, when there are
// none, creates the first one (it signs at once); a rotation that is due
// is made too. It fails when the key that signs now cannot be unsealed with
// p.Root (the wrong root key).
func NewManager(ctx context.Context, p ManagerParams) (*Manager, error) {
	m, err := newManager(p)
	if err != nil {
		return nil, err
	}
	// A replica that loses the race for the lease to create the first key
	// waits for the winner's; the lease is released when the winner's
	// transaction commits.
	for delay := 20 * time.Millisecond; ; delay *= 2 {
		err = m.Refresh(ctx)
		if err == nil {
			_, err = m.Current()
		}
		if err == nil || len(m.state.Load().keys) > 0 || delay > 2*time.Second {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("keys: %w", ctx.Err())
		case <-time.After(delay):
		}
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

func newManager(p ManagerParams) (*Manager, error) {
	m := &Manager{
		store: p.Store, root: p.Root, purpose: p.Purpose, alg: p.Algorithm,
		period: p.RotationPeriod, delay: p.PrepublishDelay, certify: p.Certifier,
		maxAge: p.JWKSMaxAge, refresh: p.RefreshInterval, maxTTL: p.MaxTokenTTL,
		holder: p.Holder, rec: p.Recorder, clock: p.Clock, rand: p.Rand, log: p.Logger,
		unsealed: map[string]*ActiveKey{},
	}
	if m.store == nil || m.root == nil {
		return nil, errors.New("keys: ManagerParams.Store and Root are required")
	}
	if !validPurpose(m.purpose) {
		return nil, fmt.Errorf("keys: purpose %q must be 1 to 32 lowercase letters, digits or '-'", m.purpose)
	}
	if m.alg == "" {
		m.alg = ES256
	}
	if !ValidAlgorithm(m.alg) {
		return nil, fmt.Errorf("keys: algorithm %q is not ES256 or EdDSA", m.alg)
	}
	if m.period == 0 {
		m.period = DefaultRotationPeriod
	}
	if m.maxAge == 0 {
		m.maxAge = DefaultJWKSMaxAge
	}
	if m.refresh == 0 {
		m.refresh = DefaultRefreshInterval
	}
	switch {
	case m.maxAge < time.Second || m.refresh < 0 || m.maxTTL < 0 || m.delay < 0:
		return nil, errors.New("keys: durations must be positive (JWKSMaxAge at least 1s)")
	case m.refresh >= m.maxAge:
		return nil, fmt.Errorf("keys: RefreshInterval %s must be shorter than JWKSMaxAge %s", m.refresh, m.maxAge)
	case m.maxTTL == 0:
		return nil, errors.New("keys: ManagerParams.MaxTokenTTL is required")
	case m.delay != 0 && m.delay < m.minDelay():
		return nil, fmt.Errorf("keys: PrepublishDelay %s must be at least JWKSMaxAge + 2×RefreshInterval (%s)", m.delay, m.minDelay())
	case m.period < 2*m.minDelay():
		return nil, fmt.Errorf("keys: RotationPeriod %s must be at least twice the prepublication delay %s", m.period, m.minDelay())
	case m.period <= m.delay:
		return nil, fmt.Errorf("keys: RotationPeriod %s must be longer than PrepublishDelay %s", m.period, m.delay)
	}
	if m.delay == 0 {
		m.delay = m.minDelay()
	}
	if m.clock == nil {
		m.clock = time.Now
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.holder == "" {
		h, err := recordid.New("replica", m.clock(), m.rand)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		m.holder = h
	}
	m.state.Store(&keyState{})
	return m, nil
}

// String describes the Manager without any key material.
func (m *Manager) String() string { return "keys.Manager(" + m.purpose + ")" }

// Format writes String for every verb, so printing a Manager never reaches
// the private keys it holds.
func (m *Manager) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, m.String()) }

// minDelay is the shortest prepublication delay: one JWKS cache lifetime
// plus two reload intervals (one for every replica to load a new key, one
// as margin for a slow reload). Keys loaded longer ago than this are
// stale.
func (m *Manager) minDelay() time.Duration { return m.maxAge + 2*m.refresh }

// prepublish is how long a new key is published before it signs:
// PrepublishDelay, by default minDelay.
func (m *Manager) prepublish() time.Duration { return m.delay }

// now is the clock in the store's precision.
func (m *Manager) now() time.Time { return m.clock().UTC().Truncate(time.Microsecond) }

// Purpose returns the purpose of the Manager's keys.
func (m *Manager) Purpose() string { return m.purpose }

// Algorithm returns the algorithm of new keys.
func (m *Manager) Algorithm() string { return m.alg }

// MaxAge returns the Cache-Control max-age of the JWKS.
func (m *Manager) MaxAge() time.Duration { return m.maxAge }

// Current returns the key that signs now, from memory. It fails with
// ErrNoKey when there is none, it cannot be unsealed or its certificate has
// expired, and with ErrStale when the keys were last reloaded longer ago
// than JWKSMaxAge + 2×RefreshInterval.
func (m *Manager) Current() (*ActiveKey, error) {
	st := m.state.Load()
	now := m.clock()
	if len(st.keys) == 0 {
		return nil, ErrNoKey
	}
	if now.Sub(st.loadedAt) > m.minDelay() {
		return nil, fmt.Errorf("%w: last reload %s ago", ErrStale, now.Sub(st.loadedAt).Round(time.Second))
	}
	for i := len(st.keys) - 1; i >= 0; i-- {
		k := &st.keys[i]
		if now.Before(k.rec.ActivateAt) || withdrawn(k.rec) {
			continue
		}
		if k.active == nil {
			return nil, fmt.Errorf("%w: key %s: %w", ErrNoKey, k.rec.ID, k.err)
		}
		if len(k.chain) > 0 && !now.Before(k.chain[0].NotAfter) {
			return nil, fmt.Errorf("%w: the certificate of key %s expired at %s", ErrNoKey, k.rec.ID,
				k.chain[0].NotAfter.UTC().Format(time.RFC3339))
		}
		return k.active, nil
	}
	return nil, ErrNoKey
}

// PublicKey returns the public key and algorithm of the published key kid
// (one the JWKS lists now), for verifying tokens this server signed.
func (m *Manager) PublicKey(kid string) (crypto.PublicKey, string, bool) {
	st := m.state.Load()
	now := m.clock()
	for i := range st.keys {
		k := &st.keys[i]
		if k.rec.ID == kid && k.pub != nil && published(k.rec, now) {
			return k.pub, k.rec.Algorithm, true
		}
	}
	return nil, "", false
}

// SigningAlgorithms returns the algorithm of new keys followed by any
// other algorithm of a published key: what verifiers must accept now.
func (m *Manager) SigningAlgorithms() []string {
	out := []string{m.alg}
	st := m.state.Load()
	now := m.clock()
	for _, k := range st.keys {
		if k.pub != nil && published(k.rec, now) && !slices.Contains(out, k.rec.Algorithm) {
			out = append(out, k.rec.Algorithm)
		}
	}
	return out
}

func published(k store.SigningKey, now time.Time) bool {
	return !now.Before(k.PublishAt) && (k.RemoveAt.IsZero() || now.Before(k.RemoveAt))
}

// List returns every key of the purpose as the store holds it now,
// including removed ones, ordered by activation, with its state at now. It
// holds no key material.
func (m *Manager) List(ctx context.Context) ([]KeyInfo, error) {
	ks, err := m.store.ListSigningKeys(ctx, m.purpose)
	if err != nil {
		return nil, fmt.Errorf("keys: list signing keys: %w", err)
	}
	now := m.clock()
	sortKeys(ks)
	out := make([]KeyInfo, len(ks))
	for i, k := range ks {
		out[i] = infoOf(k, now)
	}
	return out, nil
}

func sortKeys(ks []store.SigningKey) {
	slices.SortStableFunc(ks, func(a, b store.SigningKey) int {
		if c := a.ActivateAt.Compare(b.ActivateAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// Rotate creates a successor of the newest key now, with the same overlap
// as a scheduled rotation: it is published at once and signs after the
// prepublication delay. o is recorded on the key.rotated event (or
// key.created when there was no key). ErrBusy means another replica holds
// the lease.
func (m *Manager) Rotate(ctx context.Context, o Origin) (KeyInfo, error) {
	k, err := m.rotate(ctx, o, TriggerManual)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := m.reload(ctx); err != nil {
		m.log.WarnContext(ctx, "reload signing keys after rotation", "purpose", m.purpose, "err", err)
	}
	return infoOf(k, m.clock()), nil
}

// Refresh reloads the keys from the store and, when none exists or the
// newest has signed for RotationPeriod less the prepublication delay,
// creates its successor under the lease (a replica that does not get the
// lease just reloads).
func (m *Manager) Refresh(ctx context.Context) error {
	if err := m.reload(ctx); err != nil {
		return err
	}
	if !m.due(m.state.Load().records(), m.now()) {
		return nil
	}
	_, err := m.rotate(ctx, Origin{ActorType: "system", ActorID: m.holder}, TriggerScheduled)
	if err != nil && !errors.Is(err, ErrBusy) {
		return err
	}
	return m.reload(ctx)
}

// Run calls Refresh every RefreshInterval until ctx is done, then returns.
// Failures are logged and retried at the next tick.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
				m.log.ErrorContext(ctx, "signing key refresh failed", "purpose", m.purpose, "err", err)
			}
		}
	}
}

func (st *keyState) records() []store.SigningKey {
	out := make([]store.SigningKey, len(st.keys))
	for i, k := range st.keys {
		out[i] = k.rec
	}
	return out
}

// due reports whether a key must be created: there is none that may
// sign, or the newest one activates a rotation period before the
// prepublication delay from now.
func (m *Manager) due(ks []store.SigningKey, now time.Time) bool {
	newest := newestLive(ks)
	if newest < 0 {
		return true
	}
	return !now.Before(ks[newest].ActivateAt.Add(m.period - m.prepublish()))
}

// reload reads the keys from the store and replaces the in-memory view.
// Keys that may still sign are unsealed (once; the result is kept).
func (m *Manager) reload(ctx context.Context) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	now := m.clock()
	ks, err := m.store.ListSigningKeys(ctx, m.purpose)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	sortKeys(ks)
	st := &keyState{keys: make([]loadedKey, 0, len(ks)), loadedAt: now}
	unsealed := make(map[string]*ActiveKey, 2)
	for _, k := range ks {
		sealed := k.Sealed
		k.Sealed = nil
		lk := loadedKey{rec: k}
		if StateAt(k, now) == StateRemoved {
			st.keys = append(st.keys, lk)
			continue
		}
		lk.pub, lk.err = parsePublic(k.Algorithm, k.PublicKey)
		if lk.err == nil {
			lk.jwk, lk.err = publicJWK(k.ID, k.Algorithm, lk.pub)
		}
		if lk.err == nil {
			lk.chain, lk.err = parseChain(k.ID, k.CertChain, lk.pub)
		}
		if lk.err != nil {
			lk.pub, lk.chain = nil, nil
			m.log.ErrorContext(ctx, "unusable signing key", "kid", k.ID, "err", lk.err)
		} else if (k.RetireAt.IsZero() || now.Before(k.RetireAt)) && !withdrawn(k) {
			if ak := m.unsealed[k.ID]; ak != nil {
				lk.active = ak
			} else if priv, err := openSigner(m.root, k.Purpose, k.ID, k.Algorithm, sealed, lk.pub); err != nil {
				lk.err = err
				m.log.ErrorContext(ctx, "cannot unseal signing key", "kid", k.ID, "err", err)
			} else {
				lk.active = &ActiveKey{ID: k.ID, Algorithm: k.Algorithm, Chain: lk.chain, signer: priv}
			}
			if lk.active != nil {
				unsealed[k.ID] = lk.active
			}
		}
		st.keys = append(st.keys, lk)
	}
	m.unsealed = unsealed
	m.state.Store(st)
	return nil
}
