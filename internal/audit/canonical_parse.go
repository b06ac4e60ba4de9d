package audit

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// CanonicalJSON re-encodes any JSON text canonically (see Event.Canonical).
// It is strict: duplicate object keys, invalid UTF-8, lone surrogates,
// trailing data, numbers out of float64 range and nesting deeper than 32
// are errors. It never panics.
func CanonicalJSON(data []byte) ([]byte, error) {
	p := parser{data: data}
	out, err := p.canonical(make([]byte, 0, len(data)))
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return out, nil
}

// parser is a strict RFC 8259 parser that writes canonical JSON.
type parser struct {
	data    []byte
	pos     int
	depth   int
	scratch []byte
	found   []byte // member's result
}

// syntaxError describes where JSON text went wrong.
type syntaxError struct {
	msg string
	pos int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("invalid JSON at byte %d: %s", e.pos, e.msg) }

func (p *parser) fail(msg string) error { return &syntaxError{msg: msg, pos: p.pos} }

func (p *parser) canonical(dst []byte) ([]byte, error) {
	p.ws()
	dst, err := p.value(dst)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.pos != len(p.data) {
		return nil, p.fail("data after the value")
	}
	return dst, nil
}

func (p *parser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(dst []byte) ([]byte, error) {
	if p.pos >= len(p.data) {
		return nil, p.fail("unexpected end")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(dst)
	case c == '[':
		return p.array(dst)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return appendString(dst, s), nil
	case c == 't':
		return p.literal(dst, "true")
	case c == 'f':
		return p.literal(dst, "false")
	case c == 'n':
		return p.literal(dst, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		num, err := p.number()
		if err != nil {
			return nil, err
		}
		return appendNumber(dst, num)
	default:
		return nil, p.fail(fmt.Sprintf("unexpected character %q", c))
	}
}

func (p *parser) literal(dst []byte, lit string) ([]byte, error) {
	if !bytes.HasPrefix(p.data[p.pos:], []byte(lit)) {
		return nil, p.fail("invalid literal")
	}
	p.pos += len(lit)
	return append(dst, lit...), nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.fail("nested too deeply")
	}
	return nil
}

func (p *parser) array(dst []byte) ([]byte, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // [
	dst = append(dst, '[')
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return append(dst, ']'), nil
	}
	for {
		p.ws()
		var err error
		if dst, err = p.value(dst); err != nil {
			return nil, err
		}
		p.ws()
		if p.pos >= len(p.data) {
			return nil, p.fail("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			dst = append(dst, ',')
		case ']':
			p.pos++
			p.depth--
			return append(dst, ']'), nil
		default:
			return nil, p.fail("expected ',' or ']'")
		}
	}
}

type member struct {
	key        string
	start, end int // value bytes in the object's buffer
}

func (p *parser) object(dst []byte) ([]byte, error) {
	members, vals, err := p.members(nil)
	if err != nil {
		return nil, err
	}
	return appendMembers(dst, members, vals), nil
}

// members parses an object at p.pos into its members, their canonical values
// in vals, sorted by key. hook, when not nil, is offered each key first; if
// it returns true it has consumed the value itself. Duplicate keys among the
// members are an error; hook must police its own keys.
func (p *parser) members(hook func(key string) (bool, error)) ([]member, []byte, error) {
	if err := p.enter(); err != nil {
		return nil, nil, err
	}
	p.pos++ // {
	p.ws()
	var (
		members []member
		vals    []byte
	)
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return nil, nil, nil
	}
	for {
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, nil, p.fail("expected a string key")
		}
		k, err := p.str()
		if err != nil {
			return nil, nil, err
		}
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, nil, p.fail("expected ':'")
		}
		p.pos++
		p.ws()
		handled := false
		if hook != nil {
			if handled, err = hook(k); err != nil {
				return nil, nil, err
			}
		}
		if !handled {
			start := len(vals)
			if vals, err = p.value(vals); err != nil {
				return nil, nil, err
			}
			members = append(members, member{key: k, start: start, end: len(vals)})
		}
		p.ws()
		if p.pos >= len(p.data) {
			return nil, nil, p.fail("unterminated object")
		}
		if p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.data[p.pos] != '}' {
			return nil, nil, p.fail("expected ',' or '}'")
		}
		p.pos++
		break
	}
	p.depth--
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(members); i++ {
		if members[i-1].key == members[i].key {
			return nil, nil, &syntaxError{msg: fmt.Sprintf("duplicate key %q", truncateForError(members[i].key)), pos: p.pos}
		}
	}
	return members, vals, nil
}

// appendMembers appends the object of sorted members.
func appendMembers(dst []byte, members []member, vals []byte) []byte {
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, vals[m.start:m.end]...)
	}
	return append(dst, '}')
}

// str decodes a JSON string at p.pos, strictly.
func (p *parser) str() (string, error) {
	b, err := p.rawStr()
	return string(b), err
}

// rawStr decodes a JSON string at p.pos, strictly. The result aliases
// p.data or p.scratch and is valid until the next call.
func (p *parser) rawStr() ([]byte, error) {
	p.pos++ // "
	start := p.pos
	// Fast path: no escapes, ASCII or valid UTF-8.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			p.pos++
			if !utf8.Valid(s) {
				return nil, p.fail("invalid UTF-8 in string")
			}
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	buf := append(p.scratch[:0], p.data[start:p.pos]...)
	for {
		if p.pos >= len(p.data) {
			return nil, p.fail("unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.scratch = buf
			if !utf8.Valid(buf) {
				return nil, p.fail("invalid UTF-8 in string")
			}
			return buf, nil
		case c < 0x20:
			return nil, p.fail("control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		p.pos++ // backslash
		if p.pos >= len(p.data) {
			return nil, p.fail("unterminated escape")
		}
		e := p.data[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, p.fail("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 || p.pos+1 >= len(p.data) || p.data[p.pos] != '\\' || p.data[p.pos+1] != 'u' {
					return nil, p.fail("lone surrogate in \\u escape")
				}
				p.pos += 2
				r2, ok := p.hex4()
				if !ok || r2 < 0xdc00 || r2 > 0xdfff {
					return nil, p.fail("lone surrogate in \\u escape")
				}
				r = utf16.DecodeRune(r, r2)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return nil, p.fail("invalid escape")
		}
	}
}

func (p *parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

// number returns the bytes of a JSON number at p.pos, checking its grammar.
func (p *parser) number() ([]byte, error) {
	start := p.pos
	n := scanNumber(p.data[p.pos:])
	if n == 0 {
		return nil, p.fail("invalid number")
	}
	p.pos += n
	return p.data[start:p.pos], nil
}
