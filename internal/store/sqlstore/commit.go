package sqlstore

import (
	"context"
	"fmt"

	"github.com/agentid/agentid/internal/store"
)

// request is one queued Update call.
type request struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx store.Tx) error
	done chan result // buffered: the committer never blocks on a reply
}

type result struct {
	err      error
	ok       bool // fn ran and returned nil: its writes await the commit
	panicked bool
	panicVal any
}

// commitLoop is the committer goroutine: it takes every Update call waiting
// to be queued (up to maxBatch) and runs them as one batch.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	for {
		var first *request
		select {
		case first = <-s.queue:
		case <-s.closing:
			return
		}
		batch := []*request{first}
	gather:
		for len(batch) < s.maxBatch {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		results := s.runBatch(batch)
		for i, r := range batch {
			r.done <- results[i]
		}
	}
}

// runBatch runs every request's fn in one transaction, each in a savepoint,
// and commits once.
func (s *Store) runBatch(batch []*request) []result {
	ctx := context.Background() // the batch outlives any one caller
	results := make([]result, len(batch))
	failAll := func(err error) []result {
		for i := range results {
			if results[i].err == nil && !results[i].panicked {
				results[i] = result{err: err}
			}
		}
		return results
	}
	tx, err := s.write.BeginTx(ctx, s.d.TxOptions)
	if err != nil {
		return failAll(fmt.Errorf("store: update: begin: %w", s.d.classify(err)))
	}
	var q querier = tx
	if s.d.CacheStatements {
		c := newStmtCache(tx, s.prepared)
		defer s.prepareSeen(ctx, c.seen) // deferred calls run after the transaction ends
		q = c
	}
	abort := func(err error) []result {
		s.log.Error("store: batch aborted", "db", s.d.Name, "size", len(batch), "err", err)
		_ = tx.Rollback()
		return failAll(fmt.Errorf("store: update: batch aborted: %w", err))
	}
	var head auditHead // the batch's cached audit head, see auditHead
	for i, req := range batch {
		if err := req.ctx.Err(); err != nil {
			results[i] = result{err: err}
			continue
		}
		if _, err := q.ExecContext(ctx, "SAVEPOINT f"); err != nil {
			return abort(fmt.Errorf("savepoint: %w", err))
		}
		t := &txn{reader: reader{d: &s.d, q: q, tx: &txState{head: head}}}
		results[i] = call(req, t)
		t.tx.done.Store(true)
		if t.broken != nil {
			return abort(t.broken)
		}
		if !results[i].ok {
			if _, err := q.ExecContext(ctx, "ROLLBACK TO SAVEPOINT f"); err != nil {
				return abort(fmt.Errorf("rollback to savepoint: %w", err))
			}
		}
		if _, err := q.ExecContext(ctx, "RELEASE SAVEPOINT f"); err != nil {
			return abort(fmt.Errorf("release savepoint: %w", err))
		}
		if results[i].ok {
			head = t.tx.head // fn's appends (and any audit lock it took) now belong to the batch
		}
	}
	if err := tx.Commit(); err != nil {
		s.log.Error("store: commit failed", "db", s.d.Name, "size", len(batch), "err", err)
		_ = tx.Rollback()
		cerr := fmt.Errorf("store: update: commit: %w", s.d.classify(err))
		for i := range results {
			if results[i].ok {
				results[i] = result{err: cerr}
			}
		}
	}
	return results
}

// call runs one fn, turning a panic into a result.
func call(req *request, t *txn) (res result) {
	defer func() {
		if v := recover(); v != nil {
			res = result{panicked: true, panicVal: v}
		}
	}()
	if err := req.fn(req.ctx, t); err != nil {
		return result{err: err}
	}
	return result{ok: true}
}
