package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/golden"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// goldenRecords seals fixed events into a chain without a store.
func goldenRecords(t testing.TB) []store.AuditRecord {
	t.Helper()
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	o := Origin{
		Actor:   Actor{Type: ActorAdmin, ID: "adm_01jndy7x5p0000000000000000"},
		Source:  Source{IP: "192.0.2.7", UserAgent: "agentid-cli/0.1"},
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	}
	created := o.Event(Issuance, "agent.created")
	created.ID = "evt_01jndy7x5p0000000000000001"
	created.Time = ts
	created.Agent = &Agent{ID: "agt_01jndy7x5p0000000000000001", Name: "billing-bot", SPIFFEID: "spiffe://example.org/agent/billing-bot"}
	created.Details = map[string]any{"purpose": "reconcile invoices", "max_ttl_s": 900, "owners": []string{"own_01jndy7x5p0000000000000001"}}

	failed := Origin{Source: Source{IP: "198.51.100.9", UserAgent: "curl/8.5 <x>"}}.Event(Authentication, "admin.authenticated")
	failed.ID = "evt_01jndy7x5p0000000000000002"
	failed.Time = ts.Add(1500 * time.Microsecond)
	failed.Outcome = Failure
	failed.Reason = "unknown admin token"

	decided := o.Event(Authorization, "decision.made")
	decided.ID = "evt_01jndy7x5p0000000000000003"
	decided.Time = ts.Add(2 * time.Second)
	decided.Decision = DecisionConditional
	decided.Agent = &Agent{ID: "agt_01jndy7x5p0000000000000001"}
	decided.Instance = &Instance{ID: "ins_01jndy7x5p0000000000000001", Method: "k8s"}
	decided.Delegation = &Delegation{Subject: "user:alice@example.org", Actors: []string{"agt_01jndy7x5p0000000000000001"}, GrantID: "grt_01jndy7x5p0000000000000001"}
	decided.Task.Scope = "invoices:write"
	decided.Task.ActionClasses = []string{"write"}
	decided.Task.Txn = "txn-42"
	decided.Task.ReasoningRef = "sha256:9f86d081"
	decided.Details = map[string]any{"policies": []string{"pol_01jndy7x5p0000000000000001"}, "amount_eur": 1250.5, "approval_required": true}

	return sealChain(t, []Event{created, failed, decided})
}

func TestExportGolden(t *testing.T) {
	recs := goldenRecords(t)
	var buf bytes.Buffer
	for _, r := range recs {
		if err := WriteExportLine(&buf, r); err != nil {
			t.Fatal(err)
		}
	}
	golden.File(t, "export.jsonl", buf.Bytes())

	// Every line parses back to the record, and the stream verifies.
	v := NewVerifier(VerifierParams{})
	i := 0
	for line := range bytes.Lines(buf.Bytes()) {
		got, err := ParseExportLine(line)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(recs[i], got); diff != "" {
			t.Errorf("line %d round trip (-want +got):\n%s", i+1, diff)
		}
		if err := v.Add(got); err != nil {
			t.Fatal(err)
		}
		i++
	}
	if rep := v.Finish(); !rep.OK || rep.Events != 3 {
		t.Fatalf("%+v", rep)
	}
}

// TestExportLineReformatted: a SIEM may re-serialise lines (other key
// order, whitespace, escapes); they still verify.
func TestExportLineReformatted(t *testing.T) {
	recs := goldenRecords(t)
	line := AppendExportLine(nil, recs[2])
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	pretty, err := json.MarshalIndent(m, "", "  ") // sorted, indented, HTML-escaped
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseExportLine(bytes.ReplaceAll(pretty, []byte("\n"), []byte(" ")))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(recs[2], got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestParseExportLineExactNames: the indexed columns come from members
// with their exact names; a member whose name differs only in case is
// not one of them (and breaks the hash, which the verifier reports).
func TestParseExportLineExactNames(t *testing.T) {
	line := AppendExportLine(nil, goldenRecords(t)[2])
	for _, m := range []string{"type", "family", "outcome"} {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil {
			t.Fatal(err)
		}
		obj[strings.ToUpper(m[:1])+m[1:]] = obj[m]
		delete(obj, m)
		renamed, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseExportLine(renamed)
		if err != nil {
			t.Fatalf("%s renamed: %v", m, err)
		}
		cols := map[string]string{"type": got.Type, "family": got.Family, "outcome": got.Outcome}
		if cols[m] != "" {
			t.Errorf("%s renamed: column = %q, want empty", m, cols[m])
		}
	}
}

func TestParseExportLineRejects(t *testing.T) {
	good := string(bytes.TrimSpace(AppendExportLine(nil, goldenRecords(t)[0])))
	replace := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	for name, line := range map[string]string{
		"empty":           "",
		"not an object":   "[1]",
		"no seq":          replace(`"seq":1,`, ""),
		"seq zero":        replace(`"seq":1`, `"seq":0`),
		"seq fraction":    replace(`"seq":1`, `"seq":1.5`),
		"seq string":      replace(`"seq":1`, `"seq":"1"`),
		"seq huge":        replace(`"seq":1`, `"seq":99999999999999999999`),
		"duplicate seq":   replace(`"seq":1`, `"seq":1,"seq":2`),
		"duplicate key":   replace(`"family":"issuance"`, `"family":"issuance","family":"admin"`),
		"no hash":         good[:strings.Index(good, `,"hash"`)] + "}",
		"short hash":      replace(`"hash":"`, `"hash":"00`),
		"hash not hex":    replace(`"prev_hash":"0`, `"prev_hash":"g`),
		"trailing data":   good + " {}",
		"time format":     replace(`.000000Z`, `Z`),
		"id not a string": replace(`"id":"evt_01jndy7x5p0000000000000001"`, `"id":5`),
		"invalid utf-8":   replace("billing-bot", "billing-\xff"),
		"too long":        good[:len(good)-1] + `,"x":"` + strings.Repeat("a", MaxExportLineSize) + `"}`,
		"too deep":        good[:len(good)-1] + `,"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseExportLine([]byte(line)); !errors.Is(err, ErrBadExport) {
				t.Fatalf("error = %v, want ErrBadExport", err)
			}
		})
	}
}

func FuzzParseExportLine(f *testing.F) {
	for _, r := range goldenRecords(f) {
		f.Add(bytes.TrimSpace(AppendExportLine(nil, r)))
	}
	f.Add([]byte(`{"seq":1,"prev_hash":"","hash":""}`))
	f.Add([]byte(`{"seq":1e3,"a":[{"b":"\ud83d\ude00"}],"time":5}`))
	f.Add([]byte(`{"seq":31,"details":{"through_seq":30},"family":"admin","type":"audit.pruned","prev_hash":"00","hash":"00"}`))
	f.Add([]byte(`{"seq":31,"details":{"through_seq":"x"},"type":"audit.pruned","prev_hash":"00","hash":"00"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, err := ParseExportLine(line)
		if err != nil {
			if !errors.Is(err, ErrBadExport) {
				t.Fatalf("error %v does not match ErrBadExport", err)
			}
			return
		}
		if canon, err := CanonicalJSON(rec.Body); err != nil || !bytes.Equal(canon, rec.Body) {
			t.Fatalf("body not canonical: %q (%v)", rec.Body, err)
		}
		again, err := ParseExportLine(AppendExportLine(nil, rec))
		if err != nil {
			t.Fatalf("re-export does not parse: %v", err)
		}
		if diff := cmp.Diff(rec, again); diff != "" {
			t.Fatalf("re-export differs (-first +second):\n%s", diff)
		}
		v := NewVerifier(VerifierParams{Partial: true})
		_ = v.Add(rec)
		_ = v.Finish()
		// A whole-trail verifier, as for a pruned trail (ADR 0018).
		v = NewVerifier(VerifierParams{Checkpoints: []store.Checkpoint{{Seq: rec.Seq - 1, Hash: rec.PrevHash}}})
		_ = v.Add(rec)
		_ = v.Finish()
	})
}
