package audit

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// PrunedType is the type of the admin event that records a prune (ADR
// 0018); the verifier accepts a trail that starts after seq 1 only when
// one records pruning through the start.
const PrunedType = "audit.pruned"

// pruneChunk is about how many events one PruneAudit transaction deletes:
// each chunk ends at a checkpoint, so a trail interrupted between chunks
// still verifies.
const pruneChunk = 10_000

// PruneReport is the outcome of Prune.
type PruneReport struct {
	// ThroughSeq is the checkpoint the trail was pruned through; 0 when
	// there was nothing to prune.
	ThroughSeq int64 `json:"through_seq"`
	// Events is how many events were deleted.
	Events int64 `json:"events"`
	// EventID is the audit.pruned event's id ("" when nothing was
	// pruned).
	EventID string `json:"event_id,omitempty"`
}

// Prune deletes the events recorded before cutoff, up to the last
// checkpoint signed before it (ADR 0018): it records an audit.pruned event
// by o's actor first, then deletes oldest first in chunks that each end at
// a checkpoint. A prune interrupted between chunks is finished by the next
// one. The head and the events after the checkpoint stay.
func (r *Recorder) Prune(ctx context.Context, o Origin, cutoff time.Time) (PruneReport, error) {
	cps, err := r.store.ListCheckpoints(ctx, 0)
	if err != nil {
		return PruneReport{}, fmt.Errorf("audit: prune: %w", err)
	}
	head, _, err := r.store.AuditHead(ctx)
	if err != nil {
		return PruneReport{}, fmt.Errorf("audit: prune: %w", err)
	}
	first, err := r.firstSeq(ctx)
	if err != nil {
		return PruneReport{}, err
	}
	// The checkpoints a chunk may end at: after the first event, before
	// the head, signed before the cutoff.
	var ends []store.Checkpoint
	for _, c := range cps {
		if c.Seq >= first && c.Seq < head && c.Time.Before(cutoff) {
			ends = append(ends, c)
		}
	}
	if len(ends) == 0 {
		return PruneReport{}, nil
	}
	through := ends[len(ends)-1]
	ev := o.Event(Admin, PrunedType)
	ev.Details = map[string]any{
		"through_seq":  through.Seq,
		"through_hash": hex.EncodeToString(through.Hash),
		"cutoff":       cutoff.UTC().Format(time.RFC3339),
		"events":       through.Seq - first + 1,
	}
	rec, err := r.Record(ctx, ev)
	if err != nil {
		return PruneReport{}, fmt.Errorf("audit: prune: record: %w", err)
	}
	rep := PruneReport{ThroughSeq: through.Seq, EventID: rec.ID}
	start := first - 1
	for i := 0; i < len(ends); {
		// The last checkpoint within a chunk of start, or the next one.
		j := i
		for j+1 < len(ends) && ends[j+1].Seq-start <= pruneChunk {
			j++
		}
		end := ends[j].Seq
		err := r.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.PruneAudit(ctx, end)
			return err
		})
		if err != nil {
			return rep, fmt.Errorf("audit: prune through seq %d: %w", end, err)
		}
		start, i = end, j+1
	}
	rep.Events = through.Seq - first + 1
	return rep, nil
}

// firstSeq is the seq of the trail's first event (1 unless pruned).
func (r *Recorder) firstSeq(ctx context.Context) (int64, error) {
	l, _, err := r.store.ListAudit(ctx, store.AuditQuery{}, store.Page{PageSize: 1})
	if err != nil {
		return 0, fmt.Errorf("audit: prune: first event: %w", err)
	}
	if len(l) == 0 {
		return 1, nil
	}
	return l[0].Seq, nil
}
