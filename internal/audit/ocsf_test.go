package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/golden"
	"github.com/agentid/agentid/internal/store"
)

// ocsfEvents are events of every family, successes and failures, with the
// delegation and instance axes, and one of a type no table knows.
func ocsfEvents() []Event {
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	admin := Origin{
		Actor:   Actor{Type: ActorAdmin, ID: "adt_01jndy7x5p0000000000000000"},
		Source:  Source{IP: "192.0.2.7", UserAgent: "agentid-cli/0.1 <x>"},
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	}
	agentActor := Origin{
		Actor:   Actor{Type: ActorAgent, ID: "agt_01jndy7x5p0000000000000001"},
		Source:  Source{IP: "198.51.100.9", UserAgent: "agentid-go/0.1", Node: "node-1"},
		TraceID: "0af7651916cd43dd8448eb211c80319c",
	}
	bot := &Agent{ID: "agt_01jndy7x5p0000000000000001", Name: "billing-bot", SPIFFEID: "spiffe://example.org/agent/billing-bot"}
	inst := &Instance{ID: "ins_01jndy7x5p0000000000000001", Method: "k8s"}
	del := &Delegation{Subject: "own_01jndy7x5p0000000000000002", Actors: []string{"agt_01jndy7x5p0000000000000001"}, GrantID: "grt_01jndy7x5p0000000000000001"}
	var evs []Event
	add := func(o Origin, f Family, typ string, edit func(*Event)) {
		ev := o.Event(f, typ)
		ev.ID = "evt_01jndy7x5p00000000000000" + string(rune('a'+len(evs)/26)) + string(rune('a'+len(evs)%26))
		ev.Time = ts.Add(time.Duration(len(evs)) * 1500 * time.Microsecond)
		edit(&ev)
		evs = append(evs, ev)
	}
	add(admin, Issuance, "agent.created", func(ev *Event) {
		ev.Agent = bot
		ev.Details = map[string]any{"purpose": "reconcile invoices", "version": 1, "owners": []string{"own_01jndy7x5p0000000000000001"}}
	})
	add(agentActor, Issuance, "credential.issued", func(ev *Event) {
		ev.Agent, ev.Instance, ev.Delegation = bot, inst, del
		ev.Task.Scope = "invoices:read"
		ev.Task.Txn = "txn-42"
		ev.Task.ReasoningRef = "sha256:9f86d081"
		ev.Details = map[string]any{"kind": "access_token", "jti": "c0ffee", "ttl_s": 300, "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "audience": []string{"https://billing.example.org"}}
	})
	add(Origin{Source: agentActor.Source}, Authentication, "client.authenticated", func(ev *Event) {
		ev.Outcome, ev.Reason = Failure, "unknown client"
		ev.Details = map[string]any{"method": "private_key_jwt", "client_id": "nobody"}
	})
	add(agentActor, Authentication, "instance.attested", func(ev *Event) {
		ev.Agent, ev.Instance = bot, inst
		ev.Details = map[string]any{"method": "k8s", "attestor": "cluster-a", "instance_created": true}
	})
	add(admin, Authorization, "decision.made", func(ev *Event) {
		ev.Decision = DecisionConditional
		ev.Agent, ev.Instance, ev.Delegation = &Agent{ID: bot.ID}, inst, del
		ev.Task.ActionClasses = []string{"payments"}
		ev.Details = map[string]any{"action": "invoice.pay", "resource": map[string]any{"type": "invoice", "id": "42"},
			"policy_version": 4, "policy_ids": []string{"payments-need-approval"}, "obligations": []string{"approval"}}
	})
	add(admin, Authorization, "decision.made", func(ev *Event) {
		ev.Decision, ev.Outcome, ev.Reason = DecisionDeny, Failure, "resource.type is required"
		ev.Details = map[string]any{"action": "invoice.pay", "resource": map[string]any{"type": "", "id": "42"}, "policy_version": 4}
	})
	add(admin, Authorization, "admin.authorized", func(ev *Event) {
		ev.Decision, ev.Outcome, ev.Reason = DecisionDeny, Failure, "role auditor may not do this"
		ev.Details = map[string]any{"role": "auditor", "required_role": "admin", "token_name": "ci"}
	})
	add(admin, Issuance, "grant.created", func(ev *Event) {
		ev.Agent, ev.Delegation = bot, &Delegation{Subject: del.Subject, GrantID: del.GrantID}
		ev.Task.Scope = "invoices:read"
	})
	add(admin, Admin, "key.tainted", func(ev *Event) {
		ev.Details = map[string]any{"kid": "key_01jndy7x5p0000000000000001", "alg": "EdDSA", "purpose": "access_token"}
	})
	add(admin, Admin, "node.evicted", func(ev *Event) {
		ev.Reason = "decommissioned"
		ev.Details = map[string]any{"node_id": "nod_01jndy7x5p0000000000000001", "spiffe_id": "spiffe://example.org/agentid/node/a"}
	})
	add(Origin{Actor: Actor{Type: ActorSystem, ID: "federation"}}, Admin, "federation.bundle_refresh_failed", func(ev *Event) {
		ev.Outcome, ev.Reason = Failure, "three fetches failed"
		ev.Details = map[string]any{"trust_domain": "partner.example", "failures": 3}
	})
	add(admin, Admin, "widget.frobbed", func(ev *Event) {
		ev.Agent, ev.Instance = bot, inst
		ev.Details = map[string]any{"knob": 11}
	})
	add(agentActor, Issuance, "credential.issued", func(ev *Event) {
		ev.Agent = bot
		ev.Outcome, ev.Reason = Failure, "scope billing:admin is not allowed"
		ev.Details = map[string]any{"kind": "access_token", "grant_type": "client_credentials", "error": "invalid_scope"}
	})
	return evs
}

func ocsfRecords(t testing.TB) []store.AuditRecord {
	t.Helper()
	return sealChain(t, ocsfEvents())
}

func TestOCSFGolden(t *testing.T) {
	var buf bytes.Buffer
	for _, r := range ocsfRecords(t) {
		if err := WriteOCSFLine(&buf, r, "1.2.3"); err != nil {
			t.Fatal(err)
		}
	}
	golden.File(t, "ocsf.jsonl", buf.Bytes())
}

// checkOCSFBase fails unless line is one JSON object with the OCSF base
// attributes every record must carry, and returns it decoded.
func checkOCSFBase(t *testing.T, line []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	if dec.More() {
		t.Fatalf("more than one value: %s", line)
	}
	num := func(k string) int64 {
		t.Helper()
		n, ok := m[k].(json.Number)
		if !ok {
			t.Fatalf("%s missing or not a number: %s", k, line)
		}
		v, err := n.Int64()
		if err != nil {
			t.Fatalf("%s = %s: %v", k, n, err)
		}
		return v
	}
	class, activity := num("class_uid"), num("activity_id")
	if typ := num("type_uid"); typ != class*100+activity {
		t.Errorf("type_uid %d != class_uid %d * 100 + activity_id %d", typ, class, activity)
	}
	if cat := num("category_uid"); cat != class/1000 {
		t.Errorf("category_uid %d for class %d", cat, class)
	}
	num("time")
	num("severity_id")
	num("status_id")
	md, ok := m["metadata"].(map[string]any)
	if !ok {
		t.Fatalf("no metadata: %s", line)
	}
	if md["version"] != OCSFVersion {
		t.Errorf("metadata.version = %v", md["version"])
	}
	p, ok := md["product"].(map[string]any)
	if !ok || p["name"] != "agentid" || p["vendor_name"] == "" {
		t.Errorf("metadata.product = %v", md["product"])
	}
	if _, ok := md["sequence"].(json.Number); !ok {
		t.Errorf("metadata.sequence = %v", md["sequence"])
	}
	if _, ok := m["unmapped"].(map[string]any); !ok {
		t.Errorf("unmapped = %v", m["unmapped"])
	}
	return m
}

// TestOCSFRecords: every record has the base attributes, the classes and
// activities of the table, the axes where they map, and unmapped is the
// export line, which verifies.
func TestOCSFRecords(t *testing.T) {
	recs := ocsfRecords(t)
	v := NewVerifier(VerifierParams{})
	got := map[string][2]int64{}
	for _, rec := range recs {
		line := AppendOCSFLine(nil, rec, "1.2.3")
		if n := bytes.Count(line, []byte("\n")); n != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("%d newlines in %q", n, line)
		}
		m := checkOCSFBase(t, line)
		md := m["metadata"].(map[string]any)
		if md["uid"] != rec.ID || md["sequence"].(json.Number).String() != strconv.FormatInt(rec.Seq, 10) {
			t.Errorf("metadata = %v, want uid %s, sequence %d", md, rec.ID, rec.Seq)
		}
		if p := md["product"].(map[string]any); p["version"] != "1.2.3" {
			t.Errorf("product version = %v", p["version"])
		}
		c, _ := m["class_uid"].(json.Number).Int64()
		a, _ := m["activity_id"].(json.Number).Int64()
		got[rec.Type+"/"+rec.Outcome] = [2]int64{c, a}

		// unmapped is the export line: it parses back to rec and verifies.
		raw, err := json.Marshal(m["unmapped"])
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseExportLine(raw)
		if err != nil {
			t.Fatalf("unmapped does not parse as an export line: %v\n%s", err, raw)
		}
		if diff := cmp.Diff(rec, back); diff != "" {
			t.Errorf("seq %d: unmapped differs from the record (-want +got):\n%s", rec.Seq, diff)
		}
		if err := v.Add(back); err != nil {
			t.Fatal(err)
		}
	}
	if rep := v.Finish(); !rep.OK || rep.Events != int64(len(recs)) {
		t.Fatalf("%+v", rep)
	}
	want := map[string][2]int64{
		"agent.created/success":                    {3001, 1},
		"credential.issued/success":                {3002, 3},
		"client.authenticated/failure":             {3002, 1},
		"instance.attested/success":                {3002, 1},
		"decision.made/success":                    {6003, 99},
		"decision.made/failure":                    {6003, 99},
		"admin.authorized/failure":                 {6003, 99},
		"grant.created/success":                    {3001, 7},
		"key.tainted/success":                      {3004, 9},
		"node.evicted/success":                     {3004, 7},
		"federation.bundle_refresh_failed/failure": {3004, 3},
		"widget.frobbed/success":                   {0, 99},
		"credential.issued/failure":                {3002, 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("classes and activities (-want +got):\n%s", diff)
	}
}

// TestOCSFMapping spot-checks the attributes of the table's classes.
func TestOCSFMapping(t *testing.T) {
	recs := ocsfRecords(t)
	rec := func(i int) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(AppendOCSFLine(nil, recs[i], "dev"), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	path := func(m map[string]any, p string) any {
		var v any = m
		for _, k := range strings.Split(p, ".") {
			switch x := v.(type) {
			case map[string]any:
				v = x[k]
			case []any:
				if len(x) == 0 {
					return nil
				}
				v = x[0].(map[string]any)[k]
			default:
				return nil
			}
		}
		return v
	}
	for _, tc := range []struct {
		i    int
		attr string
		want any
	}{
		{0, "user.uid", "agt_01jndy7x5p0000000000000001"},
		{0, "user.uid_alt", "spiffe://example.org/agent/billing-bot"},
		{0, "user.type", "Service"},
		{0, "actor.user.type_id", 2.0},
		{0, "src_endpoint.ip", "192.0.2.7"},
		{0, "http_request.user_agent", "agentid-cli/0.1 <x>"},
		{0, "metadata.correlation_uid", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{1, "auth_protocol_id", 6.0},
		{1, "service.name", "agentid"},
		{1, "unmapped.delegation.grant_id", "grt_01jndy7x5p0000000000000001"},
		{1, "unmapped.instance.id", "ins_01jndy7x5p0000000000000001"},
		{1, "unmapped.task.txn", "txn-42"},
		{2, "status_id", 2.0},
		{2, "status_detail", "unknown client"},
		{2, "user.name", "nobody"},
		{2, "user.type_id", 0.0},
		{4, "action_id", 99.0},
		{4, "actor.authorizations.decision", "conditional"},
		{4, "actor.authorizations.policy.uid", "payments-need-approval"},
		{4, "actor.authorizations.policy.version", "4"},
		{4, "api.operation", "invoice.pay"},
		{4, "resources.type", "invoice"},
		{4, "metadata.profiles", []any{"security_control"}},
		{5, "action_id", 2.0},
		{5, "action", "Denied"},
		{6, "actor.user.uid", "adt_01jndy7x5p0000000000000000"},
		{7, "policy.uid", "grt_01jndy7x5p0000000000000001"},
		{8, "severity_id", 4.0},
		{8, "entity.uid", "key_01jndy7x5p0000000000000001"},
		{9, "comment", "decommissioned"},
		{9, "entity.type", "node"},
		{11, "class_name", "Base Event"},
		{11, "activity_name", "Other"},
		{11, "metadata.event_code", "widget.frobbed"},
		{11, "unmapped.details.knob", 11.0},
		{11, "actor", nil},
		{12, "status_detail", "scope billing:admin is not allowed"},
		{12, "user.name", "billing-bot"},
	} {
		if got := path(rec(tc.i), tc.attr); !cmp.Equal(got, tc.want) {
			t.Errorf("record %d (%s) %s = %#v, want %#v", tc.i, recs[tc.i].Type, tc.attr, got, tc.want)
		}
	}
}

// TestOCSFMalformedBody: a body that is not a canonical event still gives a
// record with the base attributes, the chain members and the body as
// raw_data.
func TestOCSFMalformedBody(t *testing.T) {
	base := ocsfRecords(t)[0]
	for name, body := range map[string]string{
		"empty":          "",
		"not json":       "{not json",
		"array":          `[1,2]`,
		"invalid utf-8":  "{\"id\":\"\xff\"}",
		"chain member":   `{"id":"evt_x","hash":"00"}`,
		"wrong types":    `{"id":5,"time":true,"type":["x"],"actor":"me","details":[1],"outcome":{}}`,
		"duplicate keys": `{"id":"a","id":"b"}`,
	} {
		t.Run(name, func(t *testing.T) {
			rec := base
			rec.Body = []byte(body)
			line := AppendOCSFLine(nil, rec, "dev")
			m := checkOCSFBase(t, line)
			if name == "wrong types" {
				if m["raw_data"] != nil {
					t.Errorf("raw_data for a canonical body: %s", line)
				}
				return
			}
			if body != "" && m["raw_data"] == nil {
				t.Errorf("no raw_data: %s", line)
			}
			if m["class_uid"].(json.Number).String() != "3001" { // rec.Type is agent.created
				t.Errorf("class from the indexed type: %s", line)
			}
		})
	}
}

func FuzzOCSFLine(f *testing.F) {
	for _, r := range ocsfRecords(f) {
		f.Add(r.Body, r.Type)
	}
	f.Add([]byte(`{"type":"decision.made","decision":"allow","details":{"policy_ids":[1,"a"],"resource":{"id":[]}}}`), "")
	f.Add([]byte(`{"type":"owner.created","details":{"id":"own_1","kind":"team"}}`), "owner.created")
	f.Add([]byte(`{"seq":1}`), "x")
	f.Add([]byte(`{"seQ":1}`), "\xf3")
	f.Add([]byte("\xff\x00"), "credential.issued")
	f.Fuzz(func(t *testing.T, body []byte, typ string) {
		rec := store.AuditRecord{Seq: 7, ID: "evt_x", Type: typ, Time: time.Unix(1, 0), Body: body,
			PrevHash: make([]byte, HashSize), Hash: bytes.Repeat([]byte{1}, HashSize)}
		line := AppendOCSFLine([]byte("prefix"), rec, "dev")
		if !bytes.HasPrefix(line, []byte("prefix")) {
			t.Fatal("dst not kept")
		}
		line = line[len("prefix"):]
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("not one line: %q", line)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("not a JSON object: %v\n%s", err, line)
		}
		var ids struct {
			Class    int `json:"class_uid"`
			Activity int `json:"activity_id"`
			Type     int `json:"type_uid"`
		}
		if err := json.Unmarshal(line, &ids); err != nil || ids.Type != ids.Class*100+ids.Activity {
			t.Fatalf("type_uid: %+v %v", ids, err)
		}
		// The chain members always travel in unmapped; a body that is an
		// event travels whole, and parses back to rec.
		var chain map[string]json.RawMessage // exact keys: a body may hold "seQ"
		if err := json.Unmarshal(m["unmapped"], &chain); err != nil ||
			string(chain["seq"]) != strconv.FormatInt(rec.Seq, 10) || string(chain["hash"]) != `"`+hex.EncodeToString(rec.Hash)+`"` {
			t.Fatalf("chain members lost: %s (%v)", m["unmapped"], err)
		}
		if back, err := ParseExportLine(m["unmapped"]); err == nil {
			if _, raw := m["raw_data"]; raw || !bytes.Equal(back.Body, mustCanonical(t, body)) {
				t.Fatalf("unmapped %s is not the body %q", m["unmapped"], body)
			}
		}
	})
}

func mustCanonical(t *testing.T, b []byte) []byte {
	t.Helper()
	c, err := CanonicalJSON(b)
	if err != nil {
		t.Fatalf("body parsed back but is not canonicalisable: %v", err)
	}
	return c
}
