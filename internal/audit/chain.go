package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// HashSize is the size of every hash in the chain (SHA-256).
const HashSize = sha256.Size

// ChainHash returns the hash of the event at seq with the canonical body:
// SHA-256(prevHash ‖ uint64 big-endian(seq) ‖ body). prevHash is the hash
// of event seq-1, or 32 zero bytes for seq 1.
func ChainHash(prevHash []byte, seq int64, body []byte) []byte {
	return appendChainHash(nil, prevHash, seq, body)
}

func appendChainHash(dst, prevHash []byte, seq int64, body []byte) []byte {
	h := sha256.New()
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], uint64(seq)) //nolint:gosec // seq ≥ 1
	h.Write(prevHash)
	h.Write(s[:])
	h.Write(body)
	return h.Sum(dst)
}

// Seal returns the record of ev at seq after prevHash. body must be
// ev.Canonical(); the index columns are copied from ev.
func Seal(ev Event, body []byte, seq int64, prevHash []byte) store.AuditRecord {
	rec := store.AuditRecord{
		Seq:      seq,
		ID:       ev.ID,
		Time:     ev.Time.UTC().Truncate(time.Microsecond),
		Family:   string(ev.Family),
		Type:     ev.Type,
		Outcome:  string(ev.Outcome),
		Body:     body,
		PrevHash: append([]byte(nil), prevHash...),
		Hash:     ChainHash(prevHash, seq, body),
	}
	if ev.Agent != nil {
		rec.AgentID = ev.Agent.ID
	}
	if ev.Actor != nil {
		rec.ActorID = ev.Actor.ID
	}
	if ev.Task != nil {
		rec.TraceID = ev.Task.TraceID
	}
	return rec
}

// Decisions an authorization event may carry.
const (
	DecisionAllow       = "allow"
	DecisionDeny        = "deny"
	DecisionConditional = "conditional"
)

// Validate reports whether ev can be recorded: a known family and outcome,
// a non-empty type, a decision (when present) of allow, deny or
// conditional, an id (when present) of the evt_ kind, and a non-zero
// time. Errors wrap ErrInvalidEvent.
func (ev *Event) Validate() error {
	switch ev.Family {
	case Issuance, Authentication, Authorization, Admin:
	default:
		return fmt.Errorf("%w: unknown family %q", ErrInvalidEvent, truncateForError(string(ev.Family)))
	}
	switch ev.Outcome {
	case Success, Failure:
	default:
		return fmt.Errorf("%w: unknown outcome %q", ErrInvalidEvent, truncateForError(string(ev.Outcome)))
	}
	if ev.Type == "" {
		return fmt.Errorf("%w: empty type", ErrInvalidEvent)
	}
	switch ev.Decision {
	case "", DecisionAllow, DecisionDeny, DecisionConditional:
	default:
		return fmt.Errorf("%w: unknown decision %q", ErrInvalidEvent, truncateForError(ev.Decision))
	}
	if ev.ID != "" {
		if err := recordid.Valid(recordid.Event, ev.ID); err != nil {
			return fmt.Errorf("%w: id %q: %w", ErrInvalidEvent, truncateForError(ev.ID), err)
		}
	}
	if ev.Time.IsZero() {
		return fmt.Errorf("%w: no time", ErrInvalidEvent)
	}
	return nil
}
