package storetest

import (
	"context"
	"database/sql"
	"testing"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlstore"
)

// UpgradeFrom0001 checks a backend's forward migrations: it applies only
// the first of ms through db with the dialect d, stores an agent as that
// schema held it, closes db, and calls open, which must apply the rest.
// The agent must read back with every field added since empty.
func UpgradeFrom0001(t *testing.T, db *sql.DB, d *sqlstore.Dialect, ms []sqlstore.Migration, open func(t *testing.T) store.Store) {
	t.Helper()
	ctx := context.Background()
	if v, err := sqlstore.Migrate(ctx, db, d, ms[:1]); err != nil || v != 1 {
		t.Fatalf("Migrate to 0001 = %d, %v", v, err)
	}
	for _, q := range []string{
		`INSERT INTO owners (id, kind, display_name, state, version) VALUES ('own_1', 'person', 'O', 'active', 1)`,
		`INSERT INTO agents (id, name, spiffe_id, purpose, action_classes, audiences, max_ttl, labels,
			state, created_by, version) VALUES ('agt_1', 'a', '', '', '["read"]', '[]', 0, '{}', 'active', 'adm_1', 1)`,
		`INSERT INTO agent_owners (agent_id, owner_id) VALUES ('agt_1', 'own_1')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := open(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after upgrade: %v", err)
	}
	a, err := s.GetAgent(ctx, "agt_1")
	if err != nil {
		t.Fatal(err)
	}
	if a.ActionClasses[0] != "read" || a.Scopes != nil || a.Permissions != nil || a.RequireDPoP || !a.TokensRevokedAt.IsZero() ||
		a.FederatesWith != nil || a.Selectors != nil || a.AttestationRules != nil {
		t.Errorf("upgraded agent = %+v, want action class read and empty OAuth and SPIFFE fields", a)
	}
	if h, err := s.GetPolicyHead(ctx); err != nil || h != (store.PolicyHead{}) {
		t.Errorf("upgraded policy head = %+v, %v; want the zero head", h, err)
	}
}
