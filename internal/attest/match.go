package attest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/agentid/agentid/internal/store"
)

// Limits of attestation rules.
const (
	MaxRules        = 16  // rules per agent
	MaxMatchers     = 16  // matchers per rule
	MaxMatcherLen   = 256 // bytes of one matcher
	maxClaimNameLen = 64
	// MaxAWSKeyLen bounds the key of an aws:<claim>.<key> fact (an AWS tag
	// key is at most 128 characters).
	MaxAWSKeyLen = 128
)

// AWSPrefix starts the facts and matchers of the claims an AWS STS web
// identity token nests under "https://sts.amazonaws.com/" (ADR 0015
// addendum F): aws:<claim>=<glob> for a scalar or list claim,
// aws:<claim>.<key>=<glob> for a value of an object claim (principal_tags,
// request_tags). They hold only on evidence of an aws attestor.
const AWSPrefix = "aws:"

// k8sFields are the fields of k8s:<field>:<glob> matchers.
func k8sFields() []string { return []string{"ns", "sa", "pod-name", "pod-uid", "node"} }

// X509Fields are the fields of x509:<field>:<glob> matchers: the leaf
// certificate's subject CN, O and OU, its DNS and URI SANs, its issuer's
// CN and its issuer's full DN (RFC 4514 string).
func X509Fields() []string {
	return []string{"cn", "o", "ou", "san-dns", "san-uri", "issuer-cn", "issuer"}
}

// ErrBadRule means an attestation rule or matcher is malformed.
var ErrBadRule = errors.New("attest: malformed attestation rule")

// Matcher is one parsed matcher: the fact it tests and the glob its value
// must match.
type Matcher struct {
	// Fact is the Evidence.Facts key: "k8s:ns", …, or a claim name.
	Fact string
	Glob string
}

// String is the matcher's canonical text.
func (m Matcher) String() string {
	if strings.HasPrefix(m.Fact, "k8s:") || strings.HasPrefix(m.Fact, "x509:") || strings.HasPrefix(m.Fact, "spiffe:") {
		return m.Fact + ":" + m.Glob
	}
	return m.Fact + "=" + m.Glob
}

// ParseMatcher parses k8s:<field>:<glob> (field ns, sa, pod-name,
// pod-uid, node), x509:<field>:<glob> (field one of X509Fields),
// spiffe:id:<glob> (a federated SVID's SPIFFE ID), aws:<claim>=<glob> or
// aws:<claim>.<key>=<glob> (a claim nested in an AWS STS token: claim
// [a-z0-9_]{1,64}, key 1 to 128 of [A-Za-z0-9 _.:/+@-]) or <claim>=<glob>
// (claim [A-Za-z0-9_.-]{1,64}). The glob is printable ASCII and not empty.
// Errors wrap ErrBadRule.
func ParseMatcher(s string) (Matcher, error) {
	if len(s) > MaxMatcherLen {
		return Matcher{}, fmt.Errorf("%w: a matcher is at most %d bytes", ErrBadRule, MaxMatcherLen)
	}
	if !printableASCII(s) {
		return Matcher{}, fmt.Errorf("%w: a matcher is printable ASCII", ErrBadRule)
	}
	if rest, ok := strings.CutPrefix(s, "k8s:"); ok {
		field, glob, ok := strings.Cut(rest, ":")
		if !ok || !contains(k8sFields(), field) || glob == "" {
			return Matcher{}, fmt.Errorf("%w: %q: want k8s:<field>:<value> with field one of %s", ErrBadRule, s, strings.Join(k8sFields(), ", "))
		}
		return Matcher{Fact: "k8s:" + field, Glob: glob}, nil
	}
	if rest, ok := strings.CutPrefix(s, "x509:"); ok {
		field, glob, ok := strings.Cut(rest, ":")
		if !ok || !contains(X509Fields(), field) || glob == "" {
			return Matcher{}, fmt.Errorf("%w: %q: want x509:<field>:<value> with field one of %s", ErrBadRule, s, strings.Join(X509Fields(), ", "))
		}
		return Matcher{Fact: "x509:" + field, Glob: glob}, nil
	}
	if rest, ok := strings.CutPrefix(s, "spiffe:"); ok {
		field, glob, ok := strings.Cut(rest, ":")
		if !ok || field != "id" || glob == "" {
			return Matcher{}, fmt.Errorf("%w: %q: want spiffe:id:<value>", ErrBadRule, s)
		}
		return Matcher{Fact: "spiffe:id", Glob: glob}, nil
	}
	if rest, ok := strings.CutPrefix(s, AWSPrefix); ok {
		fact, glob, ok := strings.Cut(rest, "=")
		if !ok || !ValidAWSFact(fact) || glob == "" {
			return Matcher{}, fmt.Errorf("%w: %q: want aws:<claim>=<value> or aws:<claim>.<key>=<value> (claim [a-z0-9_], key [A-Za-z0-9 _.:/+@-])", ErrBadRule, s)
		}
		return Matcher{Fact: AWSPrefix + fact, Glob: glob}, nil
	}
	claim, glob, ok := strings.Cut(s, "=")
	if !ok || !validClaimName(claim) || glob == "" {
		return Matcher{}, fmt.Errorf("%w: %q: want k8s:<field>:<value>, x509:<field>:<value>, spiffe:id:<value>, aws:<claim>=<value> or <claim>=<value>", ErrBadRule, s)
	}
	return Matcher{Fact: claim, Glob: glob}, nil
}

// Holds reports whether the matcher holds on facts.
func (m Matcher) Holds(facts map[string]string) bool {
	v, ok := facts[m.Fact]
	return ok && Glob(m.Glob, v)
}

// HoldsOn reports whether the matcher holds on ev: on its single-valued
// fact, or on one of the values of its multi-valued fact. An aws: matcher
// holds only on evidence of MethodAWS (another issuer's token may name a
// top-level claim "aws:…").
func (m Matcher) HoldsOn(ev Evidence) bool {
	if strings.HasPrefix(m.Fact, AWSPrefix) && ev.Method != MethodAWS {
		return false
	}
	if m.Holds(ev.Facts) {
		return true
	}
	for _, v := range ev.Values[m.Fact] {
		if Glob(m.Glob, v) {
			return true
		}
	}
	return false
}

// CheckRules validates an agent's attestation rules: at most MaxRules,
// each naming a valid attestor and holding 1 to MaxMatchers valid
// matchers. It returns the rules with canonical matchers.
func CheckRules(rs []store.AttestationRule) ([]store.AttestationRule, error) {
	if len(rs) > MaxRules {
		return nil, fmt.Errorf("%w: at most %d rules", ErrBadRule, MaxRules)
	}
	var out []store.AttestationRule
	for i, r := range rs {
		if err := CheckName(r.Attestor); err != nil {
			return nil, fmt.Errorf("%w: rule %d: %w", ErrBadRule, i, err)
		}
		if len(r.Matchers) == 0 || len(r.Matchers) > MaxMatchers {
			return nil, fmt.Errorf("%w: rule %d: want 1 to %d matchers", ErrBadRule, i, MaxMatchers)
		}
		c := store.AttestationRule{Attestor: r.Attestor}
		for _, s := range r.Matchers {
			m, err := ParseMatcher(s)
			if err != nil {
				return nil, fmt.Errorf("rule %d: %w", i, err)
			}
			if !contains(c.Matchers, m.String()) {
				c.Matchers = append(c.Matchers, m.String())
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// MatchResult is the outcome of Match.
type MatchResult struct {
	// Rule is the index of the first rule that matched, -1 when none did.
	Rule int
	// Why says, when no rule matched, why each rule for the attestor did
	// not (or that the agent has none); safe to record.
	Why string
}

// RuleString is a rule's text for the audit trail: "attestor: m1, m2".
func RuleString(r store.AttestationRule) string {
	return r.Attestor + ": " + strings.Join(r.Matchers, ", ")
}

// Match finds the first of rules whose attestor produced ev and whose
// every matcher holds on its facts. A malformed stored matcher never
// holds.
func Match(rules []store.AttestationRule, ev Evidence) MatchResult {
	var why []string
	for i, r := range rules {
		if r.Attestor != ev.Attestor {
			continue
		}
		failed, holds := "(no matchers)", len(r.Matchers) > 0
		for _, s := range r.Matchers {
			m, err := ParseMatcher(s)
			if err != nil || !m.HoldsOn(ev) {
				failed, holds = s, false
				break
			}
		}
		if holds {
			return MatchResult{Rule: i}
		}
		why = append(why, fmt.Sprintf("rule %d: %s does not hold", i, printableOrHash(failed)))
	}
	if len(why) == 0 {
		return MatchResult{Rule: -1, Why: "the agent has no attestation rule for attestor " + ev.Attestor}
	}
	return MatchResult{Rule: -1, Why: strings.Join(why, "; ")}
}

// Glob reports whether v matches pattern, in which '*' matches any run of
// bytes ('/' and ':' included) and every other byte itself. It runs in
// O(len(pattern)·len(v)) time at worst.
func Glob(pattern, v string) bool {
	p, s := 0, 0
	star, mark := -1, 0
	for s < len(v) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, s
			p++
		case p < len(pattern) && pattern[p] == v[s]:
			p++
			s++
		case star >= 0:
			p = star + 1
			mark++
			s = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// ValidAWSFact reports whether s (without AWSPrefix) names a claim nested
// in an AWS STS token, <claim> or <claim>.<key>: claim 1 to 64 of
// [a-z0-9_], key 1 to MaxAWSKeyLen of [A-Za-z0-9 _.:/+@-] (an AWS tag key
// without '=' and beyond ASCII, which no matcher can name).
func ValidAWSFact(s string) bool {
	claim, key, dotted := strings.Cut(s, ".")
	if claim == "" || len(claim) > maxClaimNameLen || (dotted && (key == "" || len(key) > MaxAWSKeyLen)) {
		return false
	}
	for i := 0; i < len(claim); i++ {
		c := claim[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
		if !ok {
			return false
		}
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(" _.:/+@-", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

func validClaimName(s string) bool {
	if s == "" || len(s) > maxClaimNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// printableOrHash bounds a stored string for a reason text.
func printableOrHash(s string) string {
	if len(s) <= MaxMatcherLen && printableASCII(s) {
		return s
	}
	return "(malformed matcher)"
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
