package identity

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

func TestRevokeTokensByJTI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		now := e.clk.Now().UTC().Truncate(time.Microsecond)
		before := e.head()
		got, err := e.svc.RevokeTokens(e.ctx, testOrigin(), RevokeTokensParams{JTI: "tok_01abc"})
		if err != nil {
			t.Fatal(err)
		}
		keep := now.Add(2*time.Hour + RevocationSlack) // the env's MaxTTLCap, and slack
		want := Revocation{JTI: "tok_01abc", RevokedAt: now, ExpiresAt: keep}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("RevokeTokens (-want +got):\n%s", diff)
		}
		rt, err := e.st.GetRevokedToken(e.ctx, "tok_01abc")
		if err != nil {
			t.Fatal(err)
		}
		wantRT := store.RevokedToken{JTI: "tok_01abc", RevokedAt: now, ExpiresAt: keep, RevokedBy: "adm_tester"}
		if diff := cmp.Diff(wantRT, rt); diff != "" {
			t.Errorf("stored revocation (-want +got):\n%s", diff)
		}
		wantEv := wantEvent(audit.Issuance, EventCredentialRevoked, nil, map[string]any{
			"jti": "tok_01abc", "kept_until": keep.Format(time.RFC3339Nano), "tokens_affected": float64(0),
		}, "")
		if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}

		// Again: the first record stays, and the event says so.
		e.clk.Advance(time.Minute)
		before = e.head()
		again, err := e.svc.RevokeTokens(e.ctx, testOrigin(), RevokeTokensParams{JTI: "tok_01abc"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, again); diff != "" {
			t.Errorf("second revocation (-want +got):\n%s", diff)
		}
		evs := e.eventsAfter(before)
		if len(evs) != 1 || evs[0].Details["already_revoked_at"] != now.Format(time.RFC3339Nano) {
			t.Errorf("second revocation events %+v", evs)
		}
		e.verifyTrail()
	})
}

func TestRevokeTokensByAgent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		a := e.agent("compromised", e.owner("o@example.com").ID)
		e.clk.Advance(time.Minute)
		now := e.clk.Now().UTC().Truncate(time.Microsecond)
		before := e.head()
		got, err := e.svc.RevokeTokens(e.ctx, testOrigin(), RevokeTokensParams{AgentRef: a.Name})
		if err != nil {
			t.Fatal(err)
		}
		wantAgent := a
		wantAgent.TokensRevokedAt, wantAgent.UpdatedAt, wantAgent.Version = now, now, 2
		if diff := cmp.Diff(Revocation{Agent: wantAgent, RevokedAt: now}, got); diff != "" {
			t.Errorf("RevokeTokens (-want +got):\n%s", diff)
		}
		stored, err := e.svc.GetAgent(e.ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantAgent, stored); diff != "" {
			t.Errorf("stored agent (-want +got):\n%s", diff)
		}
		wantEv := wantEvent(audit.Issuance, EventCredentialRevoked, &a, map[string]any{
			"tokens_revoked_at": now.Format(time.RFC3339Nano), "version": 2,
		}, "")
		if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}

		// A deprovisioned agent's tokens may be revoked too.
		if _, err := e.svc.DeprovisionAgent(e.ctx, testOrigin(), TransitionParams{Ref: a.ID}); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(time.Second)
		if r, err := e.svc.RevokeTokens(e.ctx, testOrigin(), RevokeTokensParams{AgentRef: a.ID}); err != nil || !r.Agent.TokensRevokedAt.After(now) {
			t.Fatalf("revoke a deprovisioned agent's tokens: %+v, %v", r, err)
		}
		e.verifyTrail()
	})
}

func TestRevokeTokensInvalid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		a := e.agent("someone", e.owner("o@example.com").ID)
		for _, tt := range []struct {
			name  string
			p     RevokeTokensParams
			field string
			want  error
		}{
			{"nothing", RevokeTokensParams{}, "", nil},
			{"both", RevokeTokensParams{JTI: "tok_1", AgentRef: a.Name}, "", nil},
			{"jti with space", RevokeTokensParams{JTI: "tok 1"}, "jti", nil},
			{"jti with control", RevokeTokensParams{JTI: "tok\x00"}, "jti", nil},
			{"long jti", RevokeTokensParams{JTI: strings.Repeat("j", MaxJTILen+1)}, "jti", nil},
			{"bad agent", RevokeTokensParams{AgentRef: "Not A Name"}, "agent", nil},
			{"unknown agent", RevokeTokensParams{AgentRef: "nobody"}, "", ErrNotFound},
		} {
			snap := e.snapshot()
			_, err := e.svc.RevokeTokens(e.ctx, testOrigin(), tt.p)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
				}
			} else {
				checkValidation(t, err, tt.field)
			}
			e.unchanged(snap, tt.name)
		}
		if _, err := e.st.GetRevokedToken(e.ctx, "tok_1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused revocation was stored: %v", err)
		}
	})
}

func TestTokensRevoked(t *testing.T) {
	at := time.Date(2030, 1, 1, 12, 0, 0, 700_000_000, time.UTC) // 12:00:00.7
	a := store.Agent{TokensRevokedAt: at}
	for _, tt := range []struct {
		iat  time.Time
		want bool
	}{
		{at.Add(-time.Hour), true},
		{time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC), true},           // same second, before
		{time.Date(2030, 1, 1, 12, 0, 0, 900_000_000, time.UTC), true}, // same second, after: counts as revoked
		{time.Date(2030, 1, 1, 12, 0, 1, 0, time.UTC), false},
		{at.Add(time.Hour), false},
	} {
		if got := TokensRevoked(a, tt.iat); got != tt.want {
			t.Errorf("TokensRevoked(iat %s) = %v, want %v", tt.iat.Format(time.RFC3339Nano), got, tt.want)
		}
	}
	if TokensRevoked(store.Agent{}, at) {
		t.Error("an agent without TokensRevokedAt revokes tokens")
	}
}
