package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/sdk/admin"
)

// TestAuditPrune: POST /v1/audit/prune cuts a trail written 3 h ago at its
// last checkpoint, records it, and the rest verifies; bad requests change
// nothing.
func TestAuditPrune(t *testing.T) {
	e := newEnvAged(t, 3*time.Hour)
	ctx := context.Background()
	for i := range 7 {
		if _, err := e.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: fmt.Sprintf("p%d@example.org", i)}); err != nil {
			t.Fatal(err)
		}
	}
	before := e.snapshot(t)
	auditor, err := admin.New(e.url, e.auditor)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cl     *admin.Client
		req    admin.PruneAuditRequest
		status int
		typ    string
	}{
		"no before":      {e.admin, admin.PruneAuditRequest{}, http.StatusBadRequest, admin.ProblemBadRequest},
		"too recent":     {e.admin, admin.PruneAuditRequest{Before: time.Now().Add(-10 * time.Minute)}, http.StatusBadRequest, admin.ProblemBadRequest},
		"auditor's role": {auditor, admin.PruneAuditRequest{Before: time.Now().Add(-2 * time.Hour)}, http.StatusForbidden, admin.ProblemForbidden},
	} {
		_, err := tc.cl.PruneAudit(ctx, tc.req)
		wantProblem(t, name, err, tc.status, tc.typ)
	}
	// Refused: nothing pruned (the auditor's refusal is itself an event).
	if v, err := audit.Verify(ctx, e.store, audit.VerifyParams{}); err != nil || !v.OK || v.FirstSeq != 1 {
		t.Fatalf("after refused prunes: %+v, %v", v, err)
	}
	before = e.snapshot(t)

	rep, err := e.admin.PruneAudit(ctx, admin.PruneAuditRequest{Before: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// Checkpoints every 3 events: the last one below the head.
	want := (before.HeadSeq - 1) / 3 * 3
	if rep.ThroughSeq != want || rep.Events != want || rep.EventID == "" {
		t.Fatalf("prune = %+v; want through %d (head %d)", rep, want, before.HeadSeq)
	}
	v, err := audit.Verify(ctx, e.store, audit.VerifyParams{})
	if err != nil || !v.OK || v.PrunedThrough != want || v.FirstSeq != want+1 {
		t.Fatalf("Verify after the prune = %+v, %v", v, err)
	}
	l, err := e.admin.ListAuditEvents(ctx, admin.AuditQuery{Family: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if last := l.Items[len(l.Items)-1]; last.Type != audit.PrunedType || last.ID != rep.EventID {
		t.Errorf("last admin event = %+v; want the prune's", last)
	}
}
