package check

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/procharness/history"
)

func ready(b *hb, worker string, ri history.ReadyInfo) {
	b.h.Add(history.Line{Type: history.Ready, Worker: worker, Value: history.Value(ri)})
}

func TestQueue(t *testing.T) {
	job := func(name, claimer string) history.Job {
		return history.Job{Job: name, Page: "p-" + name, Claimer: claimer}
	}
	base := func() *hb {
		b := &hb{}
		ready(b, "p", history.ReadyInfo{Workload: "queue", ID: "P"})
		ready(b, "c", history.ReadyInfo{Workload: "queue", ID: "C"})
		b.add("p", 1, "produce", job("1", ""), history.OK, 2, 1, job("1", ""))
		b.add("p", 2, "produce", job("2", ""), history.OK, 3, 2, job("2", ""))
		b.add("c", 3, "claim", job("1", ""), history.OK, 4, 3, job("1", "C"))
		b.add("c", 4, "complete", job("1", "C"), history.OK, 5, 4, job("1", "C"))
		return b
	}
	read := func(b *hb, snap uint64, jobs ...history.Job) {
		b.add("c", 9, "read", nil, history.OK, 0, snap, history.Jobs(jobs))
	}
	b := base()
	read(b, 5, job("2", ""))
	r := Queue(&b.h)
	require.True(t, r.OK(), "%s", r)

	b = base()
	b.add("c", 5, "complete", job("1", "C"), history.OK, 6, 5, job("1", "C"))
	read(b, 6, job("2", ""))
	requireFails(t, Queue(&b.h), "completed 2 times")

	b = base()
	read(b, 5)
	requireFails(t, Queue(&b.h), "job 2 (produced at TSN 3) lost")

	b = base()
	read(b, 5, job("1", ""), job("2", ""))
	requireFails(t, Queue(&b.h), "but c completed it")

	b = base()
	b.add("c", 5, "claim", job("2", ""), history.OK, 6, 5, job("2", "X"))
	read(b, 6, job("2", "X"))
	requireFails(t, Queue(&b.h), "the worker's registry id is \"C\"")

	b = base()
	b.add("c", 5, "complete", job("2", "C"), history.OK, 6, 5, job("2", "C"))
	read(b, 6)
	requireFails(t, Queue(&b.h), "without a claim")

	b = base()
	requireFails(t, Queue(&b.h), "no read covers")
}

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

	b = base()
	all(b, 3)
	requireFails(t, Events(&b.h), "no event for w0.1's commit at TSN 3")

	b = base()
	all(b, 0)
	ev(b, "w1.1", 5, "bank", "B")
	requireFails(t, Events(&b.h), "duplicate or out of order")

	b = base()
	all(b, 0)
	ev(b, "w1.1", 6, "counter", "C")
	requireFails(t, Events(&b.h), "outside the filter")

	b = base()
	ev(b, "w1.1", 2, "bank", "B")
	ev(b, "w1.1", 3, "bank", "X")
	requireFails(t, Events(&b.h), "names process \"X\"")

	// A restart resumes where the record ends; one that skips ahead leaves a gap.
	b = base()
	ev(b, "w1.1", 2, "bank", "B")
	ready(b, "w1.2", history.ReadyInfo{Workload: "events", ID: "E2", From: 2, Filter: []string{"bank"}})
	for tsn := uint64(3); tsn <= 5; tsn++ {
		ev(b, "w1.2", tsn, "bank", "B")
	}
	r = Events(&b.h)
	require.True(t, r.OK(), "%s", r)
	b = base()
	ev(b, "w1.1", 2, "bank", "B")
	ready(b, "w1.2", history.ReadyInfo{Workload: "events", ID: "E2", From: 3, Filter: []string{"bank"}})
	requireFails(t, Events(&b.h), "resumed after TSN 3, but its slot's record ends at 2")

	// An event of no acknowledged commit needs an operation of unknown outcome.
	b = base()
	all(b, 0)
	ev(b, "w1.1", 7, "bank", "B")
	requireFails(t, Events(&b.h), "only 0 operations of unknown outcome")
	b = base()
	b.h.Add(history.Line{Type: history.Invoke, Worker: "w0.1", Op: 9, F: "transfer", NS: []string{"bank"}})
	all(b, 0)
	ev(b, "w1.1", 7, "bank", "B")
	r = Events(&b.h)
	require.True(t, r.OK(), "%s", r)
}
