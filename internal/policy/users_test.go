package policy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/policy"
)

// userPolicies exercise ADR 0016: user subjects (Person principals with
// the properties their PEP asserts), action properties and typed
// properties. The open-scope policies concern agents only.
const userPolicies = `@id("alice-reads")
permit (principal == Person::"alice", action == Action::"read", resource);

@id("admins-write-archived")
permit (principal is Person, action == Action::"write", resource)
when { principal.hasTag("role") && principal.getTag("role") == "admin" &&
       resource.hasTag("status") && resource.getTag("status") == "archived" };

@id("soft-deletes")
permit (principal == Person::"alice", action == Action::"delete", resource)
when { context.action_properties.bools.hasTag("soft") && context.action_properties.bools.getTag("soft") };

@id("big-amounts")
@reason("the amount is over the limit")
forbid (principal is Person, action, resource)
when { resource.longs.hasTag("amount") && resource.longs.getTag("amount") > 1000 };

@id("get-by-seniors")
permit (principal is Person, action == Action::"read", resource)
when { context.action_properties.hasTag("method") && context.action_properties.getTag("method") == "GET" &&
       principal.longs.hasTag("level") && principal.longs.getTag("level") >= 3 &&
       principal.bools.hasTag("staff") && principal.bools.getTag("staff") };

@id("user-payments")
@decision("conditional")
permit (principal is Person, action == Action::"payments", resource);

@id("agents-read")
permit (principal, action == Action::"read", resource);

@id("sales-agents-write")
permit (principal, action == Action::"write", resource)
when { principal.hasTag("team") && principal.getTag("team") == "sales" };

@id("invoice-bot-deletes")
permit (principal == Agent::"invoice-bot", action == Action::"delete", resource);
`

// user builds a request for a user subject with properties.
func user(id, props, action, actionProps, resourceID, resourceProps string) policy.Request {
	r := policy.Request{Subject: policy.Subject{Type: policy.SubjectUser, ID: id}, Action: action,
		Resource: policy.Resource{Type: "record", ID: resourceID}}
	if props != "" {
		r.Subject.Properties = json.RawMessage(props)
	}
	if actionProps != "" {
		r.ActionProperties = json.RawMessage(actionProps)
	}
	if resourceProps != "" {
		r.Resource.Properties = json.RawMessage(resourceProps)
	}
	return r
}

func TestDecideUser(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, userPolicies)
	ctx := context.Background()
	agentWithProps := req("write", "record", "1")
	agentWithProps.Subject.Properties = json.RawMessage(`{"team": "sales", "role": "admin"}`)
	agentArchived := req("write", "record", "2")
	agentArchived.Subject.Properties = json.RawMessage(`{"role": "admin"}`)
	agentArchived.Resource.Properties = json.RawMessage(`{"status": "archived"}`)
	for _, tc := range []struct {
		name string
		req  policy.Request
		want string
		ids  []string
	}{
		{"a user named by a policy", user("alice", "", "read", "", "1", ""), policy.Allow, []string{"alice-reads"}},
		{"an open scope concerns agents only", user("carol", "", "read", "", "1", ""), policy.Deny, nil},
		{"an agent under an open scope", req("read", "record", "1"), policy.Allow, []string{"agents-read"}},
		{"asserted role", user("carol", `{"role": "admin"}`, "write", "", "2", `{"status": "archived"}`), policy.Allow, []string{"admins-write-archived"}},
		{"asserted role, active record", user("carol", `{"role": "admin"}`, "write", "", "1", `{"status": "active"}`), policy.Deny, nil},
		{"no role", user("alice", "", "write", "", "2", `{"status": "archived"}`), policy.Deny, nil},
		{"soft delete", user("alice", "", "delete", `{"soft": true}`, "1", ""), policy.Allow, []string{"soft-deletes"}},
		{"hard delete", user("alice", "", "delete", `{"soft": false}`, "1", ""), policy.Deny, nil},
		{"soft as a string is not a Bool", user("alice", "", "delete", `{"soft": "true"}`, "1", ""), policy.Deny, nil},
		{"delete without properties", user("alice", "", "delete", "", "1", ""), policy.Deny, nil},
		{"Long over the limit", user("alice", "", "read", "", "1", `{"amount": 1001}`), policy.Deny, []string{"big-amounts"}},
		{"Long at the limit", user("alice", "", "read", "", "1", `{"amount": 1000}`), policy.Allow, []string{"alice-reads"}},
		{"negative Long", user("alice", "", "read", "", "1", `{"amount": -5000}`), policy.Allow, []string{"alice-reads"}},
		{"a numeric string is not a Long", user("alice", "", "read", "", "1", `{"amount": "5000"}`), policy.Allow, []string{"alice-reads"}},
		{"a fraction is not a Long", user("alice", "", "read", "", "1", `{"amount": 5000.5}`), policy.Allow, []string{"alice-reads"}},
		{"an exponent is not a Long", user("alice", "", "read", "", "1", `{"amount": 1e4}`), policy.Allow, []string{"alice-reads"}},
		{"beyond 64 bits is not a Long", user("alice", "", "read", "", "1", `{"amount": 99999999999999999999}`), policy.Allow, []string{"alice-reads"}},
		{"typed user and action properties", user("dave", `{"level": 3, "staff": true}`, "read", `{"method": "GET"}`, "1", ""), policy.Allow, []string{"get-by-seniors"}},
		{"a level below", user("dave", `{"level": 2, "staff": true}`, "read", `{"method": "GET"}`, "1", ""), policy.Deny, nil},
		{"a level as a string", user("dave", `{"level": "3", "staff": true}`, "read", `{"method": "GET"}`, "1", ""), policy.Deny, nil},
		{"another method", user("dave", `{"level": 3, "staff": true}`, "read", `{"method": "POST"}`, "1", ""), policy.Deny, nil},
		// An agent's request properties never override the registry:
		// invoice-bot is in team finance, and holds no asserted role.
		{"agent properties are not its attributes", agentWithProps, policy.Deny, nil},
		{"agent properties are not a role", agentArchived, policy.Deny, nil},
		// A user named like an agent is not the agent.
		{"a user is never an agent", user("invoice-bot", `{"team": "finance"}`, "delete", "", "1", ""), policy.Deny, nil},
		{"the agent itself", req("delete", "record", "1"), policy.Allow, []string{"invoice-bot-deletes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.svc.Decide(ctx, e.admin, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Decision != tc.want || !cmp.Equal(d.PolicyIDs, tc.ids) || d.EventID == "" {
				t.Errorf("Decide = %+v; want %s by %v", d, tc.want, tc.ids)
			}
			if tc.req.Subject.Type == policy.SubjectUser && d.Agent != "" {
				t.Errorf("a user decision names agent %q", d.Agent)
			}
		})
	}

	// A conditional decision for a user reports its obligations and an
	// approval request of the user (ADR 0020; TestUserApprovalLifeCycle).
	d, err := e.svc.Decide(ctx, e.admin, user("alice", "", "payments", "", "1", ""))
	if err != nil || d.Decision != policy.Conditional || !slices.Equal(d.Obligations, []string{"approval"}) ||
		!strings.HasPrefix(d.ApprovalID, "apr_") || d.ApprovalState != "pending" || d.Agent != "" {
		t.Errorf("conditional for a user = %+v, %v; want conditional, obligation approval, a pending approval", d, err)
	}
}

func TestUserDecisionEvent(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, userPolicies)
	r := user("dave", `{"level": 3, "staff": true, "team": "ops", "nested": {"a": 1}}`, "read",
		`{"method": "GET", "retries": 2}`, "1", `{"amount": 12}`)
	if _, err := e.svc.Decide(context.Background(), e.admin, r); err != nil {
		t.Fatal(err)
	}
	evs := e.decisionEvents(t)
	ev := evs[len(evs)-1]
	if ev["agent"] != nil || ev["decision"] != policy.Allow {
		t.Errorf("agent axis %v, decision %v; want none, allow", ev["agent"], ev["decision"])
	}
	details := ev["details"].(map[string]any)
	if want := map[string]any{"type": "user", "id": "dave"}; !cmp.Equal(details["subject"], want) {
		t.Errorf("details.subject = %v, want %v", details["subject"], want)
	}
	want := map[string]any{
		"action": "read",
		"action_properties": map[string]any{"properties": map[string]any{"method": "GET", "retries": "2"},
			"longs": map[string]any{"retries": float64(2)}},
		"resource": map[string]any{"type": "record", "id": "1", "properties": map[string]any{"amount": "12"},
			"longs": map[string]any{"amount": float64(12)}},
		"subject": map[string]any{"type": "user", "id": "dave", "asserted_by": "pep",
			"properties": map[string]any{"level": "3", "staff": "true", "team": "ops"},
			"longs":      map[string]any{"level": float64(3)}, "bools": map[string]any{"staff": true}},
	}
	if diff := cmp.Diff(want, details["input"]); diff != "" {
		t.Errorf("details.input (-want +got):\n%s", diff)
	}

	// The dry run replays the user decision exactly: the active policies
	// agree with the record, and a candidate without the policy changes it.
	candidate := strings.Replace(userPolicies, `principal.bools.getTag("staff")`, `!principal.bools.getTag("staff")`, 1)
	rep, err := e.svc.DryRun(context.Background(), policy.ReplayParams{Text: candidate})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed != 1 || len(rep.Changed) != 1 {
		t.Fatalf("DryRun = %+v; want the user decision replayed and changed", rep)
	}
	ch := rep.Changed[0]
	if ch.User != "dave" || ch.Agent != "" || ch.Current.Decision != policy.Allow || ch.Candidate.Decision != policy.Deny {
		t.Errorf("change = %+v; want dave, allow now, deny with the candidate", ch)
	}
}

// TestActionPropertiesDigest: the context digest covers the action's
// properties, and requests without them keep the digest they had.
func TestActionPropertiesDigest(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, userPolicies)
	ctx := context.Background()
	for _, r := range []policy.Request{
		user("alice", "", "delete", "", "1", ""),
		user("alice", "", "delete", `{"soft": true}`, "1", ""),
		user("alice", "", "delete", `{"soft": false}`, "1", ""),
	} {
		if _, err := e.svc.Decide(ctx, e.admin, r); err != nil {
			t.Fatal(err)
		}
	}
	evs := e.decisionEvents(t)
	digests := map[string]bool{}
	for _, ev := range evs {
		digests[ev["details"].(map[string]any)["context_sha256"].(string)] = true
	}
	if len(digests) != 3 {
		t.Errorf("%d distinct digests for three requests differing in action properties", len(digests))
	}
	// Without action properties the digest is the one before ADR 0016:
	// the canonical JSON of context, resource and subject properties.
	sum := sha256.Sum256([]byte(`{"context":null,"resource":null,"subject":null}`))
	if first, want := evs[0]["details"].(map[string]any)["context_sha256"], hex.EncodeToString(sum[:]); first != want {
		t.Errorf("digest without action properties = %v, want %s", first, want)
	}
}

func TestUserPoliciesValidate(t *testing.T) {
	e := sqliteEnv(t)
	for _, tc := range []struct{ name, text, want string }{
		{"agent attributes on a person", `@id("p") permit (principal is Person, action, resource) when { principal.action_classes.contains("read") };`, "action_classes"},
		{"a Long compared with a string", `@id("p") permit (principal, action, resource) when { resource.longs.hasTag("n") && resource.longs.getTag("n") == "1" };`, "Long and String are not compatible"},
		{"a Long read as a string", `@id("p") permit (principal, action, resource) when { resource.longs.hasTag("n") && resource.longs.getTag("n") like "1*" };`, "expected String but saw Long"},
		{"a typed tag without hasTag", `@id("p") permit (principal, action, resource) when { context.action_properties.bools.getTag("soft") };`, "unable to guarantee safety of access to tag"},
		{"an undeclared action attribute", `@id("p") permit (principal, action, resource) when { context.action_properties.soft };`, "soft"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Apply(context.Background(), e.admin, tc.text, "test")
			var pe *policy.PolicyError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Apply = %v; want a *PolicyError naming %q", err, tc.want)
			}
		})
	}
	// Existing policies reading agent attributes under an open scope stay
	// valid, next to user policies.
	e.apply(t, basePolicies+userPolicies)
}

func TestSearchUsers(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, userPolicies+`
@id("bob-reads-1") permit (principal == Person::"bob", action == Action::"read", resource == Resource::"record/1");
@id("erin-writes") permit (principal is Person in Person::"erin", action == Action::"write", resource == Resource::"record/2");
@id("frank-in") permit (principal in Person::"frank", action == Action::"read", resource == Resource::"record/2");
`)
	ids := func(hits []policy.SearchHit) []string {
		var out []string
		for _, h := range hits {
			if h.Type != "" {
				out = append(out, h.Type+"/"+h.ID)
			} else {
				out = append(out, h.Name)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		kind policy.SearchKind
		req  policy.Request
		want []string
	}{
		{"users who read record 1", policy.SearchSubject, user("", "", "read", "", "1", ""), []string{"user/alice", "user/bob"}},
		{"users who read record 2", policy.SearchSubject, user("", "", "read", "", "2", ""), []string{"user/alice", "user/frank"}},
		{"with asserted properties for each", policy.SearchSubject, user("", `{"role": "admin"}`, "write", "", "2", `{"status": "archived"}`),
			[]string{"user/alice", "user/bob", "user/erin", "user/frank"}},
		{"a forbid for each", policy.SearchSubject, user("", "", "read", "", "1", `{"amount": 5000}`), nil},
		{"resources a user writes", policy.SearchResource, user("erin", "", "write", "", "", ""), []string{"record/2"}},
		{"actions of a user", policy.SearchAction, user("alice", "", "", "", "1", ""), []string{"read"}}, // payments is conditional
		{"actions of an unknown user", policy.SearchAction, user("nobody", "", "", "", "1", ""), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits, _ := all(t, e, policy.SearchParams{Kind: tc.kind, Request: tc.req, Limit: 1})
			if got := ids(hits); !slices.Equal(got, tc.want) {
				t.Errorf("results %v, want %v", got, tc.want)
			}
		})
	}
}
