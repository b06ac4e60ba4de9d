package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// joinToken returns an unused token i created at base(), living ttl.
func joinToken(i int, ttl time.Duration) store.JoinToken {
	return store.JoinToken{
		ID:        fmt.Sprintf("njt_%04d", i),
		Hash:      joinTokenHash(i),
		CreatedBy: "adm_test",
		CreatedAt: base(),
		ExpiresAt: base().Add(ttl),
	}
}

func joinTokenHash(i int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "join-token-%d", i))
	return h[:]
}

// storedJoinToken is t as the store returns it.
func storedJoinToken(t store.JoinToken) store.JoinToken {
	t.CreatedAt, t.ExpiresAt, t.UsedAt = stored(t.CreatedAt), stored(t.ExpiresAt), stored(t.UsedAt)
	return t
}

func createJoinTokens(t *testing.T, s store.Store, ts ...store.JoinToken) {
	t.Helper()
	createAll(t, s, store.Tx.CreateJoinToken, ts...)
}

// consumeJoinToken consumes a token in its own Update.
func consumeJoinToken(s store.Store, hash []byte, node string, now time.Time) (store.JoinToken, error) {
	return inUpdate(s, func(ctx context.Context, tx store.Tx) (store.JoinToken, error) {
		return tx.ConsumeJoinToken(ctx, hash, node, now)
	})
}

func testJoinTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	j1, j2 := joinToken(1, 10*time.Minute), joinToken(2, time.Minute)
	createJoinTokens(t, s, j1, j2)
	for name, get := range map[string]func() (store.JoinToken, error){
		"by id":   func() (store.JoinToken, error) { return s.GetJoinToken(ctx, j1.ID) },
		"by hash": func() (store.JoinToken, error) { return s.GetJoinTokenByHash(ctx, j1.Hash) },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("GetJoinToken %s: %v", name, err)
		}
		if diff := cmp.Diff(storedJoinToken(j1), got); diff != "" {
			t.Errorf("GetJoinToken %s (-want +got):\n%s", name, diff)
		}
	}
	_, err := s.GetJoinToken(ctx, "njt_missing")
	wantErr(t, "GetJoinToken of an unknown id", err, store.ErrNotFound)
	_, err = s.GetJoinTokenByHash(ctx, joinTokenHash(9))
	wantErr(t, "GetJoinTokenByHash of an unknown hash", err, store.ErrNotFound)

	create := func(j store.JoinToken) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateJoinToken(ctx, j)
			return err
		})
	}
	sameID, sameHash := joinToken(3, time.Minute), joinToken(3, time.Minute)
	sameID.ID, sameHash.Hash = j1.ID, j1.Hash
	wantErr(t, "CreateJoinToken with a taken id", create(sameHash), store.ErrAlreadyExists)
	wantErr(t, "CreateJoinToken with a taken hash", create(sameID), store.ErrAlreadyExists)
	for name, edit := range map[string]func(*store.JoinToken){
		"no id":            func(j *store.JoinToken) { j.ID = "" },
		"no hash":          func(j *store.JoinToken) { j.Hash = nil },
		"no creation time": func(j *store.JoinToken) { j.CreatedAt = time.Time{} },
		"no expiry":        func(j *store.JoinToken) { j.ExpiresAt = time.Time{} },
		"used":             func(j *store.JoinToken) { j.UsedAt = base() },
		"with a node":      func(j *store.JoinToken) { j.NodeID = "nod_0001" },
	} {
		j := joinToken(4, time.Minute)
		edit(&j)
		wantErr(t, "CreateJoinToken "+name, create(j), store.ErrInvalid)
	}

	// Consumption: once, before expiry, only an existing token.
	at := func(d time.Duration) time.Time { return base().Add(d) }
	got, err := consumeJoinToken(s, j1.Hash, "nod_0001", at(time.Minute))
	if err != nil {
		t.Fatalf("ConsumeJoinToken: %v", err)
	}
	want := storedJoinToken(j1)
	want.UsedAt, want.NodeID = stored(at(time.Minute)), "nod_0001"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ConsumeJoinToken (-want +got):\n%s", diff)
	}
	if got, err := s.GetJoinToken(ctx, j1.ID); err != nil || !cmp.Equal(want, got) {
		t.Errorf("GetJoinToken after consumption = %+v, %v; want %+v", got, err, want)
	}
	_, err = consumeJoinToken(s, j1.Hash, "nod_0002", at(2*time.Minute))
	wantErr(t, "ConsumeJoinToken replayed", err, store.ErrConflict)
	_, err = consumeJoinToken(s, joinTokenHash(9), "nod_0002", at(0))
	wantErr(t, "ConsumeJoinToken of an unknown hash", err, store.ErrNotFound)
	// j2 expires at +1m: consuming at its expiry fails, and leaves it unused.
	_, err = consumeJoinToken(s, j2.Hash, "nod_0002", at(time.Minute))
	wantErr(t, "ConsumeJoinToken at expiry", err, store.ErrConflict)
	if got, err := s.GetJoinToken(ctx, j2.ID); err != nil || !got.UsedAt.IsZero() || got.NodeID != "" {
		t.Errorf("an expired token after a refused consumption: %+v, %v; want unused", got, err)
	}
	for name, args := range map[string]struct {
		hash []byte
		node string
		now  time.Time
	}{
		"no hash": {nil, "nod_0002", at(0)},
		"no node": {j2.Hash, "", at(0)},
		"no now":  {j2.Hash, "nod_0002", time.Time{}},
	} {
		_, err := consumeJoinToken(s, args.hash, args.node, args.now)
		wantErr(t, "ConsumeJoinToken "+name, err, store.ErrInvalid)
	}

	// A consumption in a fn that fails is not kept; inside one fn a second
	// consumption of the token fails and the fn goes on.
	j5 := joinToken(5, time.Hour)
	createJoinTokens(t, s, j5)
	boom := errors.New("boom")
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.ConsumeJoinToken(ctx, j5.Hash, "nod_0005", at(0)); err != nil {
			return err
		}
		_, err := tx.ConsumeJoinToken(ctx, j5.Hash, "nod_0006", at(0))
		wantErr(t, "ConsumeJoinToken twice in one fn", err, store.ErrConflict)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if _, err := consumeJoinToken(s, j5.Hash, "nod_0007", at(0)); err != nil {
		t.Errorf("ConsumeJoinToken of a token a rolled-back fn consumed = %v, want nil", err)
	}

	// Collection: tokens whose expiry is not after before go, used or not.
	collect := func(before time.Time) (int64, error) {
		var n int64
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			var err error
			n, err = tx.CollectJoinTokens(ctx, before)
			return err
		})
		return n, err
	}
	if n, err := collect(at(10 * time.Minute)); err != nil || n != 2 {
		t.Errorf("CollectJoinTokens(+10m) = %d, %v; want 2 (j1 used, j2 unused)", n, err)
	}
	for _, id := range []string{j1.ID, j2.ID} {
		if _, err := s.GetJoinToken(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetJoinToken(%s) after collection = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := s.GetJoinToken(ctx, j5.ID); err != nil {
		t.Errorf("GetJoinToken(%s), not yet expired, after collection: %v", j5.ID, err)
	}
	_, err = collect(time.Time{})
	wantErr(t, "CollectJoinTokens(zero time)", err, store.ErrInvalid)
}

// testJoinTokenRace has 32 callers consume one token at once: exactly one
// succeeds, the others get ErrConflict.
func testJoinTokenRace(t *testing.T, s store.Store) {
	if n := raceJoinToken(t, []store.Store{s}, 32); n != 1 {
		t.Errorf("%d of 32 concurrent consumptions of one join token succeeded, want exactly 1", n)
	}
}

// raceJoinToken creates a join token, has n goroutines, spread over the
// replicas, consume it, and reports how many succeeded. Any error but
// ErrConflict fails t, as does a token that does not name the winner.
func raceJoinToken(t *testing.T, replicas []store.Store, n int) int {
	t.Helper()
	j := joinToken(1, time.Hour)
	createJoinTokens(t, replicas[0], j)
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		won    atomic.Int32
		winner atomic.Value
	)
	for i := range n {
		s := replicas[i%len(replicas)]
		wg.Go(func() {
			<-start
			node := fmt.Sprintf("nod_%04d", i)
			_, err := consumeJoinToken(s, j.Hash, node, base())
			switch {
			case err == nil:
				won.Add(1)
				winner.Store(node)
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("ConsumeJoinToken %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	got, err := replicas[len(replicas)-1].GetJoinToken(context.Background(), j.ID)
	if err != nil {
		t.Fatalf("GetJoinToken: %v", err)
	}
	if w, _ := winner.Load().(string); won.Load() == 1 && got.NodeID != w {
		t.Errorf("the token names node %q, but %q won", got.NodeID, w)
	}
	return int(won.Load())
}

func nodeID(i int) string { return fmt.Sprintf("nod_%04d", i) }

// newNode returns node i attested at base().
func newNode(i int) store.Node {
	return store.Node{
		ID:                nodeID(i),
		SPIFFEID:          "spiffe://example.org/node/" + nodeID(i),
		AttestationMethod: "join_token",
		AttestedAt:        base(),
		LastSeenAt:        base(),
		SVIDSerial:        fmt.Sprintf("%x", 0xa000+i),
		SVIDKeyID:         "sgk_ca1",
		SVIDExpiresAt:     base().Add(time.Hour),
	}
}

// storedNode is n as the store returns it after its first write.
func storedNode(n store.Node) store.Node {
	n.AttestedAt, n.LastSeenAt, n.SVIDExpiresAt = stored(n.AttestedAt), stored(n.LastSeenAt), stored(n.SVIDExpiresAt)
	n.EvictedAt = stored(n.EvictedAt)
	n.Version = 1
	return n
}

func createNodes(t *testing.T, s store.Store, ns ...store.Node) {
	t.Helper()
	createAll(t, s, store.Tx.CreateNode, ns...)
}

func updateNode(s store.Store, id string, fn func(store.Node) (store.Node, error)) (store.Node, error) {
	return inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Node, error) { return tx.UpdateNode(ctx, id, fn) })
}

func testNodes(t *testing.T, s store.Store) {
	ctx := context.Background()
	n1 := newNode(1)
	var created store.Node
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		created, err = tx.CreateNode(ctx, n1)
		return err
	})
	if diff := cmp.Diff(storedNode(n1), created); diff != "" {
		t.Errorf("CreateNode (-want +got):\n%s", diff)
	}
	got, err := s.GetNode(ctx, n1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(storedNode(n1), got); diff != "" {
		t.Errorf("GetNode (-want +got):\n%s", diff)
	}
	if got.State() != store.NodeActive || got.AttestedAt.Location() != time.UTC {
		t.Errorf("GetNode: state %s, time zone %s; want active, UTC", got.State(), got.AttestedAt.Location())
	}
	_, err = s.GetNode(ctx, "nod_missing")
	wantErr(t, "GetNode of an unknown id", err, store.ErrNotFound)

	create := func(n store.Node) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateNode(ctx, n)
			return err
		})
	}
	sameID, sameSPIFFE := newNode(2), newNode(3)
	sameID.ID, sameSPIFFE.SPIFFEID = n1.ID, n1.SPIFFEID
	wantErr(t, "CreateNode with a taken id", create(sameID), store.ErrAlreadyExists)
	wantErr(t, "CreateNode with a taken SPIFFE ID", create(sameSPIFFE), store.ErrAlreadyExists)
	for name, edit := range map[string]func(*store.Node){
		"no id":               func(n *store.Node) { n.ID = "" },
		"no SPIFFE ID":        func(n *store.Node) { n.SPIFFEID = "" },
		"no method":           func(n *store.Node) { n.AttestationMethod = "" },
		"no attestation time": func(n *store.Node) { n.AttestedAt = time.Time{} },
		"no last seen time":   func(n *store.Node) { n.LastSeenAt = time.Time{} },
		"no serial":           func(n *store.Node) { n.SVIDSerial = "" },
		"no CA key":           func(n *store.Node) { n.SVIDKeyID = "" },
		"no SVID expiry":      func(n *store.Node) { n.SVIDExpiresAt = time.Time{} },
	} {
		n := newNode(4)
		edit(&n)
		wantErr(t, "CreateNode "+name, create(n), store.ErrInvalid)
	}

	// An update changes the mutable fields, keeps the others and bumps
	// the version.
	renewed, err := updateNode(s, n1.ID, func(n store.Node) (store.Node, error) {
		n.ID, n.SPIFFEID, n.AttestationMethod = "nod_other", "spiffe://example.org/node/other", "other"
		n.AttestedAt = base().Add(-time.Hour)
		n.Version = 99
		n.LastSeenAt, n.SVIDSerial, n.SVIDKeyID = base().Add(30*time.Minute), "b001", "sgk_ca2"
		n.SVIDExpiresAt = base().Add(90 * time.Minute)
		return n, nil
	})
	if err != nil {
		t.Fatalf("UpdateNode: %v", err)
	}
	want := storedNode(n1)
	want.LastSeenAt, want.SVIDSerial, want.SVIDKeyID = stored(base().Add(30*time.Minute)), "b001", "sgk_ca2"
	want.SVIDExpiresAt, want.Version = stored(base().Add(90*time.Minute)), 2
	if diff := cmp.Diff(want, renewed); diff != "" {
		t.Errorf("UpdateNode (-want +got):\n%s", diff)
	}
	evicted, err := updateNode(s, n1.ID, func(n store.Node) (store.Node, error) {
		n.EvictedAt, n.EvictedBy = base().Add(time.Hour), "adm_test"
		return n, nil
	})
	if err != nil || evicted.State() != store.NodeEvicted || evicted.EvictedBy != "adm_test" ||
		!evicted.EvictedAt.Equal(stored(base().Add(time.Hour))) || evicted.Version != 3 {
		t.Errorf("UpdateNode (evict) = %+v, %v", evicted, err)
	}
	boom := errors.New("boom")
	if _, err := updateNode(s, n1.ID, func(store.Node) (store.Node, error) { return store.Node{}, boom }); err != boom { //nolint:errorlint // returned unchanged
		t.Errorf("UpdateNode with a failing fn = %v, want boom unchanged", err)
	}
	_, err = updateNode(s, n1.ID, func(n store.Node) (store.Node, error) { n.SVIDSerial = ""; return n, nil })
	wantErr(t, "UpdateNode clearing the serial", err, store.ErrInvalid)
	_, err = updateNode(s, "nod_missing", func(n store.Node) (store.Node, error) { return n, nil })
	wantErr(t, "UpdateNode of an unknown id", err, store.ErrNotFound)
	if got, _ := s.GetNode(ctx, n1.ID); got.Version != 3 {
		t.Errorf("after refused updates the node is at version %d, want 3", got.Version)
	}
}

func testNodeList(t *testing.T, s store.Store) {
	ctx := context.Background()
	var all, active, evicted []string
	var ns []store.Node
	for i := 7; i >= 1; i-- { // created out of id order: the list sorts
		n := newNode(i)
		if i%3 == 0 {
			n.EvictedAt, n.EvictedBy = base(), "adm_test"
		}
		ns = append(ns, n)
	}
	createNodes(t, s, ns...)
	for i := 1; i <= 7; i++ {
		all = append(all, nodeID(i))
		if i%3 == 0 {
			evicted = append(evicted, nodeID(i))
		} else {
			active = append(active, nodeID(i))
		}
	}
	for _, size := range []int{1, 2, 3, 7, 8} {
		for name, tc := range map[string]struct {
			f    store.NodeFilter
			want []string
		}{
			"all":     {store.NodeFilter{}, all},
			"active":  {store.NodeFilter{State: store.NodeActive}, active},
			"evicted": {store.NodeFilter{State: store.NodeEvicted}, evicted},
		} {
			got := walkItems(t, "ListNodes "+name, size, func(p store.Page) ([]store.Node, string, error) {
				return s.ListNodes(ctx, tc.f, p)
			}, nodeKey)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ListNodes %s size %d (-want +got):\n%s", name, size, diff)
			}
		}
	}
	_, _, err := s.ListNodes(ctx, store.NodeFilter{State: "gone"}, store.Page{})
	wantErr(t, "ListNodes with an unknown state", err, store.ErrInvalid)
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, tok := range []string{"not base64 !!", enc("nodes:"), enc("agents:" + nodeID(1))} {
		_, _, err := s.ListNodes(ctx, store.NodeFilter{}, store.Page{PageToken: tok})
		wantErr(t, fmt.Sprintf("ListNodes(token %q)", tok), err, store.ErrInvalid, store.ErrBadPageToken)
	}
}

// testNodeConcurrentCAS has 16 callers update one node at once: every
// update lands, serialised.
func testNodeConcurrentCAS(t *testing.T, s store.Store) {
	createNodes(t, s, newNode(1))
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := updateNode(s, nodeID(1), func(nd store.Node) (store.Node, error) {
				nd.LastSeenAt = nd.LastSeenAt.Add(time.Second)
				nd.SVIDSerial = fmt.Sprintf("%x", i+1)
				return nd, nil
			})
			if err != nil {
				t.Errorf("UpdateNode %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetNode(context.Background(), nodeID(1))
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != n+1 || !got.LastSeenAt.Equal(stored(base().Add(n*time.Second))) {
		t.Errorf("after %d concurrent updates: version %d, last seen %v; want %d, +%ds", n, got.Version, got.LastSeenAt, n+1, n)
	}
}

// testJoinTokenList lists join tokens in every state, paged and filtered:
// a spend of an unused token's id in store.JoinTokenSpendNS makes it
// revoked, whatever the spend's expiry, until the spend is collected.
func testJoinTokenList(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := func(d time.Duration) time.Time { return base().Add(d) }
	ttl := map[int]time.Duration{1: 10 * time.Minute, 2: 10 * time.Minute, 3: time.Minute, 4: time.Hour,
		5: time.Minute, 6: time.Hour, 7: time.Hour}
	for i := 7; i >= 1; i-- { // created out of id order: the list sorts
		createJoinTokens(t, s, joinToken(i, ttl[i]))
	}
	spend := func(ns string, i int, until time.Time) {
		t.Helper()
		if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.UseOnce(ctx, ns, joinToken(i, 0).ID, at(0), until)
		}); err != nil {
			t.Fatalf("UseOnce(%s, %d): %v", ns, i, err)
		}
	}
	for _, i := range []int{1, 6} { // used; 6 spent too, as attestation does
		if _, err := consumeJoinToken(s, joinTokenHash(i), nodeID(i), at(30*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	spend(store.JoinTokenSpendNS, 6, at(time.Hour))
	spend(store.JoinTokenSpendNS, 2, at(11*time.Minute))
	spend(store.JoinTokenSpendNS, 5, at(2*time.Minute)) // revoked, then expired: still revoked
	spend("other-ns", 7, at(time.Hour))                 // another namespace: still unused
	now := at(5 * time.Minute)
	states := map[store.JoinTokenState][]string{
		store.JoinTokenUsed:    {joinToken(1, 0).ID, joinToken(6, 0).ID},
		store.JoinTokenRevoked: {joinToken(2, 0).ID, joinToken(5, 0).ID},
		store.JoinTokenExpired: {joinToken(3, 0).ID},
		store.JoinTokenUnused:  {joinToken(4, 0).ID, joinToken(7, 0).ID},
	}
	var all []string
	for i := 1; i <= 7; i++ {
		all = append(all, joinToken(i, 0).ID)
	}
	key := func(j store.ListedJoinToken) string { return j.ID }
	for _, size := range []int{1, 2, 3, 7, 8} {
		got := walkItems(t, "ListJoinTokens", size, func(p store.Page) ([]store.ListedJoinToken, string, error) {
			return s.ListJoinTokens(ctx, store.JoinTokenFilter{Now: now}, p)
		}, key)
		if diff := cmp.Diff(all, got); diff != "" {
			t.Errorf("ListJoinTokens size %d (-want +got):\n%s", size, diff)
		}
		for state, want := range states {
			got := walkItems(t, "ListJoinTokens "+string(state), size, func(p store.Page) ([]store.ListedJoinToken, string, error) {
				return s.ListJoinTokens(ctx, store.JoinTokenFilter{Now: now, State: state}, p)
			}, key)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ListJoinTokens %s size %d (-want +got):\n%s", state, size, diff)
			}
		}
	}
	// Whole records: no hash, the node that used a token.
	items, _, err := s.ListJoinTokens(ctx, store.JoinTokenFilter{Now: now}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	used := storedJoinToken(joinToken(1, ttl[1]))
	used.Hash, used.UsedAt, used.NodeID = nil, stored(at(30*time.Second)), nodeID(1)
	unused := storedJoinToken(joinToken(4, ttl[4]))
	unused.Hash = nil
	want := []store.ListedJoinToken{{JoinToken: used, State: store.JoinTokenUsed}, {JoinToken: unused, State: store.JoinTokenUnused}}
	if diff := cmp.Diff(want, []store.ListedJoinToken{items[0], items[3]}); diff != "" {
		t.Errorf("ListJoinTokens items 1 and 4 (-want +got):\n%s", diff)
	}
	// Before its expiry token 3 is unused; once its spend is collected,
	// token 5 reads expired.
	got := walkItems(t, "ListJoinTokens unused at 0", 8, func(p store.Page) ([]store.ListedJoinToken, string, error) {
		return s.ListJoinTokens(ctx, store.JoinTokenFilter{Now: at(0), State: store.JoinTokenUnused}, p)
	}, key)
	if diff := cmp.Diff([]string{joinToken(3, 0).ID, joinToken(4, 0).ID, joinToken(7, 0).ID}, got); diff != "" {
		t.Errorf("ListJoinTokens unused at base (-want +got):\n%s", diff)
	}
	if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.CollectTokens(ctx, now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got = walkItems(t, "ListJoinTokens expired after collection", 8, func(p store.Page) ([]store.ListedJoinToken, string, error) {
		return s.ListJoinTokens(ctx, store.JoinTokenFilter{Now: now, State: store.JoinTokenExpired}, p)
	}, key)
	if diff := cmp.Diff([]string{joinToken(3, 0).ID, joinToken(5, 0).ID}, got); diff != "" {
		t.Errorf("ListJoinTokens expired after the spends' collection (-want +got):\n%s", diff)
	}

	_, _, err = s.ListJoinTokens(ctx, store.JoinTokenFilter{Now: now, State: "gone"}, store.Page{})
	wantErr(t, "ListJoinTokens with an unknown state", err, store.ErrInvalid)
	_, _, err = s.ListJoinTokens(ctx, store.JoinTokenFilter{}, store.Page{})
	wantErr(t, "ListJoinTokens without now", err, store.ErrInvalid)
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, tok := range []string{"not base64 !!", enc("join-tokens:"), enc("nodes:" + joinToken(1, 0).ID)} {
		_, _, err := s.ListJoinTokens(ctx, store.JoinTokenFilter{Now: now}, store.Page{PageToken: tok})
		wantErr(t, fmt.Sprintf("ListJoinTokens(token %q)", tok), err, store.ErrInvalid, store.ErrBadPageToken)
	}
}
