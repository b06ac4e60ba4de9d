package policy_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// orphanPolicies adds a forbid on orphaned agents to basePolicies.
const orphanPolicies = basePolicies + `
@id("no-orphans")
@reason("the agent is orphaned")
forbid (principal, action, resource) when { principal.orphaned };
`

// TestDecideAgentChangedElsewhere: a change of the subject agent made
// through another replica's store is seen by the next decision, however
// the agent is named, although the agent is cached.
func TestDecideAgentChangedElsewhere(t *testing.T) {
	for _, set := range storetest.Replicas(t, 2) {
		t.Run(set.Name, func(t *testing.T) {
			ctx := t.Context()
			stores := set.Open(t)
			e := newEnv(t, stores[0])
			e.apply(t, basePolicies)
			refs := []string{"invoice-bot", "agt_01invoicebot0000000000000", "spiffe://example.org/agent/invoice-bot"}
			decide := func(ref string) policy.Decision {
				t.Helper()
				r := req("read", "invoice", "7")
				r.Subject.ID = ref
				d, err := e.svc.Decide(ctx, e.admin, r)
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			update := func(fn func(a store.Agent) store.Agent) {
				t.Helper()
				err := stores[1].Update(ctx, func(ctx context.Context, tx store.Tx) error {
					_, err := tx.UpdateAgent(ctx, "agt_01invoicebot0000000000000", func(a store.Agent) (store.Agent, error) {
						return fn(a), nil
					})
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, ref := range refs {
				if d := decide(ref); d.Decision != policy.Allow {
					t.Fatalf("%s: %s, want allow", ref, d.Decision)
				}
			}
			update(func(a store.Agent) store.Agent { a.ActionClasses = []string{"payments"}; return a })
			for _, ref := range refs {
				if d := decide(ref); d.Decision != policy.Deny || len(d.PolicyIDs) != 0 {
					t.Errorf("%s after the read class was removed: %s %v, want a default deny", ref, d.Decision, d.PolicyIDs)
				}
			}
			update(func(a store.Agent) store.Agent {
				a.ActionClasses, a.State = []string{"payments", "read"}, store.AgentSuspended
				return a
			})
			for _, ref := range refs {
				if d := decide(ref); d.Decision != policy.Deny || len(d.Reasons) != 1 || d.Reasons[0] != "the agent is suspended" {
					t.Errorf("%s after suspension: %s %v, want deny: the agent is suspended", ref, d.Decision, d.Reasons)
				}
			}
			update(func(a store.Agent) store.Agent { a.State = store.AgentActive; return a })
			for _, ref := range refs {
				if d := decide(ref); d.Decision != policy.Allow {
					t.Errorf("%s after reactivation: %s, want allow", ref, d.Decision)
				}
			}
			// A SPIFFE ID of another trust domain names no agent, cached
			// by name or not.
			if d := decide("spiffe://other.example/agent/invoice-bot"); d.Decision != policy.Deny || d.Agent != "" {
				t.Errorf("foreign SPIFFE ID: %s for %q, want deny for no agent", d.Decision, d.Agent)
			}
		})
	}
}

// TestDecideOrphanedWithinRefreshInterval: an agent orphaned by an owner
// change (which does not change the agent's version) is decided on as
// orphaned once RefreshInterval has passed since its copy was read.
func TestDecideOrphanedWithinRefreshInterval(t *testing.T) {
	e := sqliteEnv(t)
	ctx := t.Context()
	e.apply(t, orphanPolicies)
	if d, err := e.svc.Decide(ctx, e.admin, req("read", "invoice", "7")); err != nil || d.Decision != policy.Allow {
		t.Fatalf("Decide = %+v, %v; want allow", d, err)
	}
	err := e.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateOwner(ctx, "own_alice", func(o store.Owner) (store.Owner, error) {
			o.State, o.UpdatedAt = store.OwnerDeactivated, e.clock.Now()
			return o, nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(policy.DefaultRefreshInterval + time.Microsecond)
	d, err := e.svc.Decide(ctx, e.admin, req("read", "invoice", "7"))
	if err != nil || d.Decision != policy.Deny || len(d.PolicyIDs) != 1 || d.PolicyIDs[0] != "no-orphans" {
		t.Errorf("after RefreshInterval: Decide = %+v, %v; want deny by no-orphans", d, err)
	}
}

// TestDecideRecordsOnceWhenAgentMoved: a decision made on a cached agent
// is confirmed by the transaction that records it; when the agent changed
// meanwhile the decision is made again on a fresh read, and the trail
// holds one event per decision, the fresh one.
func TestDecideRecordsOnceWhenAgentMoved(t *testing.T) {
	e := sqliteEnv(t)
	ctx := t.Context()
	e.apply(t, basePolicies)
	if d, err := e.svc.Decide(ctx, e.admin, req("read", "invoice", "7")); err != nil || d.Decision != policy.Allow {
		t.Fatalf("Decide = %+v, %v; want allow", d, err) // the agent is cached now
	}
	suspend := func(state store.AgentState) {
		t.Helper()
		err := e.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateAgent(ctx, "agt_01invoicebot0000000000000", func(a store.Agent) (store.Agent, error) {
				a.State = state
				return a, nil
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	suspend(store.AgentSuspended)
	before := len(e.decisionEvents(t))
	d, err := e.svc.Decide(ctx, e.admin, req("read", "invoice", "7"))
	if err != nil || d.Decision != policy.Deny {
		t.Fatalf("after suspension: %+v, %v; want deny", d, err)
	}
	evs := e.decisionEvents(t)
	if len(evs) != before+1 || evs[len(evs)-1]["decision"] != "deny" {
		t.Errorf("after suspension: %d new decision events, want 1 deny", len(evs)-before)
	}

	suspend(store.AgentActive)
	before = len(evs)
	rs, err := e.svc.DecideBatch(ctx, e.admin, []policy.Request{req("read", "invoice", "1"), req("read", "invoice", "2")}, policy.ExecuteAll)
	if err != nil || len(rs) != 2 || rs[0].Decision.Decision != policy.Allow || rs[1].Decision.Decision != policy.Allow {
		t.Fatalf("batch after reactivation: %+v, %v; want two allows", rs, err)
	}
	if evs = e.decisionEvents(t); len(evs) != before+2 {
		t.Errorf("batch after reactivation: %d new decision events, want 2", len(evs)-before)
	}
}
