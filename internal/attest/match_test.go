package attest

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func TestParseMatcher(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Matcher
		ok   bool
	}{
		{"k8s:ns:payments", Matcher{Fact: "k8s:ns", Glob: "payments"}, true},
		{"k8s:sa:runner-*", Matcher{Fact: "k8s:sa", Glob: "runner-*"}, true},
		{"k8s:pod-name:a:b", Matcher{Fact: "k8s:pod-name", Glob: "a:b"}, true},
		{"k8s:node:*", Matcher{Fact: "k8s:node", Glob: "*"}, true},
		{"repository=org/*", Matcher{Fact: "repository", Glob: "org/*"}, true},
		{"ref=refs/heads/main", Matcher{Fact: "ref", Glob: "refs/heads/main"}, true},
		{"sub=repo:org/x:ref:refs/heads/main", Matcher{Fact: "sub", Glob: "repo:org/x:ref:refs/heads/main"}, true},
		{"x509:cn:runner-*", Matcher{Fact: "x509:cn", Glob: "runner-*"}, true},
		{"x509:san-uri:spiffe://corp.example/*", Matcher{Fact: "x509:san-uri", Glob: "spiffe://corp.example/*"}, true},
		{"x509:issuer:CN=Corp Issuing,O=Example Corp", Matcher{Fact: "x509:issuer", Glob: "CN=Corp Issuing,O=Example Corp"}, true},
		{"x509:serial:1", Matcher{}, false},
		{"spiffe:id:spiffe://partner.example/payments/*", Matcher{Fact: "spiffe:id", Glob: "spiffe://partner.example/payments/*"}, true},
		{"spiffe:td:partner.example", Matcher{}, false},
		{"aws:aws_account=123456789012", Matcher{Fact: "aws:aws_account", Glob: "123456789012"}, true},
		{"aws:org_id=o-*", Matcher{Fact: "aws:org_id", Glob: "o-*"}, true},
		{"aws:ec2_source_instance_arn=arn:aws:ec2:*:instance/*", Matcher{Fact: "aws:ec2_source_instance_arn", Glob: "arn:aws:ec2:*:instance/*"}, true},
		{"aws:principal_tags.team=pay=ments", Matcher{Fact: "aws:principal_tags.team", Glob: "pay=ments"}, true},
		{"aws:principal_tags.cost center:a/b@c+d.e_f-g=x", Matcher{Fact: "aws:principal_tags.cost center:a/b@c+d.e_f-g", Glob: "x"}, true},
		{"aws:request_tags.job-id=*", Matcher{Fact: "aws:request_tags.job-id", Glob: "*"}, true},
		{"aws:Org_Id=x", Matcher{}, false},
		{"aws:org_id:x", Matcher{}, false},
		{"aws:org_id=", Matcher{}, false},
		{"aws:=x", Matcher{}, false},
		{"aws:principal_tags.=x", Matcher{}, false},
		{"aws:principal_tags.a,b=x", Matcher{}, false},
		{"aws:principal_tags." + strings.Repeat("k", MaxAWSKeyLen+1) + "=x", Matcher{}, false},
		{"aws_account=123456789012", Matcher{Fact: "aws_account", Glob: "123456789012"}, true},
		{"x509:cn:", Matcher{}, false},
		{"x509:cn=x", Matcher{}, false},
		{"k8s:cluster:x", Matcher{}, false},
		{"k8s:ns:", Matcher{}, false},
		{"k8s:ns", Matcher{}, false},
		{"repository=", Matcher{}, false},
		{"=x", Matcher{}, false},
		{"repo sitory=x", Matcher{}, false},
		{"plain", Matcher{}, false},
		{"ref=a\nb", Matcher{}, false},
		{"ref=" + strings.Repeat("a", MaxMatcherLen), Matcher{}, false},
	} {
		got, err := ParseMatcher(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseMatcher(%q) = %+v, %v; want %+v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadRule) {
			t.Errorf("ParseMatcher(%q) error %v is not ErrBadRule", tc.in, err)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("ParseMatcher(%q).String() = %q", tc.in, got.String())
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		p, v string
		want bool
	}{
		{"org/*", "org/repo", true},
		{"org/*", "org/", true},
		{"org/*", "other/repo", false},
		{"org/*", "org", false},
		{"*", "", true},
		{"", "", true},
		{"", "x", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"refs/heads/*", "refs/heads/feature/x", true},
		{"*-prod", "eu-prod", true},
		{"*-prod", "eu-prod-2", false},
		{"payments", "Payments", false},
		{"**", "anything", true},
	} {
		if got := Glob(tc.p, tc.v); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tc.p, tc.v, got, tc.want)
		}
	}
}

func TestCheckRules(t *testing.T) {
	got, err := CheckRules([]store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:a", "k8s:ns:a", "ref=x"}}})
	want := []store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:a", "ref=x"}}}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("CheckRules = %+v, %v; want %+v", got, err, want)
	}
	if got, err := CheckRules(nil); err != nil || got != nil {
		t.Errorf("CheckRules(nil) = %+v, %v", got, err)
	}
	many := make([]string, MaxMatchers+1)
	for i := range many {
		many[i] = "k8s:ns:x"
	}
	for name, rs := range map[string][]store.AttestationRule{
		"no matchers":   {{Attestor: "prod"}},
		"bad attestor":  {{Attestor: "Prod!", Matchers: []string{"k8s:ns:a"}}},
		"bad matcher":   {{Attestor: "prod", Matchers: []string{"k8s:zone:a"}}},
		"many matchers": {{Attestor: "prod", Matchers: many}},
		"many rules":    make([]store.AttestationRule, MaxRules+1),
	} {
		if _, err := CheckRules(rs); !errors.Is(err, ErrBadRule) {
			t.Errorf("CheckRules(%s) = %v, want ErrBadRule", name, err)
		}
	}
}

func TestMatch(t *testing.T) {
	k8s := Evidence{Attestor: "prod", Method: MethodKubernetes,
		Facts: map[string]string{"k8s:ns": "payments", "k8s:sa": "runner", "k8s:pod-name": "runner-7f9", "k8s:pod-uid": "u1"}}
	gh := Evidence{Attestor: "github", Method: MethodOIDC,
		Facts: map[string]string{"repository": "org/app", "ref": "refs/heads/main", "sub": "repo:org/app:ref:refs/heads/main"}}
	awsEv := Evidence{Attestor: "aws", Method: MethodAWS,
		Facts: map[string]string{"sub": "arn:aws:iam::123456789012:role/R", "aws:principal_tags.team": "payments"}}
	// An OIDC token may carry a top-level claim named like an aws: fact.
	ghAWSClaim := Evidence{Attestor: "github", Method: MethodOIDC, Facts: map[string]string{"aws:org_id": "o-1"}}
	rules := []store.AttestationRule{
		{Attestor: "prod", Matchers: []string{"k8s:ns:billing"}},
		{Attestor: "prod", Matchers: []string{"k8s:ns:payments", "k8s:sa:runner"}},
		{Attestor: "github", Matchers: []string{"repository=org/*", "ref=refs/heads/main"}},
	}
	for _, tc := range []struct {
		name  string
		rules []store.AttestationRule
		ev    Evidence
		rule  int
		why   string
	}{
		{"k8s second rule", rules, k8s, 1, ""},
		{"oidc", rules, gh, 2, ""},
		{"k8s wrong sa", rules[:1], k8s, -1, "rule 0: k8s:ns:billing does not hold"},
		{"other attestor", rules[2:], k8s, -1, "the agent has no attestation rule for attestor prod"},
		{"no rules", nil, gh, -1, "the agent has no attestation rule for attestor github"},
		{"branch", []store.AttestationRule{{Attestor: "github", Matchers: []string{"repository=org/*", "ref=refs/heads/release"}}}, gh, -1,
			"rule 0: ref=refs/heads/release does not hold"},
		{"k8s matcher on oidc evidence", []store.AttestationRule{{Attestor: "github", Matchers: []string{"k8s:ns:*"}}}, gh, -1,
			"rule 0: k8s:ns:* does not hold"},
		{"claim matcher on k8s evidence", []store.AttestationRule{{Attestor: "prod", Matchers: []string{"ns=*"}}}, k8s, -1,
			"rule 0: ns=* does not hold"},
		{"aws", []store.AttestationRule{{Attestor: "aws", Matchers: []string{"sub=arn:aws:iam::123456789012:role/*", "aws:principal_tags.team=pay*"}}}, awsEv, 0, ""},
		{"aws wrong tag", []store.AttestationRule{{Attestor: "aws", Matchers: []string{"aws:principal_tags.team=billing"}}}, awsEv, -1,
			"rule 0: aws:principal_tags.team=billing does not hold"},
		{"aws matcher on oidc evidence", []store.AttestationRule{{Attestor: "github", Matchers: []string{"aws:org_id=*"}}}, ghAWSClaim, -1,
			"rule 0: aws:org_id=* does not hold"},
		{"k8s matcher on aws evidence", []store.AttestationRule{{Attestor: "aws", Matchers: []string{"k8s:ns:*"}}}, awsEv, -1,
			"rule 0: k8s:ns:* does not hold"},
		{"stored malformed", []store.AttestationRule{{Attestor: "prod", Matchers: []string{"junk"}}}, k8s, -1, "rule 0: junk does not hold"},
		{"stored empty", []store.AttestationRule{{Attestor: "prod"}}, k8s, -1, "rule 0: (no matchers) does not hold"},
	} {
		got := Match(tc.rules, tc.ev)
		if got.Rule != tc.rule || got.Why != tc.why {
			t.Errorf("%s: Match = %+v, want rule %d why %q", tc.name, got, tc.rule, tc.why)
		}
	}
}

// globRegexp is an independent implementation of Glob for the fuzz target.
func globRegexp(p, v string) bool {
	parts := strings.Split(p, "*")
	for i, s := range parts {
		parts[i] = regexp.QuoteMeta(s)
	}
	return regexp.MustCompile(`^(?s:` + strings.Join(parts, ".*") + `)$`).MatchString(v)
}

func FuzzGlob(f *testing.F) {
	f.Add("org/*", "org/repo")
	f.Add("a*b*c", "aXbYc")
	f.Add("**x", "xx")
	f.Fuzz(func(t *testing.T, p, v string) {
		if len(p) > 64 || len(v) > 128 || !printableASCII(p) || !printableASCII(v) {
			return // matchers and fact values are printable ASCII
		}
		if got, want := Glob(p, v), globRegexp(p, v); got != want {
			t.Errorf("Glob(%q, %q) = %v, regexp says %v", p, v, got, want)
		}
	})
}

func FuzzParseMatcher(f *testing.F) {
	for _, s := range []string{"k8s:ns:payments", "repository=org/*", "k8s:", "=", "a=b=c", "k8s:pod-uid:x:y", "x509:ou:pay*", "x509:san-dns:*.corp", "spiffe:id:spiffe://td/*",
		"aws:org_id=o-*", "aws:principal_tags.team=pay*", "aws:request_tags.a:b=c=d", "aws:ou_path=o-1/*"} {
		f.Add(s, "value")
	}
	f.Fuzz(func(t *testing.T, s, v string) {
		m, err := ParseMatcher(s)
		if err != nil {
			if !errors.Is(err, ErrBadRule) {
				t.Fatalf("ParseMatcher(%q) error %v is not ErrBadRule", s, err)
			}
			return
		}
		m2, err := ParseMatcher(m.String())
		if err != nil || m2 != m {
			t.Fatalf("ParseMatcher(%q).String() = %q does not round-trip: %+v, %v", s, m.String(), m2, err)
		}
		facts := map[string]string{m.Fact: v}
		_ = m.Holds(facts)
		method := MethodOIDC
		if strings.HasPrefix(m.Fact, AWSPrefix) {
			method = MethodAWS
			// aws: facts hold on aws evidence only.
			if m.HoldsOn(Evidence{Attestor: "a", Method: MethodOIDC, Facts: facts}) {
				t.Fatalf("%q holds on oidc evidence", s)
			}
		}
		if Match([]store.AttestationRule{{Attestor: "a", Matchers: []string{s}}}, Evidence{Attestor: "a", Method: method, Facts: facts}).Rule != 0 && Glob(m.Glob, v) {
			t.Fatalf("%q does not hold on its own fact %q", s, v)
		}
		multi := Evidence{Attestor: "a", Method: method, Values: map[string][]string{m.Fact: {"other", v}}}
		if m.HoldsOn(multi) != (Glob(m.Glob, "other") || Glob(m.Glob, v)) {
			t.Fatalf("%q on values [other %q]", s, v)
		}
	})
}

// TestMatchMalformedStoredMatcher: a stored matcher that does not parse
// never holds, the empty one included (found by FuzzFacts).
func TestMatchMalformedStoredMatcher(t *testing.T) {
	ev := Evidence{Attestor: "a", Facts: map[string]string{"k8s:ns": "payments"}, Values: map[string][]string{"x509:ou": {"ops", "payments"}}}
	for _, ms := range [][]string{{""}, {"k8s:ns:payments", ""}, {"bogus"}, {}} {
		if m := Match([]store.AttestationRule{{Attestor: "a", Matchers: ms}}, ev); m.Rule != -1 {
			t.Errorf("matchers %q matched", ms)
		}
	}
	if m := Match([]store.AttestationRule{{Attestor: "a", Matchers: []string{"x509:ou:pay*", "k8s:ns:payments"}}}, ev); m.Rule != 0 {
		t.Errorf("a multi-valued fact: %+v", m)
	}
}
