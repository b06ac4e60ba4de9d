package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

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
// Members are looked up by their exact names (encoding/json would also
// match a struct field case-insensitively, so a body with "Type" but no
// "type" would get a type column its canonical form does not have).
func fillIndex(rec *store.AuditRecord) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body, &top); err != nil {
		return errors.New("body does not decode")
	}
	member := func(m map[string]json.RawMessage, key, name string) (string, error) {
		raw, ok := m[key]
		if !ok {
			return "", nil
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", fmt.Errorf("member %s has the wrong type", name)
		}
		return v, nil
	}
	nested := func(key, field string) (string, error) {
		raw, ok := top[key]
		if !ok || string(raw) == "null" {
			return "", nil
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return "", fmt.Errorf("member %s has the wrong type", key)
		}
		return member(m, field, key+"."+field)
	}
	var (
		vals [5]string
		err  error
	)
	for i, k := range []string{"id", "time", "family", "type", "outcome"} {
		if vals[i], err = member(top, k, k); err != nil {
			return err
		}
	}
	t, err := ParseTime(vals[1])
	if err != nil {
		return err
	}
	rec.ID, rec.Time, rec.Family, rec.Type, rec.Outcome = vals[0], t, vals[2], vals[3], vals[4]
	if rec.ActorID, err = nested("actor", "id"); err != nil {
		return err
	}
	if rec.AgentID, err = nested("agent", "id"); err != nil {
		return err
	}
	if rec.TraceID, err = nested("task", "trace_id"); err != nil {
		return err
	}
	return nil
}
