package cli

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

type auditVerifyCmd struct {
	PublicKey []string `name:"public-key" sep:"none" help:"Trust only this checkpoint public key (Ed25519, 64 hex digits; base64url also accepted) instead of the keys the server lists. Repeat for several keys." placeholder:"HEX"`
}

// Help explains what verify checks and what it cannot.
func (c *auditVerifyCmd) Help() string {
	return "The check runs here, not on the server: verify fetches the checkpoint keys, the signed " +
		"checkpoints and the whole export, and recomputes every event's hash chain link and every " +
		"checkpoint signature. An edited, deleted, inserted or reordered event is reported with the first " +
		"bad sequence number and exit code 3. Events after the last checkpoint are chained but not yet " +
		"signed, so removing them from the end cannot be detected until the next checkpoint.\n\n" +
		"A compromised server could present a different key; pin the key you recorded at set-up with " +
		"--public-key to rule that out."
}

// verifyOutput is the JSON shape of `audit verify -o json`.
type verifyOutput struct {
	OK                bool   `json:"ok"`
	Events            int64  `json:"events"`
	Checkpoints       int    `json:"checkpoints"`
	FirstSeq          int64  `json:"first_seq,omitempty"`
	HeadSeq           int64  `json:"head_seq"`
	HeadHash          string `json:"head_hash,omitempty"`
	LastCheckpointSeq int64  `json:"last_checkpoint_seq"`
	PrunedThrough     int64  `json:"pruned_through,omitempty"`
	FirstBadSeq       int64  `json:"first_bad_seq,omitempty"`
	Problem           string `json:"problem,omitempty"`
	// Keys are the checkpoint keys trusted, to record and later pin with
	// --public-key.
	Keys []verifyKey `json:"keys"`
}

type verifyKey struct {
	ID        string `json:"id"`
	PublicKey string `json:"public_key"` // hex
}

func (c *auditVerifyCmd) Run(rc *runContext) error {
	pinned := make([]ed25519.PublicKey, 0, len(c.PublicKey))
	for _, s := range c.PublicKey {
		k, err := decodePublicKey(s)
		if err != nil {
			return &exitError{code: ExitUsage, msg: fmt.Sprintf("--public-key %q: %v", s, err)}
		}
		pinned = append(pinned, k)
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	// Checkpoints, then keys, then events: every checkpoint read is signed
	// by a key and covers an event that already exist, so events appended
	// meanwhile cannot cause a false alarm.
	wireCPs, err := cl.AuditCheckpoints(rc.ctx, 0)
	if err != nil {
		return fmt.Errorf("audit verify: fetch checkpoints: %w", err)
	}
	wireKeys, err := cl.AuditKeys(rc.ctx)
	if err != nil {
		return fmt.Errorf("audit verify: fetch checkpoint keys: %w", err)
	}
	cps := make([]store.Checkpoint, 0, len(wireCPs))
	for _, w := range wireCPs {
		cp, err := checkpointFromWire(w)
		if err != nil {
			return rc.verifyResult(audit.Report{FirstBadSeq: w.Seq, Problem: err.Error()}, nil)
		}
		cps = append(cps, cp)
	}
	keys := make([]store.AuditKey, 0, len(wireKeys))
	for _, w := range wireKeys {
		k, err := keyFromWire(w)
		if err != nil {
			// An unreadable key cannot vouch for anything: leave it out,
			// and checkpoints signed by it fail as signed by an unknown key.
			rc.notef("agentid: warning: ignoring checkpoint key %q: %v\n", w.ID, err)
			continue
		}
		keys = append(keys, k)
	}

	v := audit.NewVerifier(audit.VerifierParams{Checkpoints: cps, Keys: keys, PinnedKeys: pinned})
	var lastSeq int64
	var malformed *audit.ChainError
	err = cl.ExportAudit(rc.ctx, admin.AuditQuery{}, func(line []byte) error {
		rec, err := audit.ParseExportLine(line)
		if err != nil {
			malformed = &audit.ChainError{Seq: lastSeq + 1, Problem: fmt.Sprintf("malformed export line after seq %d: %v", lastSeq, err)}
			return malformed
		}
		lastSeq = rec.Seq
		return v.Add(rec)
	})
	if err != nil && !errors.Is(err, audit.ErrTampered) {
		return fmt.Errorf("audit verify: read export: %w", err)
	}
	rep := v.Finish()
	if malformed != nil {
		// The stream stopped at the malformed line, before anything the
		// verifier could have found after it (Finish's "truncated").
		rep.OK, rep.FirstBadSeq, rep.Problem = false, malformed.Seq, malformed.Problem
	}
	return rc.verifyResult(rep, trusted(keys, pinned))
}

// trusted returns the keys the verifier trusts: the server's, restricted to
// the pinned ones when any are given.
func trusted(keys []store.AuditKey, pinned []ed25519.PublicKey) []verifyKey {
	out := []verifyKey{}
	for _, k := range keys {
		if len(pinned) > 0 && !slices.ContainsFunc(pinned, func(p ed25519.PublicKey) bool { return p.Equal(ed25519.PublicKey(k.PublicKey)) }) {
			continue
		}
		out = append(out, verifyKey{ID: k.ID, PublicKey: hex.EncodeToString(k.PublicKey)})
	}
	return out
}

// verifyResult prints the report and returns the exit error of a trail that
// does not verify.
func (rc *runContext) verifyResult(rep audit.Report, keys []verifyKey) error {
	out := verifyOutput{
		OK: rep.OK, Events: rep.Events, Checkpoints: rep.Checkpoints, FirstSeq: rep.FirstSeq,
		HeadSeq: rep.HeadSeq, LastCheckpointSeq: rep.LastCheckpointSeq, PrunedThrough: rep.PrunedThrough,
		FirstBadSeq: rep.FirstBadSeq, Problem: rep.Problem, Keys: keys,
	}
	if out.Keys == nil {
		out.Keys = []verifyKey{}
	}
	if len(rep.HeadHash) > 0 {
		out.HeadHash = hex.EncodeToString(rep.HeadHash)
	}
	if rc.jsonOutput() {
		if err := rc.printJSON(out); err != nil {
			return err
		}
	}
	if !rep.OK {
		return &exitError{code: ExitTampered, msg: fmt.Sprintf(
			"audit trail does NOT verify: first bad seq %d: %s (%d events verified before it)",
			rep.FirstBadSeq, rep.Problem, rep.Events)}
	}
	if rc.jsonOutput() {
		return nil
	}
	if rep.Events == 0 {
		rc.printf("Audit trail intact: no events yet.\n")
		return nil
	}
	var signed string
	switch n := rep.HeadSeq - rep.LastCheckpointSeq; {
	case rep.Checkpoints == 0:
		signed = "none yet: every event is chained but not yet signed"
	case n > 0:
		signed = fmt.Sprintf("last signed at seq %d, %d events after it not yet signed", rep.LastCheckpointSeq, n)
	default:
		signed = fmt.Sprintf("last signed at seq %d", rep.LastCheckpointSeq)
	}
	rc.printf("Audit trail intact: %d events, %d checkpoints (%s), head seq %d hash %s.\n",
		rep.Events, rep.Checkpoints, signed, rep.HeadSeq, out.HeadHash)
	if rep.PrunedThrough > 0 {
		rc.printf("Pruned through seq %d: the trail starts at the checkpoint signed there, and an %s event records the prune.\n",
			rep.PrunedThrough, audit.PrunedType)
	}
	return nil
}

// checkpointFromWire converts the admin API's checkpoint (hex hash and
// signature) to the verifier's.
func checkpointFromWire(w admin.AuditCheckpoint) (store.Checkpoint, error) {
	h, err := hex.DecodeString(w.Hash)
	if err != nil || len(h) != audit.HashSize {
		return store.Checkpoint{}, fmt.Errorf("checkpoint at seq %d: hash is not %d hex digits", w.Seq, 2*audit.HashSize)
	}
	sig, err := decodeFixed(w.Signature, ed25519.SignatureSize)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("checkpoint at seq %d: signature: %w", w.Seq, err)
	}
	return store.Checkpoint{Seq: w.Seq, Hash: h, Time: w.Time, KeyID: w.KeyID, Signature: sig}, nil
}

// keyFromWire converts the admin API's checkpoint key (hex public key) to
// the verifier's.
func keyFromWire(w admin.AuditKey) (store.AuditKey, error) {
	pub, err := decodePublicKey(w.PublicKey)
	if err != nil {
		return store.AuditKey{}, err
	}
	return store.AuditKey{ID: w.ID, Algorithm: w.Algorithm, PublicKey: pub, CreatedAt: w.CreatedAt}, nil
}

// decodePublicKey decodes an Ed25519 public key: 64 hex digits (the admin
// API's form) or base64url / base64 (a key recorded in another tool).
func decodePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeFixed(s, ed25519.PublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("not an Ed25519 public key: %w", err)
	}
	return ed25519.PublicKey(b), nil
}

// decodeFixed decodes n bytes given as hex or, failing that, as base64url
// or standard base64 (padded or not). The lengths of the encodings of n
// bytes differ, so the forms cannot be confused.
func decodeFixed(s string, n int) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*n {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	unpadded := strings.TrimRight(s, "=")
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(unpadded); err == nil && len(b) == n {
			return b, nil
		}
	}
	return nil, fmt.Errorf("want %d bytes as %d hex digits", n, 2*n)
}
