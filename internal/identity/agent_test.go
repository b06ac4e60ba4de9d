package identity

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

func TestNew(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		rec, err := audit.NewRecorder(audit.RecorderParams{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			p    Params
			ok   bool
		}{
			{"defaults", Params{Store: st, Recorder: rec, TrustDomain: "example.org"}, true},
			{"explicit ttls", Params{Store: st, Recorder: rec, TrustDomain: "example.org", DefaultTTL: time.Minute, MaxTTLCap: time.Minute}, true},
			{"no store", Params{Recorder: rec, TrustDomain: "example.org"}, false},
			{"no recorder", Params{Store: st, TrustDomain: "example.org"}, false},
			{"no trust domain", Params{Store: st, Recorder: rec}, false},
			{"bad trust domain", Params{Store: st, Recorder: rec, TrustDomain: "Example.org"}, false},
			{"trust domain with port", Params{Store: st, Recorder: rec, TrustDomain: "example.org:443"}, false},
			{"default above cap", Params{Store: st, Recorder: rec, TrustDomain: "example.org", DefaultTTL: 2 * time.Hour}, false},
			{"default too short", Params{Store: st, Recorder: rec, TrustDomain: "example.org", DefaultTTL: time.Second}, false},
			{"cap too short", Params{Store: st, Recorder: rec, TrustDomain: "example.org", MaxTTLCap: time.Second}, false},
		}
		for _, tt := range tests {
			svc, err := New(tt.p)
			if (err == nil) != tt.ok {
				t.Errorf("%s: New error = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err == nil && svc.TrustDomain() != tt.p.TrustDomain {
				t.Errorf("%s: TrustDomain = %q", tt.name, svc.TrustDomain())
			}
		}
	})
}

func TestCreateAgent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		alice := e.owner("alice@example.com")
		team, err := e.svc.CreateOwner(e.ctx, testOrigin(), CreateOwnerParams{Kind: store.OwnerTeam, Subject: "okta|team-billing", DisplayName: "Billing"})
		if err != nil {
			t.Fatal(err)
		}
		before := e.head()
		now := e.clk.Now().UTC().Truncate(time.Microsecond)
		exp := now.Add(24 * time.Hour)
		got, err := e.svc.CreateAgent(e.ctx, testOrigin(), CreateAgentParams{
			Name:          "billing-agent",
			Owners:        []string{team.ID, "Alice@Example.com", alice.ID},
			Purpose:       "  Reconciles invoices for the finance team  ",
			ActionClasses: []string{"payments:refund", "invoices.read", "invoices.read"},
			Audiences:     []string{"https://api.example.com", "billing"},
			Scopes:        []string{"invoices:write", "invoices:read"},
			Permissions:   []string{PermissionIntrospect},
			RequireDPoP:   true,
			FederatesWith: []string{"partner.example", "acme.example", "partner.example"},
			Selectors:     []string{"unix:uid:1000", "unix:path:/usr/local/bin/billing", "unix:uid:1000"},
			MaxTTL:        5 * time.Minute,
			Labels:        map[string]string{"team": "billing", "example.com/env": "prod"},
			ExpiresAt:     exp,
		})
		if err != nil {
			t.Fatal(err)
		}
		if recordid.Valid(recordid.Agent, got.ID) != nil {
			t.Errorf("ID %q is not an agent id", got.ID)
		}
		owners := []string{alice.ID, team.ID}
		if owners[0] > owners[1] {
			owners[0], owners[1] = owners[1], owners[0]
		}
		want := store.Agent{
			ID:            got.ID,
			Name:          "billing-agent",
			SPIFFEID:      "spiffe://example.org/agent/billing-agent",
			Owners:        owners,
			Purpose:       "Reconciles invoices for the finance team",
			ActionClasses: []string{"invoices.read", "payments:refund"},
			Audiences:     []string{"billing", "https://api.example.com"},
			Scopes:        []string{"invoices:read", "invoices:write"},
			Permissions:   []string{"introspect"},
			RequireDPoP:   true,
			FederatesWith: []string{"acme.example", "partner.example"},
			Selectors:     []string{"unix:path:/usr/local/bin/billing", "unix:uid:1000"},
			MaxTTL:        5 * time.Minute,
			Labels:        map[string]string{"team": "billing", "example.com/env": "prod"},
			ExpiresAt:     exp,
			State:         store.AgentActive,
			CreatedBy:     "adm_tester",
			CreatedAt:     now,
			UpdatedAt:     now,
			Version:       1,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("CreateAgent (-want +got):\n%s", diff)
		}
		stored, err := e.svc.GetAgent(e.ctx, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, stored); diff != "" {
			t.Errorf("stored agent differs from returned (-returned +stored):\n%s", diff)
		}
		wantEv := wantEvent(audit.Issuance, EventAgentCreated, &want, map[string]any{
			"version":           1,
			"state":             "active",
			"owners":            want.Owners,
			"purpose":           want.Purpose,
			"action_classes":    want.ActionClasses,
			"audiences":         want.Audiences,
			"scopes":            want.Scopes,
			"permissions":       want.Permissions,
			"require_dpop":      true,
			"federates_with":    want.FederatesWith,
			"selectors":         want.Selectors,
			"attestation_rules": []string{},
			"node_scope":        map[string]any{"node_ids": []string{}, "rules": []string{}},
			"max_ttl_seconds":   300,
			"labels":            want.Labels,
			"expires_at":        exp.Format(time.RFC3339Nano),
			"external_id":       "",
		}, "")
		if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}

		// Defaults: TTL, empty lists, no labels, no expiry.
		min, err := e.svc.CreateAgent(e.ctx, audit.Origin{}, CreateAgentParams{Name: "min", Owners: []string{alice.ID}, Purpose: "p"})
		if err != nil {
			t.Fatal(err)
		}
		if min.MaxTTL != DefaultMaxTTL || len(min.ActionClasses) != 0 || len(min.Audiences) != 0 || len(min.Labels) != 0 || !min.ExpiresAt.IsZero() ||
			len(min.Scopes) != 0 || len(min.Permissions) != 0 || min.RequireDPoP || !min.TokensRevokedAt.IsZero() {
			t.Errorf("defaults not applied: %+v", min)
		}
		e.verifyTrail()
	})
}

func TestCreateAgentInvalid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		alice := e.owner("alice@example.com")
		gone := e.owner("gone@example.com")
		if _, err := e.svc.DeactivateOwner(e.ctx, testOrigin(), TransitionParams{Ref: gone.ID}); err != nil {
			t.Fatal(err)
		}
		taken := e.agent("taken", alice.ID)
		retired := e.agent("retired", alice.ID)
		if _, err := e.svc.DeprovisionAgent(e.ctx, testOrigin(), TransitionParams{Ref: retired.ID}); err != nil {
			t.Fatal(err)
		}
		now := e.clk.Now()
		valid := func() CreateAgentParams {
			return CreateAgentParams{Name: "new-agent", Owners: []string{alice.ID}, Purpose: "does things"}
		}
		with := func(f func(*CreateAgentParams)) CreateAgentParams {
			p := valid()
			f(&p)
			return p
		}
		tooManyOwners := make([]string, MaxOwners+1)
		for i := range tooManyOwners {
			tooManyOwners[i] = alice.ID
		}
		tooManyLabels := map[string]string{}
		for i := range MaxLabels + 1 {
			tooManyLabels[fmt.Sprintf("k%d", i)] = "v"
		}
		tests := []struct {
			name  string
			p     CreateAgentParams
			field string // "" with wantErr set
			want  error
		}{
			{"empty name", with(func(p *CreateAgentParams) { p.Name = "" }), "name", nil},
			{"upper-case name", with(func(p *CreateAgentParams) { p.Name = "Billing" }), "name", nil},
			{"underscore name", with(func(p *CreateAgentParams) { p.Name = "billing_agent" }), "name", nil},
			{"long name", with(func(p *CreateAgentParams) { p.Name = strings.Repeat("a", 64) }), "name", nil},
			{"leading hyphen", with(func(p *CreateAgentParams) { p.Name = "-a" }), "name", nil},
			{"path in name", with(func(p *CreateAgentParams) { p.Name = "a/b" }), "name", nil},
			{"no owners", with(func(p *CreateAgentParams) { p.Owners = nil }), "owners", nil},
			{"too many owners", with(func(p *CreateAgentParams) { p.Owners = tooManyOwners }), "owners", nil},
			{"malformed owner ref", with(func(p *CreateAgentParams) { p.Owners = []string{alice.ID, "bob"} }), "owners[1]", nil},
			{"unknown owner id", with(func(p *CreateAgentParams) { p.Owners = []string{"own_01j00000000000000000000000"} }), "owners[0]", nil},
			{"unknown owner email", with(func(p *CreateAgentParams) { p.Owners = []string{"nobody@example.com"} }), "owners[0]", nil},
			{"deactivated owner", with(func(p *CreateAgentParams) { p.Owners = []string{alice.ID, gone.ID} }), "owners[1]", nil},
			{"no purpose", with(func(p *CreateAgentParams) { p.Purpose = "   " }), "purpose", nil},
			{"purpose with control", with(func(p *CreateAgentParams) { p.Purpose = "a\x1b[31mb" }), "purpose", nil},
			{"long purpose", with(func(p *CreateAgentParams) { p.Purpose = strings.Repeat("x", MaxPurposeLen+1) }), "purpose", nil},
			{"bad action class", with(func(p *CreateAgentParams) { p.ActionClasses = []string{"read", "Write"} }), "action_classes[1]", nil},
			{"empty audience", with(func(p *CreateAgentParams) { p.Audiences = []string{""} }), "audiences[0]", nil},
			{"scope with space", with(func(p *CreateAgentParams) { p.Scopes = []string{"read", "a b"} }), "scopes[1]", nil},
			{"unknown permission", with(func(p *CreateAgentParams) { p.Permissions = []string{"admin"} }), "permissions[0]", nil},
			{"ttl too short", with(func(p *CreateAgentParams) { p.MaxTTL = 9 * time.Second }), FieldMaxTTL, nil},
			{"negative ttl", with(func(p *CreateAgentParams) { p.MaxTTL = -time.Minute }), FieldMaxTTL, nil},
			{"ttl above cap", with(func(p *CreateAgentParams) { p.MaxTTL = 2*time.Hour + time.Second }), FieldMaxTTL, nil},
			{"fractional ttl", with(func(p *CreateAgentParams) { p.MaxTTL = 10*time.Second + time.Millisecond }), FieldMaxTTL, nil},
			{"too many labels", with(func(p *CreateAgentParams) { p.Labels = tooManyLabels }), "labels", nil},
			{"bad label key", with(func(p *CreateAgentParams) { p.Labels = map[string]string{"a b": "c"} }), "labels", nil},
			{"bad label value", with(func(p *CreateAgentParams) { p.Labels = map[string]string{"a": "b\nc"} }), "labels", nil},
			{"expiry in past", with(func(p *CreateAgentParams) { p.ExpiresAt = now.Add(-time.Second) }), FieldExpiresAt, nil},
			{"expiry now", with(func(p *CreateAgentParams) { p.ExpiresAt = now }), FieldExpiresAt, nil},
			{"name taken", with(func(p *CreateAgentParams) { p.Name = taken.Name }), "", ErrAlreadyExists},
			{"name of deprovisioned agent", with(func(p *CreateAgentParams) { p.Name = retired.Name }), "", ErrAlreadyExists},
		}
		for _, tt := range tests {
			before := e.snapshot()
			_, err := e.svc.CreateAgent(e.ctx, testOrigin(), tt.p)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: error = %v, want %v", tt.name, err, tt.want)
				}
				if !errors.Is(err, store.ErrAlreadyExists) {
					t.Errorf("%s: error %v does not match store.ErrAlreadyExists", tt.name, err)
				}
			} else {
				checkValidation(t, err, tt.field)
			}
			e.unchanged(before, tt.name)
		}
	})
}

func TestGetAgent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		a := e.agent("finder", e.owner("a@example.com").ID)
		for _, ref := range []string{a.ID, a.Name} {
			got, err := e.svc.GetAgent(e.ctx, ref)
			if err != nil {
				t.Fatalf("GetAgent(%q): %v", ref, err)
			}
			if diff := cmp.Diff(a, got); diff != "" {
				t.Errorf("GetAgent(%q) (-want +got):\n%s", ref, diff)
			}
		}
		for _, ref := range []string{"nobody", "agt_01j00000000000000000000000"} {
			_, err := e.svc.GetAgent(e.ctx, ref)
			if !errors.Is(err, ErrNotFound) || !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetAgent(%q) = %v, want ErrNotFound", ref, err)
			}
		}
		for _, ref := range []string{"", "Finder", "own_01j00000000000000000000000", strings.Repeat("a", 10000)} {
			_, err := e.svc.GetAgent(e.ctx, ref)
			checkValidation(t, err, "ref")
		}
	})
}

func TestUpdateAgent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		alice := e.owner("alice@example.com")
		bob := e.owner("bob@example.com")
		a := e.agent("updater", alice.ID)
		e.clk.Advance(time.Minute)
		now := e.clk.Now().UTC().Truncate(time.Microsecond)

		before := e.head()
		purpose := "New purpose"
		labels := map[string]string{"tier": "gold"}
		ttl := 30 * time.Minute
		classes := []string{"b", "a"}
		scopes := []string{"tickets:write", "tickets:read"}
		perms := []string{PermissionIntrospect}
		dpop := true
		got, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{
			Ref: a.Name, IfVersion: 1,
			Purpose: &purpose, Labels: &labels, MaxTTL: &ttl, ActionClasses: &classes,
			Owners: &[]string{alice.ID, "BOB@example.com"},
			Scopes: &scopes, Permissions: &perms, RequireDPoP: &dpop,
		})
		if err != nil {
			t.Fatal(err)
		}
		want := a
		want.Purpose, want.Labels, want.MaxTTL, want.ActionClasses = purpose, labels, ttl, []string{"a", "b"}
		want.Owners = []string{alice.ID, bob.ID}
		want.Scopes, want.Permissions, want.RequireDPoP = []string{"tickets:read", "tickets:write"}, []string{"introspect"}, true
		want.Version, want.UpdatedAt = 2, now
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("UpdateAgent (-want +got):\n%s", diff)
		}
		wantEv := wantEvent(audit.Issuance, EventAgentUpdated, &want, map[string]any{
			"version": 2,
			"changed": []string{FieldOwners, FieldPurpose, FieldActionClasses, FieldScopes, FieldPermissions,
				FieldRequireDPoP, FieldMaxTTL, FieldLabels},
			"owners":          want.Owners,
			"purpose":         purpose,
			"action_classes":  []string{"a", "b"},
			"scopes":          want.Scopes,
			"permissions":     want.Permissions,
			"require_dpop":    true,
			"max_ttl_seconds": 1800,
			"labels":          labels,
		}, "")
		if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}

		// The same values again: nothing changes, nothing is recorded.
		before = e.head()
		snap := e.snapshot()
		same, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, Purpose: &purpose, Labels: &labels,
			Scopes: &[]string{"tickets:read", "tickets:write", "tickets:read"}, RequireDPoP: &dpop})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, same, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("no-op update returned (-want +got):\n%s", diff)
		}
		e.unchanged(snap, "no-op update")

		// Set and clear the expiry.
		exp := now.Add(time.Hour)
		got, err = e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, ExpiresAt: &exp})
		if err != nil || !got.ExpiresAt.Equal(exp) || got.Version != 3 {
			t.Fatalf("set expiry: %+v, %v", got, err)
		}
		got, err = e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, ExpiresAt: &time.Time{}})
		if err != nil || !got.ExpiresAt.IsZero() || got.Version != 4 {
			t.Fatalf("clear expiry: %+v, %v", got, err)
		}
		evs := e.eventsAfter(before)
		if len(evs) != 2 || evs[1].Details["changed"].([]any)[0] != FieldExpiresAt {
			t.Fatalf("expiry events: %+v", evs)
		}
		if v, ok := evs[1].Details["expires_at"]; !ok || v != nil {
			t.Errorf("cleared expiry recorded as %#v (present %v), want JSON null", v, ok)
		}
		e.verifyTrail()
	})
}

func TestUpdateAgentInvalid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		alice := e.owner("alice@example.com")
		bob := e.owner("bob@example.com")
		gone := e.owner("gone@example.com")
		a := e.agent("target", alice.ID, gone.ID)
		if _, err := e.svc.DeactivateOwner(e.ctx, testOrigin(), TransitionParams{Ref: gone.ID}); err != nil {
			t.Fatal(err)
		}
		dead := e.agent("dead", alice.ID)
		if _, err := e.svc.DeprovisionAgent(e.ctx, testOrigin(), TransitionParams{Ref: dead.ID}); err != nil {
			t.Fatal(err)
		}
		bump := "bumped"
		a, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, Purpose: &bump})
		if err != nil || a.Version != 2 {
			t.Fatalf("bump: %v, %v", a.Version, err)
		}
		purpose := "x"
		bad := "\x00"
		short := time.Second
		past := e.clk.Now().Add(-time.Hour)
		none := map[string]string{"Bad Key": "v"}
		tests := []struct {
			name  string
			p     UpdateAgentParams
			field string
			want  error
		}{
			{"nothing set", UpdateAgentParams{Ref: a.ID}, "", nil},
			{"negative version", UpdateAgentParams{Ref: a.ID, IfVersion: -1, Purpose: &purpose}, "if_version", nil},
			{"bad purpose", UpdateAgentParams{Ref: a.ID, Purpose: &bad}, "purpose", nil},
			{"short ttl", UpdateAgentParams{Ref: a.ID, MaxTTL: &short}, FieldMaxTTL, nil},
			{"past expiry", UpdateAgentParams{Ref: a.ID, ExpiresAt: &past}, FieldExpiresAt, nil},
			{"bad labels", UpdateAgentParams{Ref: a.ID, Labels: &none}, "labels", nil},
			{"bad scope", UpdateAgentParams{Ref: a.ID, Scopes: &[]string{`"quoted"`}}, "scopes[0]", nil},
			{"bad permission", UpdateAgentParams{Ref: a.ID, Permissions: &[]string{"root"}}, "permissions[0]", nil},
			{"empty owners", UpdateAgentParams{Ref: a.ID, Owners: &[]string{}}, "owners", nil},
			{"add deactivated owner", UpdateAgentParams{Ref: dead.ID, Owners: &[]string{gone.ID}}, "", ErrIllegalTransition},
			{"add deactivated owner to live agent", UpdateAgentParams{Ref: e.agent("other", bob.ID).ID, Owners: &[]string{bob.ID, gone.ID}}, "owners[1]", nil},
			{"only deactivated owners", UpdateAgentParams{Ref: a.ID, Owners: &[]string{gone.ID}}, "owners", nil},
			{"unknown owner", UpdateAgentParams{Ref: a.ID, Owners: &[]string{"x@example.com"}}, "owners[0]", nil},
			{"bad ref", UpdateAgentParams{Ref: "Target", Purpose: &purpose}, "ref", nil},
			{"unknown agent", UpdateAgentParams{Ref: "missing", Purpose: &purpose}, "", ErrNotFound},
			{"stale version", UpdateAgentParams{Ref: a.ID, IfVersion: a.Version - 1, Purpose: &purpose}, "", ErrVersionMismatch},
			{"future version", UpdateAgentParams{Ref: a.ID, IfVersion: a.Version + 1, Purpose: &purpose}, "", ErrVersionMismatch},
			{"deprovisioned", UpdateAgentParams{Ref: dead.ID, Purpose: &purpose}, "", ErrIllegalTransition},
		}
		for _, tt := range tests {
			before := e.snapshot()
			_, err := e.svc.UpdateAgent(e.ctx, testOrigin(), tt.p)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: error = %v, want %v", tt.name, err, tt.want)
				}
			} else {
				checkValidation(t, err, tt.field)
			}
			e.unchanged(before, tt.name)
		}

		// Keeping a deactivated owner next to an active one is fine.
		got, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, Owners: &[]string{gone.ID, alice.ID, bob.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Owners) != 3 {
			t.Errorf("owners = %v", got.Owners)
		}
	})
}

func TestAgentTransitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		owner := e.owner("o@example.com")
		ops := map[string]func(TransitionParams) (store.Agent, error){
			"suspend": func(p TransitionParams) (store.Agent, error) {
				return e.svc.SuspendAgent(e.ctx, testOrigin(), p)
			},
			"resume": func(p TransitionParams) (store.Agent, error) {
				return e.svc.ResumeAgent(e.ctx, testOrigin(), p)
			},
			"deprovision": func(p TransitionParams) (store.Agent, error) {
				return e.svc.DeprovisionAgent(e.ctx, testOrigin(), p)
			},
		}
		events := map[string]string{"suspend": EventAgentSuspended, "resume": EventAgentResumed, "deprovision": EventAgentDeprovisioned}
		// setup brings a fresh agent into a state.
		setup := map[store.AgentState][]string{
			store.AgentActive:        nil,
			store.AgentSuspended:     {"suspend"},
			store.AgentDeprovisioned: {"deprovision"},
		}
		tests := []struct {
			from store.AgentState
			op   string
			to   store.AgentState // "" means illegal
		}{
			{store.AgentActive, "suspend", store.AgentSuspended},
			{store.AgentActive, "resume", ""},
			{store.AgentActive, "deprovision", store.AgentDeprovisioned},
			{store.AgentSuspended, "suspend", ""},
			{store.AgentSuspended, "resume", store.AgentActive},
			{store.AgentSuspended, "deprovision", store.AgentDeprovisioned},
			{store.AgentDeprovisioned, "suspend", ""},
			{store.AgentDeprovisioned, "resume", ""},
			{store.AgentDeprovisioned, "deprovision", ""},
		}
		for i, tt := range tests {
			a := e.agent(fmt.Sprintf("t%d", i), owner.ID)
			for _, s := range setup[tt.from] {
				if _, err := ops[s](TransitionParams{Ref: a.ID}); err != nil {
					t.Fatal(err)
				}
			}
			cur, _ := e.svc.GetAgent(e.ctx, a.ID)
			name := fmt.Sprintf("%s from %s", tt.op, tt.from)
			snap := e.snapshot()
			e.clk.Advance(time.Second)
			got, err := ops[tt.op](TransitionParams{Ref: a.Name, IfVersion: cur.Version, Reason: " ticket SEC-1 "})
			if tt.to == "" {
				if !errors.Is(err, ErrIllegalTransition) || !errors.Is(err, store.ErrConflict) {
					t.Errorf("%s: error = %v, want ErrIllegalTransition", name, err)
				}
				e.unchanged(snap, name)
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			want := cur
			want.State, want.Version, want.UpdatedAt = tt.to, cur.Version+1, e.clk.Now().UTC().Truncate(time.Microsecond)
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
			details := map[string]any{"version": want.Version, "state": string(tt.to), "previous_state": string(tt.from)}
			if tt.to != store.AgentActive {
				details["tokens_affected"] = 0 // the cascade's count (ADR 0014 §5)
			}
			wantEv := wantEvent(audit.Issuance, events[tt.op], &want, details, "ticket SEC-1")
			if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(snap.HeadSeq)); diff != "" {
				t.Errorf("%s events (-want +got):\n%s", name, diff)
			}
		}

		// Stale version, unknown agent, bad reason.
		a := e.agent("versioned", owner.ID)
		for _, tc := range []struct {
			name  string
			p     TransitionParams
			want  error
			field string
		}{
			{"stale", TransitionParams{Ref: a.ID, IfVersion: 7}, ErrVersionMismatch, ""},
			{"missing", TransitionParams{Ref: "missing"}, ErrNotFound, ""},
			{"bad ref", TransitionParams{Ref: "Nope!"}, nil, "ref"},
			{"negative version", TransitionParams{Ref: a.ID, IfVersion: -2}, nil, "if_version"},
			{"bad reason", TransitionParams{Ref: a.ID, Reason: "a\x07"}, nil, "reason"},
			{"long reason", TransitionParams{Ref: a.ID, Reason: strings.Repeat("r", MaxReasonLen+1)}, nil, "reason"},
		} {
			snap := e.snapshot()
			_, err := e.svc.SuspendAgent(e.ctx, testOrigin(), tc.p)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: error = %v, want %v", tc.name, err, tc.want)
				}
			} else {
				checkValidation(t, err, tc.field)
			}
			e.unchanged(snap, tc.name)
		}
		e.verifyTrail()
	})
}

// TestConcurrentUpdates checks optimistic concurrency: of N updates
// conditioned on the same version exactly one wins; unconditioned updates
// are all applied.
func TestConcurrentUpdates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		a := e.agent("contended", e.owner("o@example.com").ID)
		const n = 8
		var (
			wg               sync.WaitGroup
			mu               sync.Mutex
			wins, mismatches int
		)
		for i := range n {
			wg.Go(func() {
				purpose := fmt.Sprintf("purpose %d", i)
				_, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, IfVersion: 1, Purpose: &purpose})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, ErrVersionMismatch):
					mismatches++
				default:
					t.Errorf("update %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || mismatches != n-1 {
			t.Errorf("wins = %d, mismatches = %d; want 1 and %d", wins, mismatches, n-1)
		}
		for i := range n {
			wg.Go(func() {
				labels := map[string]string{"n": fmt.Sprint(i)}
				if _, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, Labels: &labels}); err != nil {
					t.Errorf("update %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		got, err := e.svc.GetAgent(e.ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Each label update changes the value unless it equals the previous
		// one, which never happens with distinct values.
		if got.Version != 2+n {
			t.Errorf("version = %d, want %d", got.Version, 2+n)
		}
		e.verifyTrail()
	})
}

func TestListAgents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		alice := e.owner("alice@example.com")
		bob := e.owner("bob@example.com")
		var names []string
		for i := range 5 {
			owner := alice.ID
			if i%2 == 1 {
				owner = bob.ID
			}
			names = append(names, e.agent(fmt.Sprintf("agent-%d", i), owner).Name)
		}
		if _, err := e.svc.SuspendAgent(e.ctx, testOrigin(), TransitionParams{Ref: "agent-0"}); err != nil {
			t.Fatal(err)
		}
		nameOf := func(as []store.Agent) []string {
			out := []string{}
			for _, a := range as {
				out = append(out, a.Name)
			}
			return out
		}
		// Pagination walks every agent in creation order.
		var all []string
		p := store.Page{PageSize: 2}
		for {
			page, next, err := e.svc.ListAgents(e.ctx, store.AgentFilter{}, p)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, nameOf(page)...)
			if next == "" {
				break
			}
			p.PageToken = next
		}
		if diff := cmp.Diff(names, all); diff != "" {
			t.Errorf("paged list (-want +got):\n%s", diff)
		}
		for _, tt := range []struct {
			f    store.AgentFilter
			want []string
		}{
			{store.AgentFilter{State: store.AgentSuspended}, []string{"agent-0"}},
			{store.AgentFilter{OwnerID: bob.ID}, []string{"agent-1", "agent-3"}},
			{store.AgentFilter{OwnerID: "BOB@example.com"}, []string{"agent-1", "agent-3"}},
			{store.AgentFilter{OwnerID: "nobody@example.com"}, []string{}},
			{store.AgentFilter{Orphaned: true}, []string{}},
		} {
			got, _, err := e.svc.ListAgents(e.ctx, tt.f, store.Page{})
			if err != nil {
				t.Fatalf("%+v: %v", tt.f, err)
			}
			if diff := cmp.Diff(tt.want, nameOf(got)); diff != "" {
				t.Errorf("filter %+v (-want +got):\n%s", tt.f, diff)
			}
		}
		_, _, err := e.svc.ListAgents(e.ctx, store.AgentFilter{State: "zombie"}, store.Page{})
		checkValidation(t, err, "state")
		_, _, err = e.svc.ListAgents(e.ctx, store.AgentFilter{OwnerID: "bob"}, store.Page{})
		checkValidation(t, err, "owner")
		_, _, err = e.svc.ListAgents(e.ctx, store.AgentFilter{}, store.Page{PageToken: "garbage!"})
		checkValidation(t, err, "page_token")
	})
}
