package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// The benchmarks behind docs/benchmarks.md. Each durable op is one
// store.Update holding one Recorder.Append on SQLite (WAL, synchronous=FULL)
// in a temporary directory; "writers" goroutines share b.N ops. Baselines
// measured in the same run: a raw fsync per op on the same file system, and
// the store's own append ceiling (AppendAudit with a pre-encoded body, no
// canonical encoding, no validation).

func benchTrail(b *testing.B) *trail {
	b.Helper()
	s, db := openSQLite(b)
	return newTrail(b, s, db, DefaultCheckpointEvery)
}

// runWriters runs b.N ops over n goroutines and reports events/s.
func runWriters(b *testing.B, n int, op func(ctx context.Context) error) {
	b.Helper()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range n {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

var writerCounts = []struct {
	name string
	n    int
}{{"writers=1", 1}, {"writers=32", 32}}

// BenchmarkDurableAppend is the headline: durable audit events per second.
func BenchmarkDurableAppend(b *testing.B) {
	for _, w := range writerCounts {
		b.Run(w.name, func(b *testing.B) {
			tr := benchTrail(b)
			ev := sampleEvent(1)
			b.ReportAllocs()
			runWriters(b, w.n, func(ctx context.Context) error {
				return tr.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
					_, err := tr.rec.Append(ctx, tx, ev)
					return err
				})
			})
		})
	}
}

// BenchmarkBaselineStoreAppend is the store's ceiling: the same Update and
// AppendAudit with a body encoded once, outside the loop.
func BenchmarkBaselineStoreAppend(b *testing.B) {
	for _, w := range writerCounts {
		b.Run(w.name, func(b *testing.B) {
			s, _ := openSQLite(b)
			ev := sampleEvent(1)
			ev.Time = time.Now()
			body, err := ev.Canonical()
			if err != nil {
				b.Fatal(err)
			}
			var ids atomic.Int64
			runWriters(b, w.n, func(ctx context.Context) error {
				return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
					_, err := tx.AppendAudit(ctx, func(seq int64, prev []byte) (store.AuditRecord, error) {
						h := sha256.Sum256(prev)
						return store.AuditRecord{Seq: seq, ID: "evt_" + string(rune(ids.Add(1))) + time.Now().String(),
							Time: ev.Time, Family: "issuance", Type: "x", Outcome: "success", Body: body, PrevHash: prev, Hash: h[:]}, nil
					})
					return err
				})
			})
		})
	}
}

// BenchmarkBaselineFsync is one write and fsync per op on the file system
// the store uses: the ceiling without group commit, and the CPU a flush
// costs.
func BenchmarkBaselineFsync(b *testing.B) {
	// 512 bytes is about one event; 16 KiB is about the audit bytes of one
	// commit of ten token issuances. cpu-µs/op is what the flush costs
	// the process, whatever the disk's latency.
	for _, size := range []int{512, 16 << 10} {
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, size)
			cpu0 := processCPU()
			runWriters(b, 1, func(context.Context) error {
				if _, err := f.Write(buf); err != nil {
					return err
				}
				return f.Sync()
			})
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// verifyEvents is the size of the trail BenchmarkVerify reads.
const verifyEvents = 100_000

// BenchmarkVerify verifies a 100k-event trail (checkpoint every 1000) read
// from SQLite; one op is the whole trail. scan-only is the ceiling: the
// store's ScanAudit over the same trail with nothing done per record.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	tr := benchTrail(b)
	const perTx = 1000
	for i := 0; i < verifyEvents; i += perTx {
		err := tr.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			for j := range perTx {
				if _, err := tr.rec.Append(ctx, tx, sampleEvent(i+j)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for range b.N {
			rep, err := Verify(ctx, tr.store, VerifyParams{})
			if err != nil || !rep.OK || rep.Events != verifyEvents {
				b.Fatalf("%+v, %v", rep, err)
			}
		}
		b.ReportMetric(float64(verifyEvents)*float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
	b.Run("scan-only", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for range b.N {
			n := 0
			if err := tr.store.ScanAudit(ctx, store.AuditQuery{}, func(store.AuditRecord) error { n++; return nil }); err != nil || n != verifyEvents {
				b.Fatal(n, err)
			}
		}
		b.ReportMetric(float64(verifyEvents)*float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
}

// BenchmarkVerifier is the verifier's CPU cost alone (records in memory).
func BenchmarkVerifier(b *testing.B) {
	const n = 10_000
	recs := make([]store.AuditRecord, n)
	prev := make([]byte, HashSize)
	clock := newTestClock()
	for i := range recs {
		ev := sampleEvent(i)
		ev.ID = "evt_01hzx3k4q5r6s7t8v9w0xyzabc"
		ev.Time = clock.Now()
		body, err := ev.Canonical()
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = Seal(ev, body, int64(i+1), prev)
		prev = recs[i].Hash
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		v := NewVerifier(VerifierParams{})
		for _, r := range recs {
			if err := v.Add(r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkCanonical is the cost of encoding one typical event.
func BenchmarkCanonical(b *testing.B) {
	ev := sampleEvent(1)
	ev.Time = time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ev.Canonical(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenCommit is the durable write of one token issuance, 32
// writers: the assertion's jti spent (a random key) and two events with a
// random trace id, as the token endpoint writes them, on a trail of 40k
// events. cpu-µs/op is the process's CPU per op. lookup-tables is the
// layout of ADR 0017, its CPU including bringing the agent and trace
// lookup tables up to date afterwards (also reported alone as
// index-cpu-µs/op); inline-indexes is the layout before it, measured in
// the same run: (agent_id, seq) and (trace_id, seq) indexes on the events,
// written by every append.
func BenchmarkTokenCommit(b *testing.B) {
	for _, inline := range []bool{false, true} {
		name := "lookup-tables"
		if inline {
			name = "inline-indexes"
		}
		b.Run(name, func(b *testing.B) { benchTokenCommit(b, inline) })
	}
}

func benchTokenCommit(b *testing.B, inline bool) {
	tr := benchTrail(b)
	ctx := context.Background()
	ix, ok := tr.store.(store.AuditIndexer)
	if !ok {
		b.Fatal("the SQLite store is not a store.AuditIndexer")
	}
	if inline {
		if _, err := tr.db.Exec(`CREATE INDEX audit_events_agent ON audit_events (agent_id, seq);
			CREATE INDEX audit_events_trace ON audit_events (trace_id, seq)`); err != nil {
			b.Fatal(err)
		}
	}
	for range 40 {
		err := tr.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			for range 500 {
				if err := tokenCommit(ctx, tr, tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if _, err := ix.IndexAudit(ctx, 0); err != nil {
		b.Fatal(err)
	}
	cpu0 := processCPU()
	runWriters(b, 32, func(ctx context.Context) error {
		return tr.store.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tokenCommit(ctx, tr, tx) })
	})
	perOp := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(b.N) }
	if !inline {
		cpu1 := processCPU()
		b.StartTimer()
		if _, err := ix.IndexAudit(ctx, 0); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(perOp(processCPU()-cpu1), "index-cpu-µs/op")
	}
	b.ReportMetric(perOp(processCPU()-cpu0), "cpu-µs/op")
}

// tokenCommit writes what one token issuance writes.
func tokenCommit(ctx context.Context, tr *trail, tx store.Tx) error {
	now := time.Now()
	if err := tx.UseOnce(ctx, "assertion:agt_bench", rand.Text(), now, now.Add(time.Minute)); err != nil {
		return err
	}
	ev := sampleEvent(1)
	ev.Task.TraceID = hex.EncodeToString([]byte(rand.Text())[:16])
	if _, err := tr.rec.Append(ctx, tx, ev); err != nil {
		return err
	}
	ev.Type = "credential.issued"
	_, err := tr.rec.Append(ctx, tx, ev)
	return err
}

// processCPU is the process's user + system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
