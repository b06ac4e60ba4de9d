package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// testOwnerUserNameFolds checks that user names are one key under Unicode
// case folding (RFC 7643 §4.1.1: userName is not case-exact), and are kept
// as given.
func testOwnerUserNameFolds(t *testing.T, s store.Store) {
	ctx := context.Background()
	o := newOwner(1)
	o.UserName = "Ǆemal.Straße@Example.ORG" // a title-case digraph and ß
	createOwners(t, s, o)
	for _, ask := range []string{"ǆemal.straße@example.org", "ǅEMAL.STRAßE@EXAMPLE.ORG", o.UserName} {
		got, err := s.GetOwnerByUserName(ctx, ask)
		if err != nil || got.ID != o.ID || got.UserName != o.UserName {
			t.Errorf("GetOwnerByUserName(%q) = %q %q, %v; want %s with the name as given", ask, got.ID, got.UserName, err, o.ID)
		}
	}
	for _, ask := range []string{"", "demal.straße@example.org", "ǆemal.strasse@example.org"} {
		_, err := s.GetOwnerByUserName(ctx, ask)
		wantErr(t, "GetOwnerByUserName("+ask+")", err, store.ErrNotFound)
	}
	other := newOwner(2)
	other.UserName = "ǅEMAL.STRAßE@example.org"
	_, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Owner, error) { return tx.CreateOwner(ctx, other) })
	wantErr(t, "CreateOwner with the user name in another case", err, store.ErrAlreadyExists)
}

// testOwnerFilters checks every OwnerFilter field, alone and together, in
// ListOwners and CountOwners.
func testOwnerFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	o1, o2, o3, o4 := newOwner(1), newOwner(2), newOwner(3), newOwner(4)
	o1.Email = "first@example.org"
	o2.ExternalID = o1.ExternalID
	o3.Kind, o3.UserName = store.OwnerTeam, ""
	o4.State = store.OwnerDeactivated
	createOwners(t, s, o1, o2, o3, o4)
	tests := []struct {
		name string
		f    store.OwnerFilter
		want []string
	}{
		{"none", store.OwnerFilter{}, []string{o1.ID, o2.ID, o3.ID, o4.ID}},
		{"state", store.OwnerFilter{State: store.OwnerDeactivated}, []string{o4.ID}},
		{"kind", store.OwnerFilter{Kind: store.OwnerPerson}, []string{o1.ID, o2.ID, o4.ID}},
		{"id", store.OwnerFilter{ID: o3.ID}, []string{o3.ID}},
		{"email", store.OwnerFilter{Email: o2.Email}, []string{o2.ID}},
		{"user name in another case", store.OwnerFilter{UserName: "OWNER4@EXAMPLE.ORG"}, []string{o4.ID}},
		{"user name is the email of an owner without one", store.OwnerFilter{UserName: "Owner3@example.org"}, []string{o3.ID}},
		{"user name is not the email of an owner with one", store.OwnerFilter{UserName: "first@example.org"}, nil},
		{"external id", store.OwnerFilter{ExternalID: o1.ExternalID}, []string{o1.ID, o2.ID}},
		{"external id is case-exact", store.OwnerFilter{ExternalID: "EXT-1"}, nil},
		{"and", store.OwnerFilter{ExternalID: o1.ExternalID, Email: o2.Email}, []string{o2.ID}},
		{"and, no match", store.OwnerFilter{ID: o1.ID, Email: o2.Email}, nil},
		{"all", store.OwnerFilter{State: store.OwnerActive, Kind: store.OwnerPerson, ID: o1.ID, Email: o1.Email,
			UserName: o1.UserName, ExternalID: o1.ExternalID}, []string{o1.ID}},
	}
	for _, tc := range tests {
		got := walkItems(t, "ListOwners "+tc.name, 1, func(p store.Page) ([]store.Owner, string, error) {
			p.PageSize = 1
			return s.ListOwners(ctx, tc.f, p)
		}, ownerKey)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ListOwners %s (-want +got):\n%s", tc.name, diff)
		}
		n, err := s.CountOwners(ctx, tc.f)
		if err != nil || n != len(tc.want) {
			t.Errorf("CountOwners %s = %d, %v; want %d", tc.name, n, err, len(tc.want))
		}
	}
}

// testOwnerUserNameKeys checks that the userName an owner shows (its user
// name, or its email when it has none: store.OwnerUserNameKey) is unique
// under case folding in both orders, on create and on update, and that
// clearing a user name or an email moves the key with it.
func testOwnerUserNameKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	owner := func(i int, email, userName string) store.Owner {
		o := newOwner(i)
		o.Email, o.UserName = email, userName
		return o
	}
	create := func(o store.Owner) error {
		_, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Owner, error) { return tx.CreateOwner(ctx, o) })
		return err
	}
	change := func(id string, fn func(o *store.Owner)) error {
		_, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Owner, error) {
			return tx.UpdateOwner(ctx, id, func(o store.Owner) (store.Owner, error) { fn(&o); return o, nil })
		})
		return err
	}
	alice := owner(1, "alice@example.org", "") // shows its email
	bob := owner(2, "bob2@example.org", "Bob@Example.org")
	carol := owner(3, "carol@example.org", "carol")
	createOwners(t, s, alice, bob, carol)

	// A user name equal to another owner's shown email, in any case.
	for _, name := range []string{"alice@example.org", "ALICE@Example.ORG"} {
		wantErr(t, "CreateOwner with the user name "+name, create(owner(10, "x10@example.org", name)), store.ErrAlreadyExists)
		wantErr(t, "UpdateOwner to the user name "+name, change(carol.ID, func(o *store.Owner) { o.UserName = name }), store.ErrAlreadyExists)
	}
	// An email equal to another owner's user name, shown because the new
	// owner has no user name; in any case.
	for _, email := range []string{"bob@example.org", "BOB@EXAMPLE.ORG"} {
		wantErr(t, "CreateOwner without a user name and the email "+email, create(owner(11, email, "")), store.ErrAlreadyExists)
		wantErr(t, "UpdateOwner without a user name to the email "+email,
			change(alice.ID, func(o *store.Owner) { o.Email = email }), store.ErrAlreadyExists)
	}
	// An email that is not shown (the owner has a user name) reserves nothing.
	dave := owner(4, "bob@example.org", "dave")
	createOwners(t, s, dave)
	// Clearing dave's user name would show bob's user name: refused.
	wantErr(t, "UpdateOwner clearing a user name onto another's", change(dave.ID, func(o *store.Owner) { o.UserName = "" }), store.ErrAlreadyExists)
	// Clearing carol's falls back to her email.
	if err := change(carol.ID, func(o *store.Owner) { o.UserName = "" }); err != nil {
		t.Fatalf("UpdateOwner clearing a user name: %v", err)
	}
	// Clearing alice's email leaves her no key: her old email is free.
	if err := change(alice.ID, func(o *store.Owner) { o.Email = "" }); err != nil {
		t.Fatalf("UpdateOwner clearing an email: %v", err)
	}
	erin := owner(5, "erin@example.org", "Alice@Example.org")
	createOwners(t, s, erin)
	for _, tc := range []struct{ ask, want string }{
		{"CAROL@example.org", carol.ID}, {"bob@EXAMPLE.org", bob.ID}, {"alice@example.org", erin.ID},
		{"carol", ""}, {"dave", dave.ID}, {"erin@example.org", ""},
	} {
		got, err := s.GetOwnerByUserName(ctx, tc.ask)
		if tc.want == "" {
			wantErr(t, "GetOwnerByUserName("+tc.ask+")", err, store.ErrNotFound)
		} else if err != nil || got.ID != tc.want {
			t.Errorf("GetOwnerByUserName(%q) = %s, %v; want %s", tc.ask, got.ID, err, tc.want)
		}
		n, err := s.CountOwners(ctx, store.OwnerFilter{UserName: tc.ask})
		if want := min(len(tc.want), 1); err != nil || n != want {
			t.Errorf("CountOwners(UserName %q) = %d, %v; want %d", tc.ask, n, err, want)
		}
	}
}

// testOwnerUserNameKeyRace creates, at once, owners with a user name and
// owners without one whose email is that user name in another case:
// exactly one of each pair wins, whichever it is.
func testOwnerUserNameKeyRace(t *testing.T, s store.Store) {
	const rounds = 8
	for r := range rounds {
		var (
			wg   sync.WaitGroup
			wins atomic.Int32
		)
		for j, o := range []store.Owner{newOwner(100 + 2*r), newOwner(101 + 2*r)} {
			if j == 0 {
				o.UserName = fmt.Sprintf("Race%d@Example.org", r)
			} else {
				o.Email, o.UserName = fmt.Sprintf("race%d@example.org", r), ""
			}
			wg.Go(func() {
				_, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Owner, error) { return tx.CreateOwner(ctx, o) })
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, store.ErrAlreadyExists):
					t.Errorf("round %d: CreateOwner %s: %v", r, o.ID, err)
				}
			})
		}
		wg.Wait()
		if got := wins.Load(); got != 1 {
			t.Errorf("round %d: a user name and an equal email created at once: %d won, want 1", r, got)
		}
	}
}
