package sqlstore

import (
	"context"
	"sync/atomic"

	"github.com/agentid/agentid/internal/store"
)

// reader implements store.Reader over a querier: the reader pool outside a
// transaction, the batch connection inside one.
type reader struct {
	d  *Dialect
	q  querier
	tx *txState   // nil outside Update
	rs *readStmts // statements prepared on the read pool; nil: none
}

// txState is shared by the methods of one fn's transaction.
type txState struct {
	done atomic.Bool // fn returned: the Tx must not be used any more

	// head is this fn's view of the audit chain head, seeded from the
	// batch's cache and handed back to it only when fn's savepoint is
	// released (see auditHead).
	head auditHead
}

// auditHead caches the audit chain head inside one batch transaction, so
// that appends after the first neither re-read the head nor re-take the
// audit lock. It is valid only while this transaction holds the lock and
// nothing it covers was rolled back: a rolled-back fn never publishes its
// view, and a failed append invalidates it.
type auditHead struct {
	valid bool
	seq   int64
	hash  []byte
}

// begin checks that the call may proceed and returns the context for its
// statements. Inside a transaction, cancellation is checked here, between
// statements, and never interrupts one, because the connection is shared
// by the batch.
func (r *reader) begin(ctx context.Context) (context.Context, error) {
	if r.tx == nil {
		return ctx, nil
	}
	if r.tx.done.Load() {
		return nil, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

var _ store.Reader = (*reader)(nil)
