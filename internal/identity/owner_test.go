package identity

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

func TestCreateOwner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		now := e.clk.Now().UTC().Truncate(time.Microsecond)
		before := e.head()
		got, err := e.svc.CreateOwner(e.ctx, testOrigin(), CreateOwnerParams{
			Kind: store.OwnerPerson, Email: " Alice@Example.COM ", Subject: " 00u1abcd ", DisplayName: " Alice Liddell ",
			SubjectIssuer: " https://login.example.com/oauth2/default ",
		})
		if err != nil {
			t.Fatal(err)
		}
		if recordid.Valid(recordid.Owner, got.ID) != nil {
			t.Errorf("ID %q is not an owner id", got.ID)
		}
		want := store.Owner{ID: got.ID, Kind: store.OwnerPerson, Email: "alice@example.com", Subject: "00u1abcd",
			SubjectIssuer: "https://login.example.com/oauth2/default", DisplayName: "Alice Liddell", State: store.OwnerActive, CreatedAt: now, UpdatedAt: now, Version: 1}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("CreateOwner (-want +got):\n%s", diff)
		}
		wantEv := wantEvent(audit.Admin, EventOwnerCreated, nil, map[string]any{
			"id": got.ID, "kind": "person", "email": "alice@example.com", "subject": "00u1abcd",
			"subject_issuer": "https://login.example.com/oauth2/default", "display_name": "Alice Liddell", "user_name": "", "external_id": "", "state": "active", "version": 1,
		}, "")
		if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		for _, ref := range []string{got.ID, "alice@example.com", "ALICE@example.com"} {
			own, err := e.svc.GetOwner(e.ctx, ref)
			if err != nil {
				t.Fatalf("GetOwner(%q): %v", ref, err)
			}
			if diff := cmp.Diff(got, own); diff != "" {
				t.Errorf("GetOwner(%q) (-want +got):\n%s", ref, diff)
			}
		}
		if _, err := e.svc.GetOwner(e.ctx, "nobody@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetOwner(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := e.svc.GetOwner(e.ctx, "alice"); err == nil {
			t.Error("GetOwner(alice) succeeded")
		} else {
			checkValidation(t, err, "ref")
		}

		// Subject only, a team.
		team, err := e.svc.CreateOwner(e.ctx, testOrigin(), CreateOwnerParams{Kind: store.OwnerTeam, Subject: "group:billing"})
		if err != nil || team.Email != "" || team.Kind != store.OwnerTeam {
			t.Fatalf("team: %+v, %v", team, err)
		}

		e.refusedOwnerCreates([]refusedOwnerCreate{
			{"no kind", CreateOwnerParams{Email: "b@example.com"}, "kind", nil},
			{"bad kind", CreateOwnerParams{Kind: "robot", Email: "b@example.com"}, "kind", nil},
			{"no email or subject", CreateOwnerParams{Kind: store.OwnerPerson, DisplayName: "B"}, "email", nil},
			{"blank email and subject", CreateOwnerParams{Kind: store.OwnerPerson, Email: " ", Subject: " "}, "email", nil},
			{"bad email", CreateOwnerParams{Kind: store.OwnerPerson, Email: "not-an-email"}, "email", nil},
			{"named email", CreateOwnerParams{Kind: store.OwnerPerson, Email: "Bob <b@example.com>"}, "email", nil},
			{"long email", CreateOwnerParams{Kind: store.OwnerPerson, Email: strings.Repeat("b", 250) + "@x.io"}, "email", nil},
			{"control in subject", CreateOwnerParams{Kind: store.OwnerPerson, Subject: "a\x00b"}, "subject", nil},
			{"long subject", CreateOwnerParams{Kind: store.OwnerPerson, Subject: strings.Repeat("s", MaxSubjectLen+1)}, "subject", nil},
			{"long display name", CreateOwnerParams{Kind: store.OwnerPerson, Email: "c@example.com", DisplayName: strings.Repeat("d", MaxDisplayNameLen+1)}, "display_name", nil},
			{"control in display name", CreateOwnerParams{Kind: store.OwnerPerson, Email: "c@example.com", DisplayName: "a\u202eb"}, "display_name", nil},
			{"email taken", CreateOwnerParams{Kind: store.OwnerPerson, Email: "ALICE@example.com"}, "", ErrAlreadyExists},
			{"subject taken", CreateOwnerParams{Kind: store.OwnerTeam, Subject: "group:billing"}, "", ErrAlreadyExists},
			{"subject issuer without subject", CreateOwnerParams{Kind: store.OwnerPerson, Email: "d@example.com",
				SubjectIssuer: "https://login.example.com"}, "subject_issuer", nil},
			{"subject issuer over http", CreateOwnerParams{Kind: store.OwnerPerson, Subject: "d",
				SubjectIssuer: "http://login.example.com"}, "subject_issuer", nil},
			{"subject issuer with a fragment", CreateOwnerParams{Kind: store.OwnerPerson, Subject: "d",
				SubjectIssuer: "https://login.example.com#d"}, "subject_issuer", nil},
			{"long subject issuer", CreateOwnerParams{Kind: store.OwnerPerson, Subject: "d",
				SubjectIssuer: "https://login.example.com/" + strings.Repeat("p", MaxSubjectIssuerLen)}, "subject_issuer", nil},
		})
	})
}

func TestDeactivateOwner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		own := e.owner("leaver@example.com")
		e.clk.Advance(time.Hour)
		for _, tc := range []struct {
			name  string
			p     TransitionParams
			want  error
			field string
		}{
			{"stale version", TransitionParams{Ref: own.ID, IfVersion: 2}, ErrVersionMismatch, ""},
			{"unknown", TransitionParams{Ref: "nobody@example.com"}, ErrNotFound, ""},
			{"bad ref", TransitionParams{Ref: "leaver"}, nil, "ref"},
			{"bad reason", TransitionParams{Ref: own.ID, Reason: "\x1b"}, nil, "reason"},
		} {
			snap := e.snapshot()
			_, err := e.svc.DeactivateOwner(e.ctx, testOrigin(), tc.p)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: error = %v, want %v", tc.name, err, tc.want)
				}
			} else {
				checkValidation(t, err, tc.field)
			}
			e.unchanged(snap, tc.name)
		}

		before := e.head()
		got, err := e.svc.DeactivateOwner(e.ctx, testOrigin(), TransitionParams{Ref: "LEAVER@example.com", IfVersion: 1, Reason: "left the company"})
		if err != nil {
			t.Fatal(err)
		}
		want := own
		want.State, want.Version, want.UpdatedAt = store.OwnerDeactivated, 2, e.clk.Now().UTC().Truncate(time.Microsecond)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("DeactivateOwner (-want +got):\n%s", diff)
		}
		wantEv := wantEvent(audit.Admin, EventOwnerDeactivated, nil, map[string]any{
			"id": own.ID, "kind": "person", "version": 2, "orphaned_agents": 0,
		}, "left the company")
		if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}

		snap := e.snapshot()
		_, err = e.svc.DeactivateOwner(e.ctx, testOrigin(), TransitionParams{Ref: own.ID})
		if !errors.Is(err, ErrIllegalTransition) {
			t.Errorf("second deactivation: %v, want ErrIllegalTransition", err)
		}
		e.unchanged(snap, "second deactivation")

		list, _, err := e.svc.ListOwners(e.ctx, store.OwnerFilter{State: store.OwnerDeactivated}, store.Page{})
		if err != nil || len(list) != 1 || list[0].ID != own.ID {
			t.Errorf("ListOwners(deactivated) = %v, %v", list, err)
		}
		list, _, err = e.svc.ListOwners(e.ctx, store.OwnerFilter{State: store.OwnerActive}, store.Page{})
		if err != nil || len(list) != 0 {
			t.Errorf("ListOwners(active) = %v, %v", list, err)
		}
		_, _, err = e.svc.ListOwners(e.ctx, store.OwnerFilter{State: "gone"}, store.Page{})
		checkValidation(t, err, "state")
		_, _, err = e.svc.ListOwners(e.ctx, store.OwnerFilter{}, store.Page{PageToken: "nope"})
		checkValidation(t, err, "page_token")
	})
}

// TestOrphans checks that deactivating an owner orphans exactly the live
// agents left without an active owner, each with an agent.orphaned event
// in the same transaction.
func TestOrphans(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		a := e.owner("a@example.com")
		b := e.owner("b@example.com")
		c := e.owner("c@example.com")
		onlyA := e.agent("only-a", a.ID)
		aAndB := e.agent("a-and-b", a.ID, b.ID)
		onlyB := e.agent("only-b", b.ID)
		bAndC := e.agent("b-and-c", b.ID, c.ID)
		suspended := e.agent("suspended-a", a.ID)
		if _, err := e.svc.SuspendAgent(e.ctx, testOrigin(), TransitionParams{Ref: suspended.ID}); err != nil {
			t.Fatal(err)
		}
		suspended, _ = e.svc.GetAgent(e.ctx, suspended.ID)
		gone := e.agent("gone-a", a.ID)
		if _, err := e.svc.DeprovisionAgent(e.ctx, testOrigin(), TransitionParams{Ref: gone.ID}); err != nil {
			t.Fatal(err)
		}
		_ = bAndC

		orphaned := func() []string {
			t.Helper()
			list, _, err := e.svc.ListAgents(e.ctx, store.AgentFilter{Orphaned: true}, store.Page{})
			if err != nil {
				t.Fatal(err)
			}
			names := []string{}
			for _, ag := range list {
				if !ag.Orphaned {
					t.Errorf("agent %s listed as orphaned has Orphaned=false", ag.Name)
				}
				names = append(names, ag.Name)
			}
			return names
		}
		orphanEvent := func(ag store.Agent, owner string) event {
			return wantEvent(audit.Issuance, EventAgentOrphaned, &ag, map[string]any{
				"version": ag.Version, "owners": ag.Owners, "deactivated_owner": owner,
			}, "")
		}

		before := e.head()
		if _, err := e.svc.DeactivateOwner(e.ctx, testOrigin(), TransitionParams{Ref: a.ID}); err != nil {
			t.Fatal(err)
		}
		evs := e.eventsAfter(before)
		want := []event{
			wantEvent(audit.Admin, EventOwnerDeactivated, nil, map[string]any{"id": a.ID, "kind": "person", "version": 2, "orphaned_agents": 2}, ""),
			orphanEvent(onlyA, a.ID),
			orphanEvent(suspended, a.ID),
		}
		if diff := cmp.Diff(want, evs); diff != "" {
			t.Errorf("events after deactivating a (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"only-a", "suspended-a", "gone-a"}, orphaned()); diff != "" {
			// The deprovisioned agent is orphaned on read too, but gets no event.
			t.Errorf("orphaned after a (-want +got):\n%s", diff)
		}
		got, _ := e.svc.GetAgent(e.ctx, onlyA.ID)
		if !got.Orphaned {
			t.Error("only-a is not shown as orphaned")
		}

		before = e.head()
		if _, err := e.svc.DeactivateOwner(e.ctx, testOrigin(), TransitionParams{Ref: b.ID}); err != nil {
			t.Fatal(err)
		}
		want = []event{
			wantEvent(audit.Admin, EventOwnerDeactivated, nil, map[string]any{"id": b.ID, "kind": "person", "version": 2, "orphaned_agents": 2}, ""),
			orphanEvent(aAndB, b.ID),
			orphanEvent(onlyB, b.ID),
		}
		if diff := cmp.Diff(want, e.eventsAfter(before)); diff != "" {
			t.Errorf("events after deactivating b (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"only-a", "a-and-b", "only-b", "suspended-a", "gone-a"}, orphaned()); diff != "" {
			t.Errorf("orphaned after b (-want +got):\n%s", diff)
		}

		// Adopting an orphan: add an active owner.
		if _, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: onlyB.ID, Owners: &[]string{b.ID, c.ID}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.svc.GetAgent(e.ctx, onlyB.ID); got.Orphaned {
			t.Error("adopted agent still orphaned")
		}
		e.verifyTrail()
	})
}

// TestOrphansMany checks that orphan derivation pages through more agents
// than one page holds.
func TestOrphansMany(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		own := e.owner("busy@example.com")
		const n = store.MaxPageSize + 5
		err := st.Update(e.ctx, func(ctx2 context.Context, tx store.Tx) error {
			now := e.clk.Now()
			for i := range n {
				id, err := recordid.New(recordid.Agent, now, rand.Reader)
				if err != nil {
					return err
				}
				name := fmt.Sprintf("bulk-%d", i)
				if _, err := tx.CreateAgent(ctx2, store.Agent{ID: id, Name: name, SPIFFEID: SPIFFEID(testTD, name), Owners: []string{own.ID},
					Purpose: "bulk", MaxTTL: DefaultMaxTTL, State: store.AgentActive, CreatedAt: now, UpdatedAt: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		before := e.head()
		if _, err := e.svc.DeactivateOwner(e.ctx, testOrigin(), TransitionParams{Ref: own.ID}); err != nil {
			t.Fatal(err)
		}
		if got := e.head() - before; got != n+1 {
			t.Errorf("recorded %d events, want %d", got, n+1)
		}
	})
}

// refusedOwnerCreate is a CreateOwner call that must fail, with a
// validation error on field or, when want is set, with want.
type refusedOwnerCreate struct {
	name  string
	p     CreateOwnerParams
	field string
	want  error
}

// refusedOwnerCreates runs each refused create and checks that it changed
// nothing.
func (e *env) refusedOwnerCreates(cases []refusedOwnerCreate) {
	e.t.Helper()
	for _, tc := range cases {
		e.refused(tc.name, tc.field, tc.want, func() error {
			_, err := e.svc.CreateOwner(e.ctx, testOrigin(), tc.p)
			return err
		})
	}
}

// refused runs call, which must fail with want or, when want is nil, with
// a validation error of field, and checks that it changed nothing.
func (e *env) refused(name, field string, want error, call func() error) {
	e.t.Helper()
	snap := e.snapshot()
	err := call()
	if want != nil {
		if !errors.Is(err, want) {
			e.t.Errorf("%s: error = %v, want %v", name, err, want)
		}
	} else {
		checkValidation(e.t, err, field)
	}
	e.unchanged(snap, name)
}
