package noderegistry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/testca"
)

// TestListJoinTokens: tokens used, revoked, expired and unused are listed
// with their states; a revoked token stays revoked past its expiry and the
// collection of expired one-time ids, until the token itself is collected.
// On each backend.
func TestListJoinTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		// A millisecond apart: ids sort in creation order to the millisecond.
		used, usedSecret := e.token()
		e.clock.Advance(time.Millisecond)
		revoked, _ := e.token()
		e.clock.Advance(time.Millisecond)
		short, _, err := e.svc.CreateJoinToken(e.ctx, admin(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Millisecond)
		unused, _ := e.token()
		sv, err := e.attest(usedSecret, csrPEM(t, testca.Key(t)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.RevokeJoinToken(e.ctx, admin(), revoked.ID); err != nil {
			t.Fatal(err)
		}
		type item struct{ ID, State, NodeID string }
		list := func(state string) []item {
			t.Helper()
			var out []item
			for tok := ""; ; {
				ts, next, err := e.svc.ListJoinTokens(e.ctx, state, store.Page{PageSize: 1, PageToken: tok})
				if err != nil {
					t.Fatalf("ListJoinTokens(%q): %v", state, err)
				}
				for _, x := range ts {
					if x.Hash != nil || x.CreatedBy != "adm_tester" || x.CreatedAt.IsZero() || x.ExpiresAt.IsZero() {
						t.Errorf("listed %+v", x)
					}
					out = append(out, item{x.ID, string(x.State), x.NodeID})
				}
				if tok = next; tok == "" {
					return out
				}
			}
		}
		e.clock.Advance(2 * time.Minute)
		want := []item{{used.ID, "used", sv.Node.ID}, {revoked.ID, "revoked", ""}, {short.ID, "expired", ""}, {unused.ID, "unused", ""}}
		if diff := cmp.Diff(want, list("")); diff != "" {
			t.Errorf("ListJoinTokens (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want[3:], list("unused")); diff != "" {
			t.Errorf("ListJoinTokens unused (-want +got):\n%s", diff)
		}

		// Past every expiry, after the one-time ids are collected (as the
		// server's collector does), the revocation is still known.
		e.clock.Advance(time.Hour)
		if err := st.Update(e.ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CollectTokens(ctx, e.clock.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		want[3].State = "expired"
		if diff := cmp.Diff(want, list("")); diff != "" {
			t.Errorf("ListJoinTokens after expiry (-want +got):\n%s", diff)
		}
		// Collected the retention after expiry: no longer listed.
		e.clock.Advance(noderegistry.DefaultRetention)
		if n, err := e.svc.CollectJoinTokens(e.ctx, "test"); err != nil || n != 4 {
			t.Fatalf("CollectJoinTokens = %d, %v; want 4", n, err)
		}
		if got := list(""); len(got) != 0 {
			t.Errorf("ListJoinTokens after collection = %v", got)
		}

		var ve *noderegistry.ValidationError
		if _, _, err := e.svc.ListJoinTokens(e.ctx, "gone", store.Page{}); !errors.As(err, &ve) || ve.Field != "state" {
			t.Errorf("ListJoinTokens(state gone) = %v, want a validation error on state", err)
		}
		if _, _, err := e.svc.ListJoinTokens(e.ctx, "", store.Page{PageToken: "bad"}); !errors.As(err, &ve) || ve.Field != "page_token" {
			t.Errorf("ListJoinTokens(bad page token) = %v, want a validation error on page_token", err)
		}
	})
}
