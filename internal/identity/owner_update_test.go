package identity

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

func ptr[T any](v T) *T { return &v }

func TestCreateOwnerSCIMFields(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		before := e.head()
		got, err := e.svc.CreateOwner(e.ctx, testOrigin(), CreateOwnerParams{
			Kind: store.OwnerPerson, UserName: " Bjensen@Example.com ", ExternalID: " 00u1 ", Deactivated: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.UserName != "Bjensen@Example.com" || got.ExternalID != "00u1" || got.Email != "" || got.State != store.OwnerDeactivated {
			t.Errorf("CreateOwner = %+v; want the trimmed user name and external id, deactivated", got)
		}
		wantEv := wantEvent(audit.Admin, EventOwnerCreated, nil, map[string]any{
			"id": got.ID, "kind": "person", "email": "", "subject": "", "display_name": "",
			"user_name": "Bjensen@Example.com", "external_id": "00u1", "state": "deactivated", "version": 1,
		}, "")
		if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		e.refusedOwnerCreates([]refusedOwnerCreate{
			{"user name taken in another case", CreateOwnerParams{Kind: store.OwnerPerson, UserName: "BJENSEN@example.COM"}, "", ErrAlreadyExists},
			{"long user name", CreateOwnerParams{Kind: store.OwnerPerson, UserName: strings.Repeat("u", MaxUserNameLen+1)}, "user_name", nil},
			{"control in user name", CreateOwnerParams{Kind: store.OwnerPerson, UserName: "a\x07b"}, "user_name", nil},
			{"long external id", CreateOwnerParams{Kind: store.OwnerPerson, UserName: "x", ExternalID: strings.Repeat("e", MaxExternalIDLen+1)}, "external_id", nil},
			{"external id alone is no key", CreateOwnerParams{Kind: store.OwnerPerson, ExternalID: "00u2"}, "email", nil},
		})
	})
}

func TestUpdateOwner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		own := e.owner("alice@example.com")
		other := e.owner("bob@example.com")
		if _, err := e.svc.UpdateOwner(e.ctx, testOrigin(), UpdateOwnerParams{Ref: other.ID, UserName: ptr("bob")}); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(time.Hour)
		for _, tc := range []struct {
			name  string
			p     UpdateOwnerParams
			want  error
			field string
		}{
			{"nothing", UpdateOwnerParams{Ref: own.ID}, nil, ""},
			{"stale version", UpdateOwnerParams{Ref: own.ID, IfVersion: 7, DisplayName: ptr("A")}, ErrVersionMismatch, ""},
			{"negative version", UpdateOwnerParams{Ref: own.ID, IfVersion: -1, DisplayName: ptr("A")}, nil, "if_version"},
			{"unknown", UpdateOwnerParams{Ref: "nobody@example.com", DisplayName: ptr("A")}, ErrNotFound, ""},
			{"bad email", UpdateOwnerParams{Ref: own.ID, Email: ptr("not an email")}, nil, "email"},
			{"email taken", UpdateOwnerParams{Ref: own.ID, Email: ptr("BOB@example.com")}, ErrAlreadyExists, ""},
			{"user name taken", UpdateOwnerParams{Ref: own.ID, UserName: ptr("BOB")}, ErrAlreadyExists, ""},
			{"control in display name", UpdateOwnerParams{Ref: own.ID, DisplayName: ptr("a\nb")}, nil, "display_name"},
			{"long external id", UpdateOwnerParams{Ref: own.ID, ExternalID: ptr(strings.Repeat("e", MaxExternalIDLen+1))}, nil, "external_id"},
			{"no key left", UpdateOwnerParams{Ref: own.ID, Email: ptr("")}, nil, "email"},
			{"bad state", UpdateOwnerParams{Ref: own.ID, State: ptr(store.OwnerState("gone"))}, nil, "state"},
			{"subject issuer without a subject", UpdateOwnerParams{Ref: own.ID, SubjectIssuer: ptr("https://login.example.com")}, nil, "subject_issuer"},
			{"subject issuer not a URL", UpdateOwnerParams{Ref: own.ID, SubjectIssuer: ptr("login.example.com")}, nil, "subject_issuer"},
			{"bad reason", UpdateOwnerParams{Ref: own.ID, DisplayName: ptr("A"), Reason: "\x1b"}, nil, "reason"},
		} {
			e.refused(tc.name, tc.field, tc.want, func() error {
				_, err := e.svc.UpdateOwner(e.ctx, testOrigin(), tc.p)
				return err
			})
		}

		before := e.head()
		got, err := e.svc.UpdateOwner(e.ctx, testOrigin(), UpdateOwnerParams{
			Ref: "ALICE@example.com", IfVersion: 1, Email: ptr(" Alice.L@Example.com "), DisplayName: ptr(" Alice L "),
			UserName: ptr("alice.l"), ExternalID: ptr("ext-9"),
		})
		if err != nil {
			t.Fatal(err)
		}
		want := own
		want.Email, want.DisplayName, want.UserName, want.ExternalID = "alice.l@example.com", "Alice L", "alice.l", "ext-9"
		want.Version, want.UpdatedAt = 2, e.clk.Now().UTC().Truncate(time.Microsecond)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("UpdateOwner (-want +got):\n%s", diff)
		}
		wantEv := wantEvent(audit.Admin, EventOwnerUpdated, nil, map[string]any{
			"id": own.ID, "kind": "person", "version": 2, "changed": []string{"email", "display_name", "user_name", "external_id"},
			"email": "alice.l@example.com", "display_name": "Alice L", "user_name": "alice.l", "external_id": "ext-9",
		}, "")
		if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}

		// The same values again: no change, no event, the same version.
		snap := e.snapshot()
		again, err := e.svc.UpdateOwner(e.ctx, testOrigin(), UpdateOwnerParams{Ref: own.ID, DisplayName: ptr("Alice L"),
			State: ptr(store.OwnerActive)})
		if err != nil || again.Version != 2 {
			t.Errorf("no-op update = %+v, %v; want version 2", again, err)
		}
		e.unchanged(snap, "a no-op update")

		// Clearing a field names only it.
		before = e.head()
		if got, err = e.svc.UpdateOwner(e.ctx, testOrigin(), UpdateOwnerParams{Ref: own.ID, ExternalID: ptr(""), DisplayName: ptr("Alice L")}); err != nil {
			t.Fatal(err)
		}
		if got.ExternalID != "" || got.Version != 3 {
			t.Errorf("cleared external id: %+v", got)
		}
		wantEv = wantEvent(audit.Admin, EventOwnerUpdated, nil, map[string]any{
			"id": own.ID, "kind": "person", "version": 3, "changed": []string{"external_id"}, "external_id": "",
		}, "")
		if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}

		// An owner with a subject is tied to its issuer, then untied
		// (ADR 0027).
		subj, err := e.svc.CreateOwner(e.ctx, testOrigin(), CreateOwnerParams{Kind: store.OwnerPerson, Subject: "00u9"})
		if err != nil {
			t.Fatal(err)
		}
		for i, iss := range []string{"https://login.example.com/oauth2/default", ""} {
			before = e.head()
			got, err := e.svc.UpdateOwner(e.ctx, testOrigin(), UpdateOwnerParams{Ref: subj.ID, SubjectIssuer: ptr(iss)})
			if err != nil {
				t.Fatal(err)
			}
			if got.SubjectIssuer != iss || got.Version != int64(2+i) {
				t.Errorf("subject issuer set to %q: %+v", iss, got)
			}
			wantEv = wantEvent(audit.Admin, EventOwnerUpdated, nil, map[string]any{
				"id": subj.ID, "kind": "person", "version": 2 + i, "changed": []string{"subject_issuer"}, "subject_issuer": iss,
			}, "")
			if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		}
		e.verifyTrail()
	})
}

// TestReactivateOwner deactivates an owner (orphaning its agents) and
// reactivates it, alone and with an update in one call, as SCIM does.
func TestReactivateOwner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		a := e.owner("a@example.com")
		b := e.owner("b@example.com")
		onlyA := e.agent("only-a", a.ID)
		e.agent("a-and-b", a.ID, b.ID)

		e.refused("reactivating an active owner", "", ErrIllegalTransition, func() error {
			_, err := e.svc.ReactivateOwner(e.ctx, testOrigin(), TransitionParams{Ref: a.ID})
			return err
		})

		if _, err := e.svc.DeactivateOwner(e.ctx, testOrigin(), TransitionParams{Ref: a.ID}); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.svc.GetAgent(e.ctx, onlyA.ID); !got.Orphaned {
			t.Fatal("only-a is not orphaned")
		}
		e.refused("a stale reactivation", "", ErrVersionMismatch, func() error {
			_, err := e.svc.ReactivateOwner(e.ctx, testOrigin(), TransitionParams{Ref: a.ID, IfVersion: 1})
			return err
		})

		e.clk.Advance(time.Minute)
		before := e.head()
		got, err := e.svc.ReactivateOwner(e.ctx, testOrigin(), TransitionParams{Ref: a.ID, IfVersion: 2, Reason: "rehired"})
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.OwnerActive || got.Version != 3 {
			t.Errorf("ReactivateOwner = %+v", got)
		}
		wantEv := wantEvent(audit.Admin, EventOwnerReactivated, nil, map[string]any{
			"id": a.ID, "kind": "person", "version": 3, "restored_agents": 1,
		}, "rehired")
		if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if got, _ := e.svc.GetAgent(e.ctx, onlyA.ID); got.Orphaned {
			t.Error("only-a is still orphaned after its owner's reactivation")
		}

		// An update and a deactivation in one call: one version, both events.
		before = e.head()
		got, err = e.svc.UpdateOwner(e.ctx, testOrigin(), UpdateOwnerParams{Ref: a.ID, IfVersion: 3,
			DisplayName: ptr("A"), State: ptr(store.OwnerDeactivated), Reason: "left"})
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.OwnerDeactivated || got.DisplayName != "A" || got.Version != 4 {
			t.Errorf("UpdateOwner with a state = %+v", got)
		}
		var types []string
		for _, ev := range e.eventsAfter(before) {
			types = append(types, ev.Type+fmt.Sprint(ev.Details["version"])+ev.Reason)
		}
		if diff := cmp.Diff([]string{"owner.updated4", "owner.deactivated4left", "agent.orphaned1"}, types); diff != "" {
			t.Errorf("events of an update with a deactivation (-want +got):\n%s", diff)
		}
		// A deactivated owner may be updated and reactivated in one call.
		if got, err = e.svc.UpdateOwner(e.ctx, testOrigin(), UpdateOwnerParams{Ref: a.ID, DisplayName: ptr("A."),
			State: ptr(store.OwnerActive)}); err != nil || got.State != store.OwnerActive {
			t.Errorf("update and reactivate = %+v, %v", got, err)
		}
		e.verifyTrail()
	})
}

func TestSliceOwners(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		var ids []string
		for i := range 7 {
			ids = append(ids, e.owner(fmt.Sprintf("o%d@example.com", i)).ID)
		}
		team, err := e.svc.CreateOwner(e.ctx, testOrigin(), CreateOwnerParams{Kind: store.OwnerTeam, Subject: "team"})
		if err != nil {
			t.Fatal(err)
		}
		persons := store.OwnerFilter{Kind: store.OwnerPerson}
		for _, tc := range []struct {
			skip, n int
			want    []string
		}{
			{0, 3, ids[:3]}, {3, 3, ids[3:6]}, {6, 3, ids[6:]}, {7, 3, nil}, {20, 3, nil}, {0, 0, nil}, {2, 100, ids[2:]},
		} {
			got, total, err := e.svc.SliceOwners(e.ctx, persons, tc.skip, tc.n)
			if err != nil || total != 7 {
				t.Fatalf("SliceOwners(%d, %d) total %d, %v", tc.skip, tc.n, total, err)
			}
			var gotIDs []string
			for _, o := range got {
				gotIDs = append(gotIDs, o.ID)
			}
			if diff := cmp.Diff(tc.want, gotIDs); diff != "" {
				t.Errorf("SliceOwners(%d, %d) (-want +got):\n%s", tc.skip, tc.n, diff)
			}
		}
		if got, total, err := e.svc.SliceOwners(e.ctx, store.OwnerFilter{Kind: store.OwnerTeam}, 0, 5); err != nil || total != 1 || len(got) != 1 || got[0].ID != team.ID {
			t.Errorf("SliceOwners(teams) = %v, %d, %v", got, total, err)
		}
		_, _, err = e.svc.SliceOwners(e.ctx, store.OwnerFilter{Kind: "robot"}, 0, 1)
		checkValidation(t, err, "kind")
		_, _, err = e.svc.SliceOwners(e.ctx, persons, -1, 1)
		checkValidation(t, err, "")
	})
}
