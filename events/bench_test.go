package events_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/events"
)

// reportLatency reports p50, p99 and max of ds in microseconds.
func reportLatency(b *testing.B, prefix string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	q := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))]) / 1e3 }
	b.ReportMetric(q(0.50), prefix+"p50-µs")
	b.ReportMetric(q(0.99), prefix+"p99-µs")
	b.ReportMetric(float64(ds[len(ds)-1])/1e3, prefix+"max-µs")
}

// Commit-to-delivery latency to another handle in this process: one commit at a time, the next
// only after the feed delivered the last. "commit" counts from before Commit (its fsync
// included), "ack" from Commit's return (0 when the event was there first).
func BenchmarkLatencyHandle(b *testing.B) {
	dir := b.TempDir()
	db := mustOpen(b, dir, nil)
	createNS(b, db, "a")
	fd := mustFeed(b, dir, events.TestHooks{})
	sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	var fromCommit, fromAck []time.Duration
	ctx := context.Background()
	for b.Loop() {
		t0 := time.Now()
		tx, err := db.Begin(ctx, true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err = tx.Insert("a", 1); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		ev := <-sub.Events()
		t2 := time.Now()
		if ev.TSN != tx.CommitTSN() {
			b.Fatalf("delivered %d, committed %d", ev.TSN, tx.CommitTSN())
		}
		fromCommit = append(fromCommit, t2.Sub(t0))
		fromAck = append(fromAck, max(0, t2.Sub(t1)))
	}
	reportLatency(b, "commit-", fromCommit)
	reportLatency(b, "ack-", fromAck)
}

// Commit-to-delivery latency from writer processes to a subscriber in this process.
// EVENTS_WRITERS sets the number of writer processes (default 1; 4 for the loaded case),
// EVENTS_PACE the interval between one writer's commits (default: none, flat out). Each writer
// prints the wall-clock time at which Commit returned; "ack-" is the delivery time minus that
// (negative, counted as 0, when the event arrived before Commit had returned: state names a commit
// before the committer's call returns). "commit-" counts from the writer's clock before Commit
// (its lock wait and fsync included), carried in the object.
func BenchmarkLatencyProcess(b *testing.B) {
	dir := b.TempDir()
	db := mustOpen(b, dir, nil)
	createNS(b, db, testNS...)
	fd := mustFeed(b, dir, events.TestHooks{})
	sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{Values: true})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	writers := 1
	if n, err := strconv.Atoi(envOr("EVENTS_WRITERS", "1")); err == nil && n > 0 {
		writers = n
	}
	per := max(1, b.N/writers)
	b.ResetTimer()
	var ws []*child
	for w := 0; w < writers; w++ {
		ws = append(ws, startChild(b, "writer", "EVENTS_DIR="+dir, "EVENTS_N="+strconv.Itoa(per), "EVENTS_SEED="+strconv.Itoa(w),
			"EVENTS_PACE="+envOr("EVENTS_PACE", "0")))
	}
	delivered := map[txtdb.TSN]int64{}
	var fromCommit []time.Duration
	deadline := time.After(10 * longStop)
	for len(delivered) < per*writers {
		select {
		case ev := <-sub.Events():
			now := time.Now().UnixNano()
			delivered[ev.TSN] = now
			// One insert per commit; a page rewritten whole carries older objects too: the
			// newest time in the event is its commit's.
			var t int64
			for _, c := range ev.Changes {
				for _, o := range c.Objects {
					var v struct{ T int64 }
					if json.Unmarshal([]byte(o.Text()), &v) == nil {
						t = max(t, v.T)
					}
				}
			}
			if t != 0 {
				fromCommit = append(fromCommit, time.Duration(now-t))
			}
		case <-deadline:
			b.Fatalf("%d of %d events", len(delivered), per*writers)
		}
	}
	b.StopTimer()
	var fromAck []time.Duration
	for _, w := range ws {
		for {
			l := w.next(b)
			if l == "done" {
				break
			}
			f := strings.Fields(l) // ack <tsn> <ns> <unix ns>
			n, err1 := strconv.ParseUint(f[1], 10, 64)
			at, err2 := strconv.ParseInt(f[3], 10, 64)
			got, ok := delivered[txtdb.TSN(n)]
			if err1 != nil || err2 != nil || !ok {
				b.Fatalf("ack line %q: no matching event", l)
			}
			fromAck = append(fromAck, time.Duration(max(0, got-at)))
		}
	}
	reportLatency(b, "ack-", fromAck)
	reportLatency(b, "commit-", fromCommit)
}

// The cost of idle subscriptions: no commits, the feed open with 0, 1 or 100 subscriptions, and
// no DB handle in this process (its housekeeper would be counted too). Each iteration is a 100 ms
// idle window; reported per second: the feed's state and log reads (0 is the goal: an idle feed
// reads nothing), and the process's CPU time and voluntary context switches, with "bare" (no
// feed at all) beside them in the same run: the Go runtime's own background wake-ups are the
// floor.
func BenchmarkIdle(b *testing.B) {
	dir := b.TempDir()
	db, err := txtdb.Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	createNS(b, db, "a")
	insert(b, db, "a", 1)
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	for _, subs := range []int{-1, 0, 1, 100} {
		name := "bare"
		if subs >= 0 {
			name = "subs-" + strconv.Itoa(subs)
		}
		b.Run(name, func(b *testing.B) {
			var reads atomic.Int64
			if subs >= 0 {
				fd := mustFeed(b, dir, events.TestHooks{Read: func(string) { reads.Add(1) }})
				for i := 0; i < subs; i++ {
					sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{})
					if err != nil {
						b.Fatal(err)
					}
					defer sub.Close()
				}
				<-time.After(100 * time.Millisecond) // the subscriptions' first checks are done
			}
			r0, u0 := reads.Load(), usage(b)
			t0 := time.Now()
			for b.Loop() {
				<-time.After(100 * time.Millisecond)
			}
			secs := time.Since(t0).Seconds()
			u1 := usage(b)
			b.ReportMetric(float64(reads.Load()-r0)/secs, "reads/s")
			b.ReportMetric(float64(u1.cpu-u0.cpu)/1e3/secs, "cpu-µs/s")
			b.ReportMetric(float64(u1.nvcsw-u0.nvcsw)/secs, "ctxsw/s")
		})
	}
}

type rusage struct{ cpu, nvcsw int64 } // CPU time in ns, voluntary context switches

func usage(b *testing.B) rusage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return rusage{cpu: ru.Utime.Nano() + ru.Stime.Nano(), nvcsw: ru.Nvcsw}
}
