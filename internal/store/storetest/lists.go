package storetest

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// walk pages through a list with the given page size and returns every key
// in order, failing on an empty non-final page or an endless walk.
func walk(t *testing.T, name string, size int, list func(p store.Page) ([]string, string, error)) []string {
	t.Helper()
	var all []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("%s: more than 1000 pages", name)
		}
		keys, next, err := list(store.Page{PageSize: size, PageToken: token})
		if err != nil {
			t.Fatalf("%s page %d: %v", name, pages, err)
		}
		if len(keys) > size {
			t.Fatalf("%s page %d: %d items, page size %d", name, pages, len(keys), size)
		}
		if next != "" && len(keys) != size {
			t.Fatalf("%s page %d: %d items and a next page", name, pages, len(keys))
		}
		all = append(all, keys...)
		if next == "" {
			return all
		}
		token = next
	}
}

// walkItems is walk over a list of items, each keyed by key.
func walkItems[T any](t *testing.T, name string, size int, list func(p store.Page) ([]T, string, error), key func(T) string) []string {
	t.Helper()
	return walk(t, name, size, func(p store.Page) ([]string, string, error) {
		items, next, err := list(p)
		var keys []string
		for _, item := range items {
			keys = append(keys, key(item))
		}
		return keys, next, err
	})
}

// Keys of the listed records.
func ownerKey(o store.Owner) string                 { return o.ID }
func agentKey(a store.Agent) string                 { return a.ID }
func adminTokenKey(t store.AdminToken) string       { return t.ID }
func auditKey(r store.AuditRecord) string           { return fmt.Sprint(r.Seq) }
func approvalKey(a store.Approval) string           { return a.ID }
func grantKey(g store.Grant) string                 { return g.ID }
func nodeKey(n store.Node) string                   { return n.ID }
func credentialKey(c store.IssuedCredential) string { return c.Kind + "/" + c.ID }

func testPagination(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 23
	var (
		owners []store.Owner
		agents []store.Agent
		wantO  []string
		wantA  []string
		wantT  []string
		wantE  []string
	)
	// Create in an order other than id order: the lists must sort.
	for i := n; i >= 1; i-- {
		owners = append(owners, newOwner(i))
	}
	createOwners(t, s, owners...)
	for i := n; i >= 1; i-- {
		agents = append(agents, newAgent(i, ownerID(1+i%3)))
	}
	createAgents(t, s, agents...)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for i := n; i >= 1; i-- {
			if _, err := tx.CreateAdminToken(ctx, newToken(i)); err != nil {
				return err
			}
		}
		return nil
	})
	var events []store.AuditRecord
	for range n {
		events = append(events, store.AuditRecord{Family: "admin"})
	}
	appendAudit(t, s, events...)
	for i := 1; i <= n; i++ {
		wantO = append(wantO, ownerID(i))
		wantA = append(wantA, agentID(i))
		wantT = append(wantT, newToken(i).ID)
		wantE = append(wantE, fmt.Sprint(i))
	}

	for _, size := range []int{1, 5, n, n + 1, 0} {
		gotA := walkItems(t, "ListAgents", store.Page{PageSize: size}.Size(), func(p store.Page) ([]store.Agent, string, error) {
			if size == 0 {
				p.PageSize = 0
			}
			return s.ListAgents(ctx, store.AgentFilter{}, p)
		}, agentKey)
		if diff := cmp.Diff(wantA, gotA); diff != "" {
			t.Errorf("ListAgents size %d (-want +got):\n%s", size, diff)
		}
		gotO := walkItems(t, "ListOwners", store.Page{PageSize: size}.Size(), func(p store.Page) ([]store.Owner, string, error) {
			if size == 0 {
				p.PageSize = 0
			}
			return s.ListOwners(ctx, store.OwnerFilter{}, p)
		}, ownerKey)
		if diff := cmp.Diff(wantO, gotO); diff != "" {
			t.Errorf("ListOwners size %d (-want +got):\n%s", size, diff)
		}
		gotT := walkItems(t, "ListAdminTokens", store.Page{PageSize: size}.Size(), func(p store.Page) ([]store.AdminToken, string, error) {
			if size == 0 {
				p.PageSize = 0
			}
			return s.ListAdminTokens(ctx, p)
		}, adminTokenKey)
		if diff := cmp.Diff(wantT, gotT); diff != "" {
			t.Errorf("ListAdminTokens size %d (-want +got):\n%s", size, diff)
		}
		gotE := walkItems(t, "ListAudit", store.Page{PageSize: size}.Size(), func(p store.Page) ([]store.AuditRecord, string, error) {
			if size == 0 {
				p.PageSize = 0
			}
			return s.ListAudit(ctx, store.AuditQuery{}, p)
		}, auditKey)
		if diff := cmp.Diff(wantE, gotE); diff != "" {
			t.Errorf("ListAudit size %d (-want +got):\n%s", size, diff)
		}
	}

	// A filter is kept across pages.
	gotA := walkItems(t, "ListAgents by owner", 2, func(p store.Page) ([]store.Agent, string, error) {
		return s.ListAgents(ctx, store.AgentFilter{OwnerID: ownerID(1)}, p)
	}, agentKey)
	var wantByOwner []string
	for i := 1; i <= n; i++ {
		if 1+i%3 == 1 {
			wantByOwner = append(wantByOwner, agentID(i))
		}
	}
	if diff := cmp.Diff(wantByOwner, gotA); diff != "" {
		t.Errorf("ListAgents by owner (-want +got):\n%s", diff)
	}

	// Oversized pages are clamped.
	as, _, err := s.ListAgents(ctx, store.AgentFilter{}, store.Page{PageSize: store.MaxPageSize * 10})
	if err != nil || len(as) != n {
		t.Errorf("ListAgents(huge page) = %d agents, %v; want %d", len(as), err, n)
	}
}

func testBadPageToken(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1), newOwner(2))
	_, ownerToken, err := s.ListOwners(ctx, store.OwnerFilter{}, store.Page{PageSize: 1})
	if err != nil || ownerToken == "" {
		t.Fatalf("ListOwners: token %q, %v", ownerToken, err)
	}
	bad := []string{
		"not base64 !!",
		base64.RawURLEncoding.EncodeToString([]byte("garbage")),
		base64.RawURLEncoding.EncodeToString([]byte{0xff, 0x00, 0x13}),
		ownerToken + "x",
	}
	lists := map[string]func(token string) error{
		"ListAgents": func(tok string) error {
			_, _, err := s.ListAgents(ctx, store.AgentFilter{}, store.Page{PageToken: tok})
			return err
		},
		"ListAdminTokens": func(tok string) error {
			_, _, err := s.ListAdminTokens(ctx, store.Page{PageToken: tok})
			return err
		},
		"ListAudit": func(tok string) error {
			_, _, err := s.ListAudit(ctx, store.AuditQuery{}, store.Page{PageToken: tok})
			return err
		},
	}
	for name, list := range lists {
		for _, tok := range append(slices.Clone(bad), ownerToken) { // another list's token
			wantErr(t, fmt.Sprintf("%s(token %q)", name, tok), list(tok), store.ErrInvalid, store.ErrBadPageToken)
		}
	}
	for _, tok := range bad {
		_, _, err := s.ListOwners(ctx, store.OwnerFilter{}, store.Page{PageToken: tok})
		wantErr(t, fmt.Sprintf("ListOwners(token %q)", tok), err, store.ErrInvalid, store.ErrBadPageToken)
	}
}

func testTimeRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	in := base() // IST with nanoseconds
	if in.Location() == time.UTC || in.Nanosecond()%1000 == 0 {
		t.Fatal("test needs a non-UTC time with sub-microsecond digits")
	}
	checkTime := func(what string, got, want time.Time) {
		t.Helper()
		if !got.Equal(want) || got.Location() != time.UTC || got.Nanosecond()%1000 != 0 {
			t.Errorf("%s = %v (%s), want %v in UTC at µs", what, got, got.Location(), want)
		}
	}
	want := stored(in)
	o := newOwner(1)
	o.CreatedAt, o.UpdatedAt = in, time.Time{}
	a := newAgent(1, o.ID)
	a.CreatedAt, a.ExpiresAt, a.UpdatedAt = in, in, time.Time{}
	tok := newToken(1)
	tok.CreatedAt, tok.RevokedAt = in, in
	createOwners(t, s, o)
	createAgents(t, s, a)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.CreateAdminToken(ctx, tok); err != nil {
			return err
		}
		if err := tx.PutCheckpoint(ctx, store.Checkpoint{Seq: 1, Hash: []byte{1}, Time: in, KeyID: "k", Signature: []byte{2}}); err != nil {
			return err
		}
		return tx.CreateAuditKey(ctx, store.AuditKey{ID: "ack_1", Algorithm: "Ed25519", PublicKey: []byte{1}, Sealed: []byte{2}, CreatedAt: in})
	})
	appendAudit(t, s, store.AuditRecord{Time: in})

	gotO, err := s.GetOwner(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkTime("Owner.CreatedAt", gotO.CreatedAt, want)
	if !gotO.UpdatedAt.IsZero() {
		t.Errorf("Owner.UpdatedAt = %v, want zero", gotO.UpdatedAt)
	}
	gotA, err := s.GetAgent(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkTime("Agent.CreatedAt", gotA.CreatedAt, want)
	checkTime("Agent.ExpiresAt", gotA.ExpiresAt, want)
	if !gotA.UpdatedAt.IsZero() {
		t.Errorf("Agent.UpdatedAt = %v, want zero", gotA.UpdatedAt)
	}
	gotT, err := s.GetAdminToken(ctx, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkTime("AdminToken.CreatedAt", gotT.CreatedAt, want)
	checkTime("AdminToken.RevokedAt", gotT.RevokedAt, want)
	if !gotT.ExpiresAt.IsZero() {
		t.Errorf("AdminToken.ExpiresAt = %v, want zero", gotT.ExpiresAt)
	}
	es, _, err := s.ListAudit(ctx, store.AuditQuery{}, store.Page{})
	if err != nil || len(es) != 1 {
		t.Fatalf("ListAudit: %d events, %v", len(es), err)
	}
	checkTime("AuditRecord.Time", es[0].Time, want)
	cs, err := s.ListCheckpoints(ctx, 0)
	if err != nil || len(cs) != 1 {
		t.Fatalf("ListCheckpoints: %d, %v", len(cs), err)
	}
	checkTime("Checkpoint.Time", cs[0].Time, want)
	ks, err := s.ListAuditKeys(ctx)
	if err != nil || len(ks) != 1 {
		t.Fatalf("ListAuditKeys: %d, %v", len(ks), err)
	}
	checkTime("AuditKey.CreatedAt", ks[0].CreatedAt, want)

	// Since/Until compare instants, whatever the zone of the bound.
	for _, q := range []store.AuditQuery{
		{Since: want},
		{Since: want.In(time.FixedZone("X", -7*3600))},
		{Until: want.Add(time.Microsecond)},
		{Since: want, Until: want.Add(time.Microsecond)},
	} {
		es, _, err := s.ListAudit(ctx, q, store.Page{})
		if err != nil || len(es) != 1 {
			t.Errorf("ListAudit(%+v) = %d events, %v; want 1", q, len(es), err)
		}
	}
	for _, q := range []store.AuditQuery{{Until: want}, {Since: want.Add(time.Microsecond)}} {
		es, _, err := s.ListAudit(ctx, q, store.Page{})
		if err != nil || len(es) != 0 {
			t.Errorf("ListAudit(%+v) = %d events, %v; want 0", q, len(es), err)
		}
	}
}
