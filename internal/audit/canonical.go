package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// TimeFormat is the layout of every time in the canonical encoding and in
// the audit wire shapes: RFC 3339 in UTC with exactly six fractional digits
// (microseconds), for example "2026-03-01T12:00:00.000000Z". The fixed width
// makes encoded times sort as they compare.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// FormatTime returns t in TimeFormat, converted to UTC and truncated to the
// microsecond.
func FormatTime(t time.Time) string {
	return string(appendTime(nil, t))
}

func appendTime(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, TimeFormat)
}

// ParseTime parses a time in TimeFormat exactly (UTC, six fractional
// digits). The result is in UTC.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(TimeFormat, s)
	if err != nil || len(s) != len(TimeFormat) {
		return time.Time{}, fmt.Errorf("audit: time %q is not in the form %s", truncateForError(s), TimeFormat)
	}
	return t.UTC(), nil
}

// Canonical returns the canonical encoding of ev, the Body the hash chain
// covers: JSON as encoding/json would produce from ev's tags, with
//
//   - object keys sorted by their UTF-8 bytes at every level, no duplicates;
//   - no insignificant whitespace;
//   - strings escaped minimally: only '"', '\\' and control characters
//     below U+0020 (as \b \f \n \r \t or \u00xx), nothing else — no HTML
//     escaping; invalid UTF-8 is replaced by U+FFFD;
//   - integers kept as their decimal digits, of any size; other numbers as
//     encoding/json formats a float64 (shortest round-trip, exponent form
//     below 1e-6 and from 1e21); NaN and infinities are refused;
//   - ev.Time in TimeFormat (UTC, microseconds).
//
// Details values may be of any type encoding/json accepts. The encoding is
// deterministic and idempotent: re-canonicalising it (CanonicalJSON) gives
// the same bytes. An error wraps ErrInvalidEvent.
func (ev *Event) Canonical() ([]byte, error) {
	return ev.appendCanonical(make([]byte, 0, 512))
}

// appendCanonical writes the members of Event in sorted key order. It must
// agree with canonicalising json.Marshal(ev) (see the equivalence test).
func (ev *Event) appendCanonical(b []byte) ([]byte, error) {
	b = append(b, '{')
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
	}
	str := func(k, v string) {
		key(k)
		b = appendString(b, v)
	}
	optStr := func(k, v string) {
		if v != "" {
			str(k, v)
		}
	}
	strs := func(k string, v []string) {
		if len(v) == 0 {
			return
		}
		key(k)
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	// object writes member k as a nested object whose members fields
	// writes, in key order.
	object := func(k string, fields func()) {
		key(k)
		b = append(b, '{')
		first = true
		fields()
		b = append(b, '}')
		first = false
	}
	// Keys in byte order: actor agent decision delegation details family
	// id instance outcome reason source task time type.
	if a := ev.Actor; a != nil {
		object("actor", func() {
			str("id", a.ID)
			str("type", a.Type)
		})
	}
	if a := ev.Agent; a != nil {
		object("agent", func() {
			str("id", a.ID)
			optStr("name", a.Name)
			optStr("spiffe_id", a.SPIFFEID)
		})
	}
	optStr("decision", ev.Decision)
	if d := ev.Delegation; d != nil {
		object("delegation", func() {
			strs("actors", d.Actors)
			optStr("grant_id", d.GrantID)
			optStr("subject", d.Subject)
		})
	}
	if len(ev.Details) > 0 {
		key("details")
		var err error
		if b, err = appendCanonicalValue(b, ev.Details, 0); err != nil {
			return nil, fmt.Errorf("%w: details: %w", ErrInvalidEvent, err)
		}
	}
	str("family", string(ev.Family))
	str("id", ev.ID)
	if in := ev.Instance; in != nil {
		object("instance", func() {
			str("id", in.ID)
			optStr("method", in.Method)
		})
	}
	str("outcome", string(ev.Outcome))
	optStr("reason", ev.Reason)
	if s := ev.Source; s != nil {
		object("source", func() {
			optStr("ip", s.IP)
			optStr("node", s.Node)
			optStr("user_agent", s.UserAgent)
		})
	}
	if t := ev.Task; t != nil {
		object("task", func() {
			strs("action_classes", t.ActionClasses)
			optStr("reasoning_ref", t.ReasoningRef)
			optStr("scope", t.Scope)
			optStr("trace_id", t.TraceID)
			optStr("txn", t.Txn)
		})
	}
	key("time")
	b = append(b, '"')
	b = appendTime(b, ev.Time)
	b = append(b, '"')
	str("type", ev.Type)
	return append(b, '}'), nil
}

// maxDepth bounds the nesting of arrays and objects in canonical JSON.
const maxDepth = 32

// appendCanonicalValue appends the canonical JSON of a Go value: fast paths
// for the types JSON decoding produces, encoding/json for the rest.
func appendCanonicalValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errors.New("nested too deeply")
	}
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		return appendString(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case float64:
		return appendFloat(b, v)
	case json.Number:
		return appendNumber(b, []byte(v))
	case []string:
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), nil
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendCanonicalValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		return appendCanonicalObject(b, v, func(b []byte, e any) ([]byte, error) {
			return appendCanonicalValue(b, e, depth+1)
		})
	case map[string]string:
		return appendCanonicalObject(b, v, func(b []byte, e string) ([]byte, error) {
			return appendString(b, e), nil
		})
	default:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
		p := parser{data: bytes.TrimSuffix(buf.Bytes(), []byte("\n")), depth: depth}
		return p.canonical(b)
	}
}

// appendCanonicalObject appends m as a JSON object with its keys sorted by
// their UTF-8 bytes; value appends one member's value.
func appendCanonicalObject[V any](b []byte, m map[string]V, value func([]byte, V) ([]byte, error)) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !utf8.ValidString(k) {
			return nil, errors.New("object key is not valid UTF-8")
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = value(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// scanNumber returns the length of the JSON number at the start of b, or 0.
func scanNumber(b []byte) int {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - j
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return 0
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return 0
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0
		}
	}
	return i
}

// appendNumber appends a JSON number canonically: integers verbatim, other
// numbers through float64.
func appendNumber(dst, num []byte) ([]byte, error) {
	if n := scanNumber(num); n == 0 || n != len(num) {
		return nil, fmt.Errorf("invalid number %q", truncateForError(string(num)))
	}
	if !bytes.ContainsAny(num, ".eE") {
		return append(dst, num...), nil
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return nil, fmt.Errorf("number %q out of range", truncateForError(string(num)))
	}
	return appendFloat(dst, f)
}

// appendFloat formats f as encoding/json does (ES6 number to string).
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, errors.New("NaN or infinite number")
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a canonical JSON string.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// truncateForError shortens untrusted text quoted in an error.
func truncateForError(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
