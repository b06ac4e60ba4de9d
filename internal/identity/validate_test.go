package identity

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"0", true},
		{"billing-agent", true},
		{"a1-b2", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"-a", false},
		{"a-", false},
		{"A", false},
		{"billing_agent", false},
		{"billing.agent", false},
		{"a b", false},
		{"agt_01", false},
		{"é", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil {
			checkValidation(t, err, "name")
		}
	}
}

func TestValidateTrustDomain(t *testing.T) {
	tests := []struct {
		td string
		ok bool
	}{
		{"example.org", true},
		{"prod_1.example-corp.org", true},
		{"localhost", true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
		{"", false},
		{"Example.org", false},
		{"example.org:8080", false},
		{"user@example.org", false},
		{"example.org/", false},
		{"exa mple.org", false},
		{"%41.org", false},
	}
	for _, tt := range tests {
		err := ValidateTrustDomain(tt.td)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateTrustDomain(%q) = %v, want ok=%v", tt.td, err, tt.ok)
		}
		if err != nil {
			checkValidation(t, err, "trust_domain")
		}
	}
}

func TestParseSPIFFEID(t *testing.T) {
	tests := []struct {
		id       string
		td, path string
		ok       bool
	}{
		{"spiffe://example.org", "example.org", "", true},
		{"spiffe://example.org/agent/billing", "example.org", "/agent/billing", true},
		{"spiffe://example.org/Ns/a.b-c_d", "example.org", "/Ns/a.b-c_d", true},
		{"spiffe://example.org/...", "example.org", "/...", true},
		{"spiffe://" + strings.Repeat("a", 255) + "/" + strings.Repeat("b", 2048-255-10), strings.Repeat("a", 255), "/" + strings.Repeat("b", 2048-255-10), true},
		{"spiffe://" + strings.Repeat("a", 255) + "/" + strings.Repeat("b", 2048-255-9), "", "", false},
		{"", "", "", false},
		{"spiffe://", "", "", false},
		{"spiffe:///path", "", "", false},
		{"SPIFFE://example.org", "", "", false},
		{"https://example.org/a", "", "", false},
		{"spiffe://Example.org/a", "", "", false},
		{"spiffe://example.org:443/a", "", "", false},
		{"spiffe://u@example.org/a", "", "", false},
		{"spiffe://example.org/", "", "", false},
		{"spiffe://example.org/a/", "", "", false},
		{"spiffe://example.org//a", "", "", false},
		{"spiffe://example.org/./a", "", "", false},
		{"spiffe://example.org/a/..", "", "", false},
		{"spiffe://example.org/a?x=1", "", "", false},
		{"spiffe://example.org/a#f", "", "", false},
		{"spiffe://example.org/a%20b", "", "", false},
		{"spiffe://example.org/é", "", "", false},
	}
	for _, tt := range tests {
		td, path, err := ParseSPIFFEID(tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("ParseSPIFFEID(%q) error = %v, want ok=%v", tt.id, err, tt.ok)
			continue
		}
		agreeWithGoSPIFFE(t, tt.id, td, path, err)
		if err != nil {
			checkValidation(t, err, "spiffe_id")
			continue
		}
		if td != tt.td || path != tt.path {
			t.Errorf("ParseSPIFFEID(%q) = %q, %q; want %q, %q", tt.id, td, path, tt.td, tt.path)
		}
	}
}

func TestAgentName(t *testing.T) {
	tests := []struct {
		td, id, want string
		ok           bool
	}{
		{"example.org", "spiffe://example.org/agent/billing", "billing", true},
		{"example.org", "spiffe://other.org/agent/billing", "", false},
		{"example.org", "spiffe://example.org/agents/billing", "", false},
		{"example.org", "spiffe://example.org/agent/Billing", "", false},
		{"example.org", "spiffe://example.org/agent/billing/x", "", false},
		{"example.org", "spiffe://example.org/agent/", "", false},
	}
	for _, tt := range tests {
		got, err := AgentName(tt.td, tt.id)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("AgentName(%q, %q) = %q, %v; want %q, ok=%v", tt.td, tt.id, got, err, tt.want, tt.ok)
		}
		if err != nil {
			checkValidation(t, err, "spiffe_id")
		}
	}
	if got := SPIFFEID("example.org", "billing"); got != "spiffe://example.org/agent/billing" {
		t.Errorf("SPIFFEID = %q", got)
	}
}

func TestNormalizePurpose(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"  Reconcile invoices  ", "Reconcile invoices", true},
		{"Résumé triage 📄", "Résumé triage 📄", true},
		{strings.Repeat("x", MaxPurposeLen), strings.Repeat("x", MaxPurposeLen), true},
		{strings.Repeat("x", MaxPurposeLen+1), "", false},
		{"", "", false},
		{" \t\n ", "", false},
		{"line\nbreak", "", false},
		{"tab\tinside", "", false},
		{"bell\a", "", false},
		{"c1\u0085x", "", false},
		{"bidi\u202e", "", false},
		{"bad\xffutf8", "", false},
	}
	for _, tt := range tests {
		got, err := NormalizePurpose(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizePurpose(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil {
			checkValidation(t, err, "purpose")
		}
	}
}

func TestNormalizeActionClasses(t *testing.T) {
	many := make([]string, MaxActionClasses+1)
	for i := range many {
		many[i] = fmt.Sprintf("c%d", i)
	}
	dupes := make([]string, 4*MaxActionClasses)
	for i := range dupes {
		dupes[i] = "read"
	}
	tests := []struct {
		in    []string
		want  []string
		field string
	}{
		{nil, []string{}, ""},
		{[]string{"write", "read", "read", "payments:refund", "email.send", "a_b-c"}, []string{"a_b-c", "email.send", "payments:refund", "read", "write"}, ""},
		{dupes, []string{"read"}, ""},
		{many[:MaxActionClasses], nil, ""},
		{many, nil, "action_classes"},
		{append(dupes, "read"), nil, "action_classes"},
		{[]string{"read", ""}, nil, "action_classes[1]"},
		{[]string{"Read"}, nil, "action_classes[0]"},
		{[]string{":read"}, nil, "action_classes[0]"},
		{[]string{"read-"}, nil, "action_classes[0]"},
		{[]string{"re ad"}, nil, "action_classes[0]"},
		{[]string{strings.Repeat("a", MaxActionClassLen+1)}, nil, "action_classes[0]"},
	}
	for i, tt := range tests {
		got, err := NormalizeActionClasses(tt.in)
		if tt.field != "" {
			checkValidation(t, err, tt.field)
			continue
		}
		if err != nil {
			t.Errorf("%d: NormalizeActionClasses: %v", i, err)
			continue
		}
		if tt.want != nil {
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%d: NormalizeActionClasses (-want +got):\n%s", i, diff)
			}
		}
	}
}

func TestNormalizeAudiences(t *testing.T) {
	tests := []struct {
		in    []string
		want  []string
		field string
	}{
		{nil, []string{}, ""},
		{[]string{"https://api.example.com", "billing-api", "urn:example:aud", "billing-api"}, []string{"billing-api", "https://api.example.com", "urn:example:aud"}, ""},
		{[]string{""}, nil, "audiences[0]"},
		{[]string{"a b"}, nil, "audiences[0]"},
		{[]string{"ok", "a\nb"}, nil, "audiences[1]"},
		{[]string{"://nope"}, nil, "audiences[0]"},
		{[]string{strings.Repeat("a", MaxAudienceLen+1)}, nil, "audiences[0]"},
		{[]string{"\xff"}, nil, "audiences[0]"},
	}
	for i, tt := range tests {
		got, err := NormalizeAudiences(tt.in)
		if tt.field != "" {
			checkValidation(t, err, tt.field)
			continue
		}
		if err != nil {
			t.Errorf("%d: NormalizeAudiences: %v", i, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%d: NormalizeAudiences (-want +got):\n%s", i, diff)
		}
	}
	var many []string
	for i := range MaxAudiences + 1 {
		many = append(many, "aud"+strings.Repeat("x", i))
	}
	if _, err := NormalizeAudiences(many); err == nil {
		t.Error("NormalizeAudiences accepted too many audiences")
	}
}

func TestNormalizeScopes(t *testing.T) {
	many := make([]string, MaxScopes+1)
	for i := range many {
		many[i] = fmt.Sprintf("s%d", i)
	}
	tests := []struct {
		in    []string
		want  []string
		field string
	}{
		{nil, []string{}, ""},
		{[]string{"tickets:write", "tickets:read", "tickets:read", "https://graph.example.com/.default", "openid", "a!#[]~"},
			[]string{"a!#[]~", "https://graph.example.com/.default", "openid", "tickets:read", "tickets:write"}, ""},
		{many[:MaxScopes], nil, ""},
		{many, nil, "scopes"},
		{[]string{"read", ""}, nil, "scopes[1]"},
		{[]string{"read write"}, nil, "scopes[0]"},
		{[]string{`say"hi"`}, nil, "scopes[0]"},
		{[]string{`back\slash`}, nil, "scopes[0]"},
		{[]string{"tab\t"}, nil, "scopes[0]"},
		{[]string{"del\x7f"}, nil, "scopes[0]"},
		{[]string{"caf\u00e9"}, nil, "scopes[0]"},
		{[]string{strings.Repeat("s", MaxScopeLen)}, nil, ""},
		{[]string{strings.Repeat("s", MaxScopeLen+1)}, nil, "scopes[0]"},
	}
	for i, tt := range tests {
		got, err := NormalizeScopes(tt.in)
		if tt.field != "" {
			checkValidation(t, err, tt.field)
			continue
		}
		if err != nil {
			t.Errorf("%d: NormalizeScopes: %v", i, err)
			continue
		}
		if tt.want != nil {
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%d: NormalizeScopes (-want +got):\n%s", i, diff)
			}
		}
	}
	// Every byte: exactly the RFC 6749 §3.3 scope-token characters pass.
	for c := range 256 {
		_, err := NormalizeScopes([]string{"a" + string(rune(c)) + "b"})
		want := c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)
		if (err == nil) != want {
			t.Errorf("byte %#x: error %v, want ok=%v", c, err, want)
		}
	}
}

func TestNormalizePermissions(t *testing.T) {
	tests := []struct {
		in    []string
		want  []string
		field string
	}{
		{nil, []string{}, ""},
		{[]string{"introspect", "introspect"}, []string{"introspect"}, ""},
		{[]string{"introspect", "admin"}, nil, "permissions[1]"},
		{[]string{""}, nil, "permissions[0]"},
		{[]string{"Introspect"}, nil, "permissions[0]"},
		{slices.Repeat([]string{"introspect"}, 4*len(Permissions())+1), nil, "permissions"},
		{[]string{"introspect", "evaluate"}, []string{"evaluate", "introspect"}, ""},
	}
	for i, tt := range tests {
		got, err := NormalizePermissions(tt.in)
		if tt.field != "" {
			checkValidation(t, err, tt.field)
			continue
		}
		if err != nil {
			t.Errorf("%d: NormalizePermissions: %v", i, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%d: NormalizePermissions (-want +got):\n%s", i, diff)
		}
	}
}

func TestValidateLabels(t *testing.T) {
	tooMany := map[string]string{}
	for i := range MaxLabels + 1 {
		tooMany["k"+strings.Repeat("x", i)] = "v"
	}
	tests := []struct {
		labels map[string]string
		ok     bool
	}{
		{nil, true},
		{map[string]string{"team": "billing", "env": ""}, true},
		{map[string]string{"example.com/Team_1.x": "Billing & Co — EU"}, true},
		{map[string]string{strings.Repeat("abc.", 63) + "a/" + strings.Repeat("b", 63): "v"}, true},
		{tooMany, false},
		{map[string]string{"": "v"}, false},
		{map[string]string{"/team": "v"}, false},
		{map[string]string{"Example.com/team": "v"}, false},
		{map[string]string{"a..b/team": "v"}, false},
		{map[string]string{"example.com/": "v"}, false},
		{map[string]string{"a/b/c": "v"}, false},
		{map[string]string{"-team": "v"}, false},
		{map[string]string{"team.": "v"}, false},
		{map[string]string{"te am": "v"}, false},
		{map[string]string{strings.Repeat("b", 64): "v"}, false},
		{map[string]string{strings.Repeat("abc.", 63) + "ab/b": "v"}, false},
		{map[string]string{"team": strings.Repeat("v", MaxLabelValueLen+1)}, false},
		{map[string]string{"team": "a\nb"}, false},
		{map[string]string{"team": "\xff"}, false},
	}
	for i, tt := range tests {
		err := ValidateLabels(tt.labels)
		if (err == nil) != tt.ok {
			t.Errorf("%d: ValidateLabels = %v, want ok=%v", i, err, tt.ok)
		}
		if err != nil {
			checkValidation(t, err, "labels")
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Alice@Example.COM", "alice@example.com", true},
		{"a.b+tag@sub.example.org", "a.b+tag@sub.example.org", true},
		{"", "", false},
		{"alice", "", false},
		{"Alice <alice@example.com>", "", false},
		{"<alice@example.com>", "", false},
		{`"a b"@example.com`, "", false},
		{"alice@example.com, bob@example.com", "", false},
		{"alice@", "", false},
		{strings.Repeat("a", 250) + "@x.io", "", false},
	}
	for _, tt := range tests {
		got, err := NormalizeEmail(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil {
			checkValidation(t, err, "email")
		}
	}
}

// checkValidation asserts err is a *ValidationError for field that
// matches ErrInvalid and store.ErrInvalid.
func checkValidation(t *testing.T, err error, field string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("error %v is not a *ValidationError", err)
		return
	}
	if ve.Field != field {
		t.Errorf("ValidationError.Field = %q, want %q (%v)", ve.Field, field, err)
	}
	if ve.Reason == "" {
		t.Errorf("ValidationError %v has no reason", err)
	}
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, store.ErrInvalid) {
		t.Errorf("error %v does not match ErrInvalid and store.ErrInvalid", err)
	}
}

func TestSentinelsMatchStore(t *testing.T) {
	tests := []struct {
		err, base error
	}{
		{ErrInvalid, store.ErrInvalid},
		{ErrNotFound, store.ErrNotFound},
		{ErrAlreadyExists, store.ErrAlreadyExists},
		{ErrVersionMismatch, store.ErrConflict},
		{ErrIllegalTransition, store.ErrConflict},
		{ErrLimitExceeded, store.ErrConflict},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.base) {
			t.Errorf("%v does not match %v", tt.err, tt.base)
		}
	}
	if errors.Is(ErrVersionMismatch, ErrIllegalTransition) || errors.Is(ErrIllegalTransition, ErrVersionMismatch) {
		t.Error("ErrVersionMismatch and ErrIllegalTransition must be distinguishable")
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a", "billing-agent", "-a", "A", strings.Repeat("a", 64), "a_b", "é"} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName(name)
		if want := re.MatchString(name); (err == nil) != want {
			t.Fatalf("ValidateName(%q) = %v, regexp says %v", name, err, want)
		}
		if err != nil {
			return
		}
		id := SPIFFEID("example.org", name)
		got, err := AgentName("example.org", id)
		if err != nil || got != name {
			t.Fatalf("AgentName(%q) = %q, %v; want %q", id, got, err, name)
		}
	})
}

func FuzzParseSPIFFEID(f *testing.F) {
	for _, s := range []string{
		"spiffe://example.org/agent/billing", "spiffe://example.org", "spiffe://example.org/",
		"spiffe://a:1/b", "spiffe://example.org/a/../b", "spiffe://x/%2e", "spiffe://x//",
	} {
		f.Add(s)
	}
	tdRe := regexp.MustCompile(`^[a-z0-9._-]{1,255}$`)
	segRe := regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	f.Fuzz(func(t *testing.T, id string) {
		td, path, err := ParseSPIFFEID(id)
		agreeWithGoSPIFFE(t, id, td, path, err)
		if err != nil {
			checkValidation(t, err, "spiffe_id")
			return
		}
		if len(id) > MaxSPIFFEIDLen || id != SPIFFEIDScheme+td+path || !tdRe.MatchString(td) {
			t.Fatalf("ParseSPIFFEID(%q) accepted a bad id: %q %q", id, td, path)
		}
		if path == "" {
			return
		}
		for _, seg := range strings.Split(path, "/")[1:] {
			if !segRe.MatchString(seg) || seg == "." || seg == ".." {
				t.Fatalf("ParseSPIFFEID(%q) accepted segment %q", id, seg)
			}
		}
	})
}

func FuzzValidateLabels(f *testing.F) {
	f.Add("team", "billing")
	f.Add("example.com/team", "")
	f.Add("a/b/c", "\n")
	f.Add("/x", "\xff")
	keyRe := regexp.MustCompile(`^(([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)
	f.Fuzz(func(t *testing.T, key, value string) {
		err := ValidateLabelKey(key)
		prefixOK := true
		if i := strings.LastIndexByte(key, '/'); i > 253 {
			prefixOK = false
		}
		if want := keyRe.MatchString(key) && prefixOK; (err == nil) != want {
			t.Fatalf("ValidateLabelKey(%q) = %v, regexp says %v", key, err, want)
		}
		_ = ValidateLabelValue(value)
		_ = ValidateLabels(map[string]string{key: value})
	})
}

func FuzzNormalizeEmail(f *testing.F) {
	f.Add("alice@example.com")
	f.Add("Alice <a@b>")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeEmail(s)
		if err != nil {
			return
		}
		if got != strings.ToLower(got) || len(got) > MaxEmailLen {
			t.Fatalf("NormalizeEmail(%q) = %q", s, got)
		}
	})
}

// agreeWithGoSPIFFE checks ParseSPIFFEID's verdict on id against
// go-spiffe's spiffeid.FromString, the reference implementation: both
// accept it with the same trust domain and path, or both refuse it. The
// one deliberate difference is the 2048-byte limit of SPIFFE ID §2.3,
// which go-spiffe does not enforce.
func agreeWithGoSPIFFE(t *testing.T, id, td, path string, err error) {
	t.Helper()
	ref, refErr := spiffeid.FromString(id)
	switch {
	case err == nil && refErr != nil:
		t.Errorf("ParseSPIFFEID accepts %q, go-spiffe refuses it: %v", id, refErr)
	case err != nil && refErr == nil && len(id) <= MaxSPIFFEIDLen:
		t.Errorf("ParseSPIFFEID refuses %q (%v), go-spiffe accepts it", id, err)
	case err == nil && (ref.TrustDomain().Name() != td || ref.Path() != path):
		t.Errorf("ParseSPIFFEID(%q) = %q %q, go-spiffe %q %q", id, td, path, ref.TrustDomain().Name(), ref.Path())
	}
}
