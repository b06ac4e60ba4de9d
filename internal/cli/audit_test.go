package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/sdk/admin"
)

// testTrail is a sealed audit trail as the admin API serves it.
type testTrail struct {
	lines []string // export lines, without newlines
	cps   []admin.AuditCheckpoint
	keys  []admin.AuditKey
	pub   ed25519.PublicKey
	priv  ed25519.PrivateKey
	// prunedAt, when not 0, makes event prunedAt an audit.pruned event
	// recording pruning through prunedThrough.
	prunedAt, prunedThrough int
}

// makeTrail seals n events at t0, t0+1m, … with a signed checkpoint every
// `every` events.
func makeTrail(t *testing.T, n, every int) *testTrail {
	t.Helper()
	return makeTrailPruned(t, n, every, 0, 0)
}

// makeTrailPruned is makeTrail whose event prunedAt records a prune
// through prunedThrough (nothing is removed).
func makeTrailPruned(t *testing.T, n, every, prunedAt, prunedThrough int) *testTrail {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	tr := &testTrail{priv: priv, pub: priv.Public().(ed25519.PublicKey), prunedAt: prunedAt, prunedThrough: prunedThrough}
	tr.keys = []admin.AuditKey{{ID: audit.FirstKeyID, Algorithm: audit.KeyAlgorithm,
		PublicKey: hex.EncodeToString(tr.pub), CreatedAt: t0}}
	prev := make([]byte, audit.HashSize)
	for i := 1; i <= n; i++ {
		tr.lines = append(tr.lines, tr.seal(t, i, prev))
		rec, err := audit.ParseExportLine([]byte(tr.lines[i-1]))
		if err != nil {
			t.Fatal(err)
		}
		prev = rec.Hash
		if i%every == 0 {
			tr.checkpoint(int64(i), rec.Hash)
		}
	}
	return tr
}

func (tr *testTrail) seal(t *testing.T, i int, prev []byte) string {
	t.Helper()
	at := t0.Add(time.Duration(i) * time.Minute)
	id, err := recordid.New(recordid.Event, at, bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 16)))
	if err != nil {
		t.Fatal(err)
	}
	ev := audit.Event{ID: id, Time: at, Family: audit.Admin, Type: "agent.created", Outcome: audit.Success,
		Actor: &audit.Actor{Type: audit.ActorAdmin, ID: "adt_boot"},
		Agent: &audit.Agent{ID: "agt_01", Name: "ticket-triage"}}
	if i%3 == 0 {
		ev.Family, ev.Type, ev.Decision = audit.Authorization, "decision.made", audit.DecisionDeny
		ev.Actor = &audit.Actor{Type: audit.ActorAgent, ID: "agt_01"}
	}
	if i%4 == 0 {
		ev.Agent = nil
	}
	if i == tr.prunedAt {
		ev.Family, ev.Type, ev.Agent = audit.Admin, audit.PrunedType, nil
		ev.Details = map[string]any{"through_seq": tr.prunedThrough}
	}
	body, err := ev.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.Seal(ev, body, int64(i), prev)
	return strings.TrimSuffix(string(audit.AppendExportLine(nil, rec)), "\n")
}

func (tr *testTrail) checkpoint(seq int64, hash []byte) {
	at := t0.Add(time.Duration(seq)*time.Minute + time.Second)
	tr.cps = append(tr.cps, admin.AuditCheckpoint{Seq: seq, Hash: hex.EncodeToString(hash), Time: at,
		KeyID: audit.FirstKeyID, Signature: hex.EncodeToString(ed25519.Sign(tr.priv, audit.CheckpointMessage(seq, hash, at)))})
}

// install serves the trail (lines as given, possibly tampered) from f.
func (tr *testTrail) install(t *testing.T, f *fakeAPI, lines []string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.export = lines
	f.cps, f.keys, f.events = tr.cps, tr.keys, nil
	for _, l := range lines {
		var e admin.AuditEvent
		if err := json.Unmarshal([]byte(l), &e); err == nil {
			f.events = append(f.events, e)
		}
	}
}

func TestAuditVerifyIntact(t *testing.T) {
	tr := makeTrail(t, 12, 5)
	f := newFakeAPI()
	tr.install(t, f, tr.lines)
	srv := f.serve(t)

	r := run(t, srv.URL, "audit", "verify")
	wantCode(t, r, ExitOK)
	golden(t, "audit_verify_ok", r.stdout)

	r = run(t, srv.URL, "audit", "verify", "--public-key", hex.EncodeToString(tr.pub))
	wantCode(t, r, ExitOK)

	r = run(t, srv.URL, "-o", "json", "audit", "verify")
	wantCode(t, r, ExitOK)
	var out verifyOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if !out.OK || out.Events != 12 || out.Checkpoints != 2 || out.HeadSeq != 12 || out.LastCheckpointSeq != 10 {
		t.Errorf("json report = %+v", out)
	}
	if want := []verifyKey{{ID: audit.FirstKeyID, PublicKey: hex.EncodeToString(tr.pub)}}; !slices.Equal(out.Keys, want) {
		t.Errorf("keys = %v, want %v", out.Keys, want)
	}
}

// TestAuditVerifyPruned: a trail that starts after a checkpoint verifies
// when an audit.pruned event records the prune (ADR 0018), and not
// without one.
func TestAuditVerifyPruned(t *testing.T) {
	for _, recorded := range []bool{true, false} {
		at := 11
		if !recorded {
			at = 0
		}
		tr := makeTrailPruned(t, 12, 5, at, 5)
		tr.cps = slices.DeleteFunc(tr.cps, func(c admin.AuditCheckpoint) bool { return c.Seq < 5 })
		f := newFakeAPI()
		tr.install(t, f, tr.lines[5:])
		srv := f.serve(t)
		r := run(t, srv.URL, "-o", "json", "audit", "verify")
		var out verifyOutput
		_ = json.Unmarshal([]byte(r.stdout), &out)
		if !recorded {
			wantCode(t, r, ExitTampered)
			if out.OK || !strings.Contains(out.Problem, audit.PrunedType) {
				t.Errorf("unrecorded prune: %+v", out)
			}
			continue
		}
		wantCode(t, r, ExitOK)
		if !out.OK || out.PrunedThrough != 5 || out.FirstSeq != 6 || out.Events != 7 {
			t.Errorf("recorded prune: %+v", out)
		}
		r = run(t, srv.URL, "audit", "verify")
		wantCode(t, r, ExitOK)
		contains(t, "verify output", r.stdout, "Pruned through seq 5")
	}
}

func TestAuditVerifyEmptyTrail(t *testing.T) {
	f := newFakeAPI()
	f.export = []string{}
	srv := f.serve(t)
	r := run(t, srv.URL, "audit", "verify")
	wantCode(t, r, ExitOK)
	contains(t, "stdout", r.stdout, "no events yet")
}

func TestAuditVerifyTampered(t *testing.T) {
	tr := makeTrail(t, 12, 5)
	edited := slices.Clone(tr.lines)
	edited[3] = strings.Replace(edited[3], `"agent.created"`, `"agent.updated"`, 1)
	otherKey := hex.EncodeToString(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)).Public().(ed25519.PublicKey))

	for _, tc := range []struct {
		name    string
		lines   []string
		args    []string
		wantSeq string
		wantMsg string
	}{
		{"edited", edited, nil, "first bad seq 4:", "row edited"},
		{"deleted", slices.Delete(slices.Clone(tr.lines), 4, 5), nil, "first bad seq 5:", "event 5 is missing"},
		{"inserted", slices.Insert(slices.Clone(tr.lines), 3, tr.lines[2]), nil, "first bad seq 4:", "seq 3 follows seq 3"},
		{"reordered", swap(tr.lines, 5, 6), nil, "first bad seq 6:", "seq 7 follows seq 5"},
		{"truncated", tr.lines[:8], nil, "first bad seq 9:", "truncated"},
		{"malformed", append(slices.Clone(tr.lines[:2]), "{not json"), nil, "first bad seq 3:", "malformed export line after seq 2"},
		{"first event missing", tr.lines[1:], nil, "first bad seq 1:", "event 1 is missing"},
		{"unpinned key", tr.lines, []string{"--public-key", otherKey}, "first bad seq 5:", "unknown or untrusted key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI()
			tr.install(t, f, tc.lines)
			srv := f.serve(t)
			r := run(t, srv.URL, append([]string{"audit", "verify"}, tc.args...)...)
			wantCode(t, r, ExitTampered)
			contains(t, "stderr", r.stderr, "audit trail does NOT verify", tc.wantSeq, tc.wantMsg)
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

func TestAuditVerifyBadPublicKeyFlag(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "audit", "verify", "--public-key", "abcd")
	wantCode(t, r, ExitUsage)
	if len(f.requests) != 0 {
		t.Errorf("requests = %v, want none", f.requests)
	}
}

func swap(lines []string, i, j int) []string {
	s := slices.Clone(lines)
	s[i], s[j] = s[j], s[i]
	return s
}

func TestAuditExportStreamsLinesVerbatim(t *testing.T) {
	tr := makeTrail(t, 4, 5)
	f := newFakeAPI()
	tr.install(t, f, tr.lines)
	srv := f.serve(t)
	r := run(t, srv.URL, "-o", "json", "audit", "export", "--since", "2025-06-01T12:02:00Z", "--family", "admin", "--agent", "ticket-triage")
	wantCode(t, r, ExitOK)
	if want := strings.Join(tr.lines, "\n") + "\n"; r.stdout != want {
		t.Errorf("stdout differs from the server's lines:\n got %q\nwant %q", r.stdout, want)
	}
	want := "GET /v1/audit/export?agent=ticket-triage&family=admin&since=2025-06-01T12%3A02%3A00Z"
	if f.requests[0] != want {
		t.Errorf("request = %s, want %s", f.requests[0], want)
	}
}

// TestAuditExportOCSF: --format ocsf asks the server for OCSF records and
// prints them as they come.
func TestAuditExportOCSF(t *testing.T) {
	tr := makeTrail(t, 4, 5)
	var ocsf []string
	for _, l := range tr.lines {
		rec, err := audit.ParseExportLine([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		ocsf = append(ocsf, strings.TrimSuffix(string(audit.AppendOCSFLine(nil, rec, "test")), "\n"))
	}
	f := newFakeAPI()
	tr.install(t, f, ocsf)
	srv := f.serve(t)
	r := run(t, srv.URL, "audit", "export", "--format", "ocsf", "--family", "authorization")
	wantCode(t, r, ExitOK)
	if want := strings.Join(ocsf, "\n") + "\n"; r.stdout != want {
		t.Errorf("stdout differs from the server's lines:\n got %q\nwant %q", r.stdout, want)
	}
	if want := "GET /v1/audit/export?family=authorization&format=ocsf"; f.requests[0] != want {
		t.Errorf("request = %s, want %s", f.requests[0], want)
	}

	// --format jsonl is the default and is not sent.
	r = run(t, srv.URL, "audit", "export", "--format", "jsonl")
	wantCode(t, r, ExitOK)
	if want := "GET /v1/audit/export"; f.requests[1] != want {
		t.Errorf("request = %s, want %s", f.requests[1], want)
	}
}

// TestAuditExportOCSFOldServer: a server that ignores format (it predates
// OCSF export) and sends JSON Lines is an error, not a silent JSON Lines
// file named .ocsf.
func TestAuditExportOCSFOldServer(t *testing.T) {
	tr := makeTrail(t, 2, 5)
	f := newFakeAPI()
	tr.install(t, f, tr.lines)
	srv := f.serve(t)
	r := run(t, srv.URL, "audit", "export", "--format", "ocsf")
	wantCode(t, r, ExitError)
	if r.stdout != "" || !strings.Contains(r.stderr, "predates OCSF export") {
		t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestAuditExportBadFormat(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	for _, format := range []string{"xml", "OCSF", ""} {
		r := run(t, srv.URL, "audit", "export", "--format", format)
		wantCode(t, r, ExitUsage)
	}
	if len(f.requests) != 0 {
		t.Errorf("requests sent: %v", f.requests)
	}
}

func TestAuditQueryTableAndPaging(t *testing.T) {
	tr := makeTrail(t, 5, 5)
	f := newFakeAPI()
	tr.install(t, f, tr.lines)
	srv := f.serve(t)

	r := run(t, srv.URL, "audit", "query", "--trace-id", "4bf92f3577b34da6a3ce929d0e0e4736")
	wantCode(t, r, ExitOK)
	golden(t, "audit_query", r.stdout)
	if want := "GET /v1/audit/events?trace_id=4bf92f3577b34da6a3ce929d0e0e4736"; f.requests[0] != want {
		t.Errorf("request %s, want %s", f.requests[0], want)
	}

	r = run(t, srv.URL, "-o", "json", "audit", "query", "--all", "--page-size", "2")
	wantCode(t, r, ExitOK)
	var evs []admin.AuditEvent
	if err := json.Unmarshal([]byte(r.stdout), &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 || evs[4].Seq != 5 {
		t.Errorf("got %d events, want 5 in order", len(evs))
	}
}

func TestAuditQueryRelativeSince(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	before := time.Now()
	r := run(t, srv.URL, "audit", "query", "--since", "1h")
	wantCode(t, r, ExitOK)
	q := strings.TrimPrefix(f.requests[0], "GET /v1/audit/events?since=")
	q = strings.ReplaceAll(q, "%3A", ":")
	since, err := time.Parse(time.RFC3339Nano, q)
	if err != nil {
		t.Fatalf("request %s: %v", f.requests[0], err)
	}
	if d := before.Add(-time.Hour).Sub(since); d > time.Second || d < -5*time.Second {
		t.Errorf("--since 1h sent %s, want about %s", since, before.Add(-time.Hour))
	}
}

func TestAuditBadTimeIsUsageError(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "audit", "query", "--since", "yesterday")
	wantCode(t, r, ExitUsage)
}

func TestAuditTailLastN(t *testing.T) {
	tr := makeTrail(t, 12, 5)
	f := newFakeAPI()
	tr.install(t, f, tr.lines)
	srv := f.serve(t)
	r := run(t, srv.URL, "audit", "tail", "-n", "3")
	wantCode(t, r, ExitOK)
	golden(t, "audit_tail", r.stdout)
	// It starts near the newest checkpoint (seq 10) instead of seq 1.
	if want := "GET /v1/audit/events?after_seq=7"; !slices.Contains(f.requests, want) {
		t.Errorf("requests %v do not include %s", f.requests, want)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAuditTailFollow(t *testing.T) {
	tr := makeTrail(t, 14, 5)
	f := newFakeAPI()
	tr.install(t, f, tr.lines[:12])
	srv := f.serve(t)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, errb, done := startTailFollow(ctx, srv.URL)
	waitFor(t, out, `"seq":12`)
	tr.install(t, f, tr.lines) // two new events
	waitFor(t, out, `"seq":14`)
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	var seqs []int64
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e admin.AuditEvent
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		seqs = append(seqs, e.Seq)
	}
	if want := []int64{12, 13, 14}; !slices.Equal(seqs, want) {
		t.Errorf("seqs = %v, want %v", seqs, want)
	}
}

func waitFor(t *testing.T, b *syncBuffer, sub string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), sub) {
		if time.Now().After(deadline) {
			t.Fatalf("output never contained %q:\n%s", sub, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAuditTailFollowSurvivesOutage(t *testing.T) {
	tr := makeTrail(t, 14, 5)
	f := newFakeAPI()
	tr.install(t, f, tr.lines[:12])
	srv := f.serve(t)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, errb, done := startTailFollow(ctx, srv.URL)
	waitFor(t, out, `"seq":12`)
	f.mu.Lock()
	f.outage = 3
	f.mu.Unlock()
	waitFor(t, errb, "retrying")
	tr.install(t, f, tr.lines)
	waitFor(t, out, `"seq":14`)
	waitFor(t, errb, "reconnected")
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	if n := strings.Count(out.String(), `"seq":13`); n != 1 {
		t.Fatalf("event 13 printed %d times across the outage:\n%s", n, out.String())
	}
}

func TestAuditTailFollowStopsOnAuthFailure(t *testing.T) {
	tr := makeTrail(t, 3, 5)
	f := newFakeAPI()
	tr.install(t, f, tr.lines)
	srv := f.serve(t)
	out, errb, done := startTailFollow(t.Context(), srv.URL)
	waitFor(t, out, `"seq":3`)
	f.mu.Lock()
	f.outage, f.outageStatus = 1, 401 // the token was revoked
	f.mu.Unlock()
	select {
	case code := <-done:
		if code != ExitError {
			t.Fatalf("exit %d, want %d; stderr %s", code, ExitError, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail -f kept polling with a rejected token")
	}
}

// startTailFollow runs `audit tail -n 1 -f -o json` against url until ctx
// ends; done yields its exit code.
func startTailFollow(ctx context.Context, url string) (out, errb *syncBuffer, done <-chan int) {
	out, errb = &syncBuffer{}, &syncBuffer{}
	d := make(chan int, 1)
	go func() {
		d <- Run(ctx, []string{"--server", url, "--token", testToken, "-o", "json",
			"audit", "tail", "-n", "1", "-f", "--interval", "5ms"},
			Env{Stdout: out, Stderr: errb, Getenv: func(string) string { return "" }})
	}()
	return out, errb, d
}

// TestAuditPruneCommand drives agentid audit prune against a real server
// whose trail is younger than any cutoff it accepts: nothing is pruned,
// and a cutoff under an hour ago is refused.
func TestAuditPruneCommand(t *testing.T) {
	url, tok := realServer(t, nil)
	r := runAs(t, url, tok, "audit", "prune", "--before", "2h")
	wantCode(t, r, ExitOK)
	contains(t, "prune output", r.stdout, "Nothing to prune")
	r = runAs(t, url, tok, "-o", "json", "audit", "prune", "--before", "2h")
	wantCode(t, r, ExitOK)
	var rep admin.AuditPrune
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.ThroughSeq != 0 || rep.Events != 0 {
		t.Errorf("prune -o json = %s (%v)", r.stdout, err)
	}
	r = runAs(t, url, tok, "audit", "prune", "--before", "10m")
	wantCode(t, r, ExitError)
	contains(t, "too recent", r.stderr, "at least 1h0m0s ago")
	wantCode(t, runAs(t, url, tok, "audit", "prune"), ExitUsage)
}
