package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// DefaultMaxBatch is the batch size cap used when Params.MaxBatch is zero.
const DefaultMaxBatch = 256

// Params configures New.
type Params struct {
	// Dialect describes the database. Required.
	Dialect Dialect
	// Write is the pool the committer takes one connection from per batch.
	// For SQLite it should allow exactly one open connection. Required.
	Write *sql.DB
	// Read serves reads outside Update. It may be the same pool as Write.
	// Required.
	Read *sql.DB
	// SchemaVersion is the migration version this binary expects; Ping
	// fails when the database is at another one.
	SchemaVersion int
	// MaxBatch caps how many Update calls share one transaction; zero means
	// DefaultMaxBatch.
	MaxBatch int
	// Logger receives batch failures; nil discards them.
	Logger *slog.Logger
}

// Store implements store.Store over database/sql. It is safe for concurrent
// use. It owns the pools given to New and closes them in Close.
type Store struct {
	reader
	d        Dialect
	write    *sql.DB
	read     *sql.DB
	version  int
	maxBatch int
	log      *slog.Logger

	prepared map[string]*sql.Stmt // see stmtCache; committer only

	queue     chan *request
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

var _ store.Store = (*Store)(nil)

// New returns a Store over the pools in p and starts its committer. The
// schema must already be migrated (see Migrate). New does no I/O.
func New(p Params) (*Store, error) {
	if p.Write == nil || p.Read == nil {
		return nil, errors.New("sqlstore: Params.Write and Params.Read are required")
	}
	s := &Store{
		d:        p.Dialect,
		write:    p.Write,
		read:     p.Read,
		version:  p.SchemaVersion,
		maxBatch: p.MaxBatch,
		log:      p.Logger,
		prepared: map[string]*sql.Stmt{},
		queue:    make(chan *request),
		closing:  make(chan struct{}),
	}
	if s.maxBatch <= 0 {
		s.maxBatch = DefaultMaxBatch
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.reader = reader{d: &s.d, q: s.read}
	if s.d.CacheStatements {
		s.rs = newReadStmts(s.read)
		s.q = pooledReads{s.rs}
	}
	s.wg.Add(1)
	go s.commitLoop()
	return s, nil
}

// Update implements store.Store with group commit (see the package doc). A
// ctx cancelled before fn starts makes Update return ctx.Err() without
// running fn; once fn has started, Update waits for the batch's outcome so
// that its answer is never a guess. A panic in fn is re-raised in the
// caller's goroutine after fn's writes are rolled back. After Close, Update
// returns an error wrapping store.ErrClosed.
//
// An fn that fails with ErrRetry (a deadlock victim or a serialization
// failure on PostgreSQL) runs again in a later batch, up to MaxRetries
// times, as the Store contract allows (fn has no effects outside tx).
func (s *Store) Update(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	for n := 0; ; n++ {
		err := s.update(ctx, fn)
		if n == MaxRetries || !errors.Is(err, ErrRetry) {
			return err
		}
		s.log.Debug("store: update retried after a conflict", "db", s.d.Name, "retry", n+1, "err", err)
		select {
		case <-time.After(retryDelay(n + 1)):
		case <-ctx.Done():
			return err
		case <-s.closing:
			return err
		}
	}
}

// update is one attempt of Update.
func (s *Store) update(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &request{ctx: ctx, fn: fn, done: make(chan result, 1)}
	select {
	case s.queue <- req:
	case <-s.closing:
		return fmt.Errorf("store: update: %w", store.ErrClosed)
	case <-ctx.Done():
		return ctx.Err()
	}
	res := <-req.done
	if res.panicked {
		panic(res.panicVal)
	}
	return res.err
}

// Ping implements store.Store: the read pool answers and the schema is at
// the version this binary expects.
func (s *Store) Ping(ctx context.Context) error {
	select {
	case <-s.closing:
		return fmt.Errorf("store: ping: %w", store.ErrClosed)
	default:
	}
	v, err := schemaVersion(ctx, s.read)
	if err != nil {
		return fmt.Errorf("store: ping %s: %w", s.d.Name, err)
	}
	if v != s.version {
		return fmt.Errorf("store: ping %s: schema version %d, this binary expects %d", s.d.Name, v, s.version)
	}
	return nil
}

// Close implements store.Store: Update calls not yet in a batch fail with
// store.ErrClosed, the running batch finishes, then the pools are closed.
// Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.wg.Wait()
		var errs []error
		for _, st := range s.prepared {
			errs = append(errs, st.Close())
		}
		if s.rs != nil {
			errs = append(errs, s.rs.close())
		}
		errs = append(errs, s.write.Close())
		if s.read != s.write {
			errs = append(errs, s.read.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
