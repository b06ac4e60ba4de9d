package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/agentid/agentid/internal/store"
)

// TestOwnersUpgradeTo0017 stores two owners under schema 0016 and checks
// that migration 0017 (SCIM user names and external ids, ADR 0023) keeps
// them with both fields empty, that an empty user name is no unique value,
// and that user names are unique under case folding after it.
func TestOwnersUpgradeTo0017(t *testing.T) {
	for _, b := range upgradeBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.migrated(t, 16)
			for _, q := range []string{
				`INSERT INTO owners (id, kind, email, subject, display_name, state, version)
					VALUES ('own_1', 'person', 'a@example.org', 'sub-a', 'A', 'active', 1)`,
				`INSERT INTO owners (id, kind, display_name, state, version) VALUES ('own_2', 'team', 'T', 'deactivated', 2)`,
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
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(store.Owner{}, "CreatedAt", "UpdatedAt")); diff != "" {
				t.Errorf("owners after the upgrade (-want +got):\n%s", diff)
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
