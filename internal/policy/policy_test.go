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
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

func TestDecide(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := newEnv(t, st)
			ctx := context.Background()

			// No active version: every decision is a default deny.
			d, err := e.svc.Decide(ctx, e.admin, req("read", "invoice", "1"))
			if err != nil || d.Decision != policy.Deny || d.PolicyIDs != nil || d.PolicyVersion != 0 {
				t.Fatalf("Decide without policies = %+v, %v; want a default deny", d, err)
			}
			v := e.apply(t, basePolicies)
			delegated := req("write", "invoice", "1")
			delegated.Context = json.RawMessage(`{"delegation": {"subject": "own_alice", "actors": ["invoice-bot"], "grant_id": "grt_1"}}`)
			notOwner := req("write", "invoice", "1")
			notOwner.Context = json.RawMessage(`{"delegation": {"subject": "own_bob"}}`)
			frozen := req("read", "invoice", "2")
			frozen.Resource.Properties = json.RawMessage(`{"state": "frozen", "amount": 1200, "nested": {"a": 1}}`)
			frozenPayment := req("payments", "invoice", "2")
			frozenPayment.Resource.Properties = frozen.Resource.Properties
			bySPIFFE := req("read", "invoice", "1")
			bySPIFFE.Subject.ID = "spiffe://example.org/agent/invoice-bot"
			byID := req("read", "invoice", "1")
			byID.Subject.ID = "agt_01invoicebot0000000000000"
			suspended := req("read", "invoice", "1")
			suspended.Subject.ID = "idle-bot"
			unknown := req("read", "invoice", "1")
			unknown.Subject.ID = "nobody"
			wrongDomain := req("read", "invoice", "1")
			wrongDomain.Subject.ID = "spiffe://other.example/agent/invoice-bot"

			for _, tc := range []struct {
				name    string
				req     policy.Request
				want    string
				ids     []string
				obl     []string
				reasons []string
			}{
				{"granted low-risk class", req("read", "invoice", "1"), policy.Allow, []string{"granted-classes"}, nil, []string{"the agent holds the action class"}},
				{"by SPIFFE ID", bySPIFFE, policy.Allow, []string{"granted-classes"}, nil, []string{"the agent holds the action class"}},
				{"by agent id", byID, policy.Allow, []string{"granted-classes"}, nil, []string{"the agent holds the action class"}},
				{"class not granted: default deny", req("delete", "invoice", "1"), policy.Deny, nil, nil, nil},
				{"high risk: conditional", req("payments", "invoice", "1"), policy.Conditional, []string{"payments-need-approval"}, []string{"approval"}, []string{"high-risk payments need a human"}},
				{"forbid overrides permit", frozen, policy.Deny, []string{"frozen-resources"}, nil, []string{"the resource is frozen"}},
				{"forbid overrides conditional", frozenPayment, policy.Deny, []string{"frozen-resources"}, nil, []string{"the resource is frozen"}},
				{"delegated by an owner", delegated, policy.Allow, []string{"finance-delegated"}, nil, nil},
				{"delegated by a non-owner", notOwner, policy.Deny, nil, nil, nil},
				{"suspended agent", suspended, policy.Deny, nil, nil, []string{"the agent is suspended"}},
				{"unknown agent", unknown, policy.Deny, nil, nil, []string{"unknown agent"}},
				{"SPIFFE ID of another trust domain", wrongDomain, policy.Deny, nil, nil, []string{"unknown agent"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					d, err := e.svc.Decide(ctx, e.admin, tc.req)
					if err != nil {
						t.Fatal(err)
					}
					if d.Decision != tc.want || !cmp.Equal(d.PolicyIDs, tc.ids) || !cmp.Equal(d.Obligations, tc.obl) ||
						!cmp.Equal(d.Reasons, tc.reasons) || d.PolicyVersion != v.Version || d.EventID == "" {
						t.Errorf("Decide = %+v; want %s by %v, obligations %v, reasons %v, version %d, an event",
							d, tc.want, tc.ids, tc.obl, tc.reasons, v.Version)
					}
				})
			}

			// Every decision is on the record, with the four axes it has.
			evs := e.decisionEvents(t)
			if len(evs) != 13 {
				t.Fatalf("%d authorization events, want 13 (one per decision)", len(evs))
			}
			var got map[string]any
			for _, ev := range evs {
				if ev["decision"] == policy.Allow && ev["details"].(map[string]any)["action"] == "write" {
					got = ev
				}
			}
			if got == nil {
				t.Fatal("no event for the delegated write")
			}
			details := got["details"].(map[string]any)
			for k, want := range map[string]any{
				"action": "write", "action_class": "write", "risk_tier": "medium",
				"policy_version": float64(v.Version), "policy_ids": []any{"finance-delegated"},
				"resource": map[string]any{"type": "invoice", "id": "1"},
			} {
				if !cmp.Equal(details[k], want) {
					t.Errorf("details[%s] = %v, want %v", k, details[k], want)
				}
			}
			if s, _ := details["context_sha256"].(string); len(s) != 64 {
				t.Errorf("context_sha256 = %q, want 64 hex digits", s)
			}
			for k, want := range map[string]any{
				"type": "decision.made", "family": "authorization", "outcome": "success",
				"actor":      map[string]any{"type": "admin", "id": "adm_test"},
				"agent":      map[string]any{"id": "agt_01invoicebot0000000000000", "name": "invoice-bot", "spiffe_id": "spiffe://example.org/agent/invoice-bot"},
				"delegation": map[string]any{"subject": "own_alice", "actors": []any{"invoice-bot"}, "grant_id": "grt_1"},
				"task":       map[string]any{"action_classes": []any{"write"}, "trace_id": "0af7651916cd43dd8448eb211c80319c"},
			} {
				if !cmp.Equal(got[k], want) {
					t.Errorf("event %s = %v, want %v", k, got[k], want)
				}
			}
		})
	}
}

func TestDecideBadInput(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, basePolicies)
	ctx := context.Background()
	deep := `{"a":` + strings.Repeat(`{"a":`, policy.MaxDepth) + `1` + strings.Repeat(`}`, policy.MaxDepth+1)
	for _, tc := range []struct {
		name, field string
		edit        func(*policy.Request)
	}{
		{"no subject type", "subject.type", func(r *policy.Request) { r.Subject.Type = "" }},
		{"other subject type", "subject.type", func(r *policy.Request) { r.Subject.Type = "spaceship" }},
		{"user without id", "subject.id", func(r *policy.Request) { r.Subject = policy.Subject{Type: policy.SubjectUser} }},
		{"long user id", "subject.id", func(r *policy.Request) {
			r.Subject = policy.Subject{Type: policy.SubjectUser, ID: strings.Repeat("u", 600)}
		}},
		{"user properties not an object", "subject.properties", func(r *policy.Request) {
			r.Subject = policy.Subject{Type: policy.SubjectUser, ID: "alice", Properties: json.RawMessage(`["admin"]`)}
		}},
		{"deeply nested user properties", "subject.properties", func(r *policy.Request) {
			r.Subject = policy.Subject{Type: policy.SubjectUser, ID: "alice", Properties: json.RawMessage(deep)}
		}},
		{"action properties not an object", "action.properties", func(r *policy.Request) { r.ActionProperties = json.RawMessage(`true`) }},
		{"action properties malformed", "action.properties", func(r *policy.Request) { r.ActionProperties = json.RawMessage(`{"soft":`) }},
		{"deeply nested action properties", "action.properties", func(r *policy.Request) { r.ActionProperties = json.RawMessage(deep) }},
		{"oversized action properties", "context", func(r *policy.Request) {
			r.ActionProperties = json.RawMessage(`{"x":"` + strings.Repeat("a", policy.MaxRequestBytes) + `"}`)
		}},
		{"no subject id", "subject.id", func(r *policy.Request) { r.Subject.ID = "" }},
		{"long subject id", "subject.id", func(r *policy.Request) { r.Subject.ID = strings.Repeat("a", 600) }},
		{"no action", "action.name", func(r *policy.Request) { r.Action = "" }},
		{"unknown action", "action.name", func(r *policy.Request) { r.Action = "launch_missiles" }},
		{"no resource type", "resource.type", func(r *policy.Request) { r.Resource.Type = "" }},
		{"no resource id", "resource.id", func(r *policy.Request) { r.Resource.ID = "" }},
		{"oversized context", "context", func(r *policy.Request) {
			r.Context = json.RawMessage(`{"x":"` + strings.Repeat("a", policy.MaxRequestBytes) + `"}`)
		}},
		{"deeply nested properties", "resource.properties", func(r *policy.Request) { r.Resource.Properties = json.RawMessage(deep) }},
		{"deeply nested context", "context", func(r *policy.Request) { r.Context = json.RawMessage(deep) }},
		{"context not an object", "context", func(r *policy.Request) { r.Context = json.RawMessage(`[1]`) }},
		{"properties not an object", "resource.properties", func(r *policy.Request) { r.Resource.Properties = json.RawMessage(`"x"`) }},
		{"bad time", "context.time", func(r *policy.Request) { r.Context = json.RawMessage(`{"time": "yesterday"}`) }},
		{"bad delegation", "context.delegation", func(r *policy.Request) { r.Context = json.RawMessage(`{"delegation": "own_alice"}`) }},
		{"delegation without subject", "context.delegation.subject", func(r *policy.Request) {
			r.Context = json.RawMessage(`{"delegation": {"actors": []}}`)
		}},
		{"bad actors", "context.delegation.actors", func(r *policy.Request) {
			r.Context = json.RawMessage(`{"delegation": {"subject": "own_alice", "actors": [1]}}`)
		}},
		{"bad instance", "context.instance.attestation_method", func(r *policy.Request) {
			r.Context = json.RawMessage(`{"instance": {"id": "ins_1", "attestation_method": 7}}`)
		}},
		{"instance without id", "context.instance.id", func(r *policy.Request) {
			r.Context = json.RawMessage(`{"instance": {"attestation_method": "k8s"}}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req("read", "invoice", "1")
			tc.edit(&r)
			_, err := e.svc.Decide(ctx, e.admin, r)
			var ve *policy.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, policy.ErrInvalid) || !errors.Is(err, store.ErrInvalid) || ve.Field != tc.field {
				t.Errorf("Decide = %v; want a validation error of field %s", err, tc.field)
			}
		})
	}
	if evs := e.events(t, audit.Authorization); len(evs) != 0 {
		t.Errorf("%d authorization events after bad requests, want none", len(evs))
	}
}

func TestDecideContext(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, `@id("business-hours")
permit (principal, action in Action::"read", resource)
when { context.time.toTime() >= duration("9h") && context.time.toTime() < duration("17h") };

@id("attested-k8s")
permit (principal, action == Action::"write", resource)
when { context has attestation_method && context.attestation_method == "k8s" && context has trace_id };
`)
	ctx := context.Background()
	for _, tc := range []struct {
		name, action, context, want string
	}{
		{"clock time inside hours", "read", ``, policy.Allow}, // the test clock says 10:00 UTC
		{"context time outside hours", "read", `{"time": "2026-11-25T20:00:00Z"}`, policy.Deny},
		{"context time inside hours", "read", `{"time": "2026-11-25T11:00:00+01:00"}`, policy.Allow},
		{"context time without seconds (AuthZEN's examples)", "read", `{"time": "2026-11-25T11:00+01:00"}`, policy.Allow},
		{"context time without seconds, outside hours", "read", `{"time": "2026-11-25T18:03-07:00"}`, policy.Deny},
		{"attested instance", "write", `{"instance": {"id": "ins_1", "attestation_method": "k8s"}, "trace_id": "abc"}`, policy.Allow},
		{"other attestation", "write", `{"instance": {"id": "ins_2"}, "trace_id": "abc"}`, policy.Deny},
		{"the record's attestation, not the caller's", "write", `{"instance": {"id": "ins_2", "attestation_method": "k8s"}, "trace_id": "abc"}`, policy.Deny},
		{"no trace id", "write", `{"instance": {"id": "ins_1", "attestation_method": "k8s"}}`, policy.Deny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req(tc.action, "doc", "1")
			if tc.context != "" {
				r.Context = json.RawMessage(tc.context)
			}
			d, err := e.svc.Decide(ctx, e.admin, r)
			if err != nil || d.Decision != tc.want {
				t.Errorf("Decide = %+v, %v; want %s", d, err, tc.want)
			}
		})
	}
	evs := e.events(t, audit.Authorization)
	last := evs[len(evs)-1]
	if !cmp.Equal(last["instance"], map[string]any{"id": "ins_1", "method": "k8s"}) {
		t.Errorf("instance axis = %v, want ins_1 via k8s", last["instance"])
	}
}

func TestDecideBatch(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, basePolicies)
	ctx := context.Background()
	bad := req("launch", "invoice", "1")
	reqs := []policy.Request{req("read", "invoice", "1"), req("delete", "invoice", "1"), bad, req("payments", "invoice", "1"), req("read", "invoice", "2")}
	for _, tc := range []struct {
		sem  policy.Semantic
		want []string // "" for an item that could not be evaluated
	}{
		{policy.ExecuteAll, []string{policy.Allow, policy.Deny, "", policy.Conditional, policy.Allow}},
		{"", []string{policy.Allow, policy.Deny, "", policy.Conditional, policy.Allow}},
		{policy.DenyOnFirstDeny, []string{policy.Allow, policy.Deny}},
		{policy.PermitOnFirstPermit, []string{policy.Allow}},
	} {
		t.Run(string(tc.sem), func(t *testing.T) {
			before := len(e.decisionEvents(t))
			rs, err := e.svc.DecideBatch(ctx, e.admin, reqs, tc.sem)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				if r.Err != nil {
					got = append(got, "")
					if !errors.Is(r.Err, policy.ErrInvalid) || r.Decision.Decision != policy.Deny {
						t.Errorf("failed item = %+v, want a deny with a validation error", r)
					}
				} else {
					got = append(got, r.Decision.Decision)
				}
				if r.Decision.EventID == "" {
					t.Errorf("item %+v has no event", r)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
			if n := len(e.decisionEvents(t)) - before; n != len(tc.want) {
				t.Errorf("%d events, want %d (one per answer)", n, len(tc.want))
			}
		})
	}
	_, err := e.svc.DecideBatch(ctx, e.admin, reqs, "first_come")
	if !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("DecideBatch with an unknown semantic = %v, want ErrInvalid", err)
	}
	evs := e.events(t, audit.Authorization)
	failed := 0
	for _, ev := range evs {
		if ev["outcome"] == "failure" {
			failed++
			if ev["decision"] != "deny" || !strings.Contains(ev["reason"].(string), "unknown action") {
				t.Errorf("failed item event = %v, want a deny with the reason", ev)
			}
		}
	}
	if failed != 2 {
		t.Errorf("%d failed-item events, want 2", failed)
	}
}

// TestDecideFailsClosed: a decision that cannot be recorded is not given.
func TestDecideFailsClosed(t *testing.T) {
	st, _ := storetest.Backends(t)[0].Open(t)
	e := newEnv(t, st)
	e.apply(t, basePolicies)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour) // past the refresh interval: the head must be read
	d, err := e.svc.Decide(context.Background(), e.admin, req("read", "invoice", "1"))
	if err == nil {
		t.Fatalf("Decide on a closed store = %+v, want an error", d)
	}
}

func TestTestCases(t *testing.T) {
	e := sqliteEnv(t)
	rs, err := e.svc.TestCases(context.Background(), basePolicies, []policy.Case{
		{Name: "read", Request: req("read", "invoice", "1"), Expect: policy.Allow},
		{Name: "pay", Request: req("payments", "invoice", "1"), Expect: policy.Allow},
		{Name: "bad", Request: req("nope", "invoice", "1"), Expect: policy.Deny},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rs[0].Pass || rs[1].Pass || rs[1].Decision.Decision != policy.Conditional || rs[2].Err == nil {
		t.Errorf("TestCases = %+v; want pass, fail (conditional), error", rs)
	}
	if evs := e.events(t, audit.Authorization); len(evs) != 0 {
		t.Errorf("TestCases recorded %d decisions, want none", len(evs))
	}
	if h, _ := e.svc.Head(context.Background()); h.ActiveVersion != 0 {
		t.Errorf("TestCases activated version %d", h.ActiveVersion)
	}
	_, err = e.svc.TestCases(context.Background(), basePolicies, []policy.Case{{Request: req("read", "a", "b"), Expect: "maybe"}})
	if !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("TestCases with a bad expectation = %v, want ErrInvalid", err)
	}
}
