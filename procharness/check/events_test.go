package check

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/procharness/history"
)

func TestEvents(t *testing.T) {
	base := func() *hb {
		b := &hb{}
		ready(b, "w0.1", history.ReadyInfo{Workload: "bank", ID: "B"})
		ready(b, "w1.1", history.ReadyInfo{Workload: "events", ID: "E", From: 1, Filter: []string{"bank"}})
		for i := range 4 {
			op := history.Line{Type: history.Invoke, Worker: "w0.1", Op: int64(i + 1), F: "transfer", NS: []string{"bank"}, Time: int64(i)}
			done := op
			done.Type, done.TSN = history.OK, uint64(i+2)
			b.h.Add(op, done)
		}
		// A commit outside the filter.
		b.h.Add(history.Line{Type: history.Invoke, Worker: "w2.1", Op: 1, F: "incr", NS: []string{"counter"}},
			history.Line{Type: history.OK, Worker: "w2.1", Op: 1, F: "incr", NS: []string{"counter"}, TSN: 6})
		return b
	}
	ev := func(b *hb, worker string, tsn uint64, ns, process string) {
		b.h.Add(history.Line{Type: history.Event, Worker: worker, TSN: tsn, NS: []string{ns},
			Value: history.Value(history.FeedEvent{Process: process, Kinds: []string{"update"}})})
	}
	all := func(b *hb, skip uint64) {
		for tsn := uint64(2); tsn <= 5; tsn++ {
			if tsn != skip {
				ev(b, "w1.1", tsn, "bank", "B")
			}
		}
	}
	b := base()
	all(b, 0)
	r := Events(&b.h)
	require.True(t, r.OK(), "%s", r)

	fails := map[string]struct {
		build func(b *hb)
		why   string
	}{
		"missed":    {func(b *hb) { all(b, 3) }, "no event for w0.1's commit at TSN 3"},
		"duplicate": {func(b *hb) { all(b, 0); ev(b, "w1.1", 5, "bank", "B") }, "duplicate or out of order"},
		"filter":    {func(b *hb) { all(b, 0); ev(b, "w1.1", 6, "counter", "C") }, "outside the filter"},
		"process":   {func(b *hb) { ev(b, "w1.1", 2, "bank", "B"); ev(b, "w1.1", 3, "bank", "X") }, "names process \"X\""},
		"gap": {func(b *hb) {
			ev(b, "w1.1", 2, "bank", "B")
			ready(b, "w1.2", history.ReadyInfo{Workload: "events", ID: "E2", From: 3, Filter: []string{"bank"}})
		}, "resumed after TSN 3, but its slot's record ends at 2"},
		// An event of no acknowledged commit needs an operation of unknown outcome.
		"unexplained": {func(b *hb) { all(b, 0); ev(b, "w1.1", 7, "bank", "B") }, "only 0 operations of unknown outcome"},
	}
	for name, c := range fails {
		t.Run(name, func(t *testing.T) {
			b := base()
			c.build(b)
			requireFails(t, Events(&b.h), c.why)
		})
	}

	// A restart resumes where the record ends.
	b = base()
	ev(b, "w1.1", 2, "bank", "B")
	ready(b, "w1.2", history.ReadyInfo{Workload: "events", ID: "E2", From: 2, Filter: []string{"bank"}})
	for tsn := uint64(3); tsn <= 5; tsn++ {
		ev(b, "w1.2", tsn, "bank", "B")
	}
	r = Events(&b.h)
	require.True(t, r.OK(), "%s", r)
	// An operation of unknown outcome explains one event.
	b = base()
	b.h.Add(history.Line{Type: history.Invoke, Worker: "w0.1", Op: 9, F: "transfer", NS: []string{"bank"}})
	all(b, 0)
	ev(b, "w1.1", 7, "bank", "B")
	r = Events(&b.h)
	require.True(t, r.OK(), "%s", r)
}
