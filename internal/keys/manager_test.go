package keys_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/agentid/agentid/internal/golden"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// t0 is when every test starts.
var t0 = time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)

// auditRecorder is the adapter the server uses: key events into the audit
// trail, in the key change's transaction.
type auditRecorder struct{ rec *audit.Recorder }

func (a auditRecorder) RecordKeyEvent(ctx context.Context, tx store.Tx, ev keys.Event) error {
	o := audit.Origin{
		Actor:   audit.Actor{Type: ev.Origin.ActorType, ID: ev.Origin.ActorID},
		Source:  audit.Source{IP: ev.Origin.IP, UserAgent: ev.Origin.UserAgent},
		TraceID: ev.Origin.TraceID,
	}
	e := o.Event(audit.Admin, ev.Type)
	e.Details = ev.Details()
	_, err := a.rec.Append(ctx, tx, e)
	return err
}

// env is one store with a root key and a clock, on which managers
// (replicas) are made.
type env struct {
	t    *testing.T
	st   store.Store
	root *keys.RootKey
	clk  *clock
	logs *bytes.Buffer
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	root, err := keys.NewRootKey(bytes.Repeat([]byte{0x42}, keys.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, root: root, clk: &clock{t: t0}, logs: &bytes.Buffer{}}
}

func sqliteEnv(t *testing.T) *env {
	t.Helper()
	st, _ := storetest.Backends(t)[0].Open(t)
	return newEnv(t, st)
}

// params are the defaults of these tests: the production defaults, one
// hour tokens.
func (e *env) params(st store.Store, holder string) keys.ManagerParams {
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: e.clk.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return keys.ManagerParams{
		Store: st, Root: e.root, Purpose: "oauth", MaxTokenTTL: time.Hour, Holder: holder,
		Recorder: auditRecorder{rec}, Clock: e.clk.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	}
}

func (e *env) manager(p keys.ManagerParams) *keys.Manager {
	e.t.Helper()
	m, err := keys.NewManager(e.t.Context(), p)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) refresh(ms ...*keys.Manager) {
	e.t.Helper()
	for _, m := range ms {
		if err := m.Refresh(e.t.Context()); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) list(m *keys.Manager) []keys.KeyInfo {
	e.t.Helper()
	l, err := m.List(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// states returns "kid:state" of every key.
func states(l []keys.KeyInfo) []string {
	out := make([]string, len(l))
	for i, k := range l {
		out[i] = fmt.Sprintf("%d:%s", i, k.State)
	}
	return out
}

// kids returns the kids of a JWKS document.
func kids(t *testing.T, jwks []byte) []string {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("JWKS %s: %v", jwks, err)
	}
	out := []string{}
	for _, k := range set.Keys {
		kid, _ := k["kid"].(string)
		out = append(out, kid)
	}
	return out
}

func (e *env) current(m *keys.Manager) *keys.ActiveKey {
	e.t.Helper()
	k, err := m.Current()
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// events returns "type trigger" of every audit event.
func (e *env) events() []string {
	e.t.Helper()
	recs, _, err := e.st.ListAudit(e.t.Context(), store.AuditQuery{}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		var ev audit.Event
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %s %v", ev.Family, ev.Type, ev.Actor.Type, ev.Details["trigger"]))
	}
	return out
}

// jws signs a compact JWS with the key, the way credential does, and
// verifies it with go-jose against pub.
func verifyJWS(t *testing.T, k *keys.ActiveKey, pub any) {
	t.Helper()
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(`{"alg":"`+k.Algorithm+`","kid":"`+k.ID+`"}`)) + "." + enc.EncodeToString([]byte(`{"sub":"x"}`))
	sig, err := k.Sign([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 64 {
		t.Fatalf("%s signature is %d bytes, want 64", k.Algorithm, len(sig))
	}
	obj, err := jose.ParseSignedCompact(input+"."+enc.EncodeToString(sig), []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := obj.Verify(pub)
	if err != nil {
		t.Fatalf("%s signature does not verify: %v", k.Algorithm, err)
	}
	if string(payload) != `{"sub":"x"}` {
		t.Fatalf("payload %q", payload)
	}
}

func TestFirstKey(t *testing.T) {
	for _, alg := range []string{keys.ES256, keys.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			e := sqliteEnv(t)
			p := e.params(e.st, "replica-a")
			p.Algorithm = alg
			m := e.manager(p)
			k := e.current(m)
			if k.Algorithm != alg || !strings.HasPrefix(k.ID, "sgk_") {
				t.Fatalf("Current = %v", k)
			}
			l := e.list(m)
			want := []keys.KeyInfo{{ID: k.ID, Algorithm: alg, Purpose: "oauth", State: keys.StateActive,
				PublishAt: t0, ActivateAt: t0, CreatedAt: t0}}
			if diff := cmp.Diff(want, l); diff != "" {
				t.Fatalf("List (-want +got):\n%s", diff)
			}
			body, built := m.JWKS()
			if got := kids(t, body); !slices.Equal(got, []string{k.ID}) || !built.Equal(t0) {
				t.Fatalf("JWKS kids %v built %v", got, built)
			}
			pub, palg, ok := m.PublicKey(k.ID)
			if !ok || palg != alg {
				t.Fatalf("PublicKey(%s) = %v, %v", k.ID, palg, ok)
			}
			verifyJWS(t, k, pub)
			if diff := cmp.Diff([]string{"admin key.created system initial"}, e.events()); diff != "" {
				t.Errorf("audit events (-want +got):\n%s", diff)
			}
			// A second replica (or a restart) loads the same key.
			m2 := e.manager(e.params(e.st, "replica-b"))
			if got := e.current(m2); got.ID != k.ID {
				t.Fatalf("second manager signs with %s, want %s", got.ID, k.ID)
			}
			if len(e.list(m2)) != 1 {
				t.Fatal("second manager created a key")
			}
		})
	}
}

// TestLifecycle follows one scheduled rotation through pending → active →
// retired → removed with the default timings: 24 h rotation, 5 min JWKS
// max-age, 30 s refresh, so a 6 min prepublication delay.
func TestLifecycle(t *testing.T) {
	e := sqliteEnv(t)
	m := e.manager(e.params(e.st, "replica-a"))
	a := e.current(m)
	const prepublish = 6 * time.Minute

	e.clk.Set(t0.Add(24*time.Hour - prepublish - time.Second))
	e.refresh(m)
	if l := e.list(m); len(l) != 1 {
		t.Fatalf("rotated early: %v", states(l))
	}

	e.clk.Advance(time.Second) // the successor is due now
	e.refresh(m)
	rotatedAt := e.clk.Now()
	l := e.list(m)
	if diff := cmp.Diff([]string{"0:active", "1:pending"}, states(l)); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	b := l[1]
	if !b.PublishAt.Equal(rotatedAt) || !b.ActivateAt.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("successor publish %v activate %v, want %v and %v", b.PublishAt, b.ActivateAt, rotatedAt, t0.Add(24*time.Hour))
	}
	if !l[0].RetireAt.Equal(b.ActivateAt) || !l[0].RemoveAt.Equal(b.ActivateAt.Add(time.Hour+keys.RemovalLeeway)) {
		t.Errorf("predecessor retire %v remove %v", l[0].RetireAt, l[0].RemoveAt)
	}
	if got := e.current(m).ID; got != a.ID {
		t.Fatalf("pending key signs: %s", got)
	}
	jwks, _ := m.JWKS()
	if diff := cmp.Diff([]string{a.ID, b.ID}, kids(t, jwks)); diff != "" {
		t.Fatalf("JWKS while pending (-want +got):\n%s", diff)
	}

	e.clk.Set(b.ActivateAt.Add(-time.Microsecond))
	e.refresh(m)
	if got := e.current(m).ID; got != a.ID {
		t.Fatalf("successor signs before its time: %s", got)
	}
	e.clk.Set(b.ActivateAt)
	if got := e.current(m).ID; got != b.ID { // from memory, no reload needed
		t.Fatalf("at activation Current = %s, want %s", got, b.ID)
	}
	e.refresh(m)
	if diff := cmp.Diff([]string{"0:retired", "1:active"}, states(e.list(m))); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	if _, _, ok := m.PublicKey(a.ID); !ok {
		t.Fatal("retired key no longer verifies")
	}

	e.clk.Set(l[0].RemoveAt.Add(-time.Microsecond))
	jwks, _ = m.JWKS()
	if diff := cmp.Diff([]string{a.ID, b.ID}, kids(t, jwks)); diff != "" {
		t.Fatalf("JWKS before removal (-want +got):\n%s", diff)
	}
	e.clk.Set(l[0].RemoveAt)
	jwks, built := m.JWKS() // the cached document expires at RemoveAt
	if diff := cmp.Diff([]string{b.ID}, kids(t, jwks)); diff != "" || !built.Equal(l[0].RemoveAt) {
		t.Fatalf("JWKS at removal (-want +got):\n%s (built %v)", diff, built)
	}
	if _, _, ok := m.PublicKey(a.ID); ok {
		t.Fatal("removed key still verifies")
	}
	e.refresh(m)
	if diff := cmp.Diff([]string{"0:removed", "1:active"}, states(e.list(m))); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	want := []string{"admin key.created system initial", "admin key.rotated system scheduled"}
	if diff := cmp.Diff(want, e.events()); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
	rep, err := audit.Verify(t.Context(), e.st, audit.VerifyParams{})
	if err != nil || !rep.OK {
		t.Fatalf("audit trail: %+v %v", rep, err)
	}
}

// TestVerifiersNeverMissAKid runs two replicas through many rotations on a
// fake clock, signing tokens all the time, with a verifier that caches the
// JWKS of alternating replicas for its full max-age (and refetches only
// when that expires). Every token's kid must be in the verifier's cached
// copy when the token is signed, and in every replica's JWKS until the
// token expires.
func TestVerifiersNeverMissAKid(t *testing.T) {
	e := sqliteEnv(t)
	const ttl = 15 * time.Minute
	mk := func(holder string) *keys.Manager {
		p := e.params(e.st, holder)
		p.RotationPeriod, p.MaxTokenTTL = time.Hour, ttl
		return e.manager(p)
	}
	replicas := []*keys.Manager{mk("a"), mk("b")}
	type token struct {
		kid string
		exp time.Time
	}
	var (
		outstanding []token
		cache       []string
		fetchedAt   time.Time
		fetches     int
		signedBy    = map[string]bool{}
		parsed      = map[string][]string{} // JWKS document → kids
	)
	const step = 5 * time.Second
	for i := 1; i <= 12*3600/5; i++ {
		e.clk.Advance(step)
		now := e.clk.Now()
		// Replica a reloads on the minute and half minute, b 15 s later.
		for j, m := range replicas {
			if (now.Sub(t0)-time.Duration(j)*15*time.Second)%(30*time.Second) == 0 {
				e.refresh(m)
			}
		}
		if cache == nil || !now.Before(fetchedAt.Add(keys.DefaultJWKSMaxAge)) {
			body, _ := replicas[fetches%2].JWKS()
			cache, fetchedAt = kids(t, body), now
			fetches++
		}
		m := replicas[i%2]
		k := e.current(m)
		signedBy[k.ID] = true
		if !slices.Contains(cache, k.ID) {
			t.Fatalf("at %v replica %d signs with %s, unknown to a verifier's JWKS fetched at %v: %v",
				now.Sub(t0), i%2, k.ID, fetchedAt.Sub(t0), cache)
		}
		outstanding = append(outstanding, token{k.ID, now.Add(ttl)})
		outstanding = slices.DeleteFunc(outstanding, func(tk token) bool { return !now.Before(tk.exp) })
		for j, r := range replicas {
			body, _ := r.JWKS()
			published, ok := parsed[string(body)]
			if !ok {
				published = kids(t, body)
				parsed[string(body)] = published
			}
			for _, tk := range outstanding {
				if !slices.Contains(published, tk.kid) {
					t.Fatalf("at %v replica %d no longer publishes %s, which signed a token valid until %v",
						now.Sub(t0), j, tk.kid, tk.exp.Sub(t0))
				}
			}
			if len(published) > 3 {
				t.Fatalf("replica %d publishes %d keys: removal does not work", j, len(published))
			}
		}
	}
	if n := len(e.list(replicas[0])); n < 12 || n > 13 {
		t.Errorf("%d keys after 12 rotation periods", n)
	}
	if len(signedBy) != len(e.list(replicas[0])) {
		t.Errorf("%d keys signed, %d exist", len(signedBy), len(e.list(replicas[0])))
	}
}

// TestReplicasRotateOnce has replicas on one database (SQLite file or
// PostgreSQL schema) race to create the first key and then to make a due
// rotation: each happens exactly once.
func TestReplicasRotateOnce(t *testing.T) {
	const n = 4
	for _, rs := range storetest.Replicas(t, n) {
		t.Run(rs.Name, func(t *testing.T) {
			stores := rs.Open(t)
			e := newEnv(t, stores[0])
			ms := make([]*keys.Manager, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { ms[i], errs[i] = keys.NewManager(t.Context(), e.params(stores[i], fmt.Sprintf("r%d", i))) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("replica %d: %v", i, err)
				}
			}
			first := e.current(ms[0]).ID
			for i, m := range ms {
				if got := e.current(m).ID; got != first {
					t.Fatalf("replica %d signs with %s, replica 0 with %s", i, got, first)
				}
			}
			if l := e.list(ms[0]); len(l) != 1 {
				t.Fatalf("%d first keys created", len(l))
			}

			e.clk.Advance(24 * time.Hour)
			for range 3 {
				for i := range n {
					wg.Go(func() { errs[i] = ms[i].Refresh(t.Context()) })
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("replica %d: %v", i, err)
					}
				}
			}
			if diff := cmp.Diff([]string{"0:active", "1:pending"}, states(e.list(ms[0]))); diff != "" {
				t.Fatalf("after racing rotations (-want +got):\n%s", diff)
			}

			// Concurrent manual rotations each create a key, one after the
			// other: each retires the one before.
			for i := range n {
				wg.Go(func() {
					_, errs[i] = ms[i].Rotate(t.Context(), keys.Origin{ActorType: "admin", ActorID: "adm_x"})
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil && !errors.Is(err, keys.ErrBusy) {
					t.Fatalf("replica %d: %v", i, err)
				}
			}
			l := e.list(ms[0])
			for i := 1; i < len(l); i++ {
				if !l[i-1].RetireAt.Equal(l[i].ActivateAt) {
					t.Errorf("key %d retires at %v, its successor activates at %v", i-1, l[i-1].RetireAt, l[i].ActivateAt)
				}
			}
			if !l[len(l)-1].RetireAt.IsZero() {
				t.Error("the newest key is retired")
			}
		})
	}
}

func TestManualRotate(t *testing.T) {
	e := sqliteEnv(t)
	m := e.manager(e.params(e.st, "r"))
	a := e.current(m)
	e.clk.Advance(time.Hour)
	o := keys.Origin{ActorType: "admin", ActorID: "adm_1", IP: "192.0.2.1", TraceID: strings.Repeat("ab", 16)}
	b, err := m.Rotate(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clk.Now()
	if b.State != keys.StatePending || !b.PublishAt.Equal(now) || !b.ActivateAt.Equal(now.Add(6*time.Minute)) {
		t.Fatalf("Rotate = %+v", b)
	}
	if e.current(m).ID != a.ID {
		t.Fatal("a manual rotation signs at once")
	}
	jwks, _ := m.JWKS()
	if diff := cmp.Diff([]string{a.ID, b.ID}, kids(t, jwks)); diff != "" {
		t.Fatalf("JWKS (-want +got):\n%s", diff)
	}
	recs, _, err := e.st.ListAudit(t.Context(), store.AuditQuery{AfterSeq: 1}, store.Page{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("events %v %v", recs, err)
	}
	var ev audit.Event
	if err := json.Unmarshal(recs[0].Body, &ev); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"kid": b.ID, "alg": "ES256", "purpose": "oauth", "trigger": "manual", "replica": "r",
		"publish_at": "2030-01-02T04:00:00Z", "activate_at": "2030-01-02T04:06:00Z",
		"retired_kid": a.ID, "retire_at": "2030-01-02T04:06:00Z", "remove_at": "2030-01-02T05:11:00Z",
	}
	if diff := cmp.Diff(want, ev.Details); diff != "" {
		t.Errorf("details (-want +got):\n%s", diff)
	}
	if ev.Type != keys.EventKeyRotated || *ev.Actor != (audit.Actor{Type: "admin", ID: "adm_1"}) ||
		ev.Source.IP != "192.0.2.1" || ev.Task.TraceID != o.TraceID {
		t.Errorf("event %+v", ev)
	}
	// The scheduled rotation counts from the newest key's activation.
	e.clk.Set(b.ActivateAt.Add(24*time.Hour - 6*time.Minute - time.Second))
	e.refresh(m)
	if len(e.list(m)) != 2 {
		t.Fatal("scheduled rotation did not count from the manual one")
	}
}

func TestStaleKeysDoNotSign(t *testing.T) {
	e := sqliteEnv(t)
	m := e.manager(e.params(e.st, "r"))
	e.clk.Advance(6 * time.Minute)
	e.current(m)
	e.clk.Advance(time.Second)
	if _, err := m.Current(); !errors.Is(err, keys.ErrStale) {
		t.Fatalf("Current after 6m1s without reload = %v, want ErrStale", err)
	}
	e.refresh(m)
	e.current(m)
}

func TestWrongRootKey(t *testing.T) {
	e := sqliteEnv(t)
	e.manager(e.params(e.st, "r"))
	other, err := keys.NewRootKey(bytes.Repeat([]byte{0x43}, keys.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	p := e.params(e.st, "r2")
	p.Root = other
	if _, err := keys.NewManager(t.Context(), p); !errors.Is(err, keys.ErrNoKey) || !errors.Is(err, keys.ErrOpen) {
		t.Fatalf("NewManager with another root key = %v, want ErrNoKey and ErrOpen", err)
	}
	// The sealed value itself: bound to the key id, purpose and algorithm.
	ks, err := e.st.ListSigningKeys(t.Context(), "oauth")
	if err != nil || len(ks) != 1 {
		t.Fatal(ks, err)
	}
	ad := []byte("agentid-signing-key-v1\noauth\n" + ks[0].ID + "\nES256")
	if _, err := e.root.Open(ks[0].Sealed, ad); err != nil {
		t.Fatalf("the right root key cannot open it: %v", err)
	}
	for name, try := range map[string]func() error{
		"other root key": func() error { _, err := other.Open(ks[0].Sealed, ad); return err },
		"other kid": func() error {
			_, err := e.root.Open(ks[0].Sealed, []byte("agentid-signing-key-v1\noauth\nsgk_other\nES256"))
			return err
		},
		"other purpose": func() error {
			_, err := e.root.Open(ks[0].Sealed, []byte("agentid-signing-key-v1\nsvid\n"+ks[0].ID+"\nES256"))
			return err
		},
	} {
		if err := try(); !errors.Is(err, keys.ErrOpen) {
			t.Errorf("%s: Open = %v, want ErrOpen", name, err)
		}
	}
}

// TestNoPrivateMaterial looks for the private keys, in every encoding,
// in the JWKS, List output, the audit trail and the logs.
func TestNoPrivateMaterial(t *testing.T) {
	e := sqliteEnv(t)
	m := e.manager(e.params(e.st, "r"))
	signers := []*keys.ActiveKey{e.current(m)}
	pe := e.params(e.st, "r")
	pe.Algorithm = keys.EdDSA
	me := e.manager(pe)
	if _, err := me.Rotate(t.Context(), keys.Origin{ActorType: "admin", ActorID: "adm_1"}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(10 * time.Minute)
	e.refresh(m, me)
	cur := e.current(me)
	signers = append(signers, cur)
	var secrets [][]byte
	ks, err := e.st.ListSigningKeys(t.Context(), "oauth")
	if err != nil || len(ks) != 2 {
		t.Fatal(ks, err)
	}
	for _, k := range ks {
		secrets = append(secrets, k.Sealed)
	}
	for _, k := range signers {
		switch priv := k.Signer().(type) {
		case ed25519.PrivateKey:
			secrets = append(secrets, priv.Seed())
		case *ecdsa.PrivateKey:
			b, err := priv.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, b)
		default:
			t.Fatalf("signer %T", priv)
		}
	}

	jwks, _ := m.JWKS()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	allowed := []string{"alg", "crv", "kid", "kty", "use", "x", "y"}
	for _, k := range set.Keys {
		for member := range k {
			if !slices.Contains(allowed, member) {
				t.Errorf("JWK member %q", member)
			}
		}
	}
	listJSON, err := json.Marshal(e.list(m))
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := e.st.ListAudit(t.Context(), store.AuditQuery{}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var trail []byte
	for _, r := range recs {
		trail = append(trail, r.Body...)
	}
	places := map[string][]byte{"JWKS": jwks, "List": listJSON, "audit trail": trail, "logs": e.logs.Bytes()}
	for _, s := range secrets {
		for where, b := range places {
			for _, enc := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s),
				base64.RawURLEncoding.EncodeToString(s), base64.RawStdEncoding.EncodeToString(s)} {
				if bytes.Contains(b, []byte(enc)) {
					t.Errorf("private key material in %s", where)
				}
			}
		}
	}
	// Printing or logging a key or the manager never reaches the key.
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("k", "key", cur, "m", m, "signers", signers)
	printed := []string{logs.String(), fmt.Sprintf("%v %+v %#v %d %x %s", cur, cur, cur, cur, cur, cur),
		fmt.Sprintf("%v %+v %#v %d %x", m, m, m, m, m), fmt.Sprintf("%#v %d", signers, signers)}
	for _, p := range printed {
		for _, s := range secrets {
			if strings.Contains(p, hex.EncodeToString(s)) || strings.Contains(p, strings.Trim(fmt.Sprint([]int{int(s[0]), int(s[1]), int(s[2]), int(s[3])}), "[]")) {
				t.Errorf("private key material printed: %s", p)
			}
		}
		if !strings.Contains(p, "key sgk_") && !strings.Contains(p, "keys.Manager(oauth)") {
			t.Errorf("printed as %q", p)
		}
	}
}

// TestJWKSGolden fixes the wire shape of the JWKS with deterministic keys:
// an ES256 key, retired by an EdDSA key (the algorithm changed in the
// config), published together during the overlap.
func TestJWKSGolden(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	e := sqliteEnv(t)
	p := e.params(e.st, "r")
	p.Rand = rand.NewChaCha8([32]byte{1})
	m := e.manager(p)
	pe := e.params(e.st, "r")
	pe.Rand, pe.Algorithm = rand.NewChaCha8([32]byte{2}), keys.EdDSA
	me := e.manager(pe)
	e.clk.Advance(time.Minute)
	if _, err := me.Rotate(t.Context(), keys.Origin{ActorType: "admin", ActorID: "adm_1"}); err != nil {
		t.Fatal(err)
	}
	e.refresh(m)
	jwks, _ := m.JWKS()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, jwks, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	golden.Check(t, "jwks", pretty.Bytes())
	if got, want := m.SigningAlgorithms(), []string{"ES256", "EdDSA"}; !slices.Equal(got, want) {
		t.Errorf("SigningAlgorithms = %v, want %v", got, want)
	}
	if got, want := me.SigningAlgorithms(), []string{"EdDSA", "ES256"}; !slices.Equal(got, want) {
		t.Errorf("SigningAlgorithms = %v, want %v", got, want)
	}
	// go-jose reads the document and each key verifies what it signed.
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	k := e.current(m)
	if ks := set.Key(k.ID); len(ks) != 1 || !ks[0].Valid() || !ks[0].IsPublic() {
		t.Fatalf("go-jose key %s: %+v", k.ID, ks)
	} else {
		verifyJWS(t, k, ks[0])
	}
	e.clk.Advance(6 * time.Minute)
	e.refresh(me)
	k = e.current(me)
	if k.Algorithm != keys.EdDSA {
		t.Fatalf("after the overlap %v signs", k)
	}
	verifyJWS(t, k, set.Key(k.ID)[0])
}

func TestManagerParamsRejected(t *testing.T) {
	e := sqliteEnv(t)
	tests := []struct {
		name string
		edit func(*keys.ManagerParams)
		want string
	}{
		{"no store", func(p *keys.ManagerParams) { p.Store = nil }, "required"},
		{"no root", func(p *keys.ManagerParams) { p.Root = nil }, "required"},
		{"bad purpose", func(p *keys.ManagerParams) { p.Purpose = "OAuth" }, "purpose"},
		{"empty purpose", func(p *keys.ManagerParams) { p.Purpose = "" }, "purpose"},
		{"bad algorithm", func(p *keys.ManagerParams) { p.Algorithm = "RS256" }, "RS256"},
		{"refresh not below max-age", func(p *keys.ManagerParams) { p.RefreshInterval = 5 * time.Minute }, "shorter"},
		{"no token ttl", func(p *keys.ManagerParams) { p.MaxTokenTTL = 0 }, "MaxTokenTTL"},
		{"rotation too short", func(p *keys.ManagerParams) { p.RotationPeriod = 10 * time.Minute }, "twice"},
		{"negative", func(p *keys.ManagerParams) { p.MaxTokenTTL = -time.Second }, "positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.params(e.st, "r")
			tt.edit(&p)
			_, err := keys.NewManager(t.Context(), p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewManager = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	if ks, _ := e.st.ListSigningKeys(t.Context(), "oauth"); len(ks) != 0 {
		t.Fatal("a rejected manager created a key")
	}
}
