package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentid/agentid/internal/store"
)

// txn implements store.Tx for one fn of a batch.
type txn struct {
	reader
	broken error // a savepoint command failed: the batch must be abandoned
}

var _ store.Tx = (*txn)(nil)

// fnError carries an updater's or sealer's error through the write helpers
// so that it can be returned unchanged.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }
func (e *fnError) Unwrap() error { return e.err }

// unwrapFn returns a caller function's error unchanged and wraps any other
// error with the context.
func unwrapFn(err error, format string, args ...any) error {
	if fe, ok := errors.AsType[*fnError](err); ok {
		return fe.err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// write runs f inside a savepoint, so that a write that fails part-way
// leaves neither partial changes nor (on PostgreSQL) an aborted transaction.
// single says that f writes with one statement, which SQLite already
// undoes atomically when it fails, so no savepoint is needed there.
func (t *txn) write(ctx context.Context, single bool, f func(ctx context.Context) error) error {
	ctx, err := t.begin(ctx)
	if err != nil {
		return err
	}
	if t.broken != nil {
		return t.broken
	}
	if single && !t.d.StatementSavepoints {
		return f(ctx)
	}
	if _, err := t.q.ExecContext(ctx, "SAVEPOINT w"); err != nil {
		t.broken = fmt.Errorf("savepoint: %w", err)
		return t.broken
	}
	ferr := f(ctx)
	if ferr != nil {
		if _, err := t.q.ExecContext(ctx, "ROLLBACK TO SAVEPOINT w"); err != nil {
			t.broken = fmt.Errorf("rollback to savepoint: %w", err)
			return t.broken
		}
	}
	if _, err := t.q.ExecContext(ctx, "RELEASE SAVEPOINT w"); err != nil {
		t.broken = fmt.Errorf("release savepoint: %w", err)
		return t.broken
	}
	return ferr
}
