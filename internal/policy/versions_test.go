package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

func TestApplyRefusesBadPolicies(t *testing.T) {
	e := sqliteEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, text string
		want       []string // substrings of the problems, in order
	}{
		{"syntax error", "@id(\"a\")\npermit (principal, action, resource)\nwhen { x = };", []string{"3:10: syntax error"}},
		{"missing semicolon", "@id(\"a\")\npermit (principal, action, resource)\n", []string{"syntax error"}},
		{"empty", "", []string{"the document is empty"}},
		{"no @id", "permit (principal, action, resource);", []string{"1:1: ", "no @id"}},
		{"duplicate @id", "@id(\"a\") permit (principal, action, resource);\n@id(\"a\") forbid (principal, action, resource);",
			[]string{"2:1: policy \"a\": the @id is used by another policy"}},
		{"bad @id", "@id(\"a b\") permit (principal, action, resource);", []string{"@id \"a b\" must be"}},
		{"unknown annotation", "@id(\"a\") @priority(\"1\") permit (principal, action, resource);", []string{"unknown annotation @priority"}},
		{"conditional forbid", "@id(\"a\") @decision(\"conditional\") forbid (principal, action, resource);", []string{"permit policies only"}},
		{"other decision", "@id(\"a\") @decision(\"maybe\") permit (principal, action, resource);", []string{"@decision must be \"conditional\""}},
		{"obligation without conditional", "@id(\"a\") @obligation(\"approval\") permit (principal, action, resource);", []string{"@obligation needs"}},
		{"unknown attribute", "@id(\"ok\") permit (principal, action, resource);\n\n@id(\"amount\")\npermit (principal, action, resource) when { resource.amount > 3 };",
			[]string{"3:1: policy \"amount\": attribute `amount` on entity type `Resource` not found"}},
		{"unknown action", "@id(\"a\") permit (principal, action == Action::\"launch\", resource);", []string{"policy \"a\": ", "launch"}},
		{"unknown entity type", "@id(\"a\") permit (principal == User::\"alice\", action, resource);", []string{"policy \"a\": ", "User"}},
		{"type error", "@id(\"a\") permit (principal, action, resource) when { context.risk_tier > 3 };", []string{"policy \"a\": "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Apply(ctx, e.admin, tc.text, "")
			var pe *policy.PolicyError
			if !errors.As(err, &pe) || !errors.Is(err, policy.ErrInvalid) || !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("Apply = %v, want a *PolicyError", err)
			}
			msg := pe.Detail()
			for _, w := range tc.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Errorf("problems %q lack %q", msg, w)
					continue
				}
				msg = msg[i+len(w):]
			}
		})
	}
	if h, err := e.svc.Head(ctx); err != nil || h != (store.PolicyHead{}) {
		t.Errorf("head after refused applies = %+v, %v; want untouched", h, err)
	}
	if evs := e.events(t, audit.Admin); len(evs) != 0 {
		t.Errorf("%d admin events after refused applies, want none", len(evs))
	}
	if _, err := e.svc.Apply(ctx, e.admin, basePolicies, strings.Repeat("c", policy.MaxCommentLen+1)); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("Apply with a long comment = %v, want ErrInvalid", err)
	}
}

func TestVersions(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := newEnv(t, st)
			ctx := context.Background()
			v1 := e.apply(t, basePolicies)
			denyAll := "@id(\"nothing\")\nforbid (principal, action, resource);\n"
			v2 := e.apply(t, denyAll)
			if v1.Version != 1 || v2.Version != 2 || v2.Author != "adm_test" || !cmp.Equal(v2.PolicyIDs, []string{"nothing"}) {
				t.Fatalf("versions = %+v, %+v", v1, v2)
			}
			d, err := e.svc.Decide(ctx, e.admin, req("read", "invoice", "1"))
			if err != nil || d.Decision != policy.Deny || d.PolicyVersion != 2 || !cmp.Equal(d.PolicyIDs, []string{"nothing"}) {
				t.Errorf("Decide under version 2 = %+v, %v; want denied by nothing", d, err)
			}
			vs, next, err := e.svc.History(ctx, store.Page{})
			if err != nil || next != "" || len(vs) != 2 || vs[0].Version != 2 {
				t.Errorf("History = %d versions (first %+v), %q, %v", len(vs), vs, next, err)
			}

			// Rollback re-activates version 1 without copying it.
			if _, err := e.svc.Rollback(ctx, e.admin, 1); err != nil {
				t.Fatal(err)
			}
			h, err := e.svc.Head(ctx)
			if err != nil || h.ActiveVersion != 1 || h.LatestVersion != 2 {
				t.Errorf("head after rollback = %+v, %v", h, err)
			}
			d, err = e.svc.Decide(ctx, e.admin, req("read", "invoice", "1"))
			if err != nil || d.Decision != policy.Allow || d.PolicyVersion != 1 {
				t.Errorf("Decide after rollback = %+v, %v; want allow under version 1", d, err)
			}
			if _, err := e.svc.Rollback(ctx, e.admin, 1); !errors.Is(err, policy.ErrInvalid) {
				t.Errorf("Rollback to the active version = %v, want ErrInvalid", err)
			}
			if _, err := e.svc.Rollback(ctx, e.admin, 9); !errors.Is(err, policy.ErrNotFound) || !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Rollback to an unknown version = %v, want ErrNotFound", err)
			}

			evs := e.events(t, audit.Admin)
			var types []string
			for _, ev := range evs {
				types = append(types, ev["type"].(string))
			}
			if diff := cmp.Diff([]string{"policy.applied", "policy.applied", "policy.rolled_back"}, types); diff != "" {
				t.Errorf("admin events (-want +got):\n%s", diff)
			}
			last := evs[2]["details"].(map[string]any)
			if last["version"] != float64(1) || last["previous_version"] != float64(2) || len(last["sha256"].(string)) != 64 {
				t.Errorf("rollback details = %v", last)
			}

			// Diff by policy id.
			diff, err := policy.DiffTexts(v1.Text, basePolicies+"\n@id(\"extra\") permit (principal, action, resource);")
			if err != nil || !cmp.Equal(diff.Added, []string{"extra"}) || diff.Removed != nil || diff.Changed != nil {
				t.Errorf("DiffTexts = %+v, %v; want extra added", diff, err)
			}
			diff, err = policy.DiffTexts(v1.Text, strings.Replace(basePolicies, `"low"`, `"medium"`, 1)+denyAll)
			if err != nil || !cmp.Equal(diff.Changed, []string{"granted-classes"}) || !cmp.Equal(diff.Added, []string{"nothing"}) ||
				!strings.Contains(diff.From["granted-classes"], `"low"`) || !strings.Contains(diff.To["granted-classes"], `"medium"`) {
				t.Errorf("DiffTexts = %+v, %v; want granted-classes changed and nothing added", diff, err)
			}
			if _, err := policy.DiffTexts("permit (", ""); !errors.Is(err, policy.ErrInvalid) {
				t.Errorf("DiffTexts of a broken document = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestActionClasses(t *testing.T) {
	e := sqliteEnv(t)
	ctx := context.Background()
	high, low, desc := "high", "low", "Moves invoices"
	acts := []string{"invoice.pay", "invoice.refund", "invoice.pay"}
	c, err := e.svc.SetClass(ctx, e.admin, policy.ClassParams{Name: "payments", Actions: &acts, Description: &desc})
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 2 || c.RiskTier != "high" || !cmp.Equal(c.Actions, []string{"invoice.pay", "invoice.refund"}) || c.UpdatedBy != "adm_test" {
		t.Errorf("SetClass = %+v", c)
	}
	e.apply(t, basePolicies+`
@id("refunds-by-finance")
permit (principal, action == Action::"invoice.refund", resource) when { principal.hasTag("team") && principal.getTag("team") == "finance" };
`)
	// An action of a class is in the class: payments-need-approval applies.
	d, err := e.svc.Decide(ctx, e.admin, req("invoice.pay", "invoice", "1"))
	if err != nil || d.Decision != policy.Conditional || d.ActionClass != "payments" || d.RiskTier != "high" {
		t.Errorf("Decide invoice.pay = %+v, %v; want conditional in payments", d, err)
	}

	for _, tc := range []struct {
		name, field string
		p           policy.ClassParams
	}{
		{"bad name", "name", policy.ClassParams{Name: "Bad Name", RiskTier: &low}},
		{"new without tier", "risk_tier", policy.ClassParams{Name: "deploy"}},
		{"bad tier", "risk_tier", policy.ClassParams{Name: "deploy", RiskTier: ptr("extreme")}},
		{"action of another class", "actions[0]", policy.ClassParams{Name: "deploy", RiskTier: &high, Actions: &[]string{"invoice.pay"}}},
		{"action named like a class", "actions[0]", policy.ClassParams{Name: "deploy", RiskTier: &high, Actions: &[]string{"read"}}},
		{"bad action", "actions[0]", policy.ClassParams{Name: "deploy", RiskTier: &high, Actions: &[]string{"a b"}}},
		{"class named like an action", "name", policy.ClassParams{Name: "invoice.pay", RiskTier: &high}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.SetClass(ctx, e.admin, tc.p)
			var ve *policy.ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Errorf("SetClass = %v, want a validation error of %s", err, tc.field)
			}
		})
	}
	// Dropping an action the active policies name is refused.
	only := []string{"invoice.pay"}
	_, err = e.svc.SetClass(ctx, e.admin, policy.ClassParams{Name: "payments", Actions: &only})
	var pe *policy.PolicyError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "refunds-by-finance") {
		t.Errorf("SetClass dropping a used action = %v, want a *PolicyError naming refunds-by-finance", err)
	}

	// A new class takes effect at once.
	if _, err := e.svc.SetClass(ctx, e.admin, policy.ClassParams{Name: "deploy", RiskTier: &low, Actions: &[]string{"deploy.staging"}}); err != nil {
		t.Fatal(err)
	}
	d, err = e.svc.Decide(ctx, e.admin, req("deploy.staging", "service", "api"))
	if err != nil || d.Decision != policy.Deny || d.ActionClass != "deploy" || d.RiskTier != "low" {
		t.Errorf("Decide deploy.staging = %+v, %v; want a default deny in deploy", d, err)
	}
	cs, err := e.svc.Classes(ctx)
	if err != nil || len(cs) != 7 {
		t.Errorf("Classes = %d, %v; want 7", len(cs), err)
	}
	var types []string
	for _, ev := range e.events(t, audit.Admin) {
		types = append(types, ev["type"].(string))
	}
	if diff := cmp.Diff([]string{"action_class.updated", "policy.applied", "action_class.created"}, types); diff != "" {
		t.Errorf("admin events (-want +got):\n%s", diff)
	}
}

// TestReplicasReload: a change made through one Service reaches another
// sharing the store within the refresh interval, and changes checked
// against a stale registry are checked again.
func TestReplicasReload(t *testing.T) {
	for _, set := range storetest.Replicas(t, 2) {
		t.Run(set.Name, func(t *testing.T) {
			stores := set.Open(t)
			a := newEnvNoSeed(t, stores[0])
			b := newEnvNoSeed(t, stores[1])
			a.seedAgents(t)
			ctx := context.Background()
			a.apply(t, basePolicies)
			d, err := b.svc.Decide(ctx, b.admin, req("read", "invoice", "1"))
			if err != nil || d.Decision != policy.Allow {
				t.Fatalf("B's first decision = %+v, %v; want allow", d, err)
			}
			a.apply(t, "@id(\"nothing\") forbid (principal, action, resource);")
			if d, _ := b.svc.Decide(ctx, b.admin, req("read", "invoice", "1")); d.PolicyVersion != 1 {
				t.Errorf("B within the interval decided with version %d, want 1 (cached)", d.PolicyVersion)
			}
			b.clock.Advance(policy.DefaultRefreshInterval)
			if d, _ := b.svc.Decide(ctx, b.admin, req("read", "invoice", "1")); d.PolicyVersion != 2 || d.Decision != policy.Deny {
				t.Errorf("B after the interval = %+v, want a deny under version 2", d)
			}
			// B's registry is stale (A adds a class); B's apply naming the
			// new class is checked against the newest registry.
			if _, err := a.svc.SetClass(ctx, a.admin, policy.ClassParams{Name: "deploy", RiskTier: ptr("medium")}); err != nil {
				t.Fatal(err)
			}
			if _, err := b.svc.Apply(ctx, b.admin, "@id(\"d\") permit (principal, action in Action::\"deploy\", resource);", ""); err != nil {
				t.Errorf("B's apply after A's class change = %v", err)
			}
		})
	}
}

func newEnvNoSeed(t *testing.T, st store.Store) *env {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := policy.New(policy.Params{Store: st, Recorder: rec, Clock: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, svc: svc, clock: c, admin: audit.Origin{Actor: audit.Actor{Type: audit.ActorAdmin, ID: "adm_test"}}}
}

func ptr[T any](v T) *T { return &v }
