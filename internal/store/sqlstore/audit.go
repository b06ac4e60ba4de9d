package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// scanBatch is how many audit records ScanAudit reads per query.
const scanBatch = 1000

const auditCols = `seq, id, time, family, type, outcome, agent_id, actor_id, trace_id, body, prev_hash, hash`

func scanAudit(s rowScanner) (store.AuditRecord, error) {
	var r store.AuditRecord
	err := s.Scan(&r.Seq, &r.ID, timeCol{&r.Time}, &r.Family, &r.Type, &r.Outcome, &r.AgentID,
		&r.ActorID, &r.TraceID, bytesCol{&r.Body}, bytesCol{&r.PrevHash}, bytesCol{&r.Hash})
	return r, err
}

// AuditHead implements store.AuditReader.
func (r *reader) AuditHead(ctx context.Context) (int64, []byte, error) {
	ctx, err := r.begin(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("store: audit head: %w", err)
	}
	seq, hash, err := r.head(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("store: audit head: %w", err)
	}
	return seq, hash, nil
}

func (r *reader) head(ctx context.Context) (int64, []byte, error) {
	var (
		seq  int64
		hash []byte
	)
	err := r.q.QueryRowContext(ctx, `SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`).
		Scan(&seq, bytesCol{&hash})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, r.d.classify(err)
	}
	return seq, hash, nil
}

// auditFilter is the WHERE clause and arguments of q's filters on events
// after seq after, with columns prefixed by p ("" or "e.").
func (r *reader) auditFilter(q store.AuditQuery, p string, after int64) ([]string, []any) {
	where := []string{p + "seq > $1"}
	args := []any{after}
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, p+strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if q.AgentID != "" {
		add("agent_id = $?", q.AgentID)
	}
	if q.Family != "" {
		add("family = $?", q.Family)
	}
	if q.TraceID != "" {
		add("trace_id = $?", q.TraceID)
	}
	if !q.Since.IsZero() {
		add("time >= $?", r.d.timeArg(q.Since))
	}
	if !q.Until.IsZero() {
		add("time < $?", r.d.timeArg(q.Until))
	}
	return where, args
}

// auditColsE is auditCols with the "e." prefix of the indexed query.
const auditColsE = `e.seq, e.id, e.time, e.family, e.type, e.outcome, e.agent_id, e.actor_id, e.trace_id, e.body, e.prev_hash, e.hash`

// auditBatch returns up to limit events matching q after seq after. A
// query by trace or agent reads the derived index (ADR 0017) for the
// events up to its high-water mark — the blocks of auditBlock sequence
// numbers that hold the key's events, whose events it filters — then scans
// the events after it; the mark is read first, and the index only grows,
// so the two parts meet exactly whatever the indexer does meanwhile.
func (r *reader) auditBatch(ctx context.Context, q store.AuditQuery, after int64, limit int) ([]store.AuditRecord, error) {
	after = max(after, q.AfterSeq)
	table, col, key := "", "", ""
	switch {
	case q.TraceID != "":
		table, col, key = "audit_trace_blocks", "trace_id", q.TraceID
	case q.AgentID != "":
		table, col, key = "audit_agent_blocks", "agent_id", q.AgentID
	}
	var out []store.AuditRecord
	if table != "" {
		var upto int64
		if err := r.q.QueryRowContext(ctx, `SELECT upto FROM audit_index_state WHERE id = 1`).Scan(&upto); err != nil {
			return nil, r.d.classify(err)
		}
		if after < upto {
			// where holds e.seq > after and the key's own condition on e.
			where, args := r.auditFilter(q, "e.", after)
			args = append(args, key, upto, after/auditBlock, upto/auditBlock)
			n := len(args)
			arg := func(i int) string { return "$" + strconv.Itoa(i) }
			block := strconv.Itoa(auditBlock)
			query := `SELECT ` + auditColsE + ` FROM ` + table + ` i JOIN audit_events e ON e.seq >= i.block * ` + block +
				` AND e.seq < (i.block + 1) * ` + block + ` WHERE i.` + col + ` = ` + arg(n-3) +
				` AND i.block >= ` + arg(n-1) + ` AND i.block <= ` + arg(n) + ` AND e.seq <= ` + arg(n-2) + ` AND ` +
				strings.Join(where, " AND ") + ` ORDER BY i.block, e.seq LIMIT ` + strconv.Itoa(limit)
			var err error
			if out, err = r.auditRows(ctx, query, args, out); err != nil {
				return nil, err
			}
			if len(out) == limit {
				return out, nil
			}
			after = upto
		}
	}
	where, args := r.auditFilter(q, "", after)
	query := `SELECT ` + auditCols + ` FROM audit_events WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY seq LIMIT ` + strconv.Itoa(limit-len(out))
	return r.auditRows(ctx, query, args, out)
}

// auditRows appends the events query returns to out.
func (r *reader) auditRows(ctx context.Context, query string, args []any, out []store.AuditRecord) ([]store.AuditRecord, error) {
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, r.d.classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		rec, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, r.d.classify(rows.Err())
}

// ListAudit implements store.AuditReader.
func (r *reader) ListAudit(ctx context.Context, q store.AuditQuery, p store.Page) ([]store.AuditRecord, string, error) {
	after, err := decodeSeqToken("audit", p.PageToken)
	if err != nil {
		return nil, "", err
	}
	ctx, err = r.begin(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("store: list audit: %w", err)
	}
	size := p.Size()
	out, err := r.auditBatch(ctx, q, after, size+1)
	if err != nil {
		return nil, "", fmt.Errorf("store: list audit: %w", err)
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = encodeToken("audit", strconv.FormatInt(out[size-1].Seq, 10))
	}
	return out, next, nil
}

// ScanAudit implements store.AuditReader. Records are read in batches of
// 1000; a record appended during the scan may or may not be seen.
func (r *reader) ScanAudit(ctx context.Context, q store.AuditQuery, fn func(store.AuditRecord) error) error {
	qctx, err := r.begin(ctx)
	if err != nil {
		return fmt.Errorf("store: scan audit: %w", err)
	}
	var after int64
	for {
		batch, err := r.auditBatch(qctx, q, after, scanBatch)
		if err != nil {
			return fmt.Errorf("store: scan audit: %w", err)
		}
		for _, rec := range batch {
			if err := fn(rec); err != nil {
				return err
			}
		}
		if len(batch) < scanBatch {
			return nil
		}
		after = batch[len(batch)-1].Seq
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// ListCheckpoints implements store.AuditReader.
func (r *reader) ListCheckpoints(ctx context.Context, afterSeq int64) ([]store.Checkpoint, error) {
	ctx, err := r.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: list checkpoints: %w", err)
	}
	rows, err := r.q.QueryContext(ctx, `SELECT seq, hash, time, key_id, signature
		FROM audit_checkpoints WHERE seq > $1 ORDER BY seq`, afterSeq)
	if err != nil {
		return nil, fmt.Errorf("store: list checkpoints: %w", r.d.classify(err))
	}
	defer rows.Close()
	var out []store.Checkpoint
	for rows.Next() {
		var c store.Checkpoint
		if err := rows.Scan(&c.Seq, bytesCol{&c.Hash}, timeCol{&c.Time}, &c.KeyID, bytesCol{&c.Signature}); err != nil {
			return nil, fmt.Errorf("store: list checkpoints: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list checkpoints: %w", r.d.classify(err))
	}
	return out, nil
}

// ListAuditKeys implements store.AuditReader. Keys are ordered by CreatedAt,
// then ID.
func (r *reader) ListAuditKeys(ctx context.Context) ([]store.AuditKey, error) {
	ctx, err := r.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: list audit keys: %w", err)
	}
	rows, err := r.q.QueryContext(ctx, `SELECT id, algorithm, public_key, sealed, created_at
		FROM audit_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list audit keys: %w", r.d.classify(err))
	}
	defer rows.Close()
	var out []store.AuditKey
	for rows.Next() {
		var k store.AuditKey
		if err := rows.Scan(&k.ID, &k.Algorithm, bytesCol{&k.PublicKey}, bytesCol{&k.Sealed}, timeCol{&k.CreatedAt}); err != nil {
			return nil, fmt.Errorf("store: list audit keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list audit keys: %w", r.d.classify(err))
	}
	return out, nil
}

// AppendAudit implements store.AuditWriter. A sealed record whose Seq or
// PrevHash differs from the ones seal was given, or without ID or Hash, is
// ErrInvalid; a taken ID is ErrAlreadyExists.
func (t *txn) AppendAudit(ctx context.Context, seal func(seq int64, prevHash []byte) (store.AuditRecord, error)) (store.AuditRecord, error) {
	var out store.AuditRecord
	err := t.write(ctx, true, func(ctx context.Context) error {
		h := &t.tx.head
		if !h.valid {
			if t.d.AuditLock != "" {
				if _, err := t.q.ExecContext(ctx, t.d.AuditLock); err != nil {
					return fmt.Errorf("lock audit head: %w", t.d.classify(err))
				}
			}
			seq, hash, err := t.head(ctx)
			if err != nil {
				return fmt.Errorf("read audit head: %w", err)
			}
			if seq == 0 {
				hash = make([]byte, 32) // the PrevHash of event 1
			}
			*h = auditHead{valid: true, seq: seq, hash: hash}
		}
		// Invalid until this append is known to have landed.
		seq, prev := h.seq, h.hash
		h.valid = false
		rec, err := seal(seq+1, bytes.Clone(prev))
		if err != nil {
			return &fnError{err}
		}
		switch {
		case rec.Seq != seq+1:
			return fmt.Errorf("%w: sealed record has seq %d, want %d", store.ErrInvalid, rec.Seq, seq+1)
		case !bytes.Equal(rec.PrevHash, prev):
			return fmt.Errorf("%w: sealed record %d has the wrong prev hash", store.ErrInvalid, rec.Seq)
		case rec.ID == "" || len(rec.Hash) == 0 || rec.Time.IsZero():
			return fmt.Errorf("%w: sealed record %d needs an id, a time and a hash", store.ErrInvalid, rec.Seq)
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO audit_events (`+auditCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			rec.Seq, rec.ID, t.d.timeArg(rec.Time), rec.Family, rec.Type, rec.Outcome, rec.AgentID,
			rec.ActorID, rec.TraceID, bytesArg(rec.Body), rec.PrevHash, rec.Hash); err != nil {
			return t.d.classify(err)
		}
		out = rec
		out.Time = rec.Time.UTC().Truncate(time.Microsecond)
		*h = auditHead{valid: true, seq: rec.Seq, hash: bytes.Clone(rec.Hash)}
		return nil
	})
	if err != nil {
		return store.AuditRecord{}, unwrapFn(err, "store: append audit")
	}
	return out, nil
}

// PutCheckpoint implements store.AuditWriter.
func (t *txn) PutCheckpoint(ctx context.Context, c store.Checkpoint) error {
	err := t.write(ctx, true, func(ctx context.Context) error {
		_, err := t.q.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING`,
			c.Seq, bytesArg(c.Hash), t.d.timeArg(c.Time), c.KeyID, bytesArg(c.Signature))
		return t.d.classify(err)
	})
	if err != nil {
		return fmt.Errorf("store: put checkpoint %d: %w", c.Seq, err)
	}
	return nil
}

// CreateAuditKey implements store.AuditWriter.
func (t *txn) CreateAuditKey(ctx context.Context, k store.AuditKey) error {
	err := t.write(ctx, true, func(ctx context.Context) error {
		if k.ID == "" {
			return fmt.Errorf("%w: audit key id is required", store.ErrInvalid)
		}
		_, err := t.q.ExecContext(ctx, `INSERT INTO audit_keys (id, algorithm, public_key, sealed, created_at)
			VALUES ($1, $2, $3, $4, $5)`,
			k.ID, k.Algorithm, bytesArg(k.PublicKey), bytesArg(k.Sealed), t.d.timeArg(k.CreatedAt))
		return t.d.classify(err)
	})
	if err != nil {
		return fmt.Errorf("store: create audit key %q: %w", k.ID, err)
	}
	return nil
}

// PruneAudit implements store.AuditWriter.
func (t *txn) PruneAudit(ctx context.Context, through int64) (int64, error) {
	var n int64
	err := t.write(ctx, false, func(ctx context.Context) error {
		var cp, head int64
		if err := t.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_checkpoints WHERE seq = $1`, through).Scan(&cp); err != nil {
			return t.d.classify(err)
		}
		head, _, err := t.head(ctx)
		if err != nil {
			return err
		}
		if cp == 0 || through >= head {
			return fmt.Errorf("%w: prune through seq %d: it must have a checkpoint and be below the head %d", store.ErrInvalid, through, head)
		}
		res, err := t.q.ExecContext(ctx, `DELETE FROM audit_events WHERE seq <= $1`, through)
		if err != nil {
			return t.d.classify(err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return t.d.classify(err)
		}
		// A block's row goes with its last event; a block partly pruned
		// keeps it (its remaining events are still found through it).
		for _, q := range []struct {
			sql string
			arg int64
		}{
			{`DELETE FROM audit_agent_blocks WHERE block < $1`, (through + 1) / auditBlock},
			{`DELETE FROM audit_trace_blocks WHERE block < $1`, (through + 1) / auditBlock},
			{`DELETE FROM audit_checkpoints WHERE seq < $1`, through},
		} {
			if _, err := t.q.ExecContext(ctx, q.sql, q.arg); err != nil {
				return t.d.classify(err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune audit through %d: %w", through, err)
	}
	return n, nil
}
