package adminauth

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// TestRevokeLastAdminAcrossReplicas: two replicas each revoke one of the
// last two usable admin tokens at the same moment. Exactly one may
// succeed, or every administrator would be locked out.
func TestRevokeLastAdminAcrossReplicas(t *testing.T) {
	for _, set := range storetest.Replicas(t, 2) {
		t.Run(set.Name, func(t *testing.T) {
			stores := set.Open(t)
			a, b := newEnv(t, stores[0]), newEnv(t, stores[1])
			o := audit.Origin{Actor: audit.Actor{Type: audit.ActorAdmin, ID: "test"}}
			if _, _, err := a.svc.Bootstrap(t.Context()); err != nil {
				t.Fatal(err)
			}
			usable := func() []store.AdminToken {
				toks, _, err := a.svc.List(t.Context(), store.Page{PageSize: store.MaxPageSize})
				if err != nil {
					t.Fatal(err)
				}
				var out []store.AdminToken
				for _, tok := range toks {
					if tok.Role == store.RoleAdmin && tok.RevokedAt.IsZero() {
						out = append(out, tok)
					}
				}
				return out
			}
			for round := range 15 {
				if _, _, err := a.svc.Create(t.Context(), o, CreateParams{Name: fmt.Sprintf("admin-%d", round), Role: store.RoleAdmin}); err != nil {
					t.Fatal(err)
				}
				live := usable()
				if len(live) != 2 {
					t.Fatalf("round %d: %d usable admin tokens, want 2", round, len(live))
				}
				var wg sync.WaitGroup
				errs := make([]error, 2)
				for i, svc := range []*Service{a.svc, b.svc} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, errs[i] = svc.Revoke(t.Context(), o, live[i].ID)
					}()
				}
				wg.Wait()
				ok := 0
				for _, err := range errs {
					switch {
					case err == nil:
						ok++
					case !errors.Is(err, ErrIllegalTransition):
						t.Fatalf("round %d: Revoke = %v", round, err)
					}
				}
				if ok != 1 || len(usable()) != 1 {
					t.Fatalf("round %d: %d revocations succeeded, %d usable admin tokens left; want exactly 1 and 1", round, ok, len(usable()))
				}
			}
		})
	}
}
