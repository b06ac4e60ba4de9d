package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/agentid/agentid/internal/store"
)

// defaultClasses are the action classes the migration seeds.
func defaultClasses() []store.ActionClass {
	return []store.ActionClass{
		{Name: "admin", RiskTier: TierHigh}, {Name: "delete", RiskTier: TierHigh},
		{Name: "external-comms", RiskTier: TierHigh}, {Name: "payments", RiskTier: TierHigh, Actions: []string{"invoice.pay"}},
		{Name: "read", RiskTier: TierLow, Actions: []string{"invoice.read"}}, {Name: "write", RiskTier: TierMedium},
	}
}

// benchPolicies is a document of n policies. Unscoped: every policy is
// for any agent and most for the action asked, so a request is evaluated
// against nearly all of them (the worst case). Scoped: as policies for a
// fleet are usually written, each names one agent (n/5 agents, five
// policies each, over the action classes) and one in ten is for any
// agent (forbids and conditional permits).
func benchPolicies(n int, scoped bool) string {
	var b strings.Builder
	classes := []string{"read", "write", "payments", "delete", "admin", "external-comms"}
	for i := range n {
		switch {
		case i%20 == 19:
			fmt.Fprintf(&b, "@id(\"f%d\")\nforbid (principal, action, resource) when { resource.hasTag(\"project\") && resource.getTag(\"project\") == \"frozen-%d\" };\n", i, i)
		case i%20 == 9:
			fmt.Fprintf(&b, "@id(\"c%d\") @decision(\"conditional\")\npermit (principal, action in Action::\"payments\", resource) when { principal.hasTag(\"team\") && principal.getTag(\"team\") == \"team-%d\" };\n", i, i)
		case scoped:
			fmt.Fprintf(&b, "@id(\"p%d\")\npermit (principal == Agent::\"agent-%d\", action in Action::%q, resource) when { resource.hasTag(\"project\") && resource.getTag(\"project\") == \"proj-%d\" };\n",
				i, i%max(n/5, 1), classes[(i/max(n/5, 1))%len(classes)], i)
		default:
			fmt.Fprintf(&b, "@id(\"p%d\")\npermit (principal, action in Action::\"read\", resource) when { principal.action_classes.contains(context.action_class) && resource.hasTag(\"project\") && resource.getTag(\"project\") == \"proj-%d\" };\n", i, i)
		}
	}
	return b.String()
}

// BenchmarkDecide measures in-process decisions (the policies in memory,
// the agent record at hand: what Decide does between its store read of the
// agent and its audit append) at 10, 200 and 2,000 policies, scoped and
// unscoped (see benchPolicies), and reports the median and 99th
// percentile latency.
func BenchmarkDecide(b *testing.B) {
	reg, err := newRegistry(defaultClasses())
	if err != nil {
		b.Fatal(err)
	}
	agent := store.Agent{ID: "agt_bench", Name: "agent-0", SPIFFEID: "spiffe://example.org/agent/agent-0",
		Owners: []string{"own_1"}, ActionClasses: []string{"read", "payments"}, Labels: map[string]string{"team": "team-9"},
		State: store.AgentActive}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		n      int
		scoped bool
	}{{10, true}, {200, true}, {2000, true}, {10, false}, {200, false}, {2000, false}} {
		mix := map[bool]string{true: "scoped", false: "unscoped"}[tc.scoped]
		b.Run(fmt.Sprintf("%s/policies=%d", mix, tc.n), func(b *testing.B) {
			p, err := parse([]byte(benchPolicies(tc.n, tc.scoped)), reg)
			if err != nil {
				b.Fatal(err)
			}
			c := &compiled{generation: 1, version: 1, reg: reg, pol: p}
			in, err := check(c, Request{
				Subject:  Subject{Type: SubjectAgent, ID: agent.Name},
				Action:   "invoice.read",
				Resource: Resource{Type: "invoice", ID: "42", Properties: []byte(`{"project":"proj-0","amount":1200}`)},
			})
			if err != nil {
				b.Fatal(err)
			}
			if d := decideWith(c, agent, in, now); d.Decision != Allow {
				b.Fatalf("decision = %+v, want allow", d)
			}
			samples := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				decideWith(c, agent, in, now)
				samples = append(samples, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(samples)
			b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// TestIndexAgreesWithFullSet: for every action and several agents, the
// index gives the decision (and the determining policies) that Cedar
// gives with the whole set.
func TestIndexAgreesWithFullSet(t *testing.T) {
	reg, err := newRegistry(defaultClasses())
	if err != nil {
		t.Fatal(err)
	}
	doc := benchPolicies(120, true) + `
@id("any-read") permit (principal, action in Action::"read", resource) when { resource.hasTag("project") && resource.getTag("project") == "proj-41" };
@id("in-set") permit (principal in Agent::"agent-3", action in [Action::"invoice.pay", Action::"delete"], resource);
@id("is-agent") forbid (principal is Agent, action == Action::"invoice.read", resource) when { resource.hasTag("project") && resource.getTag("project") == "proj-7" };
@id("is-in") permit (principal is Agent in Agent::"agent-5", action, resource);
@id("person-alice") permit (principal == Person::"alice", action in Action::"read", resource);
@id("person-in") permit (principal in Person::"bob", action == Action::"invoice.pay", resource);
@id("person-is-in") @decision("conditional") permit (principal is Person in Person::"carol", action, resource);
@id("persons") forbid (principal is Person, action, resource) when { resource.hasTag("project") && resource.getTag("project") == "proj-7" };
@id("person-agent-name") permit (principal == Person::"agent-3", action, resource);
`
	p, err := parse([]byte(doc), reg)
	if err != nil {
		t.Fatal(err)
	}
	indexed := &compiled{reg: reg, pol: p}
	// full files every policy under every action for any agent: no
	// filtering, Cedar sees the whole set.
	full := &compiled{reg: reg, pol: p, ix: index{}}
	full.ixOnce.Do(func() {})
	var all []entry
	for _, id := range p.ids {
		all = append(all, entry{id: cedar.PolicyID(id), p: p.set.Get(cedar.PolicyID(id))})
	}
	for _, a := range reg.actions {
		full.ix[a.uid] = &scoped{any: map[types.EntityType][]entry{TypeAgent: all, TypePerson: all}}
	}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	decisions := map[string]int{}
	for action := range reg.actions {
		for _, name := range []string{"agent-0", "agent-3", "agent-5", "agent-99"} {
			for _, project := range []string{"proj-0", "proj-7", "proj-41", "frozen-19"} {
				a := store.Agent{ID: "agt_x", Name: name, ActionClasses: []string{"read", "payments"},
					Labels: map[string]string{"team": "team-9"}, State: store.AgentActive}
				in, err := check(indexed, Request{Subject: Subject{Type: SubjectAgent, ID: name}, Action: action,
					Resource: Resource{Type: "doc", ID: "1", Properties: []byte(`{"project":"` + project + `"}`)}})
				if err != nil {
					t.Fatal(err)
				}
				got, want := decideWith(indexed, a, in, now), decideWith(full, a, in, now)
				decisions[got.Decision]++
				if got.Decision != want.Decision || !slices.Equal(got.PolicyIDs, want.PolicyIDs) {
					t.Errorf("%s %s %s: indexed %s by %v, full set %s by %v", name, action, project, got.Decision, got.PolicyIDs, want.Decision, want.PolicyIDs)
				}
			}
		}
	}
	// Users: only the policies whose principal scope names Person concern
	// them, in the index and in the whole set alike.
	for action := range reg.actions {
		for _, name := range []string{"alice", "bob", "carol", "agent-3", "dave"} {
			for _, project := range []string{"proj-0", "proj-7", "proj-41"} {
				in, err := check(indexed, Request{Subject: Subject{Type: SubjectUser, ID: name}, Action: action,
					Resource: Resource{Type: "doc", ID: "1", Properties: []byte(`{"project":"` + project + `"}`)}})
				if err != nil {
					t.Fatal(err)
				}
				p := personEntity(name, in.userProps)
				got, want := decideAs(indexed, p, in, now), decideAs(full, p, in, now)
				decisions["user "+got.Decision]++
				if got.Decision != want.Decision || !slices.Equal(got.PolicyIDs, want.PolicyIDs) {
					t.Errorf("user %s %s %s: indexed %s by %v, full set %s by %v", name, action, project, got.Decision, got.PolicyIDs, want.Decision, want.PolicyIDs)
				}
			}
		}
	}
	if decisions["user "+Allow] == 0 || decisions["user "+Deny] == 0 || decisions["user "+Conditional] == 0 {
		t.Errorf("user decisions %v: the cases should cover all three", decisions)
	}
	if decisions[Allow] == 0 || decisions[Deny] == 0 || decisions[Conditional] == 0 {
		t.Errorf("decisions %v: the cases should cover all three", decisions)
	}
}
