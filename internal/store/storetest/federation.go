package storetest

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// federatedBundle returns a record of the trust domain as a first fetch
// would store it.
func federatedBundle(td string) store.FederatedBundle {
	return store.FederatedBundle{
		TrustDomain: td,
		EndpointURL: "https://" + td + "/bundle",
		Bundle:      []byte(`{"keys":[],"spiffe_sequence":7}`),
		Sequence:    7,
		FetchedAt:   base(),
		RefreshAt:   base().Add(5 * time.Minute),
		UpdatedAt:   base(),
	}
}

// storedFederatedBundle is b as the store returns it at version v.
func storedFederatedBundle(b store.FederatedBundle, v int64) store.FederatedBundle {
	b.FetchedAt, b.RefreshAt, b.UpdatedAt = stored(b.FetchedAt), stored(b.RefreshAt), stored(b.UpdatedAt)
	if len(b.Bundle) == 0 {
		b.Bundle = nil
	}
	b.Version = v
	return b
}

func createFederatedBundle(t *testing.T, s store.Store, b store.FederatedBundle) store.FederatedBundle {
	t.Helper()
	var out store.FederatedBundle
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		out, err = tx.CreateFederatedBundle(ctx, b)
		return err
	})
	return out
}

func testFederatedBundles(t *testing.T, s store.Store) {
	ctx := context.Background()
	if l, err := s.ListFederatedBundles(ctx); err != nil || len(l) != 0 {
		t.Fatalf("ListFederatedBundles on an empty store = %v, %v; want none", l, err)
	}
	// A record seeded from an initial bundle: never fetched.
	seeded := federatedBundle("partner.example")
	seeded.FetchedAt = time.Time{}
	seeded.Sequence = math.MaxInt64
	b := federatedBundle("b.example")
	empty := federatedBundle("a.example") // the first fetch failed, no initial bundle
	empty.Bundle, empty.Sequence, empty.FetchedAt = nil, 0, time.Time{}
	empty.LastError, empty.Failures = "dial tcp: connection refused", 1
	for _, in := range []store.FederatedBundle{seeded, b, empty} {
		got := createFederatedBundle(t, s, in)
		if diff := cmp.Diff(storedFederatedBundle(in, 1), got); diff != "" {
			t.Errorf("CreateFederatedBundle %s (-want +got):\n%s", in.TrustDomain, diff)
		}
	}
	got, err := s.GetFederatedBundle(ctx, "partner.example")
	if err != nil {
		t.Fatalf("GetFederatedBundle: %v", err)
	}
	if diff := cmp.Diff(storedFederatedBundle(seeded, 1), got); diff != "" {
		t.Errorf("GetFederatedBundle (-want +got):\n%s", diff)
	}
	if got.RefreshAt.Location() != time.UTC || got.RefreshAt.Nanosecond()%1000 != 0 {
		t.Errorf("RefreshAt = %v (%s), want UTC at µs", got.RefreshAt, got.RefreshAt.Location())
	}
	l, err := s.ListFederatedBundles(ctx)
	if err != nil {
		t.Fatalf("ListFederatedBundles: %v", err)
	}
	want := []store.FederatedBundle{storedFederatedBundle(empty, 1), storedFederatedBundle(b, 1), storedFederatedBundle(seeded, 1)}
	if diff := cmp.Diff(want, l); diff != "" {
		t.Errorf("ListFederatedBundles, want trust-domain order (-want +got):\n%s", diff)
	}

	// Every field but the trust domain changes.
	next := federatedBundle("ignored.example")
	next.EndpointURL = "https://partner.example:8443/bundle"
	next.Bundle = []byte(`{"keys":[],"spiffe_sequence":8}`)
	next.Sequence = 8
	next.FetchedAt, next.RefreshAt, next.UpdatedAt = base().Add(time.Hour), base().Add(2*time.Hour), base().Add(time.Hour)
	next.LastError, next.Failures = "", 0
	var updated store.FederatedBundle
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		updated, err = tx.UpdateFederatedBundle(ctx, "partner.example", func(old store.FederatedBundle) (store.FederatedBundle, error) {
			if diff := cmp.Diff(storedFederatedBundle(seeded, 1), old); diff != "" {
				t.Errorf("updater got (-want +got):\n%s", diff)
			}
			return next, nil
		})
		return err
	})
	wantNext := storedFederatedBundle(next, 2)
	wantNext.TrustDomain = "partner.example"
	if diff := cmp.Diff(wantNext, updated); diff != "" {
		t.Errorf("UpdateFederatedBundle (-want +got):\n%s", diff)
	}
	if got, _ := s.GetFederatedBundle(ctx, "partner.example"); !cmp.Equal(wantNext, got) {
		t.Errorf("after update, GetFederatedBundle = %+v, want %+v", got, wantNext)
	}
	if _, err := s.GetFederatedBundle(ctx, "ignored.example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the updater's trust domain was stored: GetFederatedBundle(ignored.example) = %v", err)
	}

	errMine := errors.New("mine")
	for name, tc := range map[string]struct {
		fn      func(ctx context.Context, tx store.Tx) error
		targets []error
	}{
		"create taken": {func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateFederatedBundle(ctx, federatedBundle("b.example"))
			return err
		}, []error{store.ErrAlreadyExists}},
		"create no trust domain": {func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateFederatedBundle(ctx, federatedBundle(""))
			return err
		}, []error{store.ErrInvalid}},
		"create no endpoint": {func(ctx context.Context, tx store.Tx) error {
			in := federatedBundle("c.example")
			in.EndpointURL = ""
			_, err := tx.CreateFederatedBundle(ctx, in)
			return err
		}, []error{store.ErrInvalid}},
		"create no refresh time": {func(ctx context.Context, tx store.Tx) error {
			in := federatedBundle("c.example")
			in.RefreshAt = time.Time{}
			_, err := tx.CreateFederatedBundle(ctx, in)
			return err
		}, []error{store.ErrInvalid}},
		"create negative sequence": {func(ctx context.Context, tx store.Tx) error {
			in := federatedBundle("c.example")
			in.Sequence = -1
			_, err := tx.CreateFederatedBundle(ctx, in)
			return err
		}, []error{store.ErrInvalid}},
		"update missing": {func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateFederatedBundle(ctx, "c.example", func(b store.FederatedBundle) (store.FederatedBundle, error) { return b, nil })
			return err
		}, []error{store.ErrNotFound}},
		"update negative failures": {func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateFederatedBundle(ctx, "b.example", func(b store.FederatedBundle) (store.FederatedBundle, error) {
				b.Failures = -1
				return b, nil
			})
			return err
		}, []error{store.ErrInvalid}},
		"update fn error": {func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateFederatedBundle(ctx, "b.example", func(b store.FederatedBundle) (store.FederatedBundle, error) {
				return b, errMine
			})
			if err != errMine { //nolint:errorlint // the updater's error comes back unchanged
				t.Errorf("UpdateFederatedBundle fn error: got %v, want it unchanged", err)
			}
			return err
		}, []error{errMine}},
	} {
		wantErr(t, name, s.Update(ctx, tc.fn), tc.targets...)
	}
	if got, _ := s.GetFederatedBundle(ctx, "b.example"); !cmp.Equal(storedFederatedBundle(b, 1), got) {
		t.Errorf("failed writes changed b.example: %+v", got)
	}
	if _, err := s.GetFederatedBundle(ctx, "c.example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetFederatedBundle(c.example) after failed creates = %v, want ErrNotFound", err)
	}
}

func testFederatedBundleConcurrentCAS(t *testing.T, s store.Store) {
	ctx := context.Background()
	createFederatedBundle(t, s, federatedBundle("partner.example"))
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := tx.UpdateFederatedBundle(ctx, "partner.example", func(b store.FederatedBundle) (store.FederatedBundle, error) {
					b.Failures++
					return b, nil
				})
				return err
			})
			if err != nil {
				t.Errorf("Update %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetFederatedBundle(ctx, "partner.example")
	if err != nil {
		t.Fatalf("GetFederatedBundle: %v", err)
	}
	if got.Failures != n || got.Version != 1+n {
		t.Errorf("after %d updates: failures %d, version %d; want %d, %d", n, got.Failures, got.Version, n, 1+n)
	}
}

func testAgentFederatesWith(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	in := newAgent(1, ownerID(1))
	in.FederatesWith = []string{"a.example", "partner.example"}
	plain := newAgent(2, ownerID(1))
	createAgents(t, s, in, plain)
	get := func(id string) store.Agent {
		t.Helper()
		a, err := s.GetAgent(ctx, id)
		if err != nil {
			t.Fatalf("GetAgent %s: %v", id, err)
		}
		return a
	}
	if got := get(in.ID).FederatesWith; !cmp.Equal(got, in.FederatesWith) {
		t.Errorf("created: FederatesWith = %q, want %q", got, in.FederatesWith)
	}
	if got := get(plain.ID).FederatesWith; got != nil {
		t.Errorf("agent without federation: FederatesWith = %q, want nil", got)
	}
	as, _, err := s.ListAgents(ctx, store.AgentFilter{}, store.Page{})
	if err != nil || len(as) != 2 || !cmp.Equal(as[0].FederatesWith, in.FederatesWith) {
		t.Errorf("ListAgents = %+v, %v; want the first federating with %q", as, err, in.FederatesWith)
	}
	for _, step := range []struct {
		set  []string
		want []string
	}{
		{[]string{"b.example"}, []string{"b.example"}},
		{[]string{}, nil},
		{[]string{"c.example", "d.example"}, []string{"c.example", "d.example"}},
		{nil, nil},
	} {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateAgent(ctx, in.ID, func(a store.Agent) (store.Agent, error) {
				a.FederatesWith = step.set
				return a, nil
			})
			return err
		})
		a := get(in.ID)
		if !cmp.Equal(a.FederatesWith, step.want) {
			t.Errorf("after setting %q: FederatesWith = %q, want %q", step.set, a.FederatesWith, step.want)
		}
		if !cmp.Equal(a.ActionClasses, in.ActionClasses) || a.Purpose != in.Purpose {
			t.Errorf("updating FederatesWith changed other fields: %+v", a)
		}
	}
}
