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
