package policy_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a decision point on a real store with two agents: invoice-bot
// (active, classes read and payments, label team=finance, owner own_alice)
// and idle-bot (suspended).
type env struct {
	st    store.Store
	svc   *policy.Service
	clock *clock
	admin audit.Origin
}

func newEnv(t *testing.T, st store.Store, opts ...func(*policy.Params)) *env {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	p := policy.Params{Store: st, Recorder: rec, Clock: c.Now}
	for _, o := range opts {
		o(&p)
	}
	svc, err := policy.New(p)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, svc: svc, clock: c,
		admin: audit.Origin{Actor: audit.Actor{Type: audit.ActorAdmin, ID: "adm_test"}, TraceID: "0af7651916cd43dd8448eb211c80319c"}}
	e.seedAgents(t)
	return e
}

// sqliteEnv is newEnv on a fresh SQLite store.
func sqliteEnv(t *testing.T) *env {
	t.Helper()
	st, _ := storetest.Backends(t)[0].Open(t)
	return newEnv(t, st)
}

func (e *env) seedAgents(t *testing.T) {
	t.Helper()
	now := e.clock.Now()
	err := e.st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		for _, o := range []string{"own_alice", "own_bob"} {
			if _, err := tx.CreateOwner(ctx, store.Owner{ID: o, Kind: store.OwnerPerson, DisplayName: o,
				Email: strings.TrimPrefix(o, "own_") + "@example.com", Subject: "sub-" + strings.TrimPrefix(o, "own_"),
				State: store.OwnerActive, CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
		}
		for _, a := range []store.Agent{
			{ID: "agt_01invoicebot0000000000000", Name: "invoice-bot", SPIFFEID: "spiffe://example.org/agent/invoice-bot",
				Owners: []string{"own_alice"}, Purpose: "invoices", ActionClasses: []string{"payments", "read"},
				Labels: map[string]string{"team": "finance"}, State: store.AgentActive},
			{ID: "agt_01idlebot000000000000000", Name: "idle-bot", SPIFFEID: "spiffe://example.org/agent/idle-bot",
				Owners: []string{"own_bob"}, Purpose: "idle", ActionClasses: []string{"read"}, State: store.AgentSuspended},
		} {
			a.CreatedBy, a.CreatedAt, a.UpdatedAt = "adm_test", now, now
			if _, err := tx.CreateAgent(ctx, a); err != nil {
				return err
			}
		}
		// The records a request's context may name (ADR 0013 addendum):
		// alice's grant to invoice-bot, and two of its attested runs.
		if _, err := tx.CreateGrant(ctx, store.Grant{ID: "grt_1", SubjectIssuer: "https://idp.example.org", Subject: "alice",
			AgentID: "agt_01invoicebot0000000000000", ExpiresAt: now.Add(24 * time.Hour), MaxDepth: 1,
			CreatedByType: audit.ActorAdmin, CreatedBy: "adm_test", CreatedAt: now}); err != nil {
			return err
		}
		for id, method := range map[string]string{"ins_1": "k8s", "ins_2": "join_token"} {
			if _, err := tx.CreateInstance(ctx, store.Instance{ID: id, AgentID: "agt_01invoicebot0000000000000", Method: method,
				Attestor: method, Key: id, FirstSeenAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) apply(t *testing.T, text string) store.PolicyVersion {
	t.Helper()
	v, err := e.svc.Apply(context.Background(), e.admin, text, "test")
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return v
}

// events returns the audit events of a family, decoded.
func (e *env) events(t *testing.T, family audit.Family) []map[string]any {
	t.Helper()
	recs, _, err := e.st.ListAudit(context.Background(), store.AuditQuery{Family: string(family)}, store.Page{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]map[string]any, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Body, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// req builds a request for invoice-bot.
func req(action, resourceType, resourceID string) policy.Request {
	return policy.Request{
		Subject:  policy.Subject{Type: policy.SubjectAgent, ID: "invoice-bot"},
		Action:   action,
		Resource: policy.Resource{Type: resourceType, ID: resourceID},
	}
}

// basePolicies: agents read within their classes; payments need approval;
// nothing on resources labelled frozen; suspended agents never reach here.
const basePolicies = `// Agents may use the action classes granted to them.
@id("granted-classes")
@reason("the agent holds the action class")
permit (principal, action, resource)
when { principal.action_classes.contains(context.action_class) && context.risk_tier == "low" };

@id("payments-need-approval")
@decision("conditional")
@obligation("approval")
@reason("high-risk payments need a human")
permit (principal, action in Action::"payments", resource)
when { principal.action_classes.contains("payments") };

@id("frozen-resources")
@reason("the resource is frozen")
forbid (principal, action, resource)
when { resource.hasTag("state") && resource.getTag("state") == "frozen" };

@id("finance-delegated")
permit (principal, action == Action::"write", resource is Resource)
when { principal.hasTag("team") && principal.getTag("team") == "finance" &&
       context has delegation && principal.owners.contains(context.delegation.subject) };
`

// decisionEvents returns the decision.made events, decoded.
func (e *env) decisionEvents(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range e.events(t, audit.Authorization) {
		if ev["type"] == policy.EventDecisionMade {
			out = append(out, ev)
		}
	}
	return out
}
