package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// TestGrantsUpgradeTo0019 stores grants under schema 0018 and checks that
// migration 0019 (the email key, ADR 0014 addendum F) folds the emails
// already stored, so that the grants a person gave before the upgrade are
// found by their email in any case, and that a grant without an email is
// found by none.
func TestGrantsUpgradeTo0019(t *testing.T) {
	for _, b := range upgradeBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.migrated(t, 18)
			at := "1700000000000000"
			if b.name == "postgres" {
				at = "'2023-11-14T22:13:20Z'"
			}
			grant := func(id, email string) string {
				return `INSERT INTO grants (id, subject_issuer, subject, subject_email, agent_id, expires_at, max_depth,
					created_by_type, created_by, created_at, version)
					VALUES ('` + id + `', 'https://idp.example.com', 'sub-` + id + `', '` + email + `', 'agt_1', ` + at + `, 1,
					'admin', 'adm_1', ` + at + `, 1)`
			}
			for _, q := range []string{
				`INSERT INTO owners (id, kind, display_name, state, version) VALUES ('own_1', 'person', 'O', 'active', 1)`,
				`INSERT INTO agents (id, name, spiffe_id, purpose, action_classes, audiences, max_ttl, labels,
					state, created_by, version) VALUES ('agt_1', 'a', '', 'p', '["read"]', '[]', 0, '{}', 'active', 'adm_1', 1)`,
				grant("grt_1", "Alice@Example.COM"),
				grant("grt_2", "alice@example.com"),
				grant("grt_3", "bob@example.com"),
				grant("grt_4", ""),
			} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			s := b.store(t)
			for email, want := range map[string][]string{
				"ALICE@example.com": {"grt_1", "grt_2"},
				"bob@EXAMPLE.com":   {"grt_3"},
				"carol@example.com": nil,
			} {
				if diff := cmp.Diff(want, listGrantIDs(t, s, store.GrantFilter{SubjectEmail: email}, 10)); diff != "" {
					t.Errorf("grants of %s after the upgrade (-want +got):\n%s", email, diff)
				}
			}
		})
	}
}
