package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/ast"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// Annotations agentid gives a meaning to; others are refused.
const (
	annotationID         = "id"
	annotationDecision   = "decision"
	annotationObligation = "obligation"
	annotationReason     = "reason"
	// ObligationApproval is the obligation of a conditional permit
	// without @obligation: a human approval.
	ObligationApproval = "approval"
	// MaxReasonLen bounds a @reason.
	MaxReasonLen = 256
)

var (
	policyIDPattern   = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	obligationPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,63}$`)
	// cedar-go's parse errors end in "at <file>:<line>:<column> <detail>".
	parsePosition = regexp.MustCompile(`at [^\s]*?:(\d+):(\d+):? ?(.*)$`)
)

// Problem is one thing wrong with a policy document, at a line and column
// (1-based; 0 when unknown), in the policy with the id (when known).
type Problem struct {
	Line     int
	Column   int
	PolicyID string
	Message  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d:%d: ", p.Line, p.Column)
	}
	if p.PolicyID != "" {
		fmt.Fprintf(&b, "policy %q: ", p.PolicyID)
	}
	b.WriteString(p.Message)
	return b.String()
}

// PolicyError is a policy document that does not parse or validate. It
// wraps ErrInvalid; its message lists every problem ("line:column:
// message") and is safe to show to the client.
type PolicyError struct {
	Problems []Problem
}

func (e *PolicyError) Error() string { return "policy: " + e.Detail() }

// Detail is the message without the package prefix.
func (e *PolicyError) Detail() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid policy: " + strings.Join(parts, "; ")
}

// Unwrap returns ErrInvalid.
func (e *PolicyError) Unwrap() error { return ErrInvalid }

// meta is what agentid reads from a policy's annotations.
type meta struct {
	conditional bool
	obligation  string
	reason      string
}

// parsed is a policy document parsed and validated.
type parsed struct {
	set  *cedar.PolicySet
	meta map[cedar.PolicyID]meta
	ids  []string // sorted
	text map[string]string
	// open holds, for the policies whose open principal scope was read as
	// "principal is Agent", the policy as written: the index evaluates it
	// for agents only, where the two agree, without the type check.
	open map[cedar.PolicyID]*cedar.Policy
}

// parse parses a Cedar document, checks agentid's annotations, and
// validates every policy against the registry's schema. All problems are
// reported at once.
func parse(text []byte, reg *registry) (*parsed, error) {
	switch {
	case len(text) == 0:
		return nil, &PolicyError{[]Problem{{Message: "the document is empty"}}}
	case len(text) > MaxPolicyBytes:
		return nil, &PolicyError{[]Problem{{Message: fmt.Sprintf("the document exceeds %d bytes", MaxPolicyBytes)}}}
	}
	list, err := parseList(string(text))
	if err != nil {
		return nil, err
	}
	if len(list) > MaxPolicies {
		return nil, &PolicyError{[]Problem{{Message: fmt.Sprintf("the document has %d policies, at most %d are allowed", len(list), MaxPolicies)}}}
	}
	p := &parsed{set: cedar.NewPolicySet(), meta: map[cedar.PolicyID]meta{}, text: map[string]string{}, open: map[cedar.PolicyID]*cedar.Policy{}}
	var problems []Problem
	for _, pol := range list {
		pos := pol.Position()
		at := func(id, format string, args ...any) {
			problems = append(problems, Problem{Line: pos.Line, Column: pos.Column, PolicyID: id, Message: fmt.Sprintf(format, args...)})
		}
		m, id, msgs := annotations(pol)
		for _, msg := range msgs {
			at(id, "%s", msg)
		}
		if id == "" {
			continue
		}
		if p.set.Get(cedar.PolicyID(id)) != nil {
			at(id, "the @id is used by another policy")
			continue
		}
		text, written := string(pol.MarshalCedar()), pol
		if pol = agentsByDefault(pol); pol != written {
			p.open[cedar.PolicyID(id)] = written
		}
		if err := reg.validator.Policy(id, (*xast.Policy)(pol.AST())); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if line = strings.TrimSpace(line); line != "" {
					at(id, "%s", strings.TrimPrefix(line, "for policy `"+id+"`, "))
				}
			}
		}
		p.set.Add(cedar.PolicyID(id), pol)
		p.meta[cedar.PolicyID(id)] = m
		p.ids = append(p.ids, id)
		p.text[id] = text
	}
	if len(problems) > 0 {
		return nil, &PolicyError{problems}
	}
	slices.Sort(p.ids)
	return p, nil
}

// agentsByDefault reads an open principal scope as "principal is Agent"
// (ADR 0016): policies written before users were principals meant agents,
// and Cedar's validator would otherwise check them for a Person too,
// refusing every one that reads an agent attribute. A policy concerns
// users only when its principal scope names Person. The policy's text is
// not changed.
func agentsByDefault(pol *cedar.Policy) *cedar.Policy {
	a := (*xast.Policy)(pol.AST())
	switch a.Principal.(type) {
	case xast.ScopeTypeAll, nil:
	default:
		return pol
	}
	scoped := *a
	scoped.Principal = xast.ScopeTypeIs{Type: TypeAgent}
	return cedar.NewPolicyFromAST((*ast.Policy)(&scoped))
}

// parseList parses a Cedar document into its policies.
func parseList(doc string) (cedar.PolicyList, error) {
	list, err := cedar.NewPolicyListFromBytes("policy", []byte(doc))
	if err != nil {
		return nil, &PolicyError{[]Problem{parseProblem(err)}}
	}
	return list, nil
}

// annotations reads a policy's annotations: its id, its meta, and what is
// wrong with them.
func annotations(pol *cedar.Policy) (m meta, id string, problems []string) {
	ann := pol.Annotations()
	keys := make([]string, 0, len(ann))
	for k := range ann {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := string(ann[types.AnnotationKey(k)])
		switch k {
		case annotationID:
			if !policyIDPattern.MatchString(v) {
				problems = append(problems, fmt.Sprintf("@id %q must be 1 to 128 of A-Z a-z 0-9 . _ : -", truncated(v)))
				continue
			}
			id = v
		case annotationDecision:
			if v != Conditional {
				problems = append(problems, fmt.Sprintf("@decision must be %q, not %q", Conditional, truncated(v)))
			}
			m.conditional = true
		case annotationObligation:
			if !obligationPattern.MatchString(v) {
				problems = append(problems, fmt.Sprintf("@obligation %q must be a lowercase token of at most 64 characters", truncated(v)))
			}
			m.obligation = v
		case annotationReason:
			if len(v) > MaxReasonLen {
				problems = append(problems, fmt.Sprintf("@reason exceeds %d bytes", MaxReasonLen))
			}
			m.reason = v
		default:
			problems = append(problems, fmt.Sprintf("unknown annotation @%s (agentid reads @id, @decision, @obligation, @reason)", truncated(k)))
		}
	}
	if id == "" && !slices.Contains(keys, annotationID) {
		problems = append(problems, "the policy has no @id(\"…\") annotation")
	}
	if pol.Effect() == cedar.Forbid && (m.conditional || m.obligation != "") {
		problems = append(problems, "@decision and @obligation apply to permit policies only")
	}
	if m.obligation != "" && !m.conditional {
		problems = append(problems, "@obligation needs @decision(\"conditional\")")
	}
	if m.conditional && m.obligation == "" {
		m.obligation = ObligationApproval
	}
	return m, id, problems
}

// parseProblem turns cedar-go's parse error into a Problem with the line
// and column it names.
func parseProblem(err error) Problem {
	msg := err.Error()
	if m := parsePosition.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		return Problem{Line: line, Column: col, Message: "syntax error: " + m[3]}
	}
	return Problem{Message: "syntax error: " + strings.TrimPrefix(msg, "parser error: ")}
}

// truncated bounds a client-supplied string in a message.
func truncated(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
