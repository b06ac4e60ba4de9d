package sqlstore

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/agentid/agentid/internal/store"
)

// auditBlock is how many sequence numbers one row of the audit lookup
// tables covers (ADR 0017 addendum): a query reads the block's events and
// filters them, the indexer writes one row for all of a key's events in
// the block.
const auditBlock = 64

// auditIndexChunk is how many events one IndexAudit transaction indexes:
// large enough that entries landing on the same B-tree page share its
// write, small enough that the batch it joins is not held up for long.
const auditIndexChunk = 2048

var _ store.AuditIndexer = (*Store)(nil)

// IndexAudit implements store.AuditIndexer: one transaction per chunk of
// events takes the index's state row (replicas on one PostgreSQL database
// index in turn), writes the chunk's agent and trace entries and moves the
// high-water mark.
func (s *Store) IndexAudit(ctx context.Context, through int64) (int64, error) {
	for {
		var upto, next int64
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			var err error
			upto, next, err = tx.(*txn).indexChunk(ctx, through)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("store: index audit: %w", err)
		}
		if next == upto || (through > 0 && next >= through) {
			return next, nil
		}
	}
}

// indexChunk indexes the events after the high-water mark, up to
// auditIndexChunk of them and none after through (when positive), and
// returns the mark before and after.
func (t *txn) indexChunk(ctx context.Context, through int64) (int64, int64, error) {
	var upto int64
	// A no-op update takes the row lock first, so that concurrent indexers
	// wait here and then read the mark the previous one left.
	if err := t.q.QueryRowContext(ctx,
		`UPDATE audit_index_state SET upto = upto WHERE id = 1 RETURNING upto`).Scan(&upto); err != nil {
		return 0, 0, t.d.classify(err)
	}
	hi := int64(math.MaxInt64)
	if through > 0 {
		hi = through
	}
	// The last of the next auditIndexChunk events (pruning may have left a
	// gap after the mark): read before the inserts, so that every event the
	// mark covers is one they see (appends are serialised and commit in
	// seq order).
	var next int64
	if err := t.q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM (SELECT seq FROM audit_events
		WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT `+strconv.Itoa(auditIndexChunk)+`) AS c`, upto, hi).Scan(&next); err != nil {
		return 0, 0, t.d.classify(err)
	}
	if next <= upto {
		return upto, upto, nil
	}
	block := strconv.Itoa(auditBlock)
	for _, q := range []string{
		`INSERT INTO audit_agent_blocks (agent_id, block) SELECT DISTINCT agent_id, seq / ` + block + ` FROM audit_events
			WHERE seq > $1 AND seq <= $2 AND agent_id <> '' ORDER BY 1, 2 ON CONFLICT DO NOTHING`,
		`INSERT INTO audit_trace_blocks (trace_id, block) SELECT DISTINCT trace_id, seq / ` + block + ` FROM audit_events
			WHERE seq > $1 AND seq <= $2 AND trace_id <> '' ORDER BY 1, 2 ON CONFLICT DO NOTHING`,
		`UPDATE audit_index_state SET upto = $2 WHERE id = 1 AND upto = $1`,
	} {
		if _, err := t.q.ExecContext(ctx, q, upto, next); err != nil {
			return 0, 0, t.d.classify(err)
		}
	}
	return upto, next, nil
}

// AuditIndexState implements store.AuditIndexer.
func (r *reader) AuditIndexState(ctx context.Context) (int64, int64, error) {
	ctx, err := r.begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("store: audit index state: %w", err)
	}
	var indexed int64
	if err := r.q.QueryRowContext(ctx, `SELECT upto FROM audit_index_state WHERE id = 1`).Scan(&indexed); err != nil {
		return 0, 0, fmt.Errorf("store: audit index state: %w", r.d.classify(err))
	}
	head, _, err := r.head(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("store: audit index state: %w", err)
	}
	return indexed, head, nil
}
