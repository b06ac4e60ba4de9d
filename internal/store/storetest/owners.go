package storetest

import (
	"context"
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
