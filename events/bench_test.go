package events_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

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

// Commit-to-delivery latency from writer processes to a subscriber in this process, the writers
// committing flat out: each object carries the wall-clock time its writer took before Commit.
// EVENTS_WRITERS sets the number of writer processes (default 1; 4 for the loaded case),
// EVENTS_PACE the interval between one writer's commits (default: none, flat out).
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
	for w := 0; w < writers; w++ {
		startChild(b, "writer", "EVENTS_DIR="+dir, "EVENTS_N="+strconv.Itoa(per), "EVENTS_SEED="+strconv.Itoa(w),
			"EVENTS_PACE="+envOr("EVENTS_PACE", "0"))
	}
	var lat []time.Duration
	deadline := time.After(10 * longStop)
	for len(lat) < per*writers {
		select {
		case ev := <-sub.Events():
			now := time.Now().UnixNano()
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
				lat = append(lat, time.Duration(now-t))
			}
		case <-deadline:
			b.Fatalf("%d of %d events", len(lat), per*writers)
		}
	}
	b.StopTimer()
	reportLatency(b, "", lat)
}
