package policy_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/policy"
)

func TestDryRunReplaysRecordedDecisions(t *testing.T) {
	e := sqliteEnv(t)
	ctx := context.Background()
	e.apply(t, basePolicies)

	decide := func(r policy.Request) {
		t.Helper()
		if _, err := e.svc.Decide(ctx, e.admin, r); err != nil {
			t.Fatalf("Decide: %v", err)
		}
		e.clock.Advance(time.Second)
	}
	// 1: read an open invoice (allow); 2: read a frozen one (deny: the
	// property must survive the replay); 3: pay (conditional); 4: a write
	// delegated by the owner (allow: the delegation must survive); 5: a
	// batch item that could not be evaluated (not replayed).
	open := req("read", "invoice", "1")
	open.Resource.Properties = json.RawMessage(`{"state": "open", "amount": 12}`)
	decide(open)
	frozen := req("read", "invoice", "2")
	frozen.Resource.Properties = json.RawMessage(`{"state": "frozen"}`)
	decide(frozen)
	decide(req("payments", "invoice", "3"))
	write := req("write", "invoice", "4")
	write.Context = json.RawMessage(`{"delegation": {"subject": "own_alice"}, "amount": 5}`)
	decide(write)
	if _, err := e.svc.DecideBatch(ctx, e.admin, []policy.Request{req("launch", "x", "y")}, policy.ExecuteAll); err != nil {
		t.Fatal(err)
	}
	// 6: an unknown agent (no agent axis: skipped).
	unknown := req("read", "invoice", "5")
	unknown.Subject.ID = "ghost-bot"
	decide(unknown)

	// The candidate drops the frozen forbid and the delegated writes, and
	// keeps the rest.
	candidate := strings.Replace(basePolicies, "resource.getTag(\"state\") == \"frozen\"", "resource.getTag(\"state\") == \"archived\"", 1)
	candidate = strings.Replace(candidate, "principal.owners.contains(context.delegation.subject)", "false", 1)
	head := e.apply(t, basePolicies) // a second version, identical: the replay compares with the active one
	auditBefore := len(e.events(t, audit.Authorization)) + len(e.events(t, audit.Admin))

	rep, err := e.svc.DryRun(ctx, policy.ReplayParams{Text: candidate})
	if err != nil {
		t.Fatalf("DryRun: %v", err)
	}
	if rep.ActiveVersion != head.Version || rep.Examined != 5 || rep.Replayed != 4 || rep.Skipped != 1 {
		t.Errorf("report = version %d, examined %d, replayed %d, skipped %d; want %d, 5, 4, 1",
			rep.ActiveVersion, rep.Examined, rep.Replayed, rep.Skipped, head.Version)
	}
	type change struct{ Resource, Recorded, Current, Candidate string }
	var got []change
	for _, c := range rep.Changed {
		got = append(got, change{c.ResourceID, c.Recorded, c.Current.Decision, c.Candidate.Decision})
		if c.Agent != "invoice-bot" || c.EventID == "" || c.Time.IsZero() {
			t.Errorf("change %+v lacks its event, agent or time", c)
		}
	}
	want := []change{{"2", policy.Deny, policy.Deny, policy.Allow}, {"4", policy.Allow, policy.Allow, policy.Deny}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	after := len(e.events(t, audit.Authorization)) + len(e.events(t, audit.Admin))
	if after != auditBefore {
		t.Errorf("the dry run recorded %d events, want none", after-auditBefore)
	}

	// Last bounds the replay to the most recent decisions.
	rep, err = e.svc.DryRun(ctx, policy.ReplayParams{Text: candidate, Last: 2})
	if err != nil || rep.Examined != 2 || len(rep.Changed) != 1 || rep.Changed[0].ResourceID != "4" {
		t.Errorf("DryRun(last 2) = %+v, %v; want the write only", rep, err)
	}
	// The same document changes nothing.
	if rep, err = e.svc.DryRun(ctx, policy.ReplayParams{Text: basePolicies}); err != nil || len(rep.Changed) != 0 {
		t.Errorf("DryRun(active) = %+v, %v; want no change", rep, err)
	}
	// Bad input.
	var pe *policy.PolicyError
	if _, err := e.svc.DryRun(ctx, policy.ReplayParams{Text: "permit (principal, action, resource);"}); !errors.As(err, &pe) {
		t.Errorf("DryRun(no @id) = %v, want a *PolicyError", err)
	}
	if _, err := e.svc.DryRun(ctx, policy.ReplayParams{Text: basePolicies, Last: policy.MaxReplay + 1}); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("DryRun(last too large) = %v, want ErrInvalid", err)
	}
}

func TestDecisionEventKeepsReplayInput(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, basePolicies)
	r := req("read", "invoice", strings.Repeat("i", 60))
	r.Resource.Properties = json.RawMessage(`{"state": "open", "n": 3, "ok": true, "nested": {"a": 1}}`)
	r.Context = json.RawMessage(`{"time": "2026-11-25T09:00:00Z", "trace_id": "t1", "secret_note": "kept out"}`)
	if _, err := e.svc.Decide(context.Background(), e.admin, r); err != nil {
		t.Fatal(err)
	}
	evs := e.decisionEvents(t)
	got := evs[len(evs)-1]["details"].(map[string]any)["input"]
	want := map[string]any{
		"action": "read",
		"resource": map[string]any{"type": "invoice", "id": strings.Repeat("i", 60),
			"properties": map[string]any{"state": "open", "n": "3", "ok": "true"},
			"longs":      map[string]any{"n": float64(3)}, "bools": map[string]any{"ok": true}},
		"time": "2026-11-25T09:00:00Z", "trace_id": "t1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("details.input (-want +got):\n%s", diff)
	}
}
