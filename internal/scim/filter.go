package scim

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/agentid/agentid/internal/store"
)

// Query is a parsed filter: the owners it selects are those matching
// Filter, or none at all when Empty (a conjunction that contradicts
// itself, such as two different userNames).
type Query struct {
	Filter store.OwnerFilter
	Empty  bool
}

// ParseFilter parses a SCIM filter (RFC 7644 §3.4.2.2) over Users into a
// Query. The subset answered is a conjunction ("and", with parentheses)
// of equality tests ("eq") on userName (case-insensitive), externalId,
// id, active (true or false), emails, emails.value and
// emails[type eq "work"].value (or emails[primary eq true].value, the one
// email an owner has). Attribute names, operators and the core User
// schema URN prefix are case-insensitive. Anything else (or, not, the
// other operators, other attributes) is an *Error with scimType
// invalidFilter, so a client never gets an answer to a question it did not
// ask. The empty filter selects every User. Safe on any input.
func ParseFilter(s string) (Query, error) {
	var q Query
	err := parseFilter(s, func(p *filterParser, path string) (valueTest, error) {
		a, err := p.attrPath(&q, path)
		if err != nil {
			return nil, err
		}
		return func(v token) error { return a.match(&q, v) }, nil
	})
	return q, err
}

// valueTest adds the test "attribute eq v" of one resolved attribute to
// the query being built.
type valueTest func(v token) error

// parseFilter parses a conjunction of eq tests, resolving each attribute
// path with resolve, which may read further tokens (a value filter). The
// grammar, limits and errors are ParseFilter's; the attributes are the
// resource's.
func parseFilter(s string, resolve func(p *filterParser, path string) (valueTest, error)) error {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	if len(s) > MaxFilterLen {
		return badRequest(TypeInvalidFilter, "the filter is longer than %d bytes", MaxFilterLen)
	}
	p := &filterParser{src: s, resolve: resolve}
	if err := p.tokenize(); err != nil {
		return err
	}
	if err := p.conjunction(0); err != nil {
		return err
	}
	if t, ok := p.peek(); ok {
		return invalidFilter("unexpected %s", t)
	}
	return nil
}

func invalidFilter(format string, args ...any) *Error {
	return badRequest(TypeInvalidFilter, "filter: "+format, args...)
}

// maxFilterDepth bounds the nesting of parentheses.
const maxFilterDepth = 16

type tokenKind int

const (
	tokWord   tokenKind = iota // an attribute path, operator or literal
	tokString                  // a JSON string, decoded
	tokPunct                   // ( ) [ ]
)

type token struct {
	kind tokenKind
	text string
}

func (t token) String() string {
	switch t.kind {
	case tokString:
		return "string " + quote(t.text)
	case tokPunct:
		return quote(t.text)
	}
	return quote(t.text)
}

// quote quotes s for an error detail, cut to 64 bytes.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}

type filterParser struct {
	src  string
	toks []token
	pos  int
	// resolve turns an attribute path into the test of its value.
	resolve func(p *filterParser, path string) (valueTest, error)
}

// tokenize splits the filter into words, JSON strings and punctuation.
func (p *filterParser) tokenize() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			i++
		case '(', ')', '[', ']':
			p.toks = append(p.toks, token{tokPunct, string(c)})
			i++
		case '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			if j >= len(s) {
				return invalidFilter("unterminated string at byte %d", i)
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return invalidFilter("malformed string at byte %d", i)
			}
			p.toks = append(p.toks, token{tokString, v})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()[]\"", rune(s[j])) {
				j++
			}
			p.toks = append(p.toks, token{tokWord, s[i:j]})
			i = j
		}
	}
	return nil
}

func (p *filterParser) peek() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.pos], true
}

func (p *filterParser) next(what string) (token, error) {
	t, ok := p.peek()
	if !ok {
		return t, invalidFilter("%s expected at the end", what)
	}
	p.pos++
	return t, nil
}

func (p *filterParser) isWord(t token, w string) bool {
	return t.kind == tokWord && strings.EqualFold(t.text, w)
}

// conjunction parses term *("and" term).
func (p *filterParser) conjunction(depth int) error {
	for {
		if err := p.term(depth); err != nil {
			return err
		}
		t, ok := p.peek()
		switch {
		case !ok, t.kind == tokPunct && t.text == ")":
			return nil
		case p.isWord(t, "and"):
			p.pos++
		case p.isWord(t, "or"):
			return invalidFilter(`"or" is not supported; only "and" of "eq" tests`)
		default:
			return invalidFilter(`"and" expected, not %s`, t)
		}
	}
}

// term parses "(" conjunction ")" or an equality test.
func (p *filterParser) term(depth int) error {
	t, err := p.next("an attribute")
	if err != nil {
		return err
	}
	switch {
	case t.kind == tokPunct && t.text == "(":
		if depth >= maxFilterDepth {
			return invalidFilter("parentheses nest deeper than %d", maxFilterDepth)
		}
		if err := p.conjunction(depth + 1); err != nil {
			return err
		}
		if t, err := p.next(`")"`); err != nil || t.kind != tokPunct || t.text != ")" {
			return invalidFilter(`")" expected`)
		}
		return nil
	case p.isWord(t, "not"):
		return invalidFilter(`"not" is not supported; only "and" of "eq" tests`)
	case t.kind != tokWord:
		return invalidFilter("an attribute expected, not %s", t)
	}
	test, err := p.resolve(p, t.text)
	if err != nil {
		return err
	}
	op, err := p.next("an operator")
	if err != nil {
		return err
	}
	if op.kind != tokWord {
		return invalidFilter("an operator expected after %s, not %s", quote(t.text), op)
	}
	if !strings.EqualFold(op.text, "eq") {
		switch strings.ToLower(op.text) {
		case "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr":
			return invalidFilter("operator %q is not supported; only \"eq\"", strings.ToLower(op.text))
		}
		return invalidFilter("unknown operator %s", quote(op.text))
	}
	v, err := p.next("a value")
	if err != nil {
		return err
	}
	return test(v)
}

// filterAttr is an attribute a filter may test.
type filterAttr string

const (
	attrUserName   filterAttr = "userName"
	attrExternalID filterAttr = "externalId"
	attrID         filterAttr = "id"
	attrActive     filterAttr = "active"
	attrEmail      filterAttr = "emails.value"
)

// attrPath resolves an attribute path; for emails[…] it parses the value
// filter, which may make q empty (an owner's one email is the primary work
// email), and the ".value" that must follow it.
func (p *filterParser) attrPath(q *Query, path string) (filterAttr, error) {
	name, ok := stripURN(path, SchemaUser)
	if !ok {
		return "", invalidFilter("attribute %s is not one of this provider's", quote(path))
	}
	switch strings.ToLower(name) {
	case "username":
		return attrUserName, nil
	case "externalid":
		return attrExternalID, nil
	case "id":
		return attrID, nil
	case "active":
		return attrActive, nil
	case "emails.value":
		return attrEmail, nil
	case "emails":
		if t, ok := p.peek(); !ok || t.kind != tokPunct || t.text != "[" {
			return attrEmail, nil // emails eq "…" tests emails.value (RFC 7644 §3.4.2.2)
		}
		p.pos++
		if err := p.emailFilter(q); err != nil {
			return "", err
		}
		if t, err := p.next(`".value"`); err != nil || t.kind != tokWord || !strings.EqualFold(t.text, ".value") {
			return "", invalidFilter(`emails[…] must be followed by ".value" and an "eq" test`)
		}
		return attrEmail, nil
	}
	return "", invalidFilter("attribute %s cannot be filtered on; this provider answers userName, externalId, id, active and emails.value", quote(path))
}

// emailFilter parses the value filter of emails[…] after "[", through "]".
func (p *filterParser) emailFilter(q *Query) error {
	selects, err := p.emailTest()
	if err != nil {
		return err
	}
	if !selects {
		q.Empty = true // the one email an owner has is its primary work email
	}
	if t, err := p.next(`"]"`); err != nil || t.kind != tokPunct || t.text != "]" {
		return invalidFilter(`"]" expected`)
	}
	return nil
}

// emailTest parses type eq "…" or primary eq true|false, the tests on an
// email this provider answers, and reports whether an owner's email (the
// primary work one) passes it.
func (p *filterParser) emailTest() (bool, error) {
	const want = `emails[…] takes type eq "work" or primary eq true`
	var ts [3]token
	for i := range ts {
		t, err := p.next("a test of emails")
		if err != nil {
			return false, invalidFilter(want)
		}
		ts[i] = t
	}
	attr, op, v := ts[0], ts[1], ts[2]
	if op.kind != tokWord || !strings.EqualFold(op.text, "eq") {
		return false, invalidFilter(want)
	}
	switch {
	case p.isWord(attr, "type") && v.kind == tokString:
		return strings.EqualFold(v.text, "work"), nil
	case p.isWord(attr, "primary") && (p.isWord(v, "true") || p.isWord(v, "false")):
		return p.isWord(v, "true"), nil
	}
	return false, invalidFilter(want)
}

// emailSelector parses the value filter text of a PATCH path emails[…]
// (without the brackets) and reports whether it selects an owner's email.
func emailSelector(text string) (bool, error) {
	p := &filterParser{src: text}
	if err := p.tokenize(); err != nil {
		return false, err
	}
	selects, err := p.emailTest()
	if err != nil {
		return false, err
	}
	if t, ok := p.peek(); ok {
		return false, invalidFilter("unexpected %s", t)
	}
	return selects, nil
}

// stripURN removes the schema URN prefix (the resource's core schema) of
// an attribute path; ok is false for another URN.
func stripURN(path, schema string) (string, bool) {
	if len(path) > len(schema)+1 && strings.EqualFold(path[:len(schema)+1], schema+":") {
		return path[len(schema)+1:], true
	}
	return path, !strings.HasPrefix(strings.ToLower(path), "urn:")
}

// match adds attr eq v to q.
func (a filterAttr) match(q *Query, v token) error {
	if a == attrActive {
		if v.kind != tokWord || (!strings.EqualFold(v.text, "true") && !strings.EqualFold(v.text, "false")) {
			return invalidFilter("active compares with true or false, not %s", v)
		}
		st := store.OwnerDeactivated
		if strings.EqualFold(v.text, "true") {
			st = store.OwnerActive
		}
		setKey(q, &q.Filter.State, st)
		return nil
	}
	if v.kind != tokString {
		return invalidFilter("%s compares with a string, not %s", a, v)
	}
	switch a {
	case attrUserName:
		if v.text == "" {
			q.Empty = true // no owner has the empty user name
			return nil
		}
		if q.Filter.UserName != "" && store.FoldUserName(q.Filter.UserName) != store.FoldUserName(v.text) {
			q.Empty = true
		}
		q.Filter.UserName = v.text
	case attrExternalID:
		if v.text == "" {
			q.Empty = true
			return nil
		}
		setKey(q, &q.Filter.ExternalID, v.text)
	case attrID:
		if v.text == "" {
			q.Empty = true
			return nil
		}
		setKey(q, &q.Filter.ID, v.text)
	case attrEmail:
		if v.text == "" {
			q.Empty = true
			return nil
		}
		setKey(q, &q.Filter.Email, strings.ToLower(v.text))
	}
	return nil
}

// setKey sets *field to v, or marks q empty when it already holds another
// value.
func setKey[T ~string](q *Query, field *T, v T) {
	if *field != "" && *field != v {
		q.Empty = true
	}
	*field = v
}
