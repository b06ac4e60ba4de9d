package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentid/agentid/internal/audit"
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

// AuditRetentionInterval is how often the server prunes the trail when
// audit.retention is set.
const AuditRetentionInterval = time.Hour

// runAuditRetention prunes the events older than audit.retention every
// AuditRetentionInterval (ADR 0018), one replica at a time (the store
// lease audit-prune), until ctx ends.
func (s *Server) runAuditRetention(ctx context.Context) {
	if s.cfg.Audit.Retention == 0 {
		return
	}
	holder, err := replicaID()
	if err != nil {
		s.log.Error("audit retention not started", "err", err)
		return
	}
	every := s.retention.every
	if every <= 0 {
		every = AuditRetentionInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.pruneAudit(ctx, holder); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "audit retention: prune failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneAudit prunes once if this replica takes the lease.
func (s *Server) pruneAudit(ctx context.Context, holder string) error {
	now := time.Now().UTC()
	if s.retention.now != nil {
		now = s.retention.now().UTC()
	}
	var ok bool
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		ok, err = tx.AcquireLease(ctx, "audit-prune", holder, now, now.Add(AuditRetentionInterval/2))
		return err
	})
	if err != nil || !ok {
		return err
	}
	o := audit.Origin{Actor: audit.Actor{Type: audit.ActorSystem, ID: "audit-retention"}}
	rep, err := s.recorder.Prune(ctx, o, now.Add(-s.cfg.Audit.Retention))
	if err == nil && rep.Events > 0 {
		s.log.InfoContext(ctx, "audit retention: pruned", "through_seq", rep.ThroughSeq, "events", rep.Events)
	}
	return err
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
