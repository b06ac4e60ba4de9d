package store

import (
	"context"
	"time"
)

// AuditRecord is one sealed audit event as stored. Body is the event's
// canonical encoding without seq, prev_hash and hash; the store treats it as
// opaque bytes. The indexed columns (Time, Family, Type, Outcome, AgentID,
// ActorID, TraceID) are copies of fields in Body kept for queries; the audit
// package's verifier checks that they agree with Body.
type AuditRecord struct {
	Seq      int64 // 1, 2, 3, … without gaps
	ID       string
	Time     time.Time
	Family   string
	Type     string
	Outcome  string
	AgentID  string // "" when the event has no agent axis
	ActorID  string
	TraceID  string
	Body     []byte
	PrevHash []byte // Hash of Seq-1; 32 zero bytes for Seq 1
	Hash     []byte
}

// AuditQuery narrows ListAudit and ScanAudit. Zero fields do not filter.
type AuditQuery struct {
	AfterSeq int64 // only events with Seq > AfterSeq
	AgentID  string
	Family   string
	TraceID  string
	Since    time.Time // Time >= Since
	Until    time.Time // Time < Until
}

// Checkpoint is a signature over the chain head at Seq.
type Checkpoint struct {
	Seq       int64
	Hash      []byte // the Hash of event Seq
	Time      time.Time
	KeyID     string
	Signature []byte
}

// AuditKey is a checkpoint signing key. The private key is stored only
// sealed (encrypted under the root key by the caller); the store never sees
// plaintext key material.
type AuditKey struct {
	ID        string
	Algorithm string // "Ed25519"
	PublicKey []byte
	Sealed    []byte // encrypted private key
	CreatedAt time.Time
}

// AuditReader reads the audit trail.
type AuditReader interface {
	// AuditHead returns the last sequence number and its hash; (0, nil) for
	// an empty trail.
	AuditHead(ctx context.Context) (seq int64, hash []byte, err error)
	// ListAudit returns events in sequence order and the next page token.
	ListAudit(ctx context.Context, q AuditQuery, p Page) ([]AuditRecord, string, error)
	// ScanAudit calls fn for every matching event in sequence order, reading
	// in batches so memory stays bounded. fn's error stops the scan and is
	// returned unchanged.
	ScanAudit(ctx context.Context, q AuditQuery, fn func(AuditRecord) error) error
	// ListCheckpoints returns every checkpoint with Seq > afterSeq in
	// sequence order.
	ListCheckpoints(ctx context.Context, afterSeq int64) ([]Checkpoint, error)
	// ListAuditKeys returns every checkpoint key, oldest first.
	ListAuditKeys(ctx context.Context) ([]AuditKey, error)
}

// AuditIndexer is implemented by stores whose agent and trace lookups of
// the audit trail go through indexes built after the fact, off the request
// path (ADR 0017). Queries are exact whatever the indexer's progress: events
// not yet indexed are found by a scan of the trail's tail, so an indexer
// that falls behind costs query time, never results.
type AuditIndexer interface {
	// IndexAudit indexes the events up to seq through (every event when
	// through <= 0), in bounded batches, and returns the highest indexed
	// seq. Several processes may index the same trail.
	IndexAudit(ctx context.Context, through int64) (int64, error)
	// AuditIndexState returns the highest indexed seq and the trail's head.
	AuditIndexState(ctx context.Context) (indexed, head int64, err error)
}

// AuditWriter appends to the audit trail.
type AuditWriter interface {
	// AppendAudit appends one event at the head of the chain. It calls seal
	// with the sequence number and previous hash the event will have;
	// seal returns the complete record (its Seq and PrevHash must be the
	// ones it was given). Appends are serialised across goroutines and, for
	// shared backends, across processes, so the chain never forks. seal's
	// error is returned unchanged.
	AppendAudit(ctx context.Context, seal func(seq int64, prevHash []byte) (AuditRecord, error)) (AuditRecord, error)
	// PutCheckpoint stores a checkpoint. A checkpoint for a Seq that already
	// has one is ignored (two replicas may sign the same head).
	PutCheckpoint(ctx context.Context, c Checkpoint) error
	// CreateAuditKey stores a key; ErrAlreadyExists when the id is taken.
	CreateAuditKey(ctx context.Context, k AuditKey) error
	// PruneAudit deletes the events with Seq <= through, the lookup
	// tables' rows that only they needed and the checkpoints with Seq <
	// through, and
	// returns how many events it deleted (ADR 0018). The checkpoint at
	// through must exist and through must be below the head: ErrInvalid
	// otherwise, with nothing deleted.
	PruneAudit(ctx context.Context, through int64) (int64, error)
}
