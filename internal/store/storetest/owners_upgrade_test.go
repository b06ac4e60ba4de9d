package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/agentid/agentid/internal/store"
)

// TestOwnersUpgradeTo0017 stores three owners under schema 0016 and checks
// that migration 0017 (SCIM user names and external ids, ADR 0023) keeps
// them with both fields empty, that an empty user name is no unique value,
// that the key it computes in SQL for an ASCII email is the one the store
// computes in Go (store.OwnerUserNameKey), that a non-ASCII email gets its
// key at the owner's next update, and that user names are unique under
// case folding after it.
func TestOwnersUpgradeTo0017(t *testing.T) {
	for _, b := range upgradeBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.migrated(t, 16)
			for _, q := range []string{
				`INSERT INTO owners (id, kind, email, subject, display_name, state, version)
					VALUES ('own_1', 'person', 'a@example.org', 'sub-a', 'A', 'active', 1)`,
				`INSERT INTO owners (id, kind, display_name, state, version) VALUES ('own_2', 'team', 'T', 'deactivated', 2)`,
				`INSERT INTO owners (id, kind, email, display_name, state, version)
					VALUES ('own_4', 'person', 'émile@example.org', 'E', 'active', 1)`,
			} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			s := b.store(t)
			got, _, err := s.ListOwners(ctx, store.OwnerFilter{}, store.Page{})
			if err != nil {
				t.Fatalf("ListOwners after the upgrade: %v", err)
			}
			want := []store.Owner{
				{ID: "own_1", Kind: store.OwnerPerson, Email: "a@example.org", Subject: "sub-a", DisplayName: "A",
					State: store.OwnerActive, Version: 1},
				{ID: "own_2", Kind: store.OwnerTeam, DisplayName: "T", State: store.OwnerDeactivated, Version: 2},
				{ID: "own_4", Kind: store.OwnerPerson, Email: "émile@example.org", DisplayName: "E",
					State: store.OwnerActive, Version: 1},
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(store.Owner{}, "CreatedAt", "UpdatedAt")); diff != "" {
				t.Errorf("owners after the upgrade (-want +got):\n%s", diff)
			}
			// The migration's key of an ASCII email (SQL) is the store's
			// (Go): the email is taken as a user name in any case, and
			// found by it.
			wantErr(t, "the email of an owner without a user name, as another's user name, after the upgrade",
				createOwnerWithUserName(s, "own_3", "A@Example.ORG"), store.ErrAlreadyExists)
			for _, ask := range []string{"a@example.org", "A@EXAMPLE.ORG"} {
				if o, err := s.GetOwnerByUserName(ctx, ask); err != nil || o.ID != "own_1" {
					t.Errorf("GetOwnerByUserName(%q) after the upgrade = %s, %v; want own_1", ask, o.ID, err)
				}
			}
			// A non-ASCII email keeps no key until the owner is updated;
			// then the store's key applies.
			if _, err := s.GetOwnerByUserName(ctx, "ÉMILE@example.org"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetOwnerByUserName of a non-ASCII email before an update = %v; want not found", err)
			}
			if _, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Owner, error) {
				return tx.UpdateOwner(ctx, "own_4", func(o store.Owner) (store.Owner, error) { o.DisplayName = "É"; return o, nil })
			}); err != nil {
				t.Fatal(err)
			}
			if o, err := s.GetOwnerByUserName(ctx, "ÉMILE@example.org"); err != nil || o.ID != "own_4" {
				t.Errorf("GetOwnerByUserName of a non-ASCII email after an update = %s, %v; want own_4", o.ID, err)
			}
			for _, id := range []string{"own_1", "own_2"} {
				_, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Owner, error) {
					return tx.UpdateOwner(ctx, id, func(o store.Owner) (store.Owner, error) {
						o.UserName = map[string]string{"own_1": "Alice", "own_2": "ALICE"}[id]
						return o, nil
					})
				})
				if id == "own_1" && err != nil {
					t.Fatalf("set a user name after the upgrade: %v", err)
				}
				if id == "own_2" {
					wantErr(t, "a user name taken in another case after the upgrade", err, store.ErrAlreadyExists)
				}
			}
			if o, err := s.GetOwnerByUserName(ctx, "alice"); err != nil || o.ID != "own_1" {
				t.Errorf("GetOwnerByUserName after the upgrade = %s, %v; want own_1", o.ID, err)
			}
		})
	}
}

// createOwnerWithUserName creates a person with only an id and a user name.
func createOwnerWithUserName(s store.Store, id, userName string) error {
	_, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Owner, error) {
		return tx.CreateOwner(ctx, store.Owner{ID: id, Kind: store.OwnerPerson, UserName: userName, State: store.OwnerActive})
	})
	return err
}
