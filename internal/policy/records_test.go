package policy_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/internal/store"
)

// TestDecideChecksRecords: a delegation grant or an instance named in a
// request's context is looked up when the request is decided; one that
// does not exist, is revoked or expired, or is another agent's denies the
// request before the policies, with the reason on the decision and its
// event. A grant that allows sub-delegation covers an agent acting for its
// (active) agent when the chain names it.
func TestDecideChecksRecords(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, basePolicies)
	ctx := context.Background()
	now := e.clock.Now()
	err := e.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.CreateAgent(ctx, store.Agent{ID: "agt_01upstreambot00000000000", Name: "upstream-bot",
			SPIFFEID: "spiffe://example.org/agent/upstream-bot", Owners: []string{"own_alice"}, Purpose: "chains",
			State: store.AgentActive, CreatedBy: "adm_test", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		for id, agent := range map[string]string{"grt_idle": "agt_01idlebot000000000000000", "grt_up": "agt_01upstreambot00000000000"} {
			if _, err := tx.CreateGrant(ctx, store.Grant{ID: id, SubjectIssuer: "https://idp.example.org", Subject: "alice",
				AgentID: agent, ExpiresAt: now.Add(2 * time.Hour), MaxDepth: 3, AllowSubdelegation: true,
				CreatedByType: audit.ActorAdmin, CreatedBy: "adm_test", CreatedAt: now}); err != nil {
				return err
			}
		}
		_, err := tx.CreateInstance(ctx, store.Instance{ID: "ins_idle", AgentID: "agt_01idlebot000000000000000", Method: "k8s",
			Attestor: "k8s", Key: "idle", FirstSeenAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	delegated := func(grant string, actors ...string) policy.Request {
		r := req("write", "invoice", "1")
		actors = append([]string{}, actors...)
		ctxJSON, _ := json.Marshal(map[string]any{"delegation": map[string]any{"subject": "own_alice", "grant_id": grant, "actors": actors}})
		r.Context = ctxJSON
		return r
	}
	attested := func(instance string) policy.Request {
		r := req("read", "invoice", "1")
		r.Context = json.RawMessage(`{"instance": {"id": "` + instance + `"}}`)
		return r
	}
	user := policy.Request{Subject: policy.Subject{Type: policy.SubjectUser, ID: "dave"}, Action: "read",
		Resource: policy.Resource{Type: "invoice", ID: "1"}, Context: json.RawMessage(`{"delegation": {"subject": "dave", "grant_id": "grt_1"}}`)}
	check := func(name string, r policy.Request, want, reason string) {
		t.Helper()
		d, err := e.svc.Decide(ctx, e.admin, r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.Decision != want || (reason != "" && (len(d.Reasons) != 1 || d.Reasons[0] != reason)) {
			t.Errorf("%s: Decide = %+v; want %s (%q)", name, d, want, reason)
		}
	}
	check("a live grant", delegated("grt_1"), policy.Allow, "")
	check("an unknown grant", delegated("grt_none"), policy.Deny, policy.ReasonUnknownGrant)
	check("another agent's grant", delegated("grt_idle", "idle-bot"), policy.Deny, policy.ReasonGrantOtherAgent)
	check("an upstream agent's grant, not in the chain", delegated("grt_up", "spiffe://example.org/agent/other"), policy.Deny, policy.ReasonGrantOtherAgent)
	check("an upstream agent's grant, in the chain", delegated("grt_up", "spiffe://example.org/agent/upstream-bot"), policy.Allow, "")
	check("a live instance", attested("ins_1"), policy.Allow, "")
	check("an unknown instance", attested("ins_none"), policy.Deny, policy.ReasonUnknownInstance)
	check("another agent's instance", attested("ins_idle"), policy.Deny, policy.ReasonInstanceOtherAgent)

	// Revocations reach the next decision.
	err = e.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.UpdateGrant(ctx, "grt_1", func(g store.Grant) (store.Grant, error) {
			g.RevokedAt, g.RevokedBy = now, "adm_test"
			return g, nil
		}); err != nil {
			return err
		}
		_, err := tx.UpdateInstance(ctx, "ins_1", func(in store.Instance) (store.Instance, error) {
			in.RevokedAt, in.RevokedBy = now, "adm_test"
			return in, nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	check("a revoked grant", delegated("grt_1"), policy.Deny, policy.ReasonGrantRevoked)
	check("a revoked instance", attested("ins_1"), policy.Deny, policy.ReasonInstanceRevoked)
	check("a user's request naming a revoked grant", user, policy.Deny, policy.ReasonGrantRevoked)

	// So does time.
	e.clock.Advance(3 * time.Hour)
	check("an expired grant", delegated("grt_up", "upstream-bot"), policy.Deny, policy.ReasonGrantExpired)
	check("an expired instance", attested("ins_2"), policy.Deny, policy.ReasonInstanceExpired)

	evs := e.events(t, audit.Authorization)
	if last := evs[len(evs)-1]; last["decision"] != policy.Deny || last["reason"] != policy.ReasonInstanceExpired {
		t.Errorf("the last decision's event = %v; want a deny with its reason", last)
	}
}

// recordReads counts the grant and instance reads of a store.
type recordReads struct {
	store.Store
	grants, instances atomic.Int64
}

func (r *recordReads) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	r.grants.Add(1)
	return r.Store.GetGrant(ctx, id)
}

func (r *recordReads) GetInstance(ctx context.Context, id string) (store.Instance, error) {
	r.instances.Add(1)
	return r.Store.GetInstance(ctx, id)
}

// TestDecideBatchReadsRecordsOnce: the items of a batch that share a
// context (AuthZEN's top-level defaults) read its grant and its instance
// once, an unknown one included; each single decision reads them again.
func TestDecideBatchReadsRecordsOnce(t *testing.T) {
	st := &recordReads{Store: freshStore(t)}
	e := newEnv(t, st)
	e.apply(t, basePolicies)
	ctx := context.Background()
	var reqs []policy.Request
	for i, grant := range []string{"grt_1", "grt_1", "grt_none", "grt_1", "grt_none"} {
		r := req("read", "invoice", "1")
		r.Context = json.RawMessage(`{"delegation": {"subject": "own_alice", "grant_id": "` + grant + `"}, "instance": {"id": "ins_1"}, "n": ` +
			string(rune('0'+i)) + `}`)
		reqs = append(reqs, r)
	}
	res, err := e.svc.DecideBatch(ctx, e.admin, reqs, policy.ExecuteAll)
	if err != nil || len(res) != 5 {
		t.Fatalf("DecideBatch = %v, %v", res, err)
	}
	if res[0].Decision.Decision != policy.Allow || res[2].Decision.Reasons[0] != policy.ReasonUnknownGrant {
		t.Errorf("batch decisions = %+v", res)
	}
	if g, i := st.grants.Load(), st.instances.Load(); g != 2 || i != 1 {
		t.Errorf("the batch read %d grants and %d instances; want 2 and 1", g, i)
	}
	for range 2 {
		decide(t, e, reqs[0])
	}
	if g := st.grants.Load() - 2; g != 2 {
		t.Errorf("two single decisions read grants %d times; want 2", g)
	}
}
