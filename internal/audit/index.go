package audit

import (
	"bytes"

	"github.com/agentid/agentid/internal/store"
)

// checkIndex returns "" when the record's indexed columns agree with its
// body, or what disagrees. It reads the body without building it.
func (v *Verifier) checkIndex(rec *store.AuditRecord) string {
	p := &v.parser
	p.data, p.pos, p.depth = rec.Body, 0, 0
	if len(p.data) == 0 || p.data[0] != '{' {
		return "body is not a JSON object"
	}
	var seen uint16
	const (
		sID = 1 << iota
		sTime
		sFamily
		sType
		sOutcome
		sActor
		sAgent
		sTask
	)
	p.pos++
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		return "body is an empty object"
	}
	for {
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return "body is not canonical JSON"
		}
		key, ok := p.strBytes()
		if !ok || p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return "body is not canonical JSON"
		}
		p.pos++
		var (
			bit   uint16
			want  string
			col   string
			wantB []byte // for time, to avoid a string allocation
		)
		switch string(key) {
		case "id":
			bit, want, col = sID, rec.ID, "id"
		case "family":
			bit, want, col = sFamily, rec.Family, "family"
		case "type":
			bit, want, col = sType, rec.Type, "type"
		case "outcome":
			bit, want, col = sOutcome, rec.Outcome, "outcome"
		case "time":
			bit, col = sTime, "time"
			v.scratch = appendTime(v.scratch[:0], rec.Time)
			wantB = v.scratch
		case "actor":
			bit, want, col = sActor, rec.ActorID, "actor_id"
		case "agent":
			bit, want, col = sAgent, rec.AgentID, "agent_id"
		case "task":
			bit, want, col = sTask, rec.TraceID, "trace_id"
		}
		if bit != 0 && seen&bit != 0 {
			return "body has a duplicate key"
		}
		seen |= bit
		switch bit {
		case 0:
			if !p.skip() {
				return "body is not valid JSON"
			}
		case sActor, sAgent, sTask:
			sub := "id"
			if bit == sTask {
				sub = "trace_id"
			}
			got, ok := p.member(sub)
			if !ok {
				return "body is not valid JSON"
			}
			if string(got) != want {
				return "the " + col + " column does not match the body (row edited)"
			}
		default:
			if p.pos >= len(p.data) || p.data[p.pos] != '"' {
				return "body member " + col + " is not a string"
			}
			got, ok := p.strBytes()
			if !ok {
				return "body is not valid JSON"
			}
			if (wantB != nil && !bytes.Equal(got, wantB)) || (wantB == nil && string(got) != want) {
				return "the " + col + " column does not match the body (row edited)"
			}
		}
		if p.pos >= len(p.data) {
			return "body is not canonical JSON"
		}
		if p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.data[p.pos] != '}' || p.pos+1 != len(p.data) {
			return "body is not canonical JSON"
		}
		break
	}
	// Absent axes must have empty columns; required members must be there.
	switch {
	case seen&(sID|sTime|sFamily|sType|sOutcome) != sID|sTime|sFamily|sType|sOutcome:
		return "body lacks a required member (id, time, family, type, outcome)"
	case seen&sActor == 0 && rec.ActorID != "":
		return "the actor_id column does not match the body (row edited)"
	case seen&sAgent == 0 && rec.AgentID != "":
		return "the agent_id column does not match the body (row edited)"
	case seen&sTask == 0 && rec.TraceID != "":
		return "the trace_id column does not match the body (row edited)"
	}
	return ""
}

// member reads an object at p.pos (no whitespace, as in canonical JSON) and
// returns the string value of its member key (nil when absent). The result
// is valid until the next call.
func (p *parser) member(key string) ([]byte, bool) {
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return nil, false
	}
	p.pos++
	p.found = p.found[:0]
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return p.found, true
	}
	seen := false
	for {
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, false
		}
		k, ok := p.strBytes()
		if !ok || p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, false
		}
		p.pos++
		if string(k) == key {
			if seen || p.pos >= len(p.data) || p.data[p.pos] != '"' {
				return nil, false
			}
			seen = true
			s, ok := p.strBytes()
			if !ok {
				return nil, false
			}
			p.found = append(p.found, s...)
		} else if !p.skip() {
			return nil, false
		}
		if p.pos >= len(p.data) {
			return nil, false
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return p.found, true
		default:
			return nil, false
		}
	}
}

// strBytes reads a string at p.pos and returns its decoded bytes (see
// rawStr).
func (p *parser) strBytes() ([]byte, bool) {
	b, err := p.rawStr()
	return b, err == nil
}

// skipString moves past the string at p.pos without decoding it.
func (p *parser) skipString() bool {
	i := p.pos + 1
	for {
		j := bytes.IndexByte(p.data[i:], '"')
		if j < 0 {
			return false
		}
		i += j
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for k := i - 1; k > p.pos && p.data[k] == '\\'; k-- {
			n++
		}
		i++
		if n%2 == 0 {
			p.pos = i
			return true
		}
	}
}

// skip moves past one JSON value. It checks syntax only loosely (enough to
// find where the value ends in canonical JSON, never panicking on anything
// else): the index check reads a body whose hash already matched, so a
// malformed body was written by whoever computed that hash.
func (p *parser) skip() bool {
	if p.pos >= len(p.data) {
		return false
	}
	switch p.data[p.pos] {
	case '"':
		return p.skipString()
	case '{', '[':
		depth := 0
		for p.pos < len(p.data) {
			switch p.data[p.pos] {
			case '"':
				if !p.skipString() {
					return false
				}
				continue
			case '{', '[':
				depth++
				if depth > maxDepth {
					return false
				}
			case '}', ']':
				depth--
				if depth == 0 {
					p.pos++
					return true
				}
			}
			p.pos++
		}
		return false
	default: // number or literal
		start := p.pos
		for p.pos < len(p.data) {
			switch p.data[p.pos] {
			case ',', '}', ']':
				return p.pos > start
			}
			p.pos++
		}
		return false
	}
}
