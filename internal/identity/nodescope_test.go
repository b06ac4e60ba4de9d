package identity

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

const (
	scopeNode1 = "nod_01jx0000000000000000000001"
	scopeNode2 = "nod_01jx0000000000000000000002"
)

// nodeIDs returns n distinct well-formed node ids.
func nodeIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("nod_01jx%022d", i)
	}
	return out
}

func TestNormalizeNodeScope(t *testing.T) {
	prod := func(ms ...string) store.AttestationRule { return store.AttestationRule{Attestor: "prod", Matchers: ms} }
	valid := []struct {
		name string
		in   store.NodeScope
		want store.NodeScope
	}{
		{"zero", store.NodeScope{}, store.NodeScope{}},
		{"empty lists", store.NodeScope{NodeIDs: []string{}, Rules: []store.AttestationRule{}}, store.NodeScope{}},
		{"ids sorted and deduplicated", store.NodeScope{NodeIDs: []string{scopeNode2, scopeNode1, scopeNode2}},
			store.NodeScope{NodeIDs: []string{scopeNode1, scopeNode2}}},
		{"duplicates do not count against the bound", store.NodeScope{NodeIDs: append(nodeIDs(MaxScopeNodeIDs), nodeIDs(MaxScopeNodeIDs)...)},
			store.NodeScope{NodeIDs: nodeIDs(MaxScopeNodeIDs)}},
		{"rules canonical", store.NodeScope{Rules: []store.AttestationRule{prod("k8s:ns:payments", "k8s:ns:payments", "k8s:node:worker-*")}},
			store.NodeScope{Rules: []store.AttestationRule{prod("k8s:ns:payments", "k8s:node:worker-*")}}},
		{"ids and rules", store.NodeScope{NodeIDs: []string{scopeNode1}, Rules: []store.AttestationRule{
			{Attestor: "hosts", Matchers: []string{"x509:cn:web-*"}}, prod("k8s:ns:payments")}},
			store.NodeScope{NodeIDs: []string{scopeNode1}, Rules: []store.AttestationRule{
				{Attestor: "hosts", Matchers: []string{"x509:cn:web-*"}}, prod("k8s:ns:payments")}}},
	}
	for _, tt := range valid {
		got, err := NormalizeNodeScope(tt.in)
		if err != nil {
			t.Errorf("%s: NormalizeNodeScope(%+v) = %v", tt.name, tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", tt.name, diff)
		}
	}

	manyRules := make([]store.AttestationRule, 17)
	for i := range manyRules {
		manyRules[i] = prod("k8s:ns:payments")
	}
	manyMatchers := make([]string, 17)
	for i := range manyMatchers {
		manyMatchers[i] = fmt.Sprintf("k8s:ns:ns%d", i)
	}
	invalidCases := []struct {
		name   string
		in     store.NodeScope
		reason string
	}{
		{"agent id", store.NodeScope{NodeIDs: []string{"agt_01jx0000000000000000000001"}}, "node_ids[0]"},
		{"short id", store.NodeScope{NodeIDs: []string{scopeNode1, "nod_01jx"}}, "node_ids[1]"},
		{"uppercase id", store.NodeScope{NodeIDs: []string{strings.ToUpper(scopeNode1)}}, "node_ids[0]"},
		{"empty id", store.NodeScope{NodeIDs: []string{""}}, "node_ids[0]"},
		{"too many ids", store.NodeScope{NodeIDs: nodeIDs(MaxScopeNodeIDs + 1)}, "at most 16"},
		{"far too many ids", store.NodeScope{NodeIDs: make([]string, 4*MaxScopeNodeIDs+1)}, "at most 16"},
		{"bad attestor", store.NodeScope{Rules: []store.AttestationRule{{Attestor: "Prod!", Matchers: []string{"k8s:ns:a"}}}}, "rules: rule 0"},
		{"no attestor", store.NodeScope{Rules: []store.AttestationRule{{Matchers: []string{"k8s:ns:a"}}}}, "rules: rule 0"},
		{"no matchers", store.NodeScope{Rules: []store.AttestationRule{prod()}}, "rules: rule 0"},
		{"bad matcher", store.NodeScope{Rules: []store.AttestationRule{prod("k8s:ns:a"), prod("k8s:zone:a")}}, "rules: rule 1"},
		{"control character", store.NodeScope{Rules: []store.AttestationRule{prod("k8s:ns:a\n")}}, "rules: rule 0"},
		{"too many matchers", store.NodeScope{Rules: []store.AttestationRule{prod(manyMatchers...)}}, "rules: rule 0"},
		{"too many rules", store.NodeScope{Rules: manyRules}, "rules: at most 16"},
	}
	for _, tt := range invalidCases {
		_, err := NormalizeNodeScope(tt.in)
		var ve *ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) || ve.Field != FieldNodeScope {
			t.Errorf("%s: NormalizeNodeScope = %v, want a validation error on %s", tt.name, err, FieldNodeScope)
			continue
		}
		if !strings.Contains(ve.Reason, tt.reason) || strings.Contains(ve.Reason, "attest:") {
			t.Errorf("%s: reason %q, want it to name %q (without the package prefix)", tt.name, ve.Reason, tt.reason)
		}
	}
}

func TestAgentNodeScope(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		own := e.owner("o@example.org")
		before := e.head()
		a, err := e.svc.CreateAgent(e.ctx, testOrigin(), CreateAgentParams{Name: "scoped", Owners: []string{own.ID}, Purpose: "p",
			NodeScope: store.NodeScope{NodeIDs: []string{scopeNode2, scopeNode1, scopeNode1},
				Rules: []store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments", "k8s:ns:payments"}}}}})
		if err != nil {
			t.Fatal(err)
		}
		want := store.NodeScope{NodeIDs: []string{scopeNode1, scopeNode2},
			Rules: []store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments"}}}}
		if diff := cmp.Diff(want, a.NodeScope); diff != "" {
			t.Errorf("created scope (-want +got):\n%s", diff)
		}
		if got, err := e.svc.GetAgent(e.ctx, a.ID); err != nil || !cmp.Equal(got.NodeScope, want) {
			t.Errorf("stored scope = %+v, %v; want %+v", got.NodeScope, err, want)
		}
		evs := e.eventsAfter(before)
		wantDetail := map[string]any{"node_ids": []any{scopeNode1, scopeNode2}, "rules": []any{"prod: k8s:ns:payments"}}
		if len(evs) != 1 || evs[0].Type != EventAgentCreated || !cmp.Equal(evs[0].Details[FieldNodeScope], wantDetail) {
			t.Errorf("agent.created = %+v, want node_scope %v", evs, wantDetail)
		}
		if plain := e.agent("plain", own.ID); !plain.NodeScope.IsZero() {
			t.Errorf("agent created without a scope has %+v", plain.NodeScope)
		}

		// Refusals store nothing and name the field.
		snap := e.snapshot()
		bad := store.NodeScope{NodeIDs: []string{"nod_nope"}}
		_, err = e.svc.CreateAgent(e.ctx, testOrigin(), CreateAgentParams{Name: "bad", Owners: []string{own.ID}, Purpose: "p", NodeScope: bad})
		if ve, ok := errors.AsType[*ValidationError](err); !ok || ve.Field != FieldNodeScope {
			t.Errorf("CreateAgent(bad node id) = %v, want a validation error on %s", err, FieldNodeScope)
		}
		badRule := store.NodeScope{Rules: []store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:zone:a"}}}}
		_, err = e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, NodeScope: &badRule})
		if ve, ok := errors.AsType[*ValidationError](err); !ok || ve.Field != FieldNodeScope {
			t.Errorf("UpdateAgent(bad rule) = %v, want a validation error on %s", err, FieldNodeScope)
		}
		e.unchanged(snap, "refused node scopes")

		// The same scope again changes nothing.
		head := e.head()
		same := store.NodeScope{NodeIDs: []string{scopeNode2, scopeNode1}, Rules: want.Rules}
		up, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, NodeScope: &same})
		if err != nil || up.Version != a.Version {
			t.Errorf("UpdateAgent(same scope) = version %d, %v; want version %d", up.Version, err, a.Version)
		}
		if evs := e.eventsAfter(head); len(evs) != 0 {
			t.Errorf("an unchanged scope recorded %+v", evs)
		}

		// A new scope is an audited change.
		only := store.NodeScope{NodeIDs: []string{scopeNode1}}
		up, err = e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, NodeScope: &only, IfVersion: a.Version})
		if err != nil || !cmp.Equal(up.NodeScope, only) || up.Version != a.Version+1 {
			t.Fatalf("UpdateAgent(scope) = %+v version %d, %v", up.NodeScope, up.Version, err)
		}
		evs = e.eventsAfter(head)
		if len(evs) != 1 || evs[0].Type != EventAgentUpdated ||
			!cmp.Equal(evs[0].Details["changed"], []any{FieldNodeScope}) ||
			!cmp.Equal(evs[0].Details[FieldNodeScope], map[string]any{"node_ids": []any{scopeNode1}, "rules": []any{}}) {
			t.Errorf("agent.updated = %+v", evs)
		}

		// The zero scope clears it.
		head = e.head()
		up, err = e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, NodeScope: &store.NodeScope{}})
		if err != nil || !up.NodeScope.IsZero() {
			t.Fatalf("UpdateAgent(clear) = %+v, %v", up.NodeScope, err)
		}
		if got, _ := e.svc.GetAgent(e.ctx, a.ID); !got.NodeScope.IsZero() {
			t.Errorf("stored scope after clearing = %+v", got.NodeScope)
		}
		evs = e.eventsAfter(head)
		if len(evs) != 1 || !cmp.Equal(evs[0].Details[FieldNodeScope], map[string]any{"node_ids": []any{}, "rules": []any{}}) {
			t.Errorf("agent.updated of the clearing = %+v", evs)
		}
		e.verifyTrail()
	})
}

// FuzzNormalizeNodeScope: whatever the input, NormalizeNodeScope returns
// a canonical scope (sorted unique well-formed ids, a normalization that
// is a fixed point) or a validation error on node_scope, never a panic.
func FuzzNormalizeNodeScope(f *testing.F) {
	f.Add(scopeNode1, scopeNode2, "prod", "k8s:ns:payments", "k8s:node:*")
	f.Add(scopeNode1, scopeNode1, "hosts", "x509:cn:web-*", "x509:cn:web-*")
	f.Add("nod_", "agt_01jx0000000000000000000001", "Prod", "k8s:zone:a", "")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, id1, id2, attestor, m1, m2 string) {
		in := store.NodeScope{NodeIDs: []string{id1, id2}, Rules: []store.AttestationRule{{Attestor: attestor, Matchers: []string{m1, m2}}}}
		got, err := NormalizeNodeScope(in)
		if err != nil {
			if ve, ok := errors.AsType[*ValidationError](err); !ok || ve.Field != FieldNodeScope {
				t.Fatalf("NormalizeNodeScope(%+v) = %v, want a validation error on %s", in, err, FieldNodeScope)
			}
			return
		}
		again, err := NormalizeNodeScope(got)
		if err != nil || !cmp.Equal(again, got) {
			t.Fatalf("NormalizeNodeScope is not a fixed point: %+v → %+v, %v", got, again, err)
		}
		for i, id := range got.NodeIDs {
			if i > 0 && got.NodeIDs[i-1] >= id {
				t.Fatalf("node ids not sorted and unique: %q", got.NodeIDs)
			}
		}
	})
}
