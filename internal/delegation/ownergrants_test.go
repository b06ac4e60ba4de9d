package delegation_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// registry is an identity service over e's store whose owner
// deactivations revoke grants through rev, as the server wires it.
func (e *env) registry(rev identity.OwnerGrantRevoker) *identity.Service {
	e.t.Helper()
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: e.st, Clock: e.clk.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	ids, err := identity.New(identity.Params{Store: e.st, Recorder: rec, TrustDomain: "example.org", Clock: e.clk.Now, OwnerGrants: rev})
	if err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// leaverGrants creates alice (a person owner with subject "alice" and
// email alice@example.com) and grants: by her subject, by her email only
// (another subject, the email in upper case), by both, bob's, one of
// hers already revoked and one of hers that expires within the hour. It
// records a live exchanged token under the subject grant.
func (e *env) leaverGrants(ids *identity.Service) (store.Owner, map[string]store.Grant) {
	e.t.Helper()
	alice, err := ids.CreateOwner(e.ctx, admin(), identity.CreateOwnerParams{Kind: store.OwnerPerson, Email: "alice@example.com", Subject: "alice"})
	if err != nil {
		e.t.Fatal(err)
	}
	gs := map[string]store.Grant{}
	for name, edit := range map[string]func(*delegation.CreateGrantParams){
		"subject":  func(p *delegation.CreateGrantParams) { p.SubjectEmail = "" },
		"email":    func(p *delegation.CreateGrantParams) { p.Subject, p.SubjectEmail = "00u-alice", "ALICE@Example.COM" },
		"both":     nil,
		"bob":      func(p *delegation.CreateGrantParams) { p.Subject, p.SubjectEmail = "bob", "bob@example.com" },
		"revoked":  nil,
		"expiring": func(p *delegation.CreateGrantParams) { p.ExpiresAt = e.clk.Now().Add(time.Hour) },
	} {
		g, err := e.svc.CreateGrant(e.ctx, admin(), e.params(edit))
		if err != nil {
			e.t.Fatalf("grant %s: %v", name, err)
		}
		gs[name] = g
	}
	if _, _, err := e.svc.RevokeGrant(e.ctx, admin(), delegation.RevokeGrantParams{ID: gs["revoked"].ID, Reason: "trip cancelled"}); err != nil {
		e.t.Fatal(err)
	}
	now := e.clk.Now()
	err = e.st.Update(e.ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.RecordExchangedToken(ctx, store.ExchangedToken{
			JTI: "tok_alice", GrantID: gs["subject"].ID, AgentID: e.agent.ID, Chain: []string{e.agent.ID},
			Subject: "alice", IssuedAt: now, ExpiresAt: now.Add(3 * time.Hour),
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return alice, gs
}

// revokedSince returns which of gs are revoked at or after t.
func (e *env) revokedSince(gs map[string]store.Grant, t time.Time) []string {
	e.t.Helper()
	var out []string
	for name, g := range gs {
		got, err := e.st.GetGrant(e.ctx, g.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		if !got.RevokedAt.Before(t) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestDeactivateOwnerRevokesGrants: deactivating a person revokes, in the
// deactivation's transaction, exactly the active grants that person gave
// (by subject or, case-insensitively, by email), with the events of an
// admin revocation; expired, already revoked and other people's grants are
// left alone, and reactivation restores nothing.
func TestDeactivateOwnerRevokesGrants(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := newEnv(t, st)
			ids := e.registry(e.svc)
			alice, gs := e.leaverGrants(ids)
			e.clk.Advance(2 * time.Hour) // "expiring" has expired
			at := e.clk.Now().UTC().Truncate(time.Microsecond)

			if _, err := ids.DeactivateOwner(e.ctx, admin(), identity.TransitionParams{Ref: alice.ID, Reason: "left the company"}); err != nil {
				t.Fatalf("DeactivateOwner: %v", err)
			}
			if diff := cmp.Diff([]string{"both", "email", "subject"}, e.revokedSince(gs, at)); diff != "" {
				t.Errorf("revoked grants (-want +got):\n%s", diff)
			}
			for _, name := range []string{"both", "email", "subject"} {
				g, _ := st.GetGrant(e.ctx, gs[name].ID)
				if !g.RevokedAt.Equal(at) || g.RevokedBy != "adm_tester" || g.RevokeReason != delegation.ReasonOwnerDeactivated {
					t.Errorf("grant %s = %+v", name, g)
				}
			}
			if g, _ := st.GetGrant(e.ctx, gs["revoked"].ID); g.RevokeReason != "trip cancelled" {
				t.Errorf("the grant revoked before = %+v", g)
			}
			if g, _ := st.GetGrant(e.ctx, gs["bob"].ID); !g.RevokedAt.IsZero() {
				t.Errorf("bob's grant = %+v", g)
			}

			want := []string{gs["both"].ID, gs["email"].ID, gs["subject"].ID}
			slices.Sort(want)
			var got []string
			for _, ev := range e.events("grant.revoked")[1:] { // [0] is the admin's revocation
				got = append(got, ev.Delegation.GrantID)
				wantTokens := float64(0)
				if ev.Delegation.GrantID == gs["subject"].ID {
					wantTokens = 1
				}
				if ev.Actor.ID != "adm_tester" || ev.Details["reason"] != delegation.ReasonOwnerDeactivated ||
					ev.Details["owner_id"] != alice.ID || ev.Details["tokens_affected"] != wantTokens || ev.Agent == nil {
					t.Errorf("grant.revoked = %+v", ev)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("grant.revoked events (-want +got):\n%s", diff)
			}
			deact := e.events(identity.EventOwnerDeactivated)
			if len(deact) != 1 || deact[0].Details["revoked_grants"] != float64(3) || deact[0].Reason != "left the company" ||
				!cmp.Equal(deact[0].Details["revoked_grant_ids"], []any{want[0], want[1], want[2]}) {
				t.Errorf("owner.deactivated = %+v", deact)
			}
			if n, err := st.CountExchangedTokens(e.ctx, store.ExchangedTokenFilter{GrantID: gs["subject"].ID, LiveAt: e.clk.Now()}); err != nil || n != 1 {
				t.Errorf("live tokens under the revoked grant = %d, %v (introspection refuses them through the grant)", n, err)
			}

			// Reactivation restores no grant; a second deactivation finds
			// none left to revoke.
			if _, err := ids.ReactivateOwner(e.ctx, admin(), identity.TransitionParams{Ref: alice.ID}); err != nil {
				t.Fatal(err)
			}
			if active, _, err := e.svc.ListGrants(e.ctx, delegation.ListGrantsParams{Subject: "alice", Active: true}); err != nil || len(active) != 0 {
				t.Errorf("alice's active grants after reactivation = %v, %v", active, err)
			}
			if _, err := ids.DeactivateOwner(e.ctx, admin(), identity.TransitionParams{Ref: alice.ID}); err != nil {
				t.Fatal(err)
			}
			if deact := e.events(identity.EventOwnerDeactivated); len(deact) != 2 || deact[1].Details["revoked_grants"] != float64(0) ||
				!cmp.Equal(deact[1].Details["revoked_grant_ids"], []any{}) {
				t.Errorf("second owner.deactivated = %+v", deact)
			}
			if n := len(e.events("grant.revoked")); n != 4 {
				t.Errorf("%d grant.revoked events, want 4", n)
			}
		})
	}
}

// TestDeactivateOwnerUpdateRevokesGrants: the state change of UpdateOwner
// (SCIM's PATCH active false) revokes as DeactivateOwner does, matching
// the email the update sets.
func TestDeactivateOwnerUpdateRevokesGrants(t *testing.T) {
	st, _ := storetest.Backends(t)[0].Open(t)
	e := newEnv(t, st)
	ids := e.registry(e.svc)
	own, err := ids.CreateOwner(e.ctx, admin(), identity.CreateOwnerParams{Kind: store.OwnerPerson, UserName: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.svc.CreateGrant(e.ctx, admin(), e.params(func(p *delegation.CreateGrantParams) { p.Subject, p.SubjectEmail = "00u-carol", "carol@example.com" }))
	if err != nil {
		t.Fatal(err)
	}
	email, off := "carol@example.com", store.OwnerDeactivated
	if _, err := ids.UpdateOwner(e.ctx, admin(), identity.UpdateOwnerParams{Ref: own.ID, Email: &email, State: &off}); err != nil {
		t.Fatalf("UpdateOwner: %v", err)
	}
	if got, _ := st.GetGrant(e.ctx, g.ID); got.RevokedAt.IsZero() {
		t.Errorf("grant after UpdateOwner deactivated its person = %+v", got)
	}
}

// TestDeactivateTeamOwnerRevokesNothing: a team delegates nothing, even
// when its subject is some grant's subject.
func TestDeactivateTeamOwnerRevokesNothing(t *testing.T) {
	st, _ := storetest.Backends(t)[0].Open(t)
	e := newEnv(t, st)
	ids := e.registry(e.svc)
	team, err := ids.CreateOwner(e.ctx, admin(), identity.CreateOwnerParams{Kind: store.OwnerTeam, Email: "alice@example.com", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.svc.CreateGrant(e.ctx, admin(), e.params(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ids.DeactivateOwner(e.ctx, admin(), identity.TransitionParams{Ref: team.ID}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetGrant(e.ctx, g.ID); !got.RevokedAt.IsZero() {
		t.Errorf("grant after a team's deactivation = %+v", got)
	}
	deact := e.events(identity.EventOwnerDeactivated)
	if _, ok := deact[0].Details["revoked_grants"]; len(deact) != 1 || ok || len(e.events("grant.revoked")) != 0 {
		t.Errorf("owner.deactivated = %+v", deact)
	}
}

// TestDeactivateOwnerRevokesGrantsOfItsIssuer: an owner tied to an issuer
// (ADR 0027) revokes the grants of its subject under that issuer only; an
// untied owner, those under every issuer. The grants under a second issuer
// are written to the store directly, as if that issuer had been trusted
// when they were made.
func TestDeactivateOwnerRevokesGrantsOfItsIssuer(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := newEnv(t, st)
			ids := e.registry(e.svc)
			const other = "https://other-idp.example.org"
			grants := map[string]store.Grant{}
			for _, subject := range []string{"tied", "untied"} {
				g, err := e.svc.CreateGrant(e.ctx, admin(), e.params(func(p *delegation.CreateGrantParams) { p.Subject, p.SubjectEmail = subject, "" }))
				if err != nil {
					t.Fatal(err)
				}
				grants[subject] = g
				g.ID, g.SubjectIssuer = g.ID+"x", other
				err = st.Update(e.ctx, func(ctx context.Context, tx store.Tx) error {
					var err error
					grants[subject+"@other"], err = tx.CreateGrant(ctx, g)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for subject, iss := range map[string]string{"tied": e.idp.URL, "untied": ""} {
				own, err := ids.CreateOwner(e.ctx, admin(), identity.CreateOwnerParams{Kind: store.OwnerPerson, Subject: subject, SubjectIssuer: iss})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ids.DeactivateOwner(e.ctx, admin(), identity.TransitionParams{Ref: own.ID}); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff([]string{"tied", "untied", "untied@other"}, e.revokedSince(grants, time.Time{}.Add(1))); diff != "" {
				t.Errorf("revoked grants (-want +got):\n%s", diff)
			}
		})
	}
}

// failAfter revokes through the real service, then fails: the
// deactivation must roll back with the revocations.
type failAfter struct{ svc *delegation.Service }

var errAfterRevoke = errors.New("test: failed after revoking")

func (f failAfter) RevokeOwnerGrants(ctx context.Context, tx store.Tx, o audit.Origin, p identity.RevokeOwnerGrantsParams) ([]string, error) {
	if _, err := f.svc.RevokeOwnerGrants(ctx, tx, o, p); err != nil {
		return nil, err
	}
	return nil, errAfterRevoke
}

// TestDeactivateOwnerGrantsOneTransaction: the deactivation and the
// revocations commit together or not at all.
func TestDeactivateOwnerGrantsOneTransaction(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := newEnv(t, st)
			ids := e.registry(failAfter{e.svc})
			alice, gs := e.leaverGrants(ids)
			head, _, err := st.AuditHead(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ids.DeactivateOwner(e.ctx, admin(), identity.TransitionParams{Ref: alice.ID}); !errors.Is(err, errAfterRevoke) {
				t.Fatalf("DeactivateOwner = %v, want the revoker's error", err)
			}
			if own, _ := st.GetOwner(e.ctx, alice.ID); own.State != store.OwnerActive {
				t.Errorf("owner after a failed deactivation = %+v", own)
			}
			if got := e.revokedSince(gs, time.Time{}.Add(time.Nanosecond)); !cmp.Equal(got, []string{"revoked"}) {
				t.Errorf("revoked grants after a failed deactivation = %v", got)
			}
			if after, _, _ := st.AuditHead(e.ctx); after != head {
				t.Errorf("audit head moved from %d to %d", head, after)
			}
		})
	}
}
