package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// TestAuditLookupTables drives ADR 0017 through the server: the indexer
// catches up (the lag metric reaches 0), and a query by agent is exact
// both for indexed events and for events after the mark.
func TestAuditLookupTables(t *testing.T) {
	cp := startDev(t, func(c *server.Config) { c.Audit.IndexInterval = 20 * time.Millisecond })
	ctx := t.Context()
	owner, err := cp.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: "lookup@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	var agentIDs []string
	for _, name := range []string{"lookup-a", "lookup-b"} {
		a, err := cp.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: name, Owners: []string{owner.ID}, Purpose: "tests"})
		if err != nil {
			t.Fatal(err)
		}
		agentIDs = append(agentIDs, a.ID)
	}
	waitIndexLag(t, cp, "0")
	// Events after the mark: found by the scan of the tail.
	if _, err := cp.admin.SuspendAgent(ctx, "lookup-a", admin.TransitionRequest{Reason: "tail"}); err != nil {
		t.Fatal(err)
	}
	for i, id := range agentIDs {
		types := auditTypes(ctx, t, cp.admin, admin.AuditQuery{Agent: id})
		want := []string{"agent.created"}
		if i == 0 {
			want = append(want, "agent.suspended")
		}
		if !slices.Equal(types, want) {
			t.Errorf("events of %s = %v, want %v", id, types, want)
		}
	}
	waitIndexLag(t, cp, "0")
	if types := auditTypes(ctx, t, cp.admin, admin.AuditQuery{Agent: agentIDs[0]}); !slices.Equal(types, []string{"agent.created", "agent.suspended"}) {
		t.Errorf("indexed events of %s = %v", agentIDs[0], types)
	}
}

func auditTypes(ctx context.Context, t *testing.T, cl *admin.Client, q admin.AuditQuery) []string {
	t.Helper()
	l, err := cl.ListAuditEvents(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range l.Items {
		out = append(out, e.Type)
	}
	return out
}

// metricsText is the server's /metrics page, read with admin token token.
func metricsText(t *testing.T, url, token string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", resp.StatusCode, err)
	}
	return string(b)
}

// waitIndexLag waits until /metrics reports the audit index lag want.
func waitIndexLag(t *testing.T, cp *controlPlane, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		for line := range strings.SplitSeq(metricsText(t, cp.url, cp.token), "\n") {
			if v, ok := strings.CutPrefix(line, "agentid_audit_index_lag_events "); ok {
				last = v
			}
		}
		if last == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("agentid_audit_index_lag_events = %q after 10 s, want %s", last, want)
}

// TestAuditRetentionLoop drives audit.retention through the server's own
// loop (ADR 0018): nothing is pruned while every event is younger than the
// retention; once the clock has moved past it, the loop prunes up to a
// checkpoint and records audit.pruned.
func TestAuditRetentionLoop(t *testing.T) {
	var shift atomic.Int64 // added to the wall clock the loop reads
	ln, cfg := devListener(t, func(c *server.Config) {
		c.Audit.Retention = 24 * time.Hour
		c.Audit.CheckpointEvery = 4
	})
	cp := serve(t, ln, cfg, server.Params{}, func(s *server.Server) {
		server.SetAuditRetentionHooks(s, 20*time.Millisecond, func() time.Time {
			return time.Now().Add(time.Duration(shift.Load()))
		})
	})
	ctx := t.Context()
	owner, err := cp.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: "retention@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := cp.admin.CreateAgent(ctx, admin.CreateAgentRequest{
			Name: fmt.Sprintf("retained-%d", i), Owners: []string{owner.ID}, Purpose: "tests",
		}); err != nil {
			t.Fatal(err)
		}
	}
	all := auditEvents(ctx, t, cp.admin)
	if all[0].Seq != 1 || len(all) < 8 {
		t.Fatalf("trail before: first seq %d, %d events", all[0].Seq, len(all))
	}
	time.Sleep(100 * time.Millisecond) // several rounds of the loop with every event young
	if evs := auditEvents(ctx, t, cp.admin); evs[0].Seq != 1 || slices.ContainsFunc(evs, isPruned) {
		t.Fatalf("pruned while every event is younger than the retention")
	}

	shift.Store(int64(48 * time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := auditEvents(ctx, t, cp.admin)
		// audit.pruned is appended before the deletions, which run in
		// chunks: done when both are seen.
		if i := slices.IndexFunc(evs, isPruned); i >= 0 && evs[0].Seq > 1 {
			if a := evs[i].Actor; a == nil || a.Type != "system" || a.ID != "audit-retention" {
				t.Errorf("audit.pruned actor = %+v, want system audit-retention", a)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit.pruned within 10 s; first seq %d", evs[0].Seq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isPruned(e admin.AuditEvent) bool { return e.Type == "audit.pruned" }

// auditEvents returns the whole trail, through every page.
func auditEvents(ctx context.Context, t *testing.T, cl *admin.Client) []admin.AuditEvent {
	t.Helper()
	var out []admin.AuditEvent
	q := admin.AuditQuery{PageSize: 500}
	for {
		l, err := cl.ListAuditEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l.Items...)
		if l.NextPageToken == "" {
			return out
		}
		q.PageToken = l.NextPageToken
	}
}
