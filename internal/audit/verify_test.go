package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// exec runs raw SQL against a backend, as an attacker with database access
// would.
func exec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func readBody(t *testing.T, db *sql.DB, seq int64) []byte {
	t.Helper()
	var b []byte
	if err := db.QueryRowContext(context.Background(), `SELECT body FROM audit_events WHERE seq = $1`, seq).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

// rechain recomputes prev_hash and hash of every event from seq on, the way
// an attacker who edited seq would hide it.
func rechain(t *testing.T, db *sql.DB, from int64) {
	t.Helper()
	ctx := context.Background()
	var prev []byte
	if from == 1 {
		prev = make([]byte, HashSize)
	} else if err := db.QueryRowContext(ctx, `SELECT hash FROM audit_events WHERE seq = $1`, from-1).Scan(&prev); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT seq, body FROM audit_events WHERE seq >= $1 ORDER BY seq`, from)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		seq  int64
		body []byte
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.body); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		h := ChainHash(prev, r.seq, r.body)
		exec(t, db, `UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE seq = $3`, prev, h, r.seq)
		prev = h
	}
}

// TestTamper edits a 25-event trail with checkpoints at 10 and 20 the ways
// an attacker with database access could, on every backend, and checks that
// Verify names the first bad sequence number, and that verifying the export
// of the tampered store finds the same (an index column is not exported, so
// editing one is invisible there).
func TestTamper(t *testing.T) {
	tests := []struct {
		name      string
		tamper    func(t *testing.T, tr *trail)
		wantSeq   int64
		exportSeq int64 // -1: the export verifies
	}{
		{"edit a body", func(t *testing.T, tr *trail) {
			b := bytes.Replace(readBody(t, tr.db, 7), []byte("billing-bot"), []byte("billing-bat"), 1)
			exec(t, tr.db, `UPDATE audit_events SET body = $1 WHERE seq = 7`, b)
		}, 7, 7},
		{"edit an index column", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `UPDATE audit_events SET agent_id = 'agt_someoneelse' WHERE seq = 7`)
		}, 7, -1},
		{"edit the family column", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `UPDATE audit_events SET family = 'admin' WHERE seq = 12`)
		}, 12, -1},
		{"edit a hash", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `UPDATE audit_events SET hash = prev_hash WHERE seq = 7`)
		}, 7, 7},
		{"delete a middle row", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `DELETE FROM audit_events WHERE seq = 7`)
		}, 7, 7},
		{"delete the first row", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `DELETE FROM audit_events WHERE seq = 1`)
		}, 1, 1},
		{"insert a well-formed forged row in the middle", func(t *testing.T, tr *trail) {
			// Shift 7… up by one, then forge 7 chained to 6: the forged row
			// itself is consistent, so the break shows at 8.
			exec(t, tr.db, `UPDATE audit_events SET seq = -seq WHERE seq >= 7`)
			exec(t, tr.db, `UPDATE audit_events SET seq = 1 - seq WHERE seq < 0`)
			six, _, err := tr.store.ListAudit(context.Background(), store.AuditQuery{AfterSeq: 5}, store.Page{PageSize: 1})
			if err != nil {
				t.Fatal(err)
			}
			ev := sampleEvent(5) // same columns as 6, which the INSERT copies
			ev.ID = "evt_01hzx3k4q5r6s7t8v9w0xyzabc"
			ev.Time = six[0].Time
			ev.Reason = "forged"
			body, err := ev.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			var prev []byte
			if err := tr.db.QueryRow(`SELECT hash FROM audit_events WHERE seq = 6`).Scan(&prev); err != nil {
				t.Fatal(err)
			}
			exec(t, tr.db, `INSERT INTO audit_events (seq, id, time, family, type, outcome, agent_id, actor_id, trace_id, body, prev_hash, hash)
				SELECT 7, $1, time, family, type, outcome, agent_id, actor_id, trace_id, $2, $3, $4 FROM audit_events WHERE seq = 6`,
				ev.ID, body, prev, ChainHash(prev, 7, body))
		}, 8, 8},
		{"append a forged row with a bad hash", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `INSERT INTO audit_events (seq, id, time, family, type, outcome, agent_id, actor_id, trace_id, body, prev_hash, hash)
				SELECT 26, 'evt_forged', time, family, type, outcome, agent_id, actor_id, trace_id, body, hash, hash FROM audit_events WHERE seq = 25`)
		}, 26, 26},
		{"swap two rows", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `UPDATE audit_events SET seq = -1 WHERE seq = 7`)
			exec(t, tr.db, `UPDATE audit_events SET seq = 7 WHERE seq = 8`)
			exec(t, tr.db, `UPDATE audit_events SET seq = 8 WHERE seq = -1`)
		}, 7, 7},
		{"delete rows after a checkpoint", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `DELETE FROM audit_events WHERE seq >= 15`)
		}, 15, 15},
		{"corrupt a checkpoint signature", func(t *testing.T, tr *trail) {
			var sig []byte
			if err := tr.db.QueryRow(`SELECT signature FROM audit_checkpoints WHERE seq = 10`).Scan(&sig); err != nil {
				t.Fatal(err)
			}
			sig[5] ^= 0x40
			exec(t, tr.db, `UPDATE audit_checkpoints SET signature = $1 WHERE seq = 10`, sig)
		}, 10, 10},
		{"move a checkpoint to another event", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_events WHERE seq = 19) WHERE seq = 20`)
		}, 20, 20},
		{"checkpoint by an unknown key", func(t *testing.T, tr *trail) {
			exec(t, tr.db, `UPDATE audit_checkpoints SET key_id = 'ack_unknown' WHERE seq = 10`)
		}, 10, 10},
		{"rewrite the chain after an edit", func(t *testing.T, tr *trail) {
			b := bytes.Replace(readBody(t, tr.db, 7), []byte(`"outcome":"success"`), []byte(`"outcome":"failure"`), 1)
			exec(t, tr.db, `UPDATE audit_events SET body = $1, outcome = 'failure' WHERE seq = 7`, b)
			rechain(t, tr.db, 7)
		}, 10, 10},
	}
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ctx := context.Background()
					s, db := b.Open(t)
					tr := newTrail(t, s, db, 10)
					appendN(t, tr, 25)
					if rep, err := Verify(ctx, s, VerifyParams{}); err != nil || !rep.OK {
						t.Fatalf("before tampering: %+v, %v", rep, err)
					}
					tt.tamper(t, tr)
					rep, err := Verify(ctx, s, VerifyParams{PinnedKeys: []ed25519.PublicKey{tr.cp.PublicKey()}})
					if err != nil {
						t.Fatal(err)
					}
					if rep.OK || rep.FirstBadSeq != tt.wantSeq || rep.Problem == "" {
						t.Fatalf("Verify = %+v, want FirstBadSeq %d", rep, tt.wantSeq)
					}
					t.Logf("seq %d: %s", rep.FirstBadSeq, rep.Problem)
					exp := verifyExport(t, s)
					switch {
					case tt.exportSeq < 0 && !exp.OK:
						t.Fatalf("export: %+v, want OK", exp)
					case tt.exportSeq >= 0 && (exp.OK || exp.FirstBadSeq != tt.exportSeq):
						t.Fatalf("export: %+v, want FirstBadSeq %d", exp, tt.exportSeq)
					}
				})
			}
		})
	}
}

// verifyExport exports s as JSON Lines and verifies the parsed export.
func verifyExport(t *testing.T, s store.Store) Report {
	t.Helper()
	ctx := context.Background()
	var lines bytes.Buffer
	err := s.ScanAudit(ctx, store.AuditQuery{}, func(rec store.AuditRecord) error {
		return WriteExportLine(&lines, rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	cps, err := s.ListCheckpoints(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := s.ListAuditKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := VerifierParams{Checkpoints: cps}
	for _, k := range ks {
		k.Sealed = nil // only public halves leave the server
		p.Keys = append(p.Keys, k)
	}
	v := NewVerifier(p)
	for line := range bytes.Lines(lines.Bytes()) {
		rec, err := ParseExportLine(line)
		if err != nil {
			t.Fatalf("parse %s: %v", line, err)
		}
		if v.Add(rec) != nil {
			break
		}
	}
	return v.Finish()
}

func TestVerifyIntact(t *testing.T) {
	ctx := context.Background()
	s, db := openSQLite(t)
	tr := newTrail(t, s, db, 10)
	empty, err := Verify(ctx, s, VerifyParams{})
	if err != nil || !empty.OK || empty.Events != 0 || empty.HeadSeq != 0 {
		t.Fatalf("empty trail: %+v, %v", empty, err)
	}
	recs := appendN(t, tr, 35)
	rep, err := Verify(ctx, s, VerifyParams{PinnedKeys: []ed25519.PublicKey{tr.cp.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	want := Report{Events: 35, Checkpoints: 3, FirstSeq: 1, HeadSeq: 35, HeadHash: recs[34].Hash, LastCheckpointSeq: 30, OK: true}
	if !equalReport(rep, want) {
		t.Fatalf("Verify = %+v, want %+v", rep, want)
	}
	if exp := verifyExport(t, s); !equalReport(exp, want) {
		t.Fatalf("export = %+v, want %+v", exp, want)
	}
	// Pinning another key rejects the first checkpoint.
	other, _, _ := ed25519.GenerateKey(nil)
	rep, err = Verify(ctx, s, VerifyParams{PinnedKeys: []ed25519.PublicKey{other}})
	if err != nil || rep.OK || rep.FirstBadSeq != 10 {
		t.Fatalf("wrong pinned key: %+v, %v", rep, err)
	}
}

func equalReport(a, b Report) bool { return cmp.Equal(a, b) }

// TestVerifyReplacedKey shows why the CLI pins keys: an attacker who can
// write the database can replace the checkpoint key and re-sign; only a
// pinned key catches that.
func TestVerifyReplacedKey(t *testing.T) {
	ctx := context.Background()
	s, db := openSQLite(t)
	tr := newTrail(t, s, db, 10)
	appendN(t, tr, 25)
	b := bytes.Replace(readBody(t, db, 3), []byte("billing-bot"), []byte("billing-bat"), 1)
	exec(t, db, `UPDATE audit_events SET body = $1 WHERE seq = 3`, b)
	rechain(t, db, 3)
	pub, priv, _ := ed25519.GenerateKey(nil)
	exec(t, db, `UPDATE audit_keys SET public_key = $1`, []byte(pub))
	for _, seq := range []int64{10, 20} {
		var h []byte
		if err := db.QueryRow(`SELECT hash FROM audit_events WHERE seq = $1`, seq).Scan(&h); err != nil {
			t.Fatal(err)
		}
		cs, err := s.ListCheckpoints(ctx, seq-1)
		if err != nil {
			t.Fatal(err)
		}
		sig := ed25519.Sign(priv, CheckpointMessage(seq, h, cs[0].Time))
		exec(t, db, `UPDATE audit_checkpoints SET hash = $1, signature = $2 WHERE seq = $3`, h, sig, seq)
	}
	if rep, err := Verify(ctx, s, VerifyParams{}); err != nil || !rep.OK {
		t.Fatalf("unpinned: %+v, %v (the forgery is expected to pass)", rep, err)
	}
	rep, err := Verify(ctx, s, VerifyParams{PinnedKeys: []ed25519.PublicKey{tr.cp.PublicKey()}})
	if err != nil || rep.OK || rep.FirstBadSeq != 10 {
		t.Fatalf("pinned: %+v, %v", rep, err)
	}
}

// TestVerifierPartial verifies an export that starts mid-trail.
func TestVerifierPartial(t *testing.T) {
	ctx := context.Background()
	s, db := openSQLite(t)
	tr := newTrail(t, s, db, 10)
	recs := appendN(t, tr, 25)
	cps, err := s.ListCheckpoints(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := s.ListAuditKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run := func(p VerifierParams, from int) Report {
		v := NewVerifier(p)
		for _, r := range recs[from-1:] {
			if v.Add(r) != nil {
				break
			}
		}
		return v.Finish()
	}
	p := VerifierParams{Checkpoints: cps, Keys: ks, Partial: true}
	if rep := run(p, 11); !rep.OK || rep.FirstSeq != 11 || rep.Checkpoints != 2 || rep.Events != 15 {
		t.Fatalf("from 11 (anchored by checkpoint 10): %+v", rep)
	}
	if rep := run(p, 14); !rep.OK || rep.Checkpoints != 1 {
		t.Fatalf("from 14: %+v", rep)
	}
	p.Partial = false
	if rep := run(p, 14); rep.OK || rep.FirstBadSeq != 1 {
		t.Fatalf("from 14, not partial: %+v", rep)
	}
	// A forged prev_hash on the first event is caught by checkpoint 10.
	p.Partial = true
	forged := recs[10]
	forged.PrevHash = bytes.Repeat([]byte{1}, HashSize)
	forged.Hash = ChainHash(forged.PrevHash, forged.Seq, forged.Body)
	v := NewVerifier(p)
	if err := v.Add(forged); err == nil {
		t.Fatal("forged anchor accepted")
	}
	if rep := v.Finish(); rep.FirstBadSeq != 11 {
		t.Fatalf("forged anchor: %+v", rep)
	}
}

func TestVerifierStreamOrder(t *testing.T) {
	s, db := openSQLite(t)
	tr := newTrail(t, s, db, 1000)
	recs := appendN(t, tr, 5)
	for name, tc := range map[string]struct {
		order []int
		want  int64
	}{
		"duplicate":    {[]int{0, 1, 2, 2, 3, 4}, 4},
		"backwards":    {[]int{0, 1, 3, 2, 4}, 3},
		"starts at 2":  {[]int{1, 2, 3}, 1},
		"missing last": {[]int{0, 1, 2, 4}, 4},
	} {
		t.Run(name, func(t *testing.T) {
			v := NewVerifier(VerifierParams{})
			for _, i := range tc.order {
				if v.Add(recs[i]) != nil {
					break
				}
			}
			if rep := v.Finish(); rep.OK || rep.FirstBadSeq != tc.want {
				t.Fatalf("%+v, want FirstBadSeq %d", rep, tc.want)
			}
		})
	}
	// Add keeps returning the first error.
	v := NewVerifier(VerifierParams{})
	first := v.Add(recs[1])
	if first == nil || !errors.Is(v.Add(recs[0]), first) {
		t.Fatal("Add does not stick to the first error")
	}
}
