package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/agentid/agentid/internal/store"
)

// ErrTampered is matched (errors.Is) by every *ChainError.
var ErrTampered = errors.New("audit: trail does not verify")

// ChainError names the first sequence number at which a trail fails
// verification and what is wrong there.
type ChainError struct {
	Seq     int64
	Problem string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit: trail does not verify at seq %d: %s", e.Seq, e.Problem)
}

// Is reports whether target is ErrTampered.
func (e *ChainError) Is(target error) bool { return target == ErrTampered }

// Report is the outcome of a verification.
type Report struct {
	// Events and Checkpoints count what was checked.
	Events      int64
	Checkpoints int
	// FirstSeq is the first event's sequence number (1 unless the trail
	// was verified from the middle); HeadSeq and HeadHash are the last
	// event verified.
	FirstSeq int64
	HeadSeq  int64
	HeadHash []byte
	// LastCheckpointSeq is the highest checkpoint verified. Events after
	// it are chained but not covered by a signature: removing them is not
	// detectable.
	LastCheckpointSeq int64
	// PrunedThrough is the seq the trail was pruned through (ADR 0018):
	// the trail starts after it, a checkpoint at it vouches for the start
	// and an audit.pruned event records it. 0 when the trail starts at 1.
	PrunedThrough int64
	// OK is true when the whole trail verified.
	OK bool
	// FirstBadSeq is the lowest sequence number at which verification
	// failed (0 when OK), and Problem says what is wrong there.
	FirstBadSeq int64
	Problem     string
}

// VerifierParams configures a Verifier.
type VerifierParams struct {
	// Checkpoints to check, in any order.
	Checkpoints []store.Checkpoint
	// Keys are the checkpoint public keys by id (Sealed is ignored). A
	// checkpoint naming a key that is not here fails.
	Keys []store.AuditKey
	// PinnedKeys, when not empty, are the only public keys trusted: a
	// checkpoint whose key is not one of them fails, whatever Keys says.
	PinnedKeys []ed25519.PublicKey
	// Partial accepts a trail that starts after seq 1 (an export from a
	// time, or a pruned trail): the first event's prev_hash is then taken
	// on trust unless a checkpoint at the previous seq vouches for it, and
	// checkpoints before the first event are not checked.
	Partial bool
}

// Verifier checks a trail streamed in sequence order: Add each record, then
// Finish. The first problem stops it: Add returns a *ChainError (matching
// ErrTampered) for it and every later record, and Finish reports it. A
// Verifier is not safe for concurrent use.
type Verifier struct {
	p       VerifierParams
	cps     []store.Checkpoint // sorted by seq
	next    int                // first checkpoint not yet reached
	keys    map[string]ed25519.PublicKey
	started bool
	prevSeq int64
	prev    []byte
	report  Report
	err     *ChainError
	scratch []byte
	hashBuf []byte
	parser  parser // reused by checkIndex
	// prunedRecord is the highest through_seq of the audit.pruned events
	// seen, and prunedFirst whether the trail starts after a prune.
	prunedRecord int64
	prunedFirst  bool
}

// NewVerifier returns a Verifier for p. It never fails on bad data, which it
// reports through Add and Finish.
func NewVerifier(p VerifierParams) *Verifier {
	v := &Verifier{
		p:       p,
		cps:     slices.Clone(p.Checkpoints),
		keys:    make(map[string]ed25519.PublicKey, len(p.Keys)),
		prev:    make([]byte, HashSize),
		hashBuf: make([]byte, 0, HashSize),
	}
	slices.SortStableFunc(v.cps, func(a, b store.Checkpoint) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	for _, k := range p.Keys {
		if k.Algorithm != KeyAlgorithm || len(k.PublicKey) != ed25519.PublicKeySize {
			continue
		}
		if len(p.PinnedKeys) > 0 && !slices.ContainsFunc(p.PinnedKeys, func(pk ed25519.PublicKey) bool {
			return bytes.Equal(pk, k.PublicKey)
		}) {
			continue
		}
		v.keys[k.ID] = ed25519.PublicKey(k.PublicKey)
	}
	return v
}

func (v *Verifier) fail(seq int64, format string, args ...any) error {
	v.err = &ChainError{Seq: seq, Problem: fmt.Sprintf(format, args...)}
	return v.err
}

// Add checks the next record. It returns nil, or the *ChainError of the
// first problem found so far.
func (v *Verifier) Add(rec store.AuditRecord) error {
	if v.err != nil {
		return v.err
	}
	if !v.started {
		if err := v.start(rec); err != nil {
			return err
		}
	} else if rec.Seq != v.prevSeq+1 {
		if rec.Seq > v.prevSeq+1 {
			return v.fail(v.prevSeq+1, "%s missing: seq %d follows seq %d (rows deleted)", span(v.prevSeq+1, rec.Seq-1), rec.Seq, v.prevSeq)
		}
		return v.fail(v.prevSeq+1, "seq %d follows seq %d (out of order or duplicated)", rec.Seq, v.prevSeq)
	}
	if !bytes.Equal(rec.PrevHash, v.prev) {
		return v.fail(rec.Seq, "prev_hash is not the hash of seq %d (row inserted, replaced or reordered)", rec.Seq-1)
	}
	v.hashBuf = appendChainHash(v.hashBuf[:0], rec.PrevHash, rec.Seq, rec.Body)
	if !bytes.Equal(v.hashBuf, rec.Hash) {
		return v.fail(rec.Seq, "hash does not match the body (row edited)")
	}
	if problem := v.checkIndex(&rec); problem != "" {
		return v.fail(rec.Seq, "%s", problem)
	}
	if rec.Type == PrunedType {
		var b struct {
			Details struct {
				ThroughSeq int64 `json:"through_seq"`
			} `json:"details"`
		}
		if err := json.Unmarshal(rec.Body, &b); err != nil {
			return v.fail(rec.Seq, "%s event without a through_seq", PrunedType)
		}
		v.prunedRecord = max(v.prunedRecord, b.Details.ThroughSeq)
	}
	for v.next < len(v.cps) && v.cps[v.next].Seq == rec.Seq {
		if err := v.checkCheckpoint(v.cps[v.next], rec.Hash); err != nil {
			return err
		}
		v.next++
	}
	v.prevSeq = rec.Seq
	v.prev = append(v.prev[:0], rec.Hash...)
	v.report.Events++
	return nil
}

// start checks the first record's position and skips checkpoints before it.
func (v *Verifier) start(rec store.AuditRecord) error {
	v.started = true
	v.report.FirstSeq = rec.Seq
	if len(v.cps) > 0 && v.cps[0].Seq < 1 {
		return v.fail(1, "checkpoint at invalid seq %d", v.cps[0].Seq)
	}
	switch {
	case rec.Seq < 1:
		return v.fail(1, "event at invalid seq %d", rec.Seq)
	case rec.Seq == 1:
		// prev is 32 zero bytes
	case !v.p.Partial:
		// A pruned trail (ADR 0018) starts just after a checkpoint that
		// vouches for its first prev_hash; Finish checks that an
		// audit.pruned event records the pruning.
		for v.next < len(v.cps) && v.cps[v.next].Seq < rec.Seq-1 {
			v.next++
		}
		if v.next == len(v.cps) || v.cps[v.next].Seq != rec.Seq-1 {
			return v.fail(1, "trail starts at seq %d: %s missing", rec.Seq, span(1, rec.Seq-1))
		}
		for v.next < len(v.cps) && v.cps[v.next].Seq == rec.Seq-1 {
			if err := v.checkCheckpoint(v.cps[v.next], rec.PrevHash); err != nil {
				return v.fail(rec.Seq, "%s", v.err.Problem)
			}
			v.next++
		}
		v.prev = append(v.prev[:0], rec.PrevHash...)
		v.prunedFirst = true
		v.report.PrunedThrough = rec.Seq - 1
	default:
		// Partial: trust rec.PrevHash unless a checkpoint vouches for it.
		for v.next < len(v.cps) && v.cps[v.next].Seq < rec.Seq-1 {
			v.next++
		}
		v.prev = append(v.prev[:0], rec.PrevHash...)
		for v.next < len(v.cps) && v.cps[v.next].Seq == rec.Seq-1 {
			if err := v.checkCheckpoint(v.cps[v.next], rec.PrevHash); err != nil {
				return v.fail(rec.Seq, "%s", v.err.Problem)
			}
			v.next++
		}
	}
	v.prevSeq = rec.Seq - 1
	return nil
}

func (v *Verifier) checkCheckpoint(c store.Checkpoint, hash []byte) error {
	pub, ok := v.keys[c.KeyID]
	if !ok {
		return v.fail(c.Seq, "checkpoint at seq %d is signed by unknown or untrusted key %q", c.Seq, truncateForError(c.KeyID))
	}
	if !bytes.Equal(c.Hash, hash) {
		return v.fail(c.Seq, "checkpoint at seq %d does not match the event's hash", c.Seq)
	}
	if !ed25519.Verify(pub, CheckpointMessage(c.Seq, c.Hash, c.Time), c.Signature) {
		return v.fail(c.Seq, "checkpoint at seq %d has a bad signature", c.Seq)
	}
	v.report.Checkpoints++
	v.report.LastCheckpointSeq = c.Seq
	return nil
}

// Finish ends the stream and returns the report. Checkpoints beyond the last
// event mean events were removed from the end of the trail.
func (v *Verifier) Finish() Report {
	r := v.report
	if v.err == nil && v.next < len(v.cps) {
		c := v.cps[v.next]
		switch {
		case c.Seq < 1:
			_ = v.fail(1, "checkpoint at invalid seq %d", c.Seq)
		case !v.started && !v.p.Partial:
			_ = v.fail(1, "trail is empty but has a checkpoint at seq %d: %s missing", c.Seq, span(1, c.Seq))
		case v.started:
			_ = v.fail(v.prevSeq+1, "checkpoint at seq %d is beyond the head %d: %s missing (truncated)",
				c.Seq, v.prevSeq, span(v.prevSeq+1, c.Seq))
		}
	}
	if v.err == nil && v.prunedFirst && v.prunedRecord < r.PrunedThrough {
		_ = v.fail(1, "trail starts after the checkpoint at seq %d but no %s event records pruning through it: %s missing",
			r.PrunedThrough, PrunedType, span(1, r.PrunedThrough))
	}
	if v.started {
		r.HeadSeq = v.prevSeq
		r.HeadHash = slices.Clone(v.prev)
	}
	if v.err != nil {
		r.FirstBadSeq = v.err.Seq
		r.Problem = v.err.Problem
		return r
	}
	r.OK = true
	return r
}

// VerifyParams configures Verify.
type VerifyParams struct {
	// PinnedKeys, when not empty, are the only checkpoint public keys
	// trusted (see VerifierParams.PinnedKeys).
	PinnedKeys []ed25519.PublicKey
}

// Verify checks the whole trail in r: every event from seq 1 to the head,
// every checkpoint, against the checkpoint keys in r (restricted to
// p.PinnedKeys when given). Tampering is reported in the Report (OK false,
// FirstBadSeq, Problem), not as an error; the error is for failures to read
// r. Events appended while Verify runs may or may not be included.
func Verify(ctx context.Context, r store.AuditReader, p VerifyParams) (Report, error) {
	// Checkpoints first, then keys, then events: each checkpoint read is
	// signed by a key committed before it and covers an event committed
	// before it, so a concurrent writer cannot cause a false alarm.
	cps, err := r.ListCheckpoints(ctx, 0)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: list checkpoints: %w", err)
	}
	ks, err := r.ListAuditKeys(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: list keys: %w", err)
	}
	v := NewVerifier(VerifierParams{Checkpoints: cps, Keys: ks, PinnedKeys: p.PinnedKeys})
	if err := scanPipelined(ctx, r, v); err != nil && !errors.Is(err, ErrTampered) {
		return Report{}, fmt.Errorf("audit: verify: scan: %w", err)
	}
	return v.Finish(), nil
}

// verifyBatch is how many records the scanning goroutine hands over at once.
const verifyBatch = 256

// scanPipelined reads the trail in this goroutine and verifies it in
// another, so reading rows and hashing them use two cores. It returns the
// scan's error or the verifier's *ChainError.
func scanPipelined(ctx context.Context, r store.AuditReader, v *Verifier) error {
	batches := make(chan []store.AuditRecord, 4)
	free := make(chan []store.AuditRecord, 6)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range batches {
			if !stop.Load() {
				for _, rec := range b {
					if v.Add(rec) != nil {
						stop.Store(true)
						break
					}
				}
			}
			select {
			case free <- b[:0]:
			default:
			}
		}
	}()
	batch := make([]store.AuditRecord, 0, verifyBatch)
	err := r.ScanAudit(ctx, store.AuditQuery{}, func(rec store.AuditRecord) error {
		if stop.Load() {
			return ErrTampered
		}
		batch = append(batch, rec)
		if len(batch) == verifyBatch {
			batches <- batch
			select {
			case batch = <-free:
			default:
				batch = make([]store.AuditRecord, 0, verifyBatch)
			}
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		batches <- batch
	}
	close(batches)
	<-done
	if err != nil && !errors.Is(err, ErrTampered) {
		return err
	}
	if v.err != nil {
		return v.err
	}
	return nil
}

// span names the events from a to b.
func span(a, b int64) string {
	if a == b {
		return fmt.Sprintf("event %d is", a)
	}
	return fmt.Sprintf("events %d to %d are", a, b)
}
