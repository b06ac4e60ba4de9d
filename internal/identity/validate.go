package identity

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Size limits. Every input the registry stores is bounded by one of them.
const (
	// MaxNameLen is the longest agent name: one DNS label.
	MaxNameLen = 63
	// MaxTrustDomainLen is the longest trust domain name (SPIFFE ID §2.3:
	// the URI host is at most 255 bytes).
	MaxTrustDomainLen = 255
	// MaxSPIFFEIDLen is the longest SPIFFE ID (SPIFFE ID §2.3).
	MaxSPIFFEIDLen = 2048
	// MaxOwners is the most owners one agent may have (at least one).
	MaxOwners = 16
	// MaxPurposeLen is the longest purpose, in bytes after trimming.
	MaxPurposeLen = 1024
	// MaxActionClasses is the most action classes one agent may hold.
	MaxActionClasses = 64
	// MaxActionClassLen is the longest action class token.
	MaxActionClassLen = 64
	// MaxAudiences is the most allowed audiences one agent may have.
	MaxAudiences = 32
	// MaxAudienceLen is the longest audience string or URI.
	MaxAudienceLen = 512
	// MaxScopes is the most OAuth scopes one agent may be granted.
	MaxScopes = 64
	// MaxScopeLen is the longest scope token.
	MaxScopeLen = 128
	// MaxLabels is the most labels one agent may carry.
	MaxLabels = 64
	// MaxLabelKeyLen is the longest label key: a DNS-subdomain prefix of at
	// most 253 bytes, "/", and a name of at most 63 bytes.
	MaxLabelKeyLen = 253 + 1 + 63
	// MaxLabelValueLen is the longest label value.
	MaxLabelValueLen = 256
	// MaxReasonLen is the longest reason given for a lifecycle transition.
	MaxReasonLen = 1024
	// MaxEmailLen is the longest owner email address (RFC 5321 path limit).
	MaxEmailLen = 254
	// MaxSubjectLen is the longest owner IdP subject.
	MaxSubjectLen = 255
	// MaxSubjectIssuerLen is the longest owner subject issuer URL.
	MaxSubjectIssuerLen = 512
	// MaxDisplayNameLen is the longest owner display name.
	MaxDisplayNameLen = 256
)

// Credential TTL bounds.
const (
	// DefaultMaxTTL is an agent's credential max TTL when neither the agent
	// nor Params.DefaultTTL sets one.
	DefaultMaxTTL = 15 * time.Minute
	// MinMaxTTL is the shortest credential max TTL an agent may have.
	MinMaxTTL = 10 * time.Second
	// DefaultMaxTTLCap is Params.MaxTTLCap when it is zero.
	DefaultMaxTTLCap = time.Hour
)

// SPIFFEIDScheme is the prefix of every SPIFFE ID.
const SPIFFEIDScheme = "spiffe://"

// agentPathPrefix is the path under which agent SPIFFE IDs live.
const agentPathPrefix = "/agent/"

// ValidateName reports whether name is a valid agent name: one lowercase DNS
// label, ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$. It returns a
// *ValidationError for field "name" otherwise. Safe on any input.
func ValidateName(name string) error {
	if name == "" {
		return invalid("name", "must not be empty")
	}
	if len(name) > MaxNameLen {
		return invalid("name", "must be at most %d characters", MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case isLowerAlnum(c):
		case c == '-' && i != 0 && i != len(name)-1:
		default:
			return invalid("name", "must be a lowercase DNS label: a-z, 0-9 and '-', starting and ending with a letter or digit")
		}
	}
	return nil
}

// ValidateTrustDomain reports whether td is a valid SPIFFE trust domain name
// (SPIFFE ID §2.1): 1 to 255 bytes of [a-z0-9.-_]. It returns a
// *ValidationError for field "trust_domain" otherwise.
func ValidateTrustDomain(td string) error {
	if td == "" {
		return invalid("trust_domain", "must not be empty")
	}
	if len(td) > MaxTrustDomainLen {
		return invalid("trust_domain", "must be at most %d bytes", MaxTrustDomainLen)
	}
	for i := 0; i < len(td); i++ {
		if !isTrustDomainChar(td[i]) {
			return invalid("trust_domain", "may contain only lowercase letters, digits, '.', '-' and '_'")
		}
	}
	return nil
}

// SPIFFEID returns the SPIFFE ID of the agent named agentName in
// trustDomain: spiffe://<trust-domain>/agent/<name>. It does not validate
// its inputs; with a valid trust domain and name the result is a valid
// SPIFFE ID of at most MaxSPIFFEIDLen bytes.
func SPIFFEID(trustDomain, agentName string) string {
	return SPIFFEIDScheme + trustDomain + agentPathPrefix + agentName
}

// ParseSPIFFEID splits a SPIFFE ID into its trust domain and path ("" or
// "/seg/…"), validating it per the SPIFFE ID spec: scheme "spiffe", a valid
// trust domain, no userinfo, port, query or fragment, path segments of
// [a-zA-Z0-9.-_] that are neither empty nor "." or "..", no trailing "/",
// at most MaxSPIFFEIDLen bytes. It returns a *ValidationError for field
// "spiffe_id" otherwise. Safe on any input.
func ParseSPIFFEID(id string) (trustDomain, path string, err error) {
	if len(id) > MaxSPIFFEIDLen {
		return "", "", invalid("spiffe_id", "must be at most %d bytes", MaxSPIFFEIDLen)
	}
	rest, ok := strings.CutPrefix(id, SPIFFEIDScheme)
	if !ok {
		return "", "", invalid("spiffe_id", "must start with %q", SPIFFEIDScheme)
	}
	td, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		td, path = rest[:i], rest[i:]
	}
	if err := ValidateTrustDomain(td); err != nil {
		return "", "", withField("spiffe_id", err)
	}
	if path == "" {
		return td, "", nil
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if err := validatePathSegment(seg); err != nil {
			return "", "", err
		}
	}
	return td, path, nil
}

// AgentName returns the agent name in spiffeID, which must be a valid
// SPIFFE ID of an agent in trustDomain (spiffe://<trustDomain>/agent/<name>
// with a valid name). It returns a *ValidationError for field "spiffe_id"
// otherwise.
func AgentName(trustDomain, spiffeID string) (string, error) {
	td, path, err := ParseSPIFFEID(spiffeID)
	if err != nil {
		return "", err
	}
	if td != trustDomain {
		return "", invalid("spiffe_id", "is not in trust domain %q", trustDomain)
	}
	name, ok := strings.CutPrefix(path, agentPathPrefix)
	if !ok {
		return "", invalid("spiffe_id", "path must be %s<name>", agentPathPrefix)
	}
	if err := ValidateName(name); err != nil {
		return "", withField("spiffe_id", err)
	}
	return name, nil
}

func validatePathSegment(seg string) error {
	switch seg {
	case "":
		return invalid("spiffe_id", "path segments must not be empty (no '//' and no trailing '/')")
	case ".", "..":
		return invalid("spiffe_id", "path segments must not be '.' or '..'")
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if !isLowerAlnum(c) && !isUpper(c) && c != '.' && c != '-' && c != '_' {
			return invalid("spiffe_id", "path segments may contain only letters, digits, '.', '-' and '_'")
		}
	}
	return nil
}

// NormalizePurpose trims surrounding white space from purpose and checks
// that the rest is non-empty, at most MaxPurposeLen bytes of valid UTF-8
// and free of control characters. It returns the trimmed purpose or a
// *ValidationError for field "purpose".
func NormalizePurpose(purpose string) (string, error) {
	p := strings.TrimSpace(purpose)
	if p == "" {
		return "", invalid("purpose", "is required: state the agent's business justification")
	}
	if len(p) > MaxPurposeLen {
		return "", invalid("purpose", "must be at most %d bytes", MaxPurposeLen)
	}
	if err := checkText(p); err != nil {
		return "", withField("purpose", err)
	}
	return p, nil
}

// NormalizeActionClasses validates action classes and returns them
// deduplicated and sorted (never nil). Each is a lowercase token of at most
// MaxActionClassLen bytes: a-z, 0-9 and '.', '_', ':', '-', starting and
// ending with a letter or digit. At most MaxActionClasses distinct classes.
// It returns a *ValidationError for field "action_classes[i]" or
// "action_classes".
func NormalizeActionClasses(classes []string) ([]string, error) {
	return normalizeSet("action_classes", classes, MaxActionClasses, validateActionClass)
}

// NormalizeAudiences validates allowed audiences and returns them
// deduplicated and sorted (never nil). Each is a non-empty string or URI of
// at most MaxAudienceLen bytes of valid UTF-8 without white space or
// control characters; one containing ':' must be an absolute URI. At most
// MaxAudiences distinct audiences. It returns a *ValidationError for field
// "audiences[i]" or "audiences".
func NormalizeAudiences(audiences []string) ([]string, error) {
	return normalizeSet("audiences", audiences, MaxAudiences, validateAudience)
}

// NormalizeScopes validates the OAuth scopes an agent may be granted and
// returns them deduplicated and sorted (never nil). Each is a scope-token
// of RFC 6749 §3.3, 1*( %x21 / %x23-5B / %x5D-7E ): printable ASCII
// without space, '"' and '\', of at most MaxScopeLen bytes. At most
// MaxScopes distinct scopes. It returns a *ValidationError for field
// "scopes[i]" or "scopes".
func NormalizeScopes(scopes []string) ([]string, error) {
	return normalizeSet("scopes", scopes, MaxScopes, validateScope)
}

// Permissions an agent may hold at agentid itself.
const (
	// PermissionIntrospect lets the agent call the token introspection
	// endpoint (RFC 7662) with its own client credentials.
	PermissionIntrospect = "introspect"
	// PermissionEvaluate lets the agent ask the decision point (the
	// AuthZEN endpoints) with its own access token.
	PermissionEvaluate = "evaluate"
	// PermissionImpersonate makes the agent's token exchanges issue tokens
	// without act: it acts as the subject (ADR 0014 addendum B).
	PermissionImpersonate = "impersonate"
	// PermissionSubscribe lets the agent manage its own Shared Signals
	// event streams and poll them with its own access token (ADR 0026).
	PermissionSubscribe = "subscribe"
)

// Permissions returns every permission an agent may hold, sorted.
func Permissions() []string {
	return []string{PermissionEvaluate, PermissionImpersonate, PermissionIntrospect, PermissionSubscribe}
}

// NormalizePermissions validates an agent's permissions, each one of
// Permissions(), and returns them deduplicated and sorted (never nil). It
// returns a *ValidationError for field "permissions[i]" or "permissions".
func NormalizePermissions(perms []string) ([]string, error) {
	return normalizeSet("permissions", perms, len(Permissions()), validatePermission)
}

func validateScope(s string) error {
	if s == "" {
		return invalid("", "must not be empty")
	}
	if len(s) > MaxScopeLen {
		return invalid("", "must be at most %d bytes", MaxScopeLen)
	}
	for i := 0; i < len(s); i++ {
		if !isScopeChar(s[i]) {
			return invalid("", "must be an OAuth scope token (RFC 6749 §3.3): printable ASCII without space, '\"' or '\\'")
		}
	}
	return nil
}

// isScopeChar reports whether c may appear in an RFC 6749 §3.3
// scope-token: %x21 / %x23-5B / %x5D-7E.
func isScopeChar(c byte) bool {
	return c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)
}

func validatePermission(p string) error {
	if !slices.Contains(Permissions(), p) {
		return invalid("", "must be one of %s", strings.Join(Permissions(), ", "))
	}
	return nil
}

func normalizeSet(field string, in []string, maxN int, check func(string) error) ([]string, error) {
	// Bound the work before looking at the values.
	if len(in) > 4*maxN {
		return nil, invalid(field, "must have at most %d entries", maxN)
	}
	out := make([]string, 0, len(in))
	for i, v := range in {
		if err := check(v); err != nil {
			return nil, withField(fmt.Sprintf("%s[%d]", field, i), err)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxN {
		return nil, invalid(field, "must have at most %d entries", maxN)
	}
	return out, nil
}

func validateActionClass(c string) error {
	if c == "" {
		return invalid("", "must not be empty")
	}
	if len(c) > MaxActionClassLen {
		return invalid("", "must be at most %d bytes", MaxActionClassLen)
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		edge := i == 0 || i == len(c)-1
		if !isLowerAlnum(b) && (edge || (b != '.' && b != '_' && b != ':' && b != '-')) {
			return invalid("", "must be a lowercase token: a-z, 0-9, '.', '_', ':' and '-', starting and ending with a letter or digit")
		}
	}
	return nil
}

func validateAudience(a string) error {
	if a == "" {
		return invalid("", "must not be empty")
	}
	if len(a) > MaxAudienceLen {
		return invalid("", "must be at most %d bytes", MaxAudienceLen)
	}
	if !utf8.ValidString(a) {
		return invalid("", "must be valid UTF-8")
	}
	for _, r := range a {
		if unicode.IsSpace(r) || unicode.IsControl(r) || isBidiControl(r) {
			return invalid("", "must not contain white space or control characters")
		}
	}
	if strings.Contains(a, ":") {
		u, err := url.Parse(a)
		if err != nil || u.Scheme == "" {
			return invalid("", "contains ':' but is not an absolute URI")
		}
	}
	return nil
}

// ValidateLabels checks an agent's labels: at most MaxLabels; keys like
// Kubernetes label keys (an optional lowercase DNS-subdomain prefix and
// "/", then a name of at most 63 bytes of [A-Za-z0-9._-] starting and
// ending with a letter or digit); values of at most MaxLabelValueLen bytes
// of valid UTF-8 without control characters (empty allowed). It returns a
// *ValidationError for field "labels". Safe on any input.
func ValidateLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return invalid("labels", "must have at most %d entries", MaxLabels)
	}
	// Check keys in sorted order so the error is deterministic.
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := ValidateLabelKey(k); err != nil {
			return err
		}
		if err := ValidateLabelValue(labels[k]); err != nil {
			return invalid("labels", "value of %s: %s", quote(k), reasonOf(err))
		}
	}
	return nil
}

// ValidateLabelKey checks one label key; see ValidateLabels.
func ValidateLabelKey(k string) error {
	if k == "" {
		return invalid("labels", "keys must not be empty")
	}
	if len(k) > MaxLabelKeyLen {
		return invalid("labels", "keys must be at most %d bytes", MaxLabelKeyLen)
	}
	name := k
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if !isDNSSubdomain(prefix) {
			return invalid("labels", "key %s: prefix must be a lowercase DNS subdomain of at most 253 bytes", quote(k))
		}
	}
	if name == "" || len(name) > 63 {
		return invalid("labels", "key %s: name must be 1 to 63 bytes", quote(k))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := isLowerAlnum(c) || isUpper(c)
		edge := i == 0 || i == len(name)-1
		if !alnum && (edge || (c != '.' && c != '_' && c != '-')) {
			return invalid("labels", "key %s: name may contain only letters, digits, '.', '_' and '-', starting and ending with a letter or digit", quote(k))
		}
	}
	return nil
}

// ValidateLabelValue checks one label value; see ValidateLabels.
func ValidateLabelValue(v string) error {
	if len(v) > MaxLabelValueLen {
		return invalid("labels", "values must be at most %d bytes", MaxLabelValueLen)
	}
	return withField("labels", checkText(v))
}

func isDNSSubdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if ValidateName(label) != nil {
			return false
		}
	}
	return true
}

// NormalizeEmail checks that email is one bare address (net/mail syntax, no
// display name or angle brackets) of at most MaxEmailLen bytes and returns
// it lowercased. It returns a *ValidationError for field "email".
func NormalizeEmail(email string) (string, error) {
	if email == "" {
		return "", invalid("email", "must not be empty")
	}
	if len(email) > MaxEmailLen {
		return "", invalid("email", "must be at most %d bytes", MaxEmailLen)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email || !strings.Contains(email, "@") {
		return "", invalid("email", "must be a plain email address such as alice@example.com")
	}
	if err := checkText(email); err != nil {
		return "", withField("email", err)
	}
	return strings.ToLower(email), nil
}

// checkText rejects invalid UTF-8, control characters and bidirectional
// formatting characters (which can make text display differently from
// what it is).
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return invalid("", "must be valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || isBidiControl(r) {
			return invalid("", "must not contain control characters")
		}
	}
	return nil
}

func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F || r == 0x061C
}

func isLowerAlnum(c byte) bool { return ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') }

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

func isTrustDomainChar(c byte) bool {
	return isLowerAlnum(c) || c == '.' || c == '-' || c == '_'
}

// quote renders untrusted input for an error message, bounded.
func quote(s string) string {
	const maxQuoted = 64
	if len(s) > maxQuoted {
		s = s[:maxQuoted] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func reasonOf(err error) string {
	if ve, ok := errors.AsType[*ValidationError](err); ok {
		return ve.Reason
	}
	return err.Error()
}
