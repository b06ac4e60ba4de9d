// Package selector holds workload selectors: the rules on an agent record
// by which `agentid node` maps a calling workload, known by the Unix peer
// credentials of its Workload API connection, to the agents it runs as
// (ADR 0011, docs/spiffe.md#workload-selectors).
//
// A selector is "type:value". The one type today is unix, whose value is
// one of
//
//	uid:<decimal 0..4294967295>   the process's effective user id
//	gid:<decimal 0..4294967295>   the process's effective group id
//	path:<absolute clean path>    its executable, as the kernel reports it
//	sha256:<64 lowercase hex>     the SHA-256 of that executable
//
// in one canonical spelling, so that equal selectors are equal strings.
// Parse checks one selector; Matches and Select decide, without I/O and
// without a clock of their own, which agents a workload is. As in SPIRE,
// an agent's selectors are ANDed: a workload is the agent when every one
// of them holds, and an agent without selectors is no workload.
//
// Everything here is a pure function of its arguments, safe for
// concurrent use.
package selector

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/store"
)

// TypeUnix is the type of the selectors that match a process by its Unix
// peer credentials and executable.
const TypeUnix = "unix"

// Kind is what a unix selector is about.
type Kind string

// The kinds of unix selector.
const (
	// KindUID matches the process's effective user id.
	KindUID Kind = "uid"
	// KindGID matches the process's effective (primary) group id;
	// supplementary groups are not matched.
	KindGID Kind = "gid"
	// KindPath matches the absolute path of the process's executable.
	KindPath Kind = "path"
	// KindSHA256 matches the SHA-256 of the process's executable file.
	KindSHA256 Kind = "sha256"
)

// Kinds returns the kinds of unix selector, in the order the docs list
// them.
func Kinds() []Kind { return []Kind{KindUID, KindGID, KindPath, KindSHA256} }

const (
	// MaxPathLen is the longest executable path a path selector may name,
	// in bytes (Linux's PATH_MAX).
	MaxPathLen = 4096
	// sha256HexLen is the length of a SHA-256 in hex.
	sha256HexLen = 64
)

// ErrInvalid is wrapped by every error of Parse.
var ErrInvalid = errors.New("selector: invalid selector")

// Error says why a selector is refused. It wraps ErrInvalid. Selector is
// the input as given (possibly long or binary: quote it before showing
// it); Reason is safe to show.
type Error struct {
	Selector string
	Reason   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("selector: invalid selector %s: %s", quote(e.Selector), e.Reason)
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// Selector is a parsed selector: Type, Kind and Value as they appear in
// its canonical string Type:Kind:Value.
type Selector struct {
	Type  string
	Kind  Kind
	Value string
}

// String returns the selector's canonical string, the one Parse accepts.
func (s Selector) String() string { return s.Type + ":" + string(s.Kind) + ":" + s.Value }

// Parse parses one selector in its canonical spelling (see the package
// doc): type unix; uid and gid in decimal without sign or leading zeros;
// a path that is absolute, clean (path.Clean leaves it unchanged: no
// "//", ".", ".." or trailing "/"), at most MaxPathLen bytes of valid
// UTF-8 without control characters (NUL included); a SHA-256 of exactly
// 64 lowercase hex digits. For every selector it accepts,
// Parse(s).String() == s. Otherwise it returns an *Error. Safe on any
// input.
func Parse(s string) (Selector, error) {
	typ, rest, ok := strings.Cut(s, ":")
	if !ok || typ == "" {
		return Selector{}, refuse(s, "must be type:value, such as unix:uid:1000")
	}
	if typ != TypeUnix {
		return Selector{}, refuse(s, "unknown type %s: the only type is unix", quote(typ))
	}
	kind, value, ok := strings.Cut(rest, ":")
	if !ok {
		return Selector{}, refuse(s, "must be unix:<kind>:<value> with kind uid, gid, path or sha256")
	}
	sel := Selector{Type: typ, Kind: Kind(kind), Value: value}
	switch sel.Kind {
	case KindUID, KindGID:
		if !canonicalUint32(value) {
			return Selector{}, refuse(s, "%s must be a decimal number from 0 to 4294967295, without sign or leading zeros", kind)
		}
	case KindPath:
		if reason := checkPath(value); reason != "" {
			return Selector{}, refuse(s, "path %s", reason)
		}
	case KindSHA256:
		if !isLowerHex(value, sha256HexLen) {
			return Selector{}, refuse(s, "sha256 must be 64 lowercase hex digits (as sha256sum prints them)")
		}
	default:
		return Selector{}, refuse(s, "unknown unix kind %s: want uid, gid, path or sha256", quote(kind))
	}
	return sel, nil
}

// checkPath returns why p is not a valid executable path, "" when it is.
func checkPath(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return "must be absolute (start with '/')"
	case len(p) > MaxPathLen:
		return fmt.Sprintf("must be at most %d bytes", MaxPathLen)
	case !utf8.ValidString(p):
		return "must be valid UTF-8"
	case strings.ContainsFunc(p, unicode.IsControl):
		return "must not contain control characters (NUL included)"
	case path.Clean(p) != p:
		return fmt.Sprintf("must be clean (no '//', '.', '..' or trailing '/'): %s", quote(path.Clean(p)))
	}
	return ""
}

// canonicalUint32 reports whether s is a uint32 in decimal, as
// strconv.FormatUint spells it.
func canonicalUint32(s string) bool {
	if s == "" || len(s) > 10 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func refuse(s, format string, args ...any) *Error {
	return &Error{Selector: s, Reason: fmt.Sprintf(format, args...)}
}

// quote renders untrusted input for an error message, bounded.
func quote(s string) string {
	const maxQuoted = 64
	if len(s) > maxQuoted {
		s = s[:maxQuoted] + "…"
	}
	return strconv.Quote(s)
}

// Workload is what a node knows of a process calling its Workload API:
// the peer credentials of the Unix socket (SO_PEERCRED) and its
// executable. Path is the executable's absolute path as the kernel
// reports it (/proc/<pid>/exe: symbolic links resolved; a deleted or
// replaced file ends in " (deleted)"), "" when unknown. SHA256 is the
// SHA-256 of that file in lowercase hex, "" when unknown. An unknown Path
// or SHA256 matches no selector of its kind. PID is carried for the
// node's logs and checks; no selector matches it (process ids are
// reused).
type Workload struct {
	UID, GID uint32
	PID      int32
	Path     string
	SHA256   string
}

// Selectors returns the selectors that hold for w, in canonical spelling
// and sorted: its uid and gid, and its path and SHA-256 when known and
// valid. Matches(selectors, w) is true exactly when selectors is not
// empty and each of them is among these. For logs: "no agent for …".
func (w Workload) Selectors() []string {
	out := make([]string, 0, 4)
	out = append(out,
		TypeUnix+":"+string(KindUID)+":"+strconv.FormatUint(uint64(w.UID), 10),
		TypeUnix+":"+string(KindGID)+":"+strconv.FormatUint(uint64(w.GID), 10))
	if checkPath(w.Path) == "" {
		out = append(out, TypeUnix+":"+string(KindPath)+":"+w.Path)
	}
	if isLowerHex(w.SHA256, sha256HexLen) {
		out = append(out, TypeUnix+":"+string(KindSHA256)+":"+w.SHA256)
	}
	slices.Sort(out)
	return out
}

// Matches reports whether a workload with the selectors is w: selectors
// is not empty and every one of them is valid (see Parse) and holds for
// w (AND, as SPIRE matches a registration entry). An agent without
// selectors matches nothing, and so does one with a selector that does
// not parse (fail closed). A path selector holds when w.Path is the same
// string, byte for byte; a sha256 selector when w.SHA256 is.
func Matches(selectors []string, w Workload) bool {
	if len(selectors) == 0 {
		return false
	}
	for _, s := range selectors {
		sel, err := Parse(s)
		if err != nil || !sel.holds(w) {
			return false
		}
	}
	return true
}

// holds reports whether the valid selector s holds for w.
func (s Selector) holds(w Workload) bool {
	switch s.Kind {
	case KindUID:
		return uintIs(s.Value, w.UID)
	case KindGID:
		return uintIs(s.Value, w.GID)
	case KindPath:
		return w.Path != "" && s.Value == w.Path
	case KindSHA256:
		return s.Value == w.SHA256
	}
	return false
}

// uintIs reports whether the canonical decimal s is n, without
// allocating.
func uintIs(s string, n uint32) bool {
	var buf [10]byte
	return string(strconv.AppendUint(buf[:0], uint64(n), 10)) == s
}

// Select returns the agents that w is: those active, not expired at now
// (no ExpiresAt, or now before it) and whose selectors match w (Matches),
// sorted by name; nil when there are none, which the Workload API answers
// with PermissionDenied. agents is not modified.
func Select(agents []store.Agent, w Workload, now time.Time) []store.Agent {
	var out []store.Agent
	for _, a := range agents {
		if a.State != store.AgentActive || (!a.ExpiresAt.IsZero() && !now.Before(a.ExpiresAt)) {
			continue
		}
		if Matches(a.Selectors, w) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b store.Agent) int { return strings.Compare(a.Name, b.Name) })
	return out
}
