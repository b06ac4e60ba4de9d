package identity

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

const testSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestNormalizeSelectors(t *testing.T) {
	tooMany := make([]string, 4*MaxSelectors+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("unix:uid:%d", i)
	}
	for name, tc := range map[string]struct {
		in     []string
		want   []string
		field  string
		reason string
	}{
		"nil":   {nil, []string{}, "", ""},
		"empty": {[]string{}, []string{}, "", ""},
		"sorted, deduped": {
			[]string{"unix:uid:1000", "unix:sha256:" + testSHA256, "unix:path:/usr/local/bin/x", "unix:gid:0", "unix:uid:1000"},
			[]string{"unix:gid:0", "unix:path:/usr/local/bin/x", "unix:sha256:" + testSHA256, "unix:uid:1000"}, "", ""},
		"bad uid": {[]string{"unix:uid:1000", "unix:uid:-1"}, nil, "selectors[1]",
			`"unix:uid:-1": uid must be a decimal number from 0 to 4294967295, without sign or leading zeros`},
		"leading zero":  {[]string{"unix:gid:007"}, nil, "selectors[0]", `"unix:gid:007": gid must be a decimal number`},
		"relative path": {[]string{"unix:path:bin/x"}, nil, "selectors[0]", `"unix:path:bin/x": path must be absolute`},
		"unclean path":  {[]string{"unix:path:/usr/bin/../x"}, nil, "selectors[0]", `path must be clean`},
		"NUL in path":   {[]string{"unix:path:/x\x00"}, nil, "selectors[0]", `"unix:path:/x\x00": path must not contain control characters`},
		"long path": {[]string{"unix:path:/" + strings.Repeat("a", 4096)}, nil, "selectors[0]",
			`"unix:path:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…": path must be at most 4096 bytes`},
		"upper-case hash": {[]string{"unix:sha256:" + strings.ToUpper(testSHA256)}, nil, "selectors[0]", "64 lowercase hex digits"},
		"unknown type":    {[]string{"k8s:ns:default"}, nil, "selectors[0]", `"k8s:ns:default": unknown type "k8s": the only type is unix`},
		"unknown kind":    {[]string{"unix:user:root"}, nil, "selectors[0]", `unknown unix kind "user"`},
		"no value":        {[]string{"uid:1000"}, nil, "selectors[0]", `unknown type "uid"`},
		"two uids": {[]string{"unix:uid:1001", "unix:uid:1000"}, nil, "selectors",
			`"unix:uid:1000" and "unix:uid:1001": a workload has one uid`},
		"two paths": {[]string{"unix:path:/a", "unix:uid:1", "unix:path:/b"}, nil, "selectors", `a workload has one path`},
		"too many":  {tooMany, nil, "selectors", "at most 32 entries"},
	} {
		got, err := NormalizeSelectors(tc.in)
		if tc.field == "" {
			if err != nil || !cmp.Equal(got, tc.want) {
				t.Errorf("%s: NormalizeSelectors(%q) = %q, %v; want %q", name, tc.in, got, err, tc.want)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field || !errors.Is(err, ErrInvalid) || !strings.Contains(ve.Reason, tc.reason) {
			t.Errorf("%s: NormalizeSelectors error = %v, want a ValidationError for %s containing %q", name, err, tc.field, tc.reason)
		}
	}
}

// TestAgentSelectors sets, changes and clears an agent's workload
// selectors, recording each change, and refuses bad ones changing
// nothing.
func TestAgentSelectors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		alice := e.owner("alice@example.com")
		a := e.agent("worker", alice.ID)
		if a.Selectors != nil {
			t.Fatalf("new agent has selectors %q", a.Selectors)
		}
		before := e.head()
		sels := []string{"unix:uid:1000", "unix:path:/usr/local/bin/worker"}
		got, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.Name, Selectors: &sels})
		want := []string{"unix:path:/usr/local/bin/worker", "unix:uid:1000"}
		if err != nil || !cmp.Equal(got.Selectors, want) || got.Version != 2 {
			t.Fatalf("set: %+v, %v", got, err)
		}
		evs := e.eventsAfter(before)
		if len(evs) != 1 || !cmp.Equal(evs[0].Details["changed"], []any{FieldSelectors}) ||
			!cmp.Equal(evs[0].Details[FieldSelectors], []any{"unix:path:/usr/local/bin/worker", "unix:uid:1000"}) {
			t.Errorf("set: events %+v", evs)
		}

		// The same set in another order: no change.
		snap := e.snapshot()
		same := []string{"unix:uid:1000", "unix:path:/usr/local/bin/worker", "unix:uid:1000"}
		if _, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, Selectors: &same}); err != nil {
			t.Fatal(err)
		}
		e.unchanged(snap, "same selectors")

		// Another field's update keeps them.
		purpose := "new purpose"
		kept, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, Purpose: &purpose})
		if err != nil || !cmp.Equal(kept.Selectors, want) {
			t.Fatalf("purpose update: %+v, %v", kept, err)
		}

		before = e.head()
		cleared, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, Selectors: &[]string{}})
		if err != nil || cleared.Selectors != nil || cleared.Version != 4 {
			t.Fatalf("clear: %+v, %v", cleared, err)
		}
		evs = e.eventsAfter(before)
		if len(evs) != 1 || !cmp.Equal(evs[0].Details[FieldSelectors], []any{}) {
			t.Errorf("clear: events %+v", evs)
		}

		snap = e.snapshot()
		bad := []string{"unix:uid:1000", "unix:uid:x"}
		_, err = e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, Selectors: &bad})
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "selectors[1]" || !strings.Contains(ve.Reason, `"unix:uid:x"`) {
			t.Errorf("bad selector: %v", err)
		}
		_, err = e.svc.CreateAgent(e.ctx, testOrigin(), CreateAgentParams{Name: "x", Owners: []string{alice.ID}, Purpose: "p",
			Selectors: []string{"unix:path:relative"}})
		if !errors.As(err, &ve) || ve.Field != "selectors[0]" {
			t.Errorf("create with a bad selector: %v", err)
		}
		e.unchanged(snap, "refused selectors")

		created, err := e.svc.CreateAgent(e.ctx, testOrigin(), CreateAgentParams{Name: "y", Owners: []string{alice.ID}, Purpose: "p",
			Selectors: []string{"unix:sha256:" + testSHA256, "unix:gid:0"}})
		if err != nil || !cmp.Equal(created.Selectors, []string{"unix:gid:0", "unix:sha256:" + testSHA256}) {
			t.Errorf("create with selectors: %+v, %v", created, err)
		}
	})
}
