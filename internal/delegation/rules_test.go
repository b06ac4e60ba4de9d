package delegation_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/delegation"
)

func TestNarrow(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	base := func() delegation.Bounds {
		return delegation.Bounds{
			GrantScopes: []string{"a", "b", "c"}, AgentScopes: []string{"b", "c", "d"},
			GrantAudiences: []string{"https://x", "https://y"}, AgentAudiences: []string{"https://y", "https://x", "https://z"},
			Now: now, TTL: 5 * time.Minute,
		}
	}
	for name, tc := range map[string]struct {
		edit    func(*delegation.Bounds)
		want    delegation.Narrowed
		wantErr error
	}{
		"grant ∩ agent": {func(*delegation.Bounds) {}, delegation.Narrowed{
			Scopes: []string{"b", "c"}, Audiences: []string{"https://x", "https://y"}, Expiry: now.Add(5 * time.Minute).Truncate(time.Second)}, nil},
		"subject scopes narrow": {func(b *delegation.Bounds) { b.SubjectScoped, b.SubjectScopes = true, []string{"c", "a"} },
			delegation.Narrowed{Scopes: []string{"c"}, Audiences: []string{"https://x", "https://y"}, Expiry: now.Add(5 * time.Minute).Truncate(time.Second)}, nil},
		"unscoped subject does not narrow": {func(b *delegation.Bounds) { b.SubjectScopes = []string{"zzz"} },
			delegation.Narrowed{Scopes: []string{"b", "c"}, Audiences: []string{"https://x", "https://y"}, Expiry: now.Add(5 * time.Minute).Truncate(time.Second)}, nil},
		"scoped subject with none": {func(b *delegation.Bounds) { b.SubjectScoped = true }, delegation.Narrowed{}, delegation.ErrScope},
		"request subset": {func(b *delegation.Bounds) {
			b.RequestScopes = []string{"c"}
			b.RequestAudiences = []string{"https://y"}
		},
			delegation.Narrowed{Scopes: []string{"c"}, Audiences: []string{"https://y"}, Expiry: now.Add(5 * time.Minute).Truncate(time.Second)}, nil},
		"request wider scope":    {func(b *delegation.Bounds) { b.RequestScopes = []string{"c", "d"} }, delegation.Narrowed{}, delegation.ErrScope},
		"request wider audience": {func(b *delegation.Bounds) { b.RequestAudiences = []string{"https://z"} }, delegation.Narrowed{}, delegation.ErrTarget},
		"no common scope":        {func(b *delegation.Bounds) { b.AgentScopes = []string{"d"} }, delegation.Narrowed{}, delegation.ErrScope},
		"no common audience":     {func(b *delegation.Bounds) { b.AgentAudiences = nil }, delegation.Narrowed{}, delegation.ErrTarget},
		"subject audience narrow": {func(b *delegation.Bounds) { b.SubjectAudience = []string{"https://y"} },
			delegation.Narrowed{Scopes: []string{"b", "c"}, Audiences: []string{"https://y"}, Expiry: now.Add(5 * time.Minute).Truncate(time.Second)}, nil},
		"subject expires first": {func(b *delegation.Bounds) { b.SubjectExpiry = now.Add(time.Minute) },
			delegation.Narrowed{Scopes: []string{"b", "c"}, Audiences: []string{"https://x", "https://y"}, Expiry: now.Add(time.Minute).Truncate(time.Second)}, nil},
		"grant expires first": {func(b *delegation.Bounds) {
			b.SubjectExpiry, b.GrantExpiry = now.Add(time.Minute), now.Add(30*time.Second)
		},
			delegation.Narrowed{Scopes: []string{"b", "c"}, Audiences: []string{"https://x", "https://y"}, Expiry: now.Add(30 * time.Second).Truncate(time.Second)}, nil},
		"no lifetime left": {func(b *delegation.Bounds) { b.SubjectExpiry = now.Add(400 * time.Millisecond) }, delegation.Narrowed{}, delegation.ErrLifetime},
	} {
		b := base()
		tc.edit(&b)
		got, err := delegation.Narrow(b)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.wantErr)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

func TestAct(t *testing.T) {
	var a *delegation.Act
	if a.Depth() != 0 || a.Actors() != nil {
		t.Errorf("nil chain: depth %d, actors %v", a.Depth(), a.Actors())
	}
	a = a.Push("spiffe://td/agent/a").Push("spiffe://td/agent/b")
	raw, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(raw), `{"sub":"spiffe://td/agent/b","act":{"sub":"spiffe://td/agent/a"}}`; got != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
	back, err := delegation.ParseAct(raw)
	if err != nil || !cmp.Equal(back.Actors(), []string{"spiffe://td/agent/b", "spiffe://td/agent/a"}) || !back.Contains("spiffe://td/agent/a") {
		t.Errorf("ParseAct = %+v, %v", back, err)
	}
	if got, err := delegation.ParseAct(nil); got != nil || err != nil {
		t.Errorf("ParseAct(nil) = %v, %v", got, err)
	}
	deep := &delegation.Act{Sub: "x"}
	for range delegation.MaxDepthCap {
		deep = deep.Push("y")
	}
	deepRaw, _ := json.Marshal(deep)
	for _, bad := range []string{`{}`, `{"sub":""}`, `{"sub":"a","act":{}}`, `[]`, `"a"`, `{"sub":1}`, string(deepRaw)} {
		if _, err := delegation.ParseAct(json.RawMessage(bad)); err == nil {
			t.Errorf("ParseAct(%s) accepted", bad)
		}
	}
}

func FuzzParseAct(f *testing.F) {
	f.Add([]byte(`{"sub":"a","act":{"sub":"b"}}`))
	f.Add([]byte(`{"sub":"a","act":null}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := delegation.ParseAct(b)
		if err != nil || a == nil {
			return
		}
		if a.Depth() < 1 || a.Depth() > delegation.MaxDepthCap {
			t.Fatalf("depth %d out of range", a.Depth())
		}
		raw, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := delegation.ParseAct(raw)
		if err != nil || !cmp.Equal(again.Actors(), a.Actors()) {
			t.Fatalf("round trip: %v, %v", again, err)
		}
	})
}
