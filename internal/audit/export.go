package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// MaxExportLineSize bounds one export line, newline excluded. It leaves room
// for the largest body (MaxBodySize) and the chain members.
const MaxExportLineSize = MaxBodySize + 1024

// ErrBadExport is matched (errors.Is) by every error from ParseExportLine,
// ParseCheckpoint and ParsePublicKey: the input is not a well-formed audit
// wire shape.
var ErrBadExport = errors.New("audit: malformed export")

// AppendExportLine appends the export line of rec, with its trailing
// newline:
//
//	{"seq":N,<the body's members>,"prev_hash":"<hex>","hash":"<hex>"}\n
//
// The body's members are copied verbatim (they are canonical: sorted, no
// whitespace), so a line is the event of ../shared/design.md with seq first
// and the chain hashes last, in lowercase hex.
func AppendExportLine(dst []byte, rec store.AuditRecord) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, rec.Seq, 10)
	if body := bytes.TrimSpace(rec.Body); len(body) > 2 && body[0] == '{' && body[len(body)-1] == '}' {
		dst = append(dst, ',')
		dst = append(dst, body[1:len(body)-1]...)
	}
	dst = append(dst, `,"prev_hash":"`...)
	dst = hex.AppendEncode(dst, rec.PrevHash)
	dst = append(dst, `","hash":"`...)
	dst = hex.AppendEncode(dst, rec.Hash)
	return append(dst, "\"}\n"...)
}

// WriteExportLine writes the export line of rec (see AppendExportLine) in
// one Write call.
func WriteExportLine(w io.Writer, rec store.AuditRecord) error {
	if _, err := w.Write(AppendExportLine(make([]byte, 0, len(rec.Body)+192), rec)); err != nil {
		return fmt.Errorf("audit: write export line: %w", err)
	}
	return nil
}

// ParseExportLine parses one export line (trailing newline optional) into
// the record it was made from: Body is rebuilt as the canonical encoding of
// every member but seq, prev_hash and hash, and the indexed columns are read
// from it, so a Verifier accepts the record exactly when the original
// verified. It is meant for untrusted input: lines longer than
// MaxExportLineSize, invalid or non-canonicalisable JSON (duplicate keys,
// invalid UTF-8, nesting deeper than 32), a missing or malformed seq or
// hash, and members of the wrong type are errors matching ErrBadExport. It
// never panics.
func ParseExportLine(line []byte) (store.AuditRecord, error) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > MaxExportLineSize {
		return store.AuditRecord{}, fmt.Errorf("%w: line is %d bytes, limit %d", ErrBadExport, len(line), MaxExportLineSize)
	}
	var rec store.AuditRecord
	p := parser{data: line}
	p.ws()
	if p.pos >= len(line) || line[p.pos] != '{' {
		return rec, fmt.Errorf("%w: line is not a JSON object", ErrBadExport)
	}
	var haveSeq, havePrev, haveHash bool
	hook := func(key string) (bool, error) {
		switch key {
		case "seq":
			if haveSeq {
				return true, p.fail(`duplicate key "seq"`)
			}
			haveSeq = true
			n := scanNumber(line[p.pos:])
			seq, err := strconv.ParseInt(string(line[p.pos:p.pos+n]), 10, 64)
			if n == 0 || err != nil || seq < 1 {
				return true, p.fail("seq is not a positive integer")
			}
			p.pos += n
			rec.Seq = seq
		case "prev_hash", "hash":
			dst, seen := &rec.Hash, &haveHash
			if key == "prev_hash" {
				dst, seen = &rec.PrevHash, &havePrev
			}
			if *seen {
				return true, p.fail("duplicate key " + strconv.Quote(key))
			}
			*seen = true
			if p.pos >= len(line) || line[p.pos] != '"' {
				return true, p.fail(key + " is not a string")
			}
			s, err := p.str()
			if err != nil {
				return true, err
			}
			h, err := hex.DecodeString(s)
			if err != nil || len(h) != HashSize {
				return true, p.fail(key + " is not 64 hex digits")
			}
			*dst = h
		default:
			return false, nil
		}
		return true, nil
	}
	members, vals, err := p.members(hook)
	if err == nil {
		p.ws()
		if p.pos != len(line) {
			err = p.fail("data after the object")
		}
	}
	if err != nil {
		return store.AuditRecord{}, fmt.Errorf("%w: %w", ErrBadExport, err)
	}
	switch {
	case !haveSeq:
		return store.AuditRecord{}, fmt.Errorf("%w: no seq", ErrBadExport)
	case !havePrev:
		return store.AuditRecord{}, fmt.Errorf("%w: no prev_hash", ErrBadExport)
	case !haveHash:
		return store.AuditRecord{}, fmt.Errorf("%w: no hash", ErrBadExport)
	}
	rec.Body = appendMembers(make([]byte, 0, len(vals)+16*len(members)+2), members, vals)
	if err := fillIndex(&rec); err != nil {
		return store.AuditRecord{}, fmt.Errorf("%w: seq %d: %w", ErrBadExport, rec.Seq, err)
	}
	return rec, nil
}

// fillIndex sets the indexed columns of rec from its canonical body.
func fillIndex(rec *store.AuditRecord) error {
	type id struct {
		ID string `json:"id"`
	}
	var ix struct {
		ID      string `json:"id"`
		Time    string `json:"time"`
		Family  string `json:"family"`
		Type    string `json:"type"`
		Outcome string `json:"outcome"`
		Actor   *id    `json:"actor"`
		Agent   *id    `json:"agent"`
		Task    *struct {
			TraceID string `json:"trace_id"`
		} `json:"task"`
	}
	if err := json.Unmarshal(rec.Body, &ix); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("member %s has the wrong type", te.Field)
		}
		return errors.New("body does not decode")
	}
	t, err := ParseTime(ix.Time)
	if err != nil {
		return err
	}
	rec.ID, rec.Time, rec.Family, rec.Type, rec.Outcome = ix.ID, t, ix.Family, ix.Type, ix.Outcome
	if ix.Actor != nil {
		rec.ActorID = ix.Actor.ID
	}
	if ix.Agent != nil {
		rec.AgentID = ix.Agent.ID
	}
	if ix.Task != nil {
		rec.TraceID = ix.Task.TraceID
	}
	return nil
}

// maxWireObject bounds a checkpoint or public key object on the wire.
const maxWireObject = 4096

// CheckpointJSON is a checkpoint on the wire (GET /v1/audit/checkpoints).
type CheckpointJSON struct {
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`      // lowercase hex
	Time      string `json:"time"`      // TimeFormat
	KeyID     string `json:"key_id"`    // an AuditKey id
	Signature string `json:"signature"` // unpadded base64url
}

// NewCheckpointJSON returns the wire shape of c.
func NewCheckpointJSON(c store.Checkpoint) CheckpointJSON {
	return CheckpointJSON{
		Seq:       c.Seq,
		Hash:      hex.EncodeToString(c.Hash),
		Time:      FormatTime(c.Time),
		KeyID:     c.KeyID,
		Signature: base64.RawURLEncoding.EncodeToString(c.Signature),
	}
}

// Checkpoint decodes c. Errors match ErrBadExport.
func (c CheckpointJSON) Checkpoint() (store.Checkpoint, error) {
	h, err := hex.DecodeString(c.Hash)
	if err != nil || len(h) != HashSize {
		return store.Checkpoint{}, fmt.Errorf("%w: checkpoint hash is not 64 hex digits", ErrBadExport)
	}
	if c.Seq < 1 {
		return store.Checkpoint{}, fmt.Errorf("%w: checkpoint seq %d is not positive", ErrBadExport, c.Seq)
	}
	t, err := ParseTime(c.Time)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("%w: checkpoint %d: %w", ErrBadExport, c.Seq, err)
	}
	sig, err := decodeB64URL(c.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return store.Checkpoint{}, fmt.Errorf("%w: checkpoint %d: signature is not %d bytes of base64url", ErrBadExport, c.Seq, ed25519.SignatureSize)
	}
	if c.KeyID == "" {
		return store.Checkpoint{}, fmt.Errorf("%w: checkpoint %d: no key_id", ErrBadExport, c.Seq)
	}
	return store.Checkpoint{Seq: c.Seq, Hash: h, Time: t, KeyID: c.KeyID, Signature: sig}, nil
}

// ParseCheckpoint parses one CheckpointJSON object (at most 4 KiB; unknown
// members are ignored). Errors match ErrBadExport.
func ParseCheckpoint(data []byte) (store.Checkpoint, error) {
	var c CheckpointJSON
	if err := decodeWire(data, &c); err != nil {
		return store.Checkpoint{}, fmt.Errorf("%w: checkpoint: %w", ErrBadExport, err)
	}
	return c.Checkpoint()
}

// PublicKeyJSON is a checkpoint public key on the wire (GET
// /v1/audit/keys). It never carries the sealed private key.
type PublicKeyJSON struct {
	ID        string `json:"id"`
	Algorithm string `json:"algorithm"`  // "Ed25519"
	PublicKey string `json:"public_key"` // unpadded base64url of the 32-byte key
	CreatedAt string `json:"created_at"` // TimeFormat
}

// NewPublicKeyJSON returns the wire shape of k's public half.
func NewPublicKeyJSON(k store.AuditKey) PublicKeyJSON {
	return PublicKeyJSON{
		ID:        k.ID,
		Algorithm: k.Algorithm,
		PublicKey: base64.RawURLEncoding.EncodeToString(k.PublicKey),
		CreatedAt: FormatTime(k.CreatedAt),
	}
}

// AuditKey decodes k into an AuditKey without Sealed. Errors match
// ErrBadExport.
func (k PublicKeyJSON) AuditKey() (store.AuditKey, error) {
	if k.ID == "" {
		return store.AuditKey{}, fmt.Errorf("%w: key without id", ErrBadExport)
	}
	if k.Algorithm != KeyAlgorithm {
		return store.AuditKey{}, fmt.Errorf("%w: key %s: algorithm %q is not %s", ErrBadExport, truncateForError(k.ID), truncateForError(k.Algorithm), KeyAlgorithm)
	}
	pub, err := DecodePublicKey(k.PublicKey)
	if err != nil {
		return store.AuditKey{}, fmt.Errorf("key %s: %w", truncateForError(k.ID), err)
	}
	var created time.Time
	if k.CreatedAt != "" {
		if created, err = ParseTime(k.CreatedAt); err != nil {
			return store.AuditKey{}, fmt.Errorf("%w: key %s: %w", ErrBadExport, truncateForError(k.ID), err)
		}
	}
	return store.AuditKey{ID: k.ID, Algorithm: k.Algorithm, PublicKey: pub, CreatedAt: created}, nil
}

// ParsePublicKey parses one PublicKeyJSON object (at most 4 KiB; unknown
// members are ignored). Errors match ErrBadExport.
func ParsePublicKey(data []byte) (store.AuditKey, error) {
	var k PublicKeyJSON
	if err := decodeWire(data, &k); err != nil {
		return store.AuditKey{}, fmt.Errorf("%w: key: %w", ErrBadExport, err)
	}
	return k.AuditKey()
}

// DecodePublicKey decodes an Ed25519 public key given as base64url (the
// wire form) or standard base64, padded or not — for example a
// --public-key flag. Errors match ErrBadExport.
func DecodePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	b, err := decodeB64URL(s)
	if err != nil {
		b, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key is not %d bytes of base64url", ErrBadExport, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// EncodePublicKey returns pub as unpadded base64url, the form
// DecodePublicKey and PublicKeyJSON use.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return base64.RawURLEncoding.EncodeToString(pub)
}

func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func decodeWire(data []byte, v any) error {
	if len(data) > maxWireObject {
		return fmt.Errorf("object is %d bytes, limit %d", len(data), maxWireObject)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return errors.New("invalid JSON object")
	}
	if dec.More() {
		return errors.New("data after the object")
	}
	return nil
}
