package identity

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func TestAttestationRules(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		own := e.owner("o@example.org")
		rules := []store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments", "k8s:ns:payments", "k8s:sa:runner"}}}
		a, err := e.svc.CreateAgent(e.ctx, testOrigin(), CreateAgentParams{Name: "runner", Owners: []string{own.ID}, Purpose: "p",
			AttestationRules: rules})
		if err != nil {
			t.Fatal(err)
		}
		want := []store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments", "k8s:sa:runner"}}}
		if !cmp.Equal(a.AttestationRules, want) {
			t.Errorf("created rules = %+v, want %+v", a.AttestationRules, want)
		}
		before := e.snapshot()
		bad := []store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:zone:a"}}}
		_, err = e.svc.CreateAgent(e.ctx, testOrigin(), CreateAgentParams{Name: "bad", Owners: []string{own.ID}, Purpose: "p", AttestationRules: bad})
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != FieldAttestation {
			t.Errorf("CreateAgent(bad rules) = %v, want a validation error on %s", err, FieldAttestation)
		}
		if _, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, AttestationRules: &bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpdateAgent(bad rules) = %v, want ErrInvalid", err)
		}
		e.unchanged(before, "refused rules")
		after := e.head()
		gh := []store.AttestationRule{{Attestor: "github", Matchers: []string{"repository=org/*"}}}
		up, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, AttestationRules: &gh})
		if err != nil || !cmp.Equal(up.AttestationRules, gh) {
			t.Fatalf("UpdateAgent = %+v, %v", up.AttestationRules, err)
		}
		evs := e.eventsAfter(after)
		if len(evs) != 1 || !cmp.Equal(evs[0].Details[FieldAttestation], []any{"github: repository=org/*"}) {
			t.Errorf("agent.updated = %+v", evs)
		}
	})
}

func TestInstances(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		own := e.owner("o@example.org")
		a := e.agent("runner", own.ID)
		now := e.clk.Now()
		id := "ins_01jndy7x5p0000000000000001"
		if err := st.Update(e.ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateInstance(ctx, store.Instance{ID: id, AgentID: a.ID, Method: "kubernetes", Attestor: "prod",
				Key: "pod-1", FirstSeenAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		is, next, err := e.svc.ListInstances(e.ctx, ListInstancesParams{AgentRef: "runner", Live: true})
		if err != nil || len(is) != 1 || is[0].ID != id || next != "" {
			t.Fatalf("ListInstances = %+v, %q, %v", is, next, err)
		}
		if _, _, err := e.svc.ListInstances(e.ctx, ListInstancesParams{AgentRef: "nobody"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("ListInstances(unknown agent) = %v", err)
		}
		after := e.head()
		e.clk.Advance(time.Minute)
		in, err := e.svc.RevokeInstance(e.ctx, testOrigin(), id)
		if err != nil || !in.RevokedAt.Equal(e.clk.Now().Truncate(time.Microsecond)) || in.RevokedBy != "adm_tester" {
			t.Fatalf("RevokeInstance = %+v, %v", in, err)
		}
		evs := e.eventsAfter(after)
		if len(evs) != 1 || evs[0].Type != EventInstanceRevoked || evs[0].Details["attestor"] != "prod" {
			t.Errorf("events = %+v", evs)
		}
		e.clk.Advance(time.Minute)
		again, err := e.svc.RevokeInstance(e.ctx, testOrigin(), id)
		if err != nil || !again.RevokedAt.Equal(in.RevokedAt) {
			t.Errorf("second RevokeInstance = %+v, %v; want the first revocation kept", again, err)
		}
		if is, _, _ := e.svc.ListInstances(e.ctx, ListInstancesParams{AgentRef: a.ID, Live: true}); len(is) != 0 {
			t.Errorf("live instances after revocation = %+v", is)
		}
		if _, err := e.svc.RevokeInstance(e.ctx, testOrigin(), "ins_01jndy7x5p0000000000000009"); !errors.Is(err, ErrNotFound) {
			t.Errorf("RevokeInstance(unknown) = %v", err)
		}
		if _, err := e.svc.RevokeInstance(e.ctx, testOrigin(), "pod-1"); !errors.Is(err, ErrInvalid) {
			t.Errorf("RevokeInstance(malformed) = %v", err)
		}
		if got, err := e.svc.GetInstance(e.ctx, id); err != nil || got.RevokedAt.IsZero() {
			t.Errorf("GetInstance = %+v, %v", got, err)
		}
	})
}
