package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// signingKey returns a key of the purpose activating at base()+activate.
func signingKey(id, purpose string, activate time.Duration) store.SigningKey {
	return store.SigningKey{
		ID:         id,
		Algorithm:  "ES256",
		Purpose:    purpose,
		PublicKey:  []byte(id + "-pub"),
		Sealed:     []byte(id + "-sealed"),
		PublishAt:  base().Add(activate - time.Hour),
		ActivateAt: base().Add(activate),
		CreatedAt:  base(),
	}
}

// storedKey is k as the store returns it after a create.
func storedKey(k store.SigningKey) store.SigningKey {
	k.PublishAt, k.ActivateAt, k.CreatedAt = stored(k.PublishAt), stored(k.ActivateAt), stored(k.CreatedAt)
	k.RetireAt, k.RemoveAt, k.TaintedAt = stored(k.RetireAt), stored(k.RemoveAt), stored(k.TaintedAt)
	k.Version = 1
	return k
}

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	k1 := signingKey("sk_1", "oauth", 2*time.Hour)
	k2 := signingKey("sk_2", "oauth", time.Hour)
	k3 := signingKey("sk_3", "oauth", 2*time.Hour) // same activation as sk_1: id decides
	k0 := signingKey("sk_0", "oauth", 0)
	k0.ActivateAt = time.Time{} // not set: the earliest
	other := signingKey("sk_9", "audit", 0)
	// A CA key: a certificate chain of two, one of them a single byte.
	ca := signingKey("sk_ca", "x509-ca", 0)
	ca.CertChain = [][]byte{[]byte("sk_ca-cert-der"), {0}}
	ca.TaintedAt = base().Add(time.Minute)
	var created store.SigningKey
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, k := range []store.SigningKey{k3, k1, other, ca, k2, k0} {
			got, err := tx.CreateSigningKey(ctx, k)
			if err != nil {
				return err
			}
			if k.ID == k1.ID {
				created = got
			}
		}
		return nil
	})
	if diff := cmp.Diff(storedKey(k1), created); diff != "" {
		t.Errorf("CreateSigningKey returned (-want +got):\n%s", diff)
	}
	list := func(purpose string) []store.SigningKey {
		t.Helper()
		ks, err := s.ListSigningKeys(ctx, purpose)
		if err != nil {
			t.Fatalf("ListSigningKeys(%q): %v", purpose, err)
		}
		return ks
	}
	want := []store.SigningKey{storedKey(k0), storedKey(k2), storedKey(k1), storedKey(k3)}
	if diff := cmp.Diff(want, list("oauth")); diff != "" {
		t.Errorf("ListSigningKeys(oauth) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]store.SigningKey{storedKey(other)}, list("audit")); diff != "" {
		t.Errorf("ListSigningKeys(audit) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]store.SigningKey{storedKey(ca)}, list("x509-ca")); diff != "" {
		t.Errorf("ListSigningKeys(x509-ca) (-want +got):\n%s", diff)
	}
	if ks := list("none"); len(ks) != 0 {
		t.Errorf("ListSigningKeys(none) = %d keys, want none", len(ks))
	}

	err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.CreateSigningKey(ctx, signingKey(k1.ID, "audit", 0))
		return err
	})
	wantErr(t, "CreateSigningKey with a taken id", err, store.ErrAlreadyExists)
	for name, edit := range map[string]func(*store.SigningKey){
		"no id":         func(k *store.SigningKey) { k.ID = "" },
		"no algorithm":  func(k *store.SigningKey) { k.Algorithm = "" },
		"no purpose":    func(k *store.SigningKey) { k.Purpose = "" },
		"no public key": func(k *store.SigningKey) { k.PublicKey = nil },
		"no sealed key": func(k *store.SigningKey) { k.Sealed = []byte{} },
		"empty cert":    func(k *store.SigningKey) { k.CertChain = [][]byte{[]byte("cert"), {}} },
	} {
		k := signingKey("sk_new", "oauth", 0)
		edit(&k)
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateSigningKey(ctx, k)
			return err
		})
		wantErr(t, "CreateSigningKey "+name, err, store.ErrInvalid)
	}

	// Only RetireAt, RemoveAt and TaintedAt change.
	retire, remove, taint := base().Add(3*time.Hour), base().Add(5*time.Hour), base().Add(4*time.Hour)
	var updated store.SigningKey
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		updated, err = tx.UpdateSigningKey(ctx, k1.ID, func(k store.SigningKey) (store.SigningKey, error) {
			if diff := cmp.Diff(storedKey(k1), k); diff != "" {
				t.Errorf("UpdateSigningKey: updater got (-want +got):\n%s", diff)
			}
			k.RetireAt, k.RemoveAt, k.TaintedAt = retire, remove, taint
			k.ID, k.Algorithm, k.Purpose = "sk_other", "EdDSA", "audit"
			k.PublicKey, k.Sealed, k.CertChain = []byte("x"), []byte("y"), [][]byte{[]byte("z")}
			k.PublishAt, k.ActivateAt, k.CreatedAt = time.Time{}, time.Time{}, time.Time{}
			k.Version = 99
			return k, nil
		})
		return err
	})
	want1 := storedKey(k1)
	want1.RetireAt, want1.RemoveAt, want1.TaintedAt, want1.Version = stored(retire), stored(remove), stored(taint), 2
	if diff := cmp.Diff(want1, updated); diff != "" {
		t.Errorf("UpdateSigningKey returned (-want +got):\n%s", diff)
	}
	want[2] = want1
	if diff := cmp.Diff(want, list("oauth")); diff != "" {
		t.Errorf("ListSigningKeys after update (-want +got):\n%s", diff)
	}
	if ks := list("audit"); len(ks) != 1 {
		t.Errorf("ListSigningKeys(audit) after update = %d keys, want 1", len(ks))
	}

	// A CA key's chain survives an update; TaintedAt can be cleared.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		updated, err = tx.UpdateSigningKey(ctx, ca.ID, func(k store.SigningKey) (store.SigningKey, error) {
			k.TaintedAt, k.CertChain = time.Time{}, nil
			return k, nil
		})
		return err
	})
	wantCA := storedKey(ca)
	wantCA.TaintedAt, wantCA.Version = time.Time{}, 2
	if diff := cmp.Diff(wantCA, updated); diff != "" {
		t.Errorf("UpdateSigningKey(x509-ca) returned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]store.SigningKey{wantCA}, list("x509-ca")); diff != "" {
		t.Errorf("ListSigningKeys(x509-ca) after update (-want +got):\n%s", diff)
	}

	errBoom := errors.New("boom")
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateSigningKey(ctx, k1.ID, func(k store.SigningKey) (store.SigningKey, error) {
			return k, errBoom
		})
		return err
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("UpdateSigningKey with a failing updater = %v, want %v", err, errBoom)
	}
	called := false
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateSigningKey(ctx, "sk_missing", func(k store.SigningKey) (store.SigningKey, error) {
			called = true
			return k, nil
		})
		return err
	})
	wantErr(t, "UpdateSigningKey of a missing key", err, store.ErrNotFound)
	if called {
		t.Error("UpdateSigningKey called the updater for a missing key")
	}
}

// testSigningKeyConcurrentCAS has n writers each push one key's RemoveAt
// by a second: none is lost.
func testSigningKeyConcurrentCAS(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := signingKey("sk_1", "oauth", 0)
	k.RemoveAt = base()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.CreateSigningKey(ctx, k)
		return err
	})
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := tx.UpdateSigningKey(ctx, k.ID, func(k store.SigningKey) (store.SigningKey, error) {
					k.RemoveAt = k.RemoveAt.Add(time.Second)
					return k, nil
				})
				return err
			})
			if err != nil {
				t.Errorf("Update %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	ks, err := s.ListSigningKeys(ctx, "oauth")
	if err != nil || len(ks) != 1 {
		t.Fatalf("ListSigningKeys = %d keys, %v", len(ks), err)
	}
	if want := stored(base()).Add(n * time.Second); !ks[0].RemoveAt.Equal(want) || ks[0].Version != 1+n {
		t.Errorf("after %d updates: RemoveAt %v, version %d; want %v, version %d",
			n, ks[0].RemoveAt, ks[0].Version, want, 1+n)
	}
}

// acquire takes a lease in its own Update.
func acquire(t *testing.T, s store.Store, name, holder string, now, until time.Time) bool {
	t.Helper()
	var ok bool
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		ok, err = tx.AcquireLease(ctx, name, holder, now, until)
		return err
	})
	return ok
}

func testLeases(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := func(d time.Duration) time.Time { return base().Add(d) }
	for _, step := range []struct {
		what         string
		name, holder string
		now, until   time.Duration
		wantHeld     bool
	}{
		{"free", "rotate", "a", 0, 30 * time.Second, true},
		{"held by another", "rotate", "b", 10 * time.Second, 40 * time.Second, false},
		{"holder extends", "rotate", "a", 20 * time.Second, 60 * time.Second, true},
		{"still held after the first expiry", "rotate", "b", 59 * time.Second, 90 * time.Second, false},
		{"expired at now", "rotate", "b", 60 * time.Second, 90 * time.Second, true},
		{"old holder refused", "rotate", "a", 61 * time.Second, 120 * time.Second, false},
		{"other name is free", "collect", "a", 61 * time.Second, 120 * time.Second, true},
		{"holder releases", "rotate", "b", 70 * time.Second, 70 * time.Second, false},
		{"released lease is free", "rotate", "a", 70 * time.Second, 100 * time.Second, true},
	} {
		if got := acquire(t, s, step.name, step.holder, at(step.now), at(step.until)); got != step.wantHeld {
			t.Errorf("%s: AcquireLease(%s, %s, +%v, +%v) = %v, want %v",
				step.what, step.name, step.holder, step.now, step.until, got, step.wantHeld)
		}
	}

	// A lease taken in a fn that fails is not taken.
	errBoom := errors.New("boom")
	err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if ok, err := tx.AcquireLease(ctx, "rolled-back", "a", at(0), at(time.Minute)); err != nil || !ok {
			t.Errorf("AcquireLease(rolled-back) = %v, %v; want true", ok, err)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update = %v, want %v", err, errBoom)
	}
	if !acquire(t, s, "rolled-back", "b", at(0), at(time.Minute)) {
		t.Error("a lease taken by a rolled-back fn is still held")
	}

	for name, args := range map[string][2]string{"no name": {"", "a"}, "no holder": {"x", ""}} {
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.AcquireLease(ctx, args[0], args[1], at(0), at(time.Minute))
			return err
		})
		wantErr(t, "AcquireLease "+name, err, store.ErrInvalid)
	}
}

// testLeaseRace has n holders race for one free lease: exactly one gets it.
func testLeaseRace(t *testing.T, s store.Store) {
	if n := raceLease(t, []store.Store{s}, 32); n != 1 {
		t.Errorf("%d of 32 racing holders got the lease, want exactly 1", n)
	}
}

// raceLease has n goroutines, spread over the replicas, each try to take
// lease "race" once as a holder of its own, and reports how many got it.
func raceLease(t *testing.T, replicas []store.Store, n int) int {
	t.Helper()
	ctx := context.Background()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		won   atomic.Int32
	)
	for i := range n {
		s := replicas[i%len(replicas)]
		wg.Go(func() {
			<-start
			err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
				ok, err := tx.AcquireLease(ctx, "race", fmt.Sprintf("holder-%d", i), base(), base().Add(time.Minute))
				if ok {
					won.Add(1)
				}
				return err
			})
			if err != nil {
				t.Errorf("AcquireLease %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(won.Load())
}

// useOnce records one identifier in its own Update.
func useOnce(s store.Store, ns, id string, now, exp time.Time) error {
	return s.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		return tx.UseOnce(ctx, ns, id, now, exp)
	})
}

func testUseOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := func(d time.Duration) time.Time { return base().Add(d) }
	for _, step := range []struct {
		what    string
		ns, id  string
		now     time.Duration
		exp     time.Duration
		wantErr error
	}{
		{"first use", "assertion", "j1", 0, 5 * time.Minute, nil},
		{"replay", "assertion", "j1", time.Minute, 6 * time.Minute, store.ErrAlreadyExists},
		{"replay just before expiry", "assertion", "j1", 5*time.Minute - time.Microsecond, 9 * time.Minute, store.ErrAlreadyExists},
		{"same id, other namespace", "dpop", "j1", time.Minute, 6 * time.Minute, nil},
		{"reuse once expired at now", "assertion", "j1", 5 * time.Minute, 10 * time.Minute, nil},
		{"the new expiry holds", "assertion", "j1", 6 * time.Minute, 11 * time.Minute, store.ErrAlreadyExists},
	} {
		err := useOnce(s, step.ns, step.id, at(step.now), at(step.exp))
		if step.wantErr == nil && err != nil {
			t.Errorf("%s: UseOnce = %v, want nil", step.what, err)
		} else if step.wantErr != nil {
			wantErr(t, step.what+": UseOnce", err, step.wantErr)
		}
	}

	// Inside one fn a replay fails only that call; the fn goes on.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.UseOnce(ctx, "assertion", "j2", at(0), at(time.Minute)); err != nil {
			return err
		}
		wantErr(t, "UseOnce replayed in one fn", tx.UseOnce(ctx, "assertion", "j2", at(0), at(time.Minute)), store.ErrAlreadyExists)
		return tx.UseOnce(ctx, "assertion", "j3", at(0), at(time.Minute))
	})
	for _, id := range []string{"j2", "j3"} {
		wantErr(t, "UseOnce of "+id+" after commit", useOnce(s, "assertion", id, at(0), at(time.Minute)), store.ErrAlreadyExists)
	}
	// A use in a fn that fails is not recorded.
	errBoom := errors.New("boom")
	err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.UseOnce(ctx, "assertion", "j4", at(0), at(time.Minute)); err != nil {
			t.Errorf("UseOnce(j4): %v", err)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update = %v, want %v", err, errBoom)
	}
	if err := useOnce(s, "assertion", "j4", at(0), at(time.Minute)); err != nil {
		t.Errorf("UseOnce of an id a rolled-back fn used = %v, want nil", err)
	}

	for name, call := range map[string][2]string{"no namespace": {"", "j"}, "no id": {"assertion", ""}} {
		wantErr(t, "UseOnce "+name, useOnce(s, call[0], call[1], at(0), at(time.Minute)), store.ErrInvalid)
	}
	wantErr(t, "UseOnce without expiry", useOnce(s, "assertion", "j5", at(0), time.Time{}), store.ErrInvalid)
	wantErr(t, "UseOnce without now", useOnce(s, "assertion", "j5", time.Time{}, at(time.Minute)), store.ErrInvalid)
}

// testUseOnceRace has 32 callers use one identifier at once: exactly one
// succeeds, the others get ErrAlreadyExists.
func testUseOnceRace(t *testing.T, s store.Store) {
	if n := raceUseOnce(t, []store.Store{s}, 32); n != 1 {
		t.Errorf("%d of 32 concurrent uses of one id succeeded, want exactly 1", n)
	}
}

// raceUseOnce has n goroutines, spread over the replicas, use one
// identifier, and reports how many succeeded. Any error but
// ErrAlreadyExists fails t.
func raceUseOnce(t *testing.T, replicas []store.Store, n int) int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		won   atomic.Int32
	)
	for i := range n {
		s := replicas[i%len(replicas)]
		wg.Go(func() {
			<-start
			err := useOnce(s, "dpop", "jti-race", base(), base().Add(time.Minute))
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, store.ErrAlreadyExists):
				t.Errorf("UseOnce %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(won.Load())
}

func testRevocations(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := func(d time.Duration) time.Time { return base().Add(d) }
	revoke := func(r store.RevokedToken) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.RevokeToken(ctx, r) })
	}
	r1 := store.RevokedToken{JTI: "jti-1", AgentID: agentID(1), RevokedAt: at(0), ExpiresAt: at(time.Hour), RevokedBy: "adm_1"}
	r2 := store.RevokedToken{JTI: "jti-2", AgentID: agentID(1), RevokedAt: at(0), ExpiresAt: at(time.Minute), RevokedBy: "agt_0001"}
	for _, r := range []store.RevokedToken{r1, r2} {
		if err := revoke(r); err != nil {
			t.Fatalf("RevokeToken(%s): %v", r.JTI, err)
		}
	}
	again := r1
	again.RevokedAt, again.RevokedBy = at(time.Minute), "adm_2"
	if err := revoke(again); err != nil {
		t.Errorf("RevokeToken of a revoked jti = %v, want nil", err)
	}
	get := func(jti string) (store.RevokedToken, error) {
		t.Helper()
		return s.GetRevokedToken(ctx, jti)
	}
	want1 := r1
	want1.RevokedAt, want1.ExpiresAt = stored(r1.RevokedAt), stored(r1.ExpiresAt)
	got, err := get(r1.JTI)
	if err != nil {
		t.Fatalf("GetRevokedToken: %v", err)
	}
	if diff := cmp.Diff(want1, got); diff != "" {
		t.Errorf("GetRevokedToken after a second revocation (-want +got):\n%s", diff)
	}
	if got.ExpiresAt.Location() != time.UTC || got.RevokedAt.Nanosecond()%1000 != 0 {
		t.Errorf("GetRevokedToken times = %v, %v; want UTC at µs", got.RevokedAt, got.ExpiresAt)
	}
	_, err = get("jti-missing")
	wantErr(t, "GetRevokedToken of an unrevoked jti", err, store.ErrNotFound)

	// Collect at +1m: r2 and u1 expire then (expiry not after now), the rest lives.
	for id, exp := range map[string]time.Duration{"u1": time.Minute, "u2": 2 * time.Hour} {
		if err := useOnce(s, "assertion", id, at(0), at(exp)); err != nil {
			t.Fatal(err)
		}
	}
	var n int64
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		n, err = tx.CollectTokens(ctx, at(time.Minute))
		return err
	})
	if n != 2 {
		t.Errorf("CollectTokens removed %d rows, want 2", n)
	}
	if _, err := get(r2.JTI); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRevokedToken of a collected revocation = %v, want ErrNotFound", err)
	}
	if _, err := get(r1.JTI); err != nil {
		t.Errorf("GetRevokedToken of a live revocation after CollectTokens: %v", err)
	}
	// u1's row is gone: at +30s, before the expiry it was recorded with, it
	// can be used again.
	if err := useOnce(s, "assertion", "u1", at(30*time.Second), at(2*time.Minute)); err != nil {
		t.Errorf("UseOnce of a collected id = %v, want nil", err)
	}
	wantErr(t, "UseOnce of a live id after CollectTokens",
		useOnce(s, "assertion", "u2", at(time.Minute), at(3*time.Minute)), store.ErrAlreadyExists)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		n, err = tx.CollectTokens(ctx, at(time.Minute))
		return err
	})
	if n != 0 {
		t.Errorf("second CollectTokens removed %d rows, want 0", n)
	}

	for name, edit := range map[string]func(*store.RevokedToken){
		"no jti":    func(r *store.RevokedToken) { r.JTI = "" },
		"no expiry": func(r *store.RevokedToken) { r.ExpiresAt = time.Time{} },
	} {
		r := r1
		r.JTI = "jti-new"
		edit(&r)
		wantErr(t, "RevokeToken "+name, revoke(r), store.ErrInvalid)
	}
}

// testAgentOAuthFields round-trips the agent fields OAuth added.
func testAgentOAuthFields(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	in := newAgent(1, ownerID(1))
	in.Scopes = []string{"tickets:read", "tickets:write"}
	in.Permissions = []string{"introspect"}
	in.RequireDPoP = true
	in.TokensRevokedAt = base() // IST with nanoseconds
	createAgents(t, s, in)
	want := in
	want.Owners = []string{ownerID(1)}
	want.CreatedAt, want.UpdatedAt, want.TokensRevokedAt = stored(in.CreatedAt), stored(in.UpdatedAt), stored(in.TokensRevokedAt)
	want.Version = 1
	check := func(what string, want store.Agent) {
		t.Helper()
		got, err := s.GetAgent(ctx, in.ID)
		if err != nil {
			t.Fatalf("%s: GetAgent: %v", what, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: GetAgent (-want +got):\n%s", what, diff)
		}
		if r := got.TokensRevokedAt; !r.IsZero() && (r.Location() != time.UTC || r.Nanosecond()%1000 != 0) {
			t.Errorf("%s: TokensRevokedAt = %v (%s), want UTC at µs", what, r, r.Location())
		}
		as, _, err := s.ListAgents(ctx, store.AgentFilter{}, store.Page{})
		if err != nil || len(as) != 1 {
			t.Fatalf("%s: ListAgents = %d agents, %v", what, len(as), err)
		}
		if diff := cmp.Diff(want, as[0]); diff != "" {
			t.Errorf("%s: ListAgents (-want +got):\n%s", what, diff)
		}
	}
	check("created", want)

	later := base().Add(time.Hour)
	updateAgent := func(edit func(*store.Agent)) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateAgent(ctx, in.ID, func(a store.Agent) (store.Agent, error) {
				edit(&a)
				return a, nil
			})
			return err
		})
	}
	updateAgent(func(a *store.Agent) {
		a.Scopes, a.Permissions, a.RequireDPoP, a.TokensRevokedAt = []string{}, nil, false, later
	})
	want.Scopes, want.Permissions, want.RequireDPoP, want.TokensRevokedAt = nil, nil, false, stored(later)
	want.Version = 2
	check("cleared, revoked later", want)

	updateAgent(func(a *store.Agent) {
		a.Scopes, a.RequireDPoP, a.TokensRevokedAt = []string{"x"}, true, time.Time{}
	})
	want.Scopes, want.RequireDPoP, want.TokensRevokedAt = []string{"x"}, true, time.Time{}
	want.Version = 3
	check("revocation unset", want)
}
