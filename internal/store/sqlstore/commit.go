package sqlstore

import (
	"context"
	"fmt"
	"runtime"

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
		batch := s.gather(first)
		results := s.runBatch(batch)
		for i, r := range batch {
			r.done <- results[i]
		}
	}
}

// gather returns a batch of first and the requests queued behind it. When
// the queue is empty it yields the processor and looks again, for as long
// as yielding brought new requests. The callers the last batch answered are
// runnable then but may not have run yet; without the yield they would miss
// this batch and wait out its commit, splitting steady writers into two
// cohorts that each pay for their own fsync (measured: 16 instead of 31 of
// 32 writers per batch). A lone writer costs one yield.
func (s *Store) gather(first *request) []*request {
	batch := []*request{first}
	yieldedAt := 0 // len(batch) at the last yield
	for len(batch) < s.maxBatch {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		default:
			if len(batch) == yieldedAt {
				return batch
			}
			yieldedAt = len(batch)
			runtime.Gosched()
		}
	}
	return batch
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
	// A lone request needs no savepoint to keep its writes apart from
	// other requests': when it fails, the whole transaction is rolled back.
	// (A savepoint is not free: SQLite copies every page it first changes
	// inside one to the statement journal.)
	lone := len(batch) == 1
	for i, req := range batch {
		if err := req.ctx.Err(); err != nil {
			results[i] = result{err: err}
			continue
		}
		if !lone {
			if _, err := q.ExecContext(ctx, "SAVEPOINT f"); err != nil {
				return abort(fmt.Errorf("savepoint: %w", err))
			}
		}
		t := &txn{reader: reader{d: &s.d, q: q, tx: &txState{head: head}}}
		results[i] = call(req, t)
		t.tx.done.Store(true)
		if t.broken != nil {
			return abort(t.broken)
		}
		if lone {
			if !results[i].ok {
				_ = tx.Rollback()
				return results
			}
			continue
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
