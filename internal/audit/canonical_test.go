package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// genericCanonical is the reference encoding: encoding/json, then
// CanonicalJSON, with the time rewritten to TimeFormat.
func genericCanonical(t *testing.T, ev Event) []byte {
	t.Helper()
	type alias Event
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		alias
		Time string `json:"time"`
	}{alias(ev), FormatTime(ev.Time)}); err != nil {
		t.Fatal(err)
	}
	out, err := CanonicalJSON(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCanonicalMatchesReference(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600))
	full := sampleEvent(3)
	full.ID = "evt_01hzx3k4q5r6s7t8v9w0xyzabc"
	full.Time = ts
	full.Decision = DecisionAllow
	full.Instance = &Instance{ID: "ins_1", Method: "k8s"}
	full.Delegation = &Delegation{Subject: "user:alice", Actors: []string{"agt_a", "agt_b"}, GrantID: "grt_1"}
	full.Task.Txn = "txn-1"
	events := map[string]Event{
		"minimal": {ID: "evt_x", Time: ts, Family: Admin, Type: "x", Outcome: Failure},
		"full":    full,
		"empty axes": {Time: ts, Family: Admin, Type: "t", Outcome: Success, Actor: &Actor{}, Agent: &Agent{},
			Instance: &Instance{}, Delegation: &Delegation{}, Task: &Task{}, Source: &Source{}},
		"odd strings": {Time: ts, Family: Admin, Type: "a\u2028b\x00\x1f\x7f<>&\"\\/é\xff", Outcome: Success,
			Reason: "\t\r\n\b\f", Details: map[string]any{"ü": "\U0001F600", "a\"b": 1}},
		"numbers": {Time: ts, Family: Admin, Type: "n", Outcome: Success, Details: map[string]any{
			"i": -0, "f": 1.5, "tiny": 1e-9, "huge": 1e300, "int_float": 3.0, "neg": -2.5e-7,
			"num": json.Number("123456789012345678901234567890"), "numf": json.Number("1.50"),
			"f32": float32(0.1), "i64": int64(math.MinInt64), "u64": uint64(math.MaxUint64),
		}},
		"structs in details": {Time: ts, Family: Admin, Type: "s", Outcome: Success, Details: map[string]any{
			"when": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "d": time.Second,
			"obj": struct {
				B string `json:"b"`
				A []int
			}{"x", []int{3, 1}},
			"strs": map[string]string{"b": "1", "a": "2"}, "list": []string{"z", "a"},
		}},
	}
	for name, ev := range events {
		t.Run(name, func(t *testing.T) {
			got, err := ev.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			want := genericCanonical(t, ev)
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("hand-written encoding differs from reference (-want +got):\n%s", diff)
			}
			again, err := CanonicalJSON(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, got) {
				t.Errorf("not idempotent:\n%s\n%s", got, again)
			}
			var v any
			if err := json.Unmarshal(got, &v); err != nil {
				t.Errorf("not valid JSON: %v", err)
			}
		})
	}
}

func TestCanonicalJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{ "b" : 1, "a" : [ 1 , 2 ] }`, `{"a":[1,2],"b":1}`},
		{`{"b":{"d":1,"c":2},"a":{}}`, `{"a":{},"b":{"c":2,"d":1}}`},
		{`"\u003c\u0026\u003e\/"`, `"<&>/"`},
		{`"\u2028\ud83d\ude00\u00e9"`, "\"\u2028\U0001F600é\""},
		{`"\u0000\u001F\u007f"`, `"\u0000\u001f` + "\x7f\""},
		{`[1.0, 1e2, 1E+2, -0, -0.0, 0.1, 1e-7, 123456789012345678901234567890, 1e21, 12e-1]`,
			`[1,100,100,-0,-0,0.1,1e-7,123456789012345678901234567890,1e+21,1.2]`},
		{`[true,false,null]`, `[true,false,null]`},
		{`{"é":1,"e":2,"z":3,"E":4}`, `{"E":4,"e":2,"z":3,"é":1}`},
	}
	for _, tt := range tests {
		got, err := CanonicalJSON([]byte(tt.in))
		if err != nil {
			t.Errorf("CanonicalJSON(%s): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("CanonicalJSON(%s) = %s, want %s", tt.in, got, tt.want)
		}
		again, err := CanonicalJSON(got)
		if err != nil || !bytes.Equal(again, got) {
			t.Errorf("not idempotent on %s: %s, %v", got, again, err)
		}
	}
}

func TestCanonicalJSONRejects(t *testing.T) {
	for _, in := range []string{
		``, `{`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":1}}`, `[1,]`, `{"a":1,}`, `01`, `1.`, `.5`, `-`, `1e`,
		`1e400`, `"\ud800"`, `"\udc00x"`, `"\ud800\u0041"`, "\"\xff\"", "\"a\nb\"", `"\x"`, `tru`, `nul`,
		`{} {}`, `{"a" 1}`, `{1:2}`, strings.Repeat("[", 40) + strings.Repeat("]", 40), `NaN`,
	} {
		if got, err := CanonicalJSON([]byte(in)); err == nil {
			t.Errorf("CanonicalJSON(%q) = %s, want an error", in, got)
		}
	}
}

func TestCanonicalRefusesBadDetails(t *testing.T) {
	ts := time.Now()
	for name, d := range map[string]any{
		"nan":      math.NaN(),
		"inf":      math.Inf(1),
		"chan":     make(chan int),
		"bad key":  map[string]any{"\xff": 1},
		"deep":     deep(40),
		"bad num":  json.Number("12abc"),
		"func":     func() {},
		"nan deep": []any{1, map[string]any{"x": math.NaN()}},
	} {
		t.Run(name, func(t *testing.T) {
			ev := Event{Time: ts, Family: Admin, Type: "x", Outcome: Success, Details: map[string]any{"v": d}}
			if _, err := ev.Canonical(); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func deep(n int) any {
	var v any = 1
	for range n {
		v = []any{v}
	}
	return v
}

func TestTimeFormat(t *testing.T) {
	ts := time.Date(2026, 3, 1, 13, 0, 0, 123456789, time.FixedZone("CET", 3600))
	if got, want := FormatTime(ts), "2026-03-01T12:00:00.123456Z"; got != want {
		t.Fatalf("FormatTime = %s, want %s", got, want)
	}
	if got, want := FormatTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), "2026-03-01T12:00:00.000000Z"; got != want {
		t.Fatalf("FormatTime = %s, want %s", got, want)
	}
	back, err := ParseTime("2026-03-01T12:00:00.123456Z")
	if err != nil || !back.Equal(ts.Truncate(time.Microsecond)) || back.Location() != time.UTC {
		t.Fatalf("ParseTime = %v, %v", back, err)
	}
	for _, bad := range []string{"2026-03-01T12:00:00Z", "2026-03-01T12:00:00.123Z", "2026-03-01T13:00:00.123456+01:00", "x"} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1.5,"x\u00e9",null,true]}`, `"\ud83d\ude00"`, `1e-7`, `{"a":{"b":{}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := CanonicalJSON(data)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q", out)
		}
		again, err := CanonicalJSON(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q → %q (%v)", out, again, err)
		}
	})
}
