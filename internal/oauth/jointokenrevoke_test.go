package oauth_test

import (
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// TestRevokeJoinToken: a revoked join token cannot be redeemed, on another
// replica either; a used, revoked or expired one cannot be revoked; an id
// never issued is not found. On each backend.
func TestRevokeJoinToken(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := joinEnv(t, st)
			other := e.withParams(nil) // a second replica on the same store
			jt, err := e.srv.CreateJoinToken(e.ctx, adminOrigin(), "bot", 0)
			if err != nil {
				t.Fatal(err)
			}
			e.clk.Advance(time.Second)
			got, err := other.RevokeJoinToken(e.ctx, adminOrigin(), jt.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := oauth.RevokedJoinToken{ID: jt.ID, AgentID: e.agent.ID, ExpiresAt: jt.ExpiresAt, RevokedAt: e.clk.Now(), RevokedBy: "adm_tester"}
			if got.ID != want.ID || got.AgentID != want.AgentID || !got.ExpiresAt.Equal(want.ExpiresAt) ||
				!got.RevokedAt.Equal(want.RevokedAt) || got.RevokedBy != want.RevokedBy {
				t.Fatalf("revoked = %+v, want %+v", got, want)
			}
			evs := e.events(oauth.EventJoinTokenRevoked)
			if len(evs) != 1 {
				t.Fatalf("revoked events = %v", evs)
			}
			ev := evs[0]
			if ev["family"] != "admin" || ev["outcome"] != "success" || ev["details"].(map[string]any)["id"] != jt.ID ||
				ev["agent"].(map[string]any)["id"] != e.agent.ID || ev["actor"].(map[string]any)["id"] != "adm_tester" {
				t.Errorf("revoked event = %v", ev)
			}
			if strings.Contains(e.trail(), jt.Secret) {
				t.Error("the trail holds the token's secret")
			}

			// Redemption is refused, on either replica, with the event saying why.
			for _, srv := range []*oauth.Server{e.srv, other} {
				if _, oe := srv.Token(e.ctx, joinRequest(jt.Secret)); oe == nil || oe.Code != oauth.CodeInvalidGrant || !strings.Contains(oe.Reason, "was revoked") {
					t.Fatalf("redeem a revoked token: %v (%s)", oe, reasonOf(oe))
				}
			}
			att := e.events(oauth.EventInstanceAttested)
			if len(att) != 2 || att[1]["outcome"] != "failure" || !strings.Contains(att[1]["reason"].(string), jt.ID+" was revoked") {
				t.Errorf("refused redemption events = %v", att)
			}
			ins, _, err := e.st.ListInstances(e.ctx, store.InstanceFilter{AgentID: e.agent.ID}, store.Page{})
			if err != nil || len(ins) != 0 {
				t.Errorf("instances = %v, %v; want none", ins, err)
			}

			// Revoked twice.
			if _, err := e.srv.RevokeJoinToken(e.ctx, adminOrigin(), jt.ID); !errors.Is(err, identity.ErrIllegalTransition) || !strings.Contains(err.Error(), "was revoked") {
				t.Errorf("revoke twice: %v", err)
			}

			// Revoked after redemption.
			used, err := e.srv.CreateJoinToken(e.ctx, adminOrigin(), "bot", 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, oe := other.Token(e.ctx, joinRequest(used.Secret)); oe != nil {
				t.Fatalf("redeem: %v (%s)", oe, oe.Reason)
			}
			if _, err := e.srv.RevokeJoinToken(e.ctx, adminOrigin(), used.ID); !errors.Is(err, identity.ErrIllegalTransition) || !strings.Contains(err.Error(), "already used") {
				t.Errorf("revoke a used token: %v", err)
			}

			// Expired.
			expiring, err := e.srv.CreateJoinToken(e.ctx, adminOrigin(), "bot", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			e.clk.Advance(time.Minute)
			if _, err := e.srv.RevokeJoinToken(e.ctx, adminOrigin(), expiring.ID); !errors.Is(err, identity.ErrIllegalTransition) || !strings.Contains(err.Error(), "expired") {
				t.Errorf("revoke an expired token: %v", err)
			}

			// Never issued: a well-formed id of now, and one of the second
			// another token was created in.
			for _, at := range []time.Time{e.clk.Now(), e.clk.Now().Add(-time.Minute)} {
				id, err := recordid.New("ajt", at, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.srv.RevokeJoinToken(e.ctx, adminOrigin(), id); !errors.Is(err, identity.ErrNotFound) {
					t.Errorf("revoke %s, never issued: %v", id, err)
				}
			}
			var ve *fault.ValidationError
			for _, bad := range []string{"", "ajt_x", "njt_" + jt.ID[4:], jt.Secret} {
				if _, err := e.srv.RevokeJoinToken(e.ctx, adminOrigin(), bad); !errors.As(err, &ve) || ve.Field != "id" {
					t.Errorf("revoke %q: %v", bad, err)
				}
			}
			if n := len(e.events(oauth.EventJoinTokenRevoked)); n != 1 {
				t.Errorf("%d revoked events, want 1: refusals change nothing", n)
			}
		})
	}
}

// TestRevokeJoinTokenRace: a revocation racing redemptions of one join
// token on two replicas: exactly one of them wins, on each backend.
func TestRevokeJoinTokenRace(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := joinEnv(t, st)
			replicas := []*oauth.Server{e.srv, e.withParams(nil)}
			jt, err := e.srv.CreateJoinToken(e.ctx, adminOrigin(), "bot", 0)
			if err != nil {
				t.Fatal(err)
			}
			var (
				wg               sync.WaitGroup
				redeemed, revoke atomic.Int32
				start            = make(chan struct{})
			)
			for i := range 8 {
				wg.Go(func() {
					<-start
					if i%4 == 0 {
						switch _, err := replicas[i%2].RevokeJoinToken(e.ctx, adminOrigin(), jt.ID); {
						case err == nil:
							revoke.Add(1)
						case !errors.Is(err, identity.ErrIllegalTransition):
							t.Errorf("revocation %d: %v", i, err)
						}
						return
					}
					switch _, oe := replicas[i%2].Token(e.ctx, joinRequest(jt.Secret)); {
					case oe == nil:
						redeemed.Add(1)
					case oe.Code != oauth.CodeInvalidGrant:
						t.Errorf("redemption %d: %v (%s)", i, oe, oe.Reason)
					}
				})
			}
			close(start)
			wg.Wait()
			if redeemed.Load()+revoke.Load() != 1 {
				t.Fatalf("%d redemptions and %d revocations succeeded, want one in all", redeemed.Load(), revoke.Load())
			}
			if n := len(e.events(oauth.EventJoinTokenRevoked)); n != int(revoke.Load()) {
				t.Errorf("%d revoked events for %d revocations", n, revoke.Load())
			}
		})
	}
}

func TestRevokeJoinTokenDisabled(t *testing.T) {
	e := sqliteEnv(t)
	if _, err := e.srv.RevokeJoinToken(e.ctx, adminOrigin(), "ajt_01jbz9q0000000000000000000"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("revoke: %v", err)
	}
}

// TestListJoinTokens: the agent's join tokens of the last hour, newest
// first, each in its state; older ones and other agents' are not listed.
// On each backend.
func TestListJoinTokens(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := joinEnv(t, st)
			create := func(ref string, ttl time.Duration) oauth.JoinToken {
				t.Helper()
				jt, err := e.srv.CreateJoinToken(e.ctx, adminOrigin(), ref, ttl)
				if err != nil {
					t.Fatal(err)
				}
				e.clk.Advance(time.Second)
				return jt
			}
			old := create("bot", time.Minute)
			e.clk.Advance(oauth.MaxJoinTokenTTL)
			if err := e.keys.Refresh(e.ctx); err != nil { // the signing keys of the new hour
				t.Fatal(err)
			}
			expired := create("bot", time.Minute)
			e.clk.Advance(time.Minute)
			used := create("bot", 0)
			revoked := create("bot", 0)
			unused := create("bot", 0)
			e.newAgent("other", nil)
			create("other", 0)
			resp, oe := e.srv.Token(e.ctx, joinRequest(used.Secret))
			if oe != nil {
				t.Fatalf("redeem: %v (%s)", oe, oe.Reason)
			}
			if _, err := e.srv.RevokeJoinToken(e.ctx, adminOrigin(), revoked.ID); err != nil {
				t.Fatal(err)
			}
			// A refused redemption changes no state.
			if _, oe := e.srv.Token(e.ctx, joinRequest(revoked.Secret)); oe == nil {
				t.Fatal("a revoked token was redeemed")
			}

			got, err := e.srv.ListJoinTokens(e.ctx, e.agent.Name)
			if err != nil {
				t.Fatal(err)
			}
			var ids, states []string
			for _, s := range got {
				ids, states = append(ids, s.ID), append(states, s.State)
				if s.AgentID != e.agent.ID || s.CreatedBy != "adm_tester" || s.CreatedAt.IsZero() || s.ExpiresAt.IsZero() {
					t.Errorf("status = %+v", s)
				}
			}
			wantIDs := []string{unused.ID, revoked.ID, used.ID, expired.ID}
			wantStates := []string{oauth.JoinTokenUnused, oauth.JoinTokenRevoked, oauth.JoinTokenUsed, oauth.JoinTokenExpired}
			if strings.Join(ids, " ") != strings.Join(wantIDs, " ") || strings.Join(states, " ") != strings.Join(wantStates, " ") {
				t.Fatalf("listed %v %v, want %v %v (not %s, created more than an hour ago)", ids, states, wantIDs, wantStates, old.ID)
			}
			ins := e.claims(resp.AccessToken)["agent_instance"]
			if got[2].InstanceID != ins || got[2].UsedAt.IsZero() || !got[2].RevokedAt.IsZero() {
				t.Errorf("used = %+v, want instance %v", got[2], ins)
			}
			if got[1].RevokedBy != "adm_tester" || got[1].RevokedAt.IsZero() || got[1].InstanceID != "" {
				t.Errorf("revoked = %+v", got[1])
			}
			if _, err := e.srv.ListJoinTokens(e.ctx, "nobody"); !errors.Is(err, identity.ErrNotFound) {
				t.Errorf("list for an unknown agent: %v", err)
			}
		})
	}
}
