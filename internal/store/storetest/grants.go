package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func grantID(i int) string { return fmt.Sprintf("grt_%04d", i) }

// newGrant is grant i of agent a for subject sub, expiring a day after
// base().
func newGrant(i, agent int, sub string) store.Grant {
	return store.Grant{
		ID:                 grantID(i),
		SubjectIssuer:      "https://idp.example.com",
		Subject:            sub,
		SubjectEmail:       sub + "@example.com",
		AgentID:            agentID(agent),
		Scopes:             []string{"travel:book", "travel:read"},
		ActionClasses:      []string{"read"},
		Audiences:          []string{"https://api.example.org"},
		ExpiresAt:          base().Add(24 * time.Hour),
		MaxDepth:           3,
		AllowSubdelegation: i%2 == 0,
		CreatedByType:      "admin",
		CreatedBy:          "adm_test",
		CreatedAt:          base(),
	}
}

// storedGrant is g as the store returns it after creation.
func storedGrant(g store.Grant) store.Grant {
	g.ExpiresAt, g.CreatedAt, g.RevokedAt = stored(g.ExpiresAt), stored(g.CreatedAt), stored(g.RevokedAt)
	if g.Version == 0 {
		g.Version = 1
	}
	return g
}

func createGrants(t *testing.T, s store.Store, gs ...store.Grant) {
	t.Helper()
	createAll(t, s, store.Tx.CreateGrant, gs...)
}

func updateGrant(s store.Store, id string, fn func(store.Grant) (store.Grant, error)) (store.Grant, error) {
	return inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Grant, error) { return tx.UpdateGrant(ctx, id, fn) })
}

func listGrantIDs(t *testing.T, s store.Store, f store.GrantFilter, size int) []string {
	t.Helper()
	return walkItems(t, fmt.Sprintf("ListGrants(%+v)", f), size, func(p store.Page) ([]store.Grant, string, error) {
		return s.ListGrants(context.Background(), f, p)
	}, grantKey)
}

func testGrants(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)), newAgent(2, ownerID(1)))

	g1 := newGrant(1, 1, "alice")
	g1.SubjectEmail = ""
	g1.Scopes, g1.ActionClasses, g1.Audiences = nil, nil, nil
	g2 := newGrant(2, 2, "alice")
	g3 := newGrant(3, 1, "bob")
	g3.SubjectIssuer = "https://other.example.com"
	g3.ExpiresAt = base().Add(time.Hour)
	createGrants(t, s, g3, g1, g2) // not in id order: lists sort

	got, err := s.GetGrant(ctx, g2.ID)
	if err != nil {
		t.Fatalf("GetGrant: %v", err)
	}
	if diff := cmp.Diff(storedGrant(g2), got); diff != "" {
		t.Errorf("GetGrant (-want +got):\n%s", diff)
	}
	if got.ExpiresAt.Location() != time.UTC || got.CreatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("grant times = %v, %v; want UTC at µs", got.ExpiresAt, got.CreatedAt)
	}
	if got, err := s.GetGrant(ctx, g1.ID); err != nil || got.Scopes != nil || got.Audiences != nil || got.SubjectEmail != "" {
		t.Errorf("GetGrant of a grant with empty lists = %+v, %v; want nil lists", got, err)
	}
	_, err = s.GetGrant(ctx, grantID(9))
	wantErr(t, "GetGrant of a missing grant", err, store.ErrNotFound)

	// Revoke g1; g3 expires an hour after base.
	revoked, err := updateGrant(s, g1.ID, func(g store.Grant) (store.Grant, error) {
		g.RevokedAt, g.RevokedBy, g.RevokeReason = base().Add(time.Minute), "adm_2", "left"
		g.Subject, g.AgentID, g.Scopes = "mallory", agentID(2), []string{"all"} // ignored: only revocation changes
		return g, nil
	})
	if err != nil {
		t.Fatalf("UpdateGrant: %v", err)
	}
	want := storedGrant(g1)
	want.RevokedAt, want.RevokedBy, want.RevokeReason, want.Version = stored(base().Add(time.Minute)), "adm_2", "left", 2
	if diff := cmp.Diff(want, revoked); diff != "" {
		t.Errorf("UpdateGrant (-want +got):\n%s", diff)
	}

	for name, tc := range map[string]struct {
		f    store.GrantFilter
		want []string
	}{
		"all":                {store.GrantFilter{}, []string{g1.ID, g2.ID, g3.ID}},
		"agent 1":            {store.GrantFilter{AgentID: agentID(1)}, []string{g1.ID, g3.ID}},
		"alice":              {store.GrantFilter{Subject: "alice"}, []string{g1.ID, g2.ID}},
		"alice at idp":       {store.GrantFilter{Subject: "alice", SubjectIssuer: g1.SubjectIssuer}, []string{g1.ID, g2.ID}},
		"bob at idp":         {store.GrantFilter{Subject: "bob", SubjectIssuer: g1.SubjectIssuer}, nil},
		"issuer":             {store.GrantFilter{SubjectIssuer: g3.SubjectIssuer}, []string{g3.ID}},
		"active at base":     {store.GrantFilter{ActiveAt: base()}, []string{g2.ID, g3.ID}},
		"active at +1h":      {store.GrantFilter{ActiveAt: base().Add(time.Hour)}, []string{g2.ID}}, // expiry not after: not active
		"agent 1 active":     {store.GrantFilter{AgentID: agentID(1), ActiveAt: base()}, []string{g3.ID}},
		"alice agent 2 live": {store.GrantFilter{AgentID: agentID(2), Subject: "alice", ActiveAt: base()}, []string{g2.ID}},
		"email in any case":  {store.GrantFilter{SubjectEmail: "ALICE@Example.COM"}, []string{g2.ID}},
		"email under issuer": {store.GrantFilter{SubjectEmail: "bob@example.com", SubjectIssuer: g3.SubjectIssuer}, []string{g3.ID}},
		"email live":         {store.GrantFilter{SubjectEmail: "bob@example.com", ActiveAt: base().Add(time.Hour)}, nil},
		"no such email":      {store.GrantFilter{SubjectEmail: "carol@example.com"}, nil},
		"non-ASCII kept":     {store.GrantFilter{SubjectEmail: "ALİCE@example.com"}, nil},
	} {
		for _, size := range []int{1, 2, 10} {
			if diff := cmp.Diff(tc.want, listGrantIDs(t, s, tc.f, size)); diff != "" {
				t.Errorf("ListGrants %s, page size %d (-want +got):\n%s", name, size, diff)
			}
		}
	}
	_, _, err = s.ListGrants(ctx, store.GrantFilter{}, store.Page{PageToken: "bm9kZXM6eA"}) //nolint:gosec // G101: a page token, not a credential
	wantErr(t, "ListGrants with another list's token", err, store.ErrInvalid, store.ErrBadPageToken)

	create := func(g store.Grant) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateGrant(ctx, g)
			return err
		})
	}
	wantErr(t, "CreateGrant of a taken id", create(newGrant(2, 1, "carol")), store.ErrAlreadyExists)
	for name, edit := range map[string]func(*store.Grant){
		"no id":         func(g *store.Grant) { g.ID = "" },
		"no issuer":     func(g *store.Grant) { g.SubjectIssuer = "" },
		"no subject":    func(g *store.Grant) { g.Subject = "" },
		"no agent":      func(g *store.Grant) { g.AgentID = "" },
		"no expiry":     func(g *store.Grant) { g.ExpiresAt = time.Time{} },
		"no creator":    func(g *store.Grant) { g.CreatedBy = "" },
		"no time":       func(g *store.Grant) { g.CreatedAt = time.Time{} },
		"depth 0":       func(g *store.Grant) { g.MaxDepth = 0 },
		"unknown agent": func(g *store.Grant) { g.AgentID = agentID(9) },
	} {
		g := newGrant(7, 1, "carol")
		edit(&g)
		wantErr(t, "CreateGrant "+name, create(g), store.ErrInvalid)
	}
	_, err = updateGrant(s, grantID(9), func(g store.Grant) (store.Grant, error) { return g, nil })
	wantErr(t, "UpdateGrant of a missing grant", err, store.ErrNotFound)
	boom := errors.New("boom")
	if _, err := updateGrant(s, g2.ID, func(store.Grant) (store.Grant, error) { return store.Grant{}, boom }); !errors.Is(err, boom) {
		t.Errorf("UpdateGrant with a failing fn = %v, want boom unchanged", err)
	}
	if got := listGrantIDs(t, s, store.GrantFilter{}, 10); len(got) != 3 {
		t.Errorf("after refused writes: %v, want the three grants", got)
	}
}

func testGrantConcurrentRevoke(t *testing.T, s store.Store) {
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)))
	createGrants(t, s, newGrant(1, 1, "alice"))
	// Revocation is once: every racer checks that the grant is still
	// unrevoked, so exactly one wins.
	errRevoked := errors.New("already revoked")
	const n = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for i := range n {
		wg.Go(func() {
			by := fmt.Sprintf("adm_%d", i)
			_, err := updateGrant(s, grantID(1), func(g store.Grant) (store.Grant, error) {
				if !g.RevokedAt.IsZero() {
					return g, errRevoked
				}
				g.RevokedAt, g.RevokedBy = base().Add(time.Minute), by
				return g, nil
			})
			switch {
			case err == nil:
				mu.Lock()
				wins = append(wins, by)
				mu.Unlock()
			case !errors.Is(err, errRevoked):
				t.Errorf("UpdateGrant %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetGrant(context.Background(), grantID(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(wins) != 1 || got.RevokedBy != wins[0] || got.Version != 2 {
		t.Errorf("%d of %d revocations won (%v); grant revoked by %q at version %d; want one winner, version 2", len(wins), n, wins, got.RevokedBy, got.Version)
	}
}

// exchanged returns the record of token jti issued under grant g to the
// chain (holder first), issued at base()+at and living ttl, descending
// from parent ("" for a root).
func exchanged(jti, g, parent string, at, ttl time.Duration, chain ...string) store.ExchangedToken {
	e := store.ExchangedToken{
		JTI: jti, GrantID: g, AgentID: chain[0], Chain: chain, Subject: "alice",
		IssuedAt: base().Add(at), ExpiresAt: base().Add(at + ttl),
	}
	if parent != "" {
		e.ParentJTI, e.ParentAgentID, e.ParentIssuedAt = parent, chain[len(chain)-1], base()
	}
	return e
}

func recordExchanged(t *testing.T, s store.Store, es ...store.ExchangedToken) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, e := range es {
			if err := tx.RecordExchangedToken(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

func testExchangedTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)), newAgent(2, ownerID(1)), newAgent(3, ownerID(1)), newAgent(10, ownerID(1)))
	createGrants(t, s, newGrant(1, 1, "alice"), newGrant(2, 2, "alice"))

	// root (agent 1, from the person's token) → child (agent 2) → grandchild
	// (agent 3); a second root under grant 2; a short-lived child of root.
	// Agent 10's id contains agent 1's as a prefix: counting by agent must
	// not confuse them.
	a1, a2, a3, a10 := agentID(1), agentID(2), agentID(3), agentID(10)
	root := exchanged("tok_root", grantID(1), "", 0, time.Hour, a1)
	child := exchanged("tok_child", grantID(1), "tok_root", time.Minute, 30*time.Minute, a2, a1)
	grand := exchanged("tok_grand", grantID(1), "tok_child", 2*time.Minute, 10*time.Minute, a3, a2, a1)
	short := exchanged("tok_short", grantID(1), "tok_root", time.Minute, time.Minute, a2, a1)
	other := exchanged("tok_other", grantID(2), "tok_cc", 0, time.Hour, a10)
	other.ParentAgentID = a2
	// A token exchanged from other: suspending agent 2 reaches it too.
	otherChild := exchanged("tok_other_child", grantID(2), "tok_other", time.Minute, time.Hour, a3, a10)
	recordExchanged(t, s, grand, root, other, child, short, otherChild)

	got, err := s.GetExchangedToken(ctx, "tok_grand")
	if err != nil {
		t.Fatalf("GetExchangedToken: %v", err)
	}
	want := grand
	want.IssuedAt, want.ExpiresAt, want.ParentIssuedAt = stored(grand.IssuedAt), stored(grand.ExpiresAt), stored(grand.ParentIssuedAt)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetExchangedToken (-want +got):\n%s", diff)
	}
	if got, err := s.GetExchangedToken(ctx, "tok_root"); err != nil || got.ParentJTI != "" || !got.ParentIssuedAt.IsZero() {
		t.Errorf("GetExchangedToken of a root = %+v, %v; want no parent", got, err)
	}
	_, err = s.GetExchangedToken(ctx, "tok_missing")
	wantErr(t, "GetExchangedToken of a missing jti", err, store.ErrNotFound)

	count := func(f store.ExchangedTokenFilter) int64 {
		t.Helper()
		n, err := s.CountExchangedTokens(ctx, f)
		if err != nil {
			t.Fatalf("CountExchangedTokens(%+v): %v", f, err)
		}
		return n
	}
	at := base().Add(150 * time.Second) // short has expired
	for name, tc := range map[string]struct {
		f    store.ExchangedTokenFilter
		want int64
	}{
		"grant 1":                {store.ExchangedTokenFilter{GrantID: grantID(1), LiveAt: at}, 3},
		"grant 1 at base":        {store.ExchangedTokenFilter{GrantID: grantID(1), LiveAt: base()}, 4},
		"grant 2":                {store.ExchangedTokenFilter{GrantID: grantID(2), LiveAt: at}, 2},
		"agent 1 in chain":       {store.ExchangedTokenFilter{AgentID: a1, LiveAt: at}, 3},
		"agent 2 and below":      {store.ExchangedTokenFilter{AgentID: a2, LiveAt: at}, 4},
		"agent 10 in chain":      {store.ExchangedTokenFilter{AgentID: a10, LiveAt: at}, 2},
		"agent pattern chars":    {store.ExchangedTokenFilter{AgentID: "agt_%", LiveAt: at}, 0},
		"descendants of root":    {store.ExchangedTokenFilter{AncestorJTI: "tok_root", LiveAt: at}, 2},
		"descendants at base":    {store.ExchangedTokenFilter{AncestorJTI: "tok_root", LiveAt: base()}, 3},
		"descendants of child":   {store.ExchangedTokenFilter{AncestorJTI: "tok_child", LiveAt: at}, 1},
		"descendants of grand":   {store.ExchangedTokenFilter{AncestorJTI: "tok_grand", LiveAt: at}, 0},
		"descendants of foreign": {store.ExchangedTokenFilter{AncestorJTI: "tok_cc", LiveAt: at}, 2},
		"all expired":            {store.ExchangedTokenFilter{GrantID: grantID(1), LiveAt: base().Add(2 * time.Hour)}, 0},
	} {
		if got := count(tc.f); got != tc.want {
			t.Errorf("CountExchangedTokens %s = %d, want %d", name, got, tc.want)
		}
	}
	for name, f := range map[string]store.ExchangedTokenFilter{
		"no selector": {LiveAt: at},
		"two":         {GrantID: grantID(1), AgentID: a1, LiveAt: at},
		"no time":     {GrantID: grantID(1)},
	} {
		_, err := s.CountExchangedTokens(ctx, f)
		wantErr(t, "CountExchangedTokens "+name, err, store.ErrInvalid)
	}

	record := func(e store.ExchangedToken) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.RecordExchangedToken(ctx, e) })
	}
	wantErr(t, "RecordExchangedToken of a recorded jti", record(exchanged("tok_root", grantID(2), "", 0, time.Hour, a2)), store.ErrAlreadyExists)
	for name, edit := range map[string]func(*store.ExchangedToken){
		"no jti":        func(e *store.ExchangedToken) { e.JTI = "" },
		"no grant":      func(e *store.ExchangedToken) { e.GrantID = "" },
		"no agent":      func(e *store.ExchangedToken) { e.AgentID = "" },
		"no chain":      func(e *store.ExchangedToken) { e.Chain = nil },
		"empty in":      func(e *store.ExchangedToken) { e.Chain = []string{a1, ""} },
		"no subject":    func(e *store.ExchangedToken) { e.Subject = "" },
		"no issue time": func(e *store.ExchangedToken) { e.IssuedAt = time.Time{} },
		"no expiry":     func(e *store.ExchangedToken) { e.ExpiresAt = time.Time{} },
		"unknown grant": func(e *store.ExchangedToken) { e.GrantID = grantID(9) },
	} {
		e := exchanged("tok_new", grantID(1), "", 0, time.Hour, a1)
		edit(&e)
		wantErr(t, "RecordExchangedToken "+name, record(e), store.ErrInvalid)
	}

	// Collect at +31m: short (+2m), grand (+12m) and child (+31m, not
	// after now) go.
	var n int64
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		n, err = tx.CollectExchangedTokens(ctx, base().Add(31*time.Minute))
		return err
	})
	if n != 3 {
		t.Errorf("CollectExchangedTokens removed %d rows, want 3", n)
	}
	for jti, want := range map[string]bool{"tok_root": true, "tok_child": false, "tok_short": false, "tok_grand": false, "tok_other": true} {
		_, err := s.GetExchangedToken(ctx, jti)
		if got := err == nil; got != want {
			t.Errorf("after collection GetExchangedToken(%s) = %v, want present %v", jti, err, want)
		}
	}
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.CollectExchangedTokens(ctx, time.Time{})
		return err
	})
	wantErr(t, "CollectExchangedTokens at the zero time", err, store.ErrInvalid)
}
