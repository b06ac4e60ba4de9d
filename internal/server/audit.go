package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentid/agentid/internal/store"
)

// runAuditIndexer brings the audit trail's agent and trace lookup tables up
// to date every audit.index_interval (ADR 0017) until ctx ends. Lookups
// stay exact while it lags or fails: they scan the unindexed tail.
func (s *Server) runAuditIndexer(ctx context.Context) {
	ix, ok := s.store.(store.AuditIndexer)
	if !ok {
		return
	}
	t := time.NewTicker(s.cfg.Audit.IndexInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		indexed, head, err := ix.AuditIndexState(ctx)
		if err == nil && indexed >= head {
			continue
		}
		if err == nil {
			_, err = ix.IndexAudit(ctx, head)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			s.log.WarnContext(ctx, "audit index update failed; lookups by agent and trace scan more of the trail until it succeeds", "err", err)
			failing = true
		case err == nil && failing:
			s.log.InfoContext(ctx, "audit index updating again")
			failing = false
		}
	}
}

// auditIndexLag is the gauge of how many events the audit lookup tables
// lack; 0 when the store has none.
func auditIndexLag(st store.Store) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "agentid_audit_index_lag_events",
		Help: "Audit events not yet in the agent and trace lookup tables (found by scanning until they are).",
	}, func() float64 {
		ix, ok := st.(store.AuditIndexer)
		if !ok {
			return 0
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		indexed, head, err := ix.AuditIndexState(ctx)
		if err != nil {
			return -1
		}
		return float64(head - indexed)
	})
}
