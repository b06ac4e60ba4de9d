package selector

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

const (
	hashA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	hashB = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Selector
	}{
		{"unix:uid:0", Selector{TypeUnix, KindUID, "0"}},
		{"unix:uid:1000", Selector{TypeUnix, KindUID, "1000"}},
		{"unix:uid:4294967295", Selector{TypeUnix, KindUID, "4294967295"}},
		{"unix:gid:20", Selector{TypeUnix, KindGID, "20"}},
		{"unix:path:/usr/local/bin/x", Selector{TypeUnix, KindPath, "/usr/local/bin/x"}},
		{"unix:path:/", Selector{TypeUnix, KindPath, "/"}},
		{"unix:path:/opt/a:b/c d/ü", Selector{TypeUnix, KindPath, "/opt/a:b/c d/ü"}},
		{"unix:path:/" + strings.Repeat("a", MaxPathLen-1), Selector{TypeUnix, KindPath, "/" + strings.Repeat("a", MaxPathLen-1)}},
		{"unix:sha256:" + hashA, Selector{TypeUnix, KindSHA256, hashA}},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, diff)
		}
		if got.String() != tc.in {
			t.Errorf("Parse(%q).String() = %q", tc.in, got.String())
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		in, reason string
	}{
		{"", "must be type:value"},
		{"unix", "must be type:value"},
		{":uid:1", "must be type:value"},
		{"k8s:ns:default", `unknown type "k8s"`},
		{"UNIX:uid:1", `unknown type "UNIX"`},
		{"unix:uid", "must be unix:<kind>:<value>"},
		{"unix:user:root", `unknown unix kind "user"`},
		{"unix:UID:1", `unknown unix kind "UID"`},
		{"unix:uid:", "uid must be a decimal number"},
		{"unix:uid:-1", "uid must be a decimal number"},
		{"unix:uid:+1", "uid must be a decimal number"},
		{"unix:uid:01000", "without sign or leading zeros"},
		{"unix:uid:4294967296", "from 0 to 4294967295"},
		{"unix:uid:99999999999", "from 0 to 4294967295"},
		{"unix:uid:0x10", "uid must be a decimal number"},
		{"unix:uid: 1", "uid must be a decimal number"},
		{"unix:gid:abc", "gid must be a decimal number"},
		{"unix:path:", "path must be absolute"},
		{"unix:path:usr/bin/x", "path must be absolute"},
		{"unix:path:/usr//bin/x", `path must be clean (no '//', '.', '..' or trailing '/'): "/usr/bin/x"`},
		{"unix:path:/usr/bin/", "path must be clean"},
		{"unix:path:/usr/./bin", "path must be clean"},
		{"unix:path:/usr/../bin", "path must be clean"},
		{"unix:path:/usr/bin/x\x00", "control characters (NUL included)"},
		{"unix:path:/usr/bin/x\n", "control characters"},
		{"unix:path:/usr/\xffx", "valid UTF-8"},
		{"unix:path:/" + strings.Repeat("a", MaxPathLen), "at most 4096 bytes"},
		{"unix:sha256:" + strings.ToUpper(hashA), "64 lowercase hex digits"},
		{"unix:sha256:" + hashA[:63], "64 lowercase hex digits"},
		{"unix:sha256:" + hashA + "0", "64 lowercase hex digits"},
		{"unix:sha256:" + hashA[:63] + "g", "64 lowercase hex digits"},
	} {
		_, err := Parse(tc.in)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want an *Error wrapping ErrInvalid", tc.in, err)
			continue
		}
		if e.Selector != tc.in || !strings.Contains(e.Reason, tc.reason) {
			t.Errorf("Parse(%q): selector %q, reason %q; want reason containing %q", tc.in, e.Selector, e.Reason, tc.reason)
		}
		if !strings.Contains(err.Error(), quote(tc.in)) {
			t.Errorf("Parse(%q): error %q does not name the selector", tc.in, err)
		}
	}
}

func TestMatches(t *testing.T) {
	w := Workload{UID: 1000, GID: 100, PID: 4242, Path: "/usr/local/bin/x", SHA256: hashA}
	for _, tc := range []struct {
		name string
		sels []string
		w    Workload
		want bool
	}{
		{"no selectors", nil, w, false},
		{"empty list", []string{}, w, false},
		{"uid", []string{"unix:uid:1000"}, w, true},
		{"other uid", []string{"unix:uid:1001"}, w, false},
		{"uid 0", []string{"unix:uid:0"}, Workload{}, true},
		{"max uid", []string{"unix:uid:4294967295"}, Workload{UID: 1<<32 - 1}, true},
		{"gid", []string{"unix:gid:100"}, w, true},
		{"gid is not uid", []string{"unix:gid:1000"}, w, false},
		{"path", []string{"unix:path:/usr/local/bin/x"}, w, true},
		{"other path", []string{"unix:path:/usr/bin/x"}, w, false},
		{"path of a deleted file", []string{"unix:path:/usr/local/bin/x"}, Workload{Path: "/usr/local/bin/x (deleted)"}, false},
		{"unknown path", []string{"unix:path:/"}, Workload{}, false},
		{"sha256", []string{"unix:sha256:" + hashA}, w, true},
		{"other sha256", []string{"unix:sha256:" + hashB}, w, false},
		{"unknown sha256", []string{"unix:sha256:" + hashA}, Workload{UID: 1000}, false},
		{"upper-case workload sha256", []string{"unix:sha256:" + hashA}, Workload{SHA256: strings.ToUpper(hashA)}, false},
		{"all four hold", []string{"unix:gid:100", "unix:path:/usr/local/bin/x", "unix:sha256:" + hashA, "unix:uid:1000"}, w, true},
		{"AND: one fails", []string{"unix:uid:1000", "unix:path:/usr/bin/other"}, w, false},
		{"AND: two uids never match", []string{"unix:uid:1000", "unix:uid:1001"}, w, false},
		{"same selector twice", []string{"unix:uid:1000", "unix:uid:1000"}, w, true},
		{"invalid selector fails closed", []string{"unix:uid:1000", "unix:uid:01000"}, w, false},
		{"unknown type fails closed", []string{"unix:uid:1000", "k8s:ns:default"}, w, false},
		{"unclean path never matches", []string{"unix:path:/usr//bin/x"}, Workload{Path: "/usr//bin/x"}, false},
	} {
		if got := Matches(tc.sels, tc.w); got != tc.want {
			t.Errorf("%s: Matches(%q, %+v) = %v, want %v", tc.name, tc.sels, tc.w, got, tc.want)
		}
	}
}

func TestWorkloadSelectors(t *testing.T) {
	for _, tc := range []struct {
		w    Workload
		want []string
	}{
		{Workload{}, []string{"unix:gid:0", "unix:uid:0"}},
		{Workload{UID: 1000, GID: 100, PID: 7, Path: "/usr/local/bin/x", SHA256: hashA},
			[]string{"unix:gid:100", "unix:path:/usr/local/bin/x", "unix:sha256:" + hashA, "unix:uid:1000"}},
		{Workload{UID: 1, GID: 2, Path: "relative", SHA256: "ABC"}, []string{"unix:gid:2", "unix:uid:1"}},
	} {
		if diff := cmp.Diff(tc.want, tc.w.Selectors()); diff != "" {
			t.Errorf("%+v.Selectors() (-want +got):\n%s", tc.w, diff)
		}
	}
}

func TestSelect(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	agent := func(name string, state store.AgentState, exp time.Time, sels ...string) store.Agent {
		return store.Agent{ID: "agt_" + name, Name: name, State: state, ExpiresAt: exp, Selectors: sels}
	}
	w := Workload{UID: 1000, GID: 100, PID: 1, Path: "/usr/local/bin/x", SHA256: hashA}
	agents := []store.Agent{
		agent("zulu", store.AgentActive, time.Time{}, "unix:uid:1000"),
		agent("alpha", store.AgentActive, now.Add(time.Second), "unix:path:/usr/local/bin/x", "unix:uid:1000"),
		agent("mike", store.AgentActive, time.Time{}, "unix:sha256:"+hashA),
		agent("no-selectors", store.AgentActive, time.Time{}),
		agent("other-uid", store.AgentActive, time.Time{}, "unix:uid:0"),
		agent("and-fails", store.AgentActive, time.Time{}, "unix:uid:1000", "unix:gid:0"),
		agent("suspended", store.AgentSuspended, time.Time{}, "unix:uid:1000"),
		agent("deprovisioned", store.AgentDeprovisioned, time.Time{}, "unix:uid:1000"),
		agent("expired-now", store.AgentActive, now, "unix:uid:1000"),
		agent("expired", store.AgentActive, now.Add(-time.Hour), "unix:uid:1000"),
	}
	before := slices.Clone(agents)
	var names []string
	for _, a := range Select(agents, w, now) {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff([]string{"alpha", "mike", "zulu"}, names); diff != "" {
		t.Errorf("Select names (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, agents); diff != "" {
		t.Errorf("Select modified its input (-before +after):\n%s", diff)
	}
	if got := Select(agents, Workload{UID: 5}, now); got != nil {
		t.Errorf("Select for an unknown workload = %+v, want nil", got)
	}
	if got := Select(nil, w, now); got != nil {
		t.Errorf("Select(nil) = %+v, want nil", got)
	}
}

func TestUintIsAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { uintIs("4294967295", 1<<32-1) }); n != 0 {
		t.Errorf("uintIs allocates %v times", n)
	}
}

// FuzzParse checks that Parse accepts exactly the canonical selectors and
// that Matches agrees with the workload's own selectors: a valid selector
// holds for w exactly when it is one of w.Selectors().
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"unix:uid:1000", "unix:gid:0", "unix:path:/usr/local/bin/x", "unix:sha256:" + hashA,
		"unix:uid:01", "unix:uid:4294967296", "unix:path:/a/../b", "unix:path:/a\x00", "unix:sha256:ABC",
		"k8s:ns:default", "unix", "", "unix:path:/a:b",
	} {
		f.Add(s, uint32(1000), uint32(0), "/usr/local/bin/x", hashA)
	}
	f.Fuzz(func(t *testing.T, s string, uid, gid uint32, p, sum string) {
		w := Workload{UID: uid, GID: gid, Path: p, SHA256: sum}
		sel, err := Parse(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) || e.Selector != s || e.Reason == "" {
				t.Fatalf("Parse(%q) error %v is not a complete *Error", s, err)
			}
			if Matches([]string{s}, w) {
				t.Fatalf("Matches(%q) holds for an invalid selector", s)
			}
			return
		}
		if sel.String() != s || sel.Type != TypeUnix || !slices.Contains(Kinds(), sel.Kind) {
			t.Fatalf("Parse(%q) = %+v, which is not canonical", s, sel)
		}
		if got, want := Matches([]string{s}, w), slices.Contains(w.Selectors(), s); got != want {
			t.Fatalf("Matches(%q, %+v) = %v, but it is among the workload's selectors %q: %v", s, w, got, w.Selectors(), want)
		}
		for _, ws := range w.Selectors() {
			if _, err := Parse(ws); err != nil {
				t.Fatalf("workload selector %q does not parse: %v", ws, err)
			}
		}
	})
}
