// Package sqlstore is the one implementation of store.Store over
// database/sql that the sqlite and postgres backends share. A Dialect says
// what differs between databases: how a write transaction begins, how the
// audit head is locked, how times are encoded and how driver errors map to
// the store sentinels. Queries use $1, $2 placeholders, which both
// modernc.org/sqlite and pgx accept.
//
// # Group commit
//
// Store.Update does not open a transaction per call. Concurrent calls are
// queued to a single committer goroutine that runs a batch of them (at most
// Params.MaxBatch) in one database transaction, each fn inside its own
// SAVEPOINT, and commits once, so the batch shares one fsync. Before a batch
// starts, the committer yields for as long as yielding brings more calls,
// so that the callers it has just answered can join it. A fn that
// returns an error is rolled back to its savepoint and the others in the
// batch are unaffected. If the shared commit fails, every fn of the batch
// that succeeded gets the commit error (a fn that failed keeps its own error:
// nothing of it was written either way).
//
// # Encoding
//
// Times are stored in UTC at microsecond precision (truncated); a zero
// time.Time is stored as NULL and read back as zero. Reads return UTC.
// String lists and label maps are stored as JSON text; an empty list or map
// is read back as nil. Agent owners live in a join table with a foreign key
// to owners, and are returned sorted and de-duplicated. A signing key's
// certificate chain is one blob: each DER certificate preceded by its
// length as a 4-byte big-endian integer (empty: no chain).
//
// # One-time identifiers and leases
//
// UseOnce and AcquireLease are each one INSERT … ON CONFLICT DO UPDATE …
// WHERE statement on a primary key, whose affected-row count is the answer:
// there is no read-then-write window, so they are atomic in one process and
// across processes sharing the database (on PostgreSQL a racer waits for the
// first writer's batch to commit, then sees its row).
// ConsumeJoinToken is likewise one UPDATE … WHERE used_at IS NULL AND
// expires_at > now whose affected-row count is the answer; on PostgreSQL
// a racer blocks on the winner's row lock and then re-evaluates the clause
// against the committed row.
//
// # Transactions and cancellation
//
// Inside Update, Tx methods check the caller's context before each statement
// but never interrupt a statement in flight, because the transaction is
// shared by the whole batch. A Tx write that fails leaves nothing behind and
// the transaction usable (writes of several statements run in a savepoint;
// on PostgreSQL, where a failed statement aborts the transaction, every
// write does), so fn may handle, for example, ErrAlreadyExists and go on.
// Every read outside Update is one statement (an agent's owners are
// aggregated into its row), so it sees one snapshot without a read
// transaction; on SQLite the read pool's statements are prepared once and
// reused.
//
// On PostgreSQL, replicas that update the same rows in different orders
// within their batches can deadlock; the database then fails one statement,
// which surfaces as an error wrapping store.ErrConflict for that fn only.
package sqlstore
