package identity

import (
	"testing"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store/storetest"
)

// TestOnChange: the hook runs once after every committed change of an
// agent record, and not for a change that failed or changed nothing, nor
// for owners.
func TestOnChange(t *testing.T) {
	st, _ := storetest.Backends(t)[0].Open(t)
	e := newEnv(t, st)
	calls := 0
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if e.svc, err = New(Params{Store: st, Recorder: rec, TrustDomain: testTD, Clock: e.clk.Now, OnChange: func() { calls++ }}); err != nil {
		t.Fatal(err)
	}
	expect := func(what string, want int) {
		t.Helper()
		if calls != want {
			t.Errorf("after %s: %d calls, want %d", what, calls, want)
		}
		calls = 0
	}
	own := e.owner("alice@example.org")
	expect("an owner was created", 0)
	a := e.agent("bot", own.ID)
	expect("an agent was created", 1)
	if _, err := e.svc.CreateAgent(e.ctx, testOrigin(), CreateAgentParams{Name: "bot", Owners: []string{own.ID}, Purpose: "dup"}); err == nil {
		t.Fatal("a duplicate name was accepted")
	}
	expect("a failed create", 0)
	sel := []string{"unix:uid:1000"}
	if _, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, Selectors: &sel}); err != nil {
		t.Fatal(err)
	}
	expect("an update", 1)
	if _, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, Selectors: &sel}); err != nil {
		t.Fatal(err)
	}
	expect("an update that changed nothing", 0)
	if _, err := e.svc.SuspendAgent(e.ctx, testOrigin(), TransitionParams{Ref: a.ID}); err != nil {
		t.Fatal(err)
	}
	expect("a suspension", 1)
	if _, err := e.svc.SuspendAgent(e.ctx, testOrigin(), TransitionParams{Ref: a.ID}); err == nil {
		t.Fatal("a suspended agent was suspended again")
	}
	expect("an illegal transition", 0)
	if _, _, err := e.svc.CreateClientSecret(e.ctx, testOrigin(), CreateClientSecretParams{Ref: a.ID}); err != nil {
		t.Fatal(err)
	}
	expect("a client secret (it bumps the agent's version)", 1)
	if _, err := e.svc.RevokeTokens(e.ctx, testOrigin(), RevokeTokensParams{AgentRef: a.ID}); err != nil {
		t.Fatal(err)
	}
	expect("a revocation of the agent's tokens", 1)
	if _, err := e.svc.RevokeTokens(e.ctx, testOrigin(), RevokeTokensParams{JTI: "some-jti"}); err != nil {
		t.Fatal(err)
	}
	expect("a revocation of one token", 0)
}
