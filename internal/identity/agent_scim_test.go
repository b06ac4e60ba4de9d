package identity

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

// TestAgentExternalIDAndSuspendedCreate checks what SCIM provisioning of
// agents (ADR 0025) needs of the registry: an external id set on create,
// changed and cleared by UpdateAgent and audited, and an agent created
// suspended.
func TestAgentExternalIDAndSuspendedCreate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		owner := e.owner("o@example.com")
		before := e.head()
		a, err := e.svc.CreateAgent(e.ctx, testOrigin(), CreateAgentParams{Name: "scim-bot", Owners: []string{owner.ID},
			Purpose: "p", ExternalID: "  ext-1  ", Suspended: true})
		if err != nil {
			t.Fatal(err)
		}
		if a.ExternalID != "ext-1" || a.State != store.AgentSuspended || a.Version != 1 {
			t.Fatalf("created = external id %q, state %s, version %d", a.ExternalID, a.State, a.Version)
		}
		evs := e.eventsAfter(before)
		if len(evs) != 1 || evs[0].Type != EventAgentCreated || evs[0].Details["state"] != "suspended" || evs[0].Details["external_id"] != "ext-1" {
			t.Fatalf("events of a suspended create = %+v", evs)
		}

		before = e.head()
		empty := ""
		got, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, ExternalID: &empty})
		if err != nil || got.ExternalID != "" || got.Version != 2 {
			t.Fatalf("clear external id = %q v%d, %v", got.ExternalID, got.Version, err)
		}
		want := wantEvent(audit.Issuance, EventAgentUpdated, &got,
			map[string]any{"version": 2, "changed": []string{FieldExternalID}, "external_id": ""}, "")
		if diff := cmp.Diff([]event{want}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}

		for _, bad := range []string{strings.Repeat("x", MaxExternalIDLen+1), "a\x00b"} {
			e.refused(fmt.Sprintf("external id %q", bad), FieldExternalID, nil, func() error {
				_, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, ExternalID: &bad})
				return err
			})
		}
		e.verifyTrail()
	})
}

// TestUpdateAgentState checks UpdateAgent's State: the fields and the
// state change in one version, agent.updated then agent.suspended or
// agent.resumed; a state the agent is in changes nothing; deprovisioned
// is refused, as is any change of a deprovisioned agent.
func TestUpdateAgentState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		owner := e.owner("o@example.com")
		a := e.agent("stateful", owner.ID)
		state := func(s store.AgentState) *store.AgentState { return &s }
		ext := "ext-9"
		steps := []struct {
			name       string
			p          UpdateAgentParams
			wantState  store.AgentState
			wantVer    int64
			wantEvents []string
		}{
			{"suspend with a change", UpdateAgentParams{ExternalID: &ext, State: state(store.AgentSuspended)},
				store.AgentSuspended, 2, []string{EventAgentUpdated, EventAgentSuspended}},
			{"suspend again", UpdateAgentParams{State: state(store.AgentSuspended)}, store.AgentSuspended, 2, nil},
			{"resume alone", UpdateAgentParams{State: state(store.AgentActive)}, store.AgentActive, 3, []string{EventAgentResumed}},
			{"same values and state", UpdateAgentParams{ExternalID: &ext, State: state(store.AgentActive)}, store.AgentActive, 3, nil},
		}
		for _, s := range steps {
			before := e.head()
			s.p.Ref = a.ID
			got, err := e.svc.UpdateAgent(e.ctx, testOrigin(), s.p)
			if err != nil || got.State != s.wantState || got.Version != s.wantVer {
				t.Fatalf("%s: state %s v%d, %v; want %s v%d", s.name, got.State, got.Version, err, s.wantState, s.wantVer)
			}
			var types []string
			for _, ev := range e.eventsAfter(before) {
				types = append(types, ev.Type)
				if ev.Details["version"] != float64(s.wantVer) {
					t.Errorf("%s: %s has version %v, want %d", s.name, ev.Type, ev.Details["version"], s.wantVer)
				}
				if ev.Type == EventAgentSuspended && (ev.Details["previous_state"] != "active" || ev.Details["tokens_affected"] != float64(0)) {
					t.Errorf("%s: %s details %v", s.name, ev.Type, ev.Details)
				}
			}
			if diff := cmp.Diff(s.wantEvents, types); diff != "" {
				t.Errorf("%s: events (-want +got):\n%s", s.name, diff)
			}
		}

		snap := e.snapshot()
		_, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, State: state(store.AgentDeprovisioned)})
		if ve, ok := errors.AsType[*ValidationError](err); !ok || ve.Field != "state" {
			t.Errorf("State deprovisioned: %v, want a validation error of state", err)
		}
		e.unchanged(snap, "State deprovisioned")
		if _, err := e.svc.DeprovisionAgent(e.ctx, testOrigin(), TransitionParams{Ref: a.ID}); err != nil {
			t.Fatal(err)
		}
		snap = e.snapshot()
		_, err = e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, State: state(store.AgentActive)})
		if !errors.Is(err, ErrIllegalTransition) {
			t.Errorf("resume a deprovisioned agent by UpdateAgent: %v, want ErrIllegalTransition", err)
		}
		e.unchanged(snap, "resume a deprovisioned agent")
		e.verifyTrail()
	})
}

// TestSliceAgents pages agents by index as SCIM does, with the filters it
// uses.
func TestSliceAgents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		owner := e.owner("o@example.com")
		var ids []string
		for i := range 7 {
			ids = append(ids, e.agent(fmt.Sprintf("s%d", i), owner.ID).ID)
		}
		if _, err := e.svc.DeprovisionAgent(e.ctx, testOrigin(), TransitionParams{Ref: ids[6]}); err != nil {
			t.Fatal(err)
		}
		live := store.AgentFilter{Live: true}
		for _, tc := range []struct {
			skip, n int
			want    []string
		}{
			{0, 10, ids[:6]}, {0, 2, ids[:2]}, {4, 2, ids[4:6]}, {5, 10, ids[5:6]}, {6, 3, nil}, {2, 0, nil},
		} {
			got, total, err := e.svc.SliceAgents(e.ctx, live, tc.skip, tc.n)
			if err != nil || total != 6 {
				t.Fatalf("SliceAgents(%d, %d): total %d, %v", tc.skip, tc.n, total, err)
			}
			var gotIDs []string
			for _, a := range got {
				gotIDs = append(gotIDs, a.ID)
			}
			if diff := cmp.Diff(tc.want, gotIDs); diff != "" {
				t.Errorf("SliceAgents(%d, %d) (-want +got):\n%s", tc.skip, tc.n, diff)
			}
		}
		if _, _, err := e.svc.SliceAgents(e.ctx, live, -1, 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("negative skip: %v", err)
		}
		if _, _, err := e.svc.SliceAgents(e.ctx, store.AgentFilter{State: "gone"}, 0, 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad state: %v", err)
		}
	})
}
