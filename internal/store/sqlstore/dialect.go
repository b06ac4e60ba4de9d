package sqlstore

import "database/sql"

// Dialect is what differs between the databases sqlstore supports. The
// backend packages build it; its fields are read-only once passed to New.
type Dialect struct {
	// Name is the database name used in errors and logs ("sqlite").
	Name string
	// Begin starts the migration transaction ("BEGIN IMMEDIATE").
	Begin string
	// TxOptions are passed to BeginTx for the transaction of a batch. The
	// write pool must begin transactions that exclude other writers where
	// the database needs it (SQLite: _txlock=immediate).
	TxOptions *sql.TxOptions
	// ForUpdate is appended to the SELECT that reads a row an Update* method
	// is about to change (" FOR UPDATE"), or empty.
	ForUpdate string
	// AuditLock is executed inside the transaction before the audit head is
	// read, and must hold until commit (a transaction-level advisory lock),
	// or is empty when Begin already excludes every other writer.
	AuditLock string
	// MigrationLock and MigrationUnlock bracket migrations on a session
	// (PostgreSQL advisory lock), or are empty when the migration
	// transaction itself is the lock.
	MigrationLock   string
	MigrationUnlock string
	// TimeMicros stores times as INTEGER unix microseconds; false passes
	// time.Time values to the driver (TIMESTAMPTZ).
	TimeMicros bool
	// StatementSavepoints wraps even single-statement Tx writes in a
	// savepoint, for databases where a failed statement aborts the whole
	// transaction (PostgreSQL). Writes of several statements always get one.
	StatementSavepoints bool
	// OwnerIDs is an SQL expression aggregating the owner ids of the agent
	// a.id into one comma-separated string (in any order), so that an agent
	// and its owners are one statement. SQLite: group_concat; PostgreSQL:
	// string_agg.
	OwnerIDs string
	// CacheStatements prepares each distinct statement once per batch
	// (SQLite, whose driver has no statement cache; pgx has its own).
	CacheStatements bool
	// Classify maps a driver error to store.ErrAlreadyExists (unique
	// violation), store.ErrInvalid (foreign key, not null or check
	// violation) or store.ErrConflict (serialization failure, deadlock), or
	// returns nil when the error is none of these.
	Classify func(err error) error
}
