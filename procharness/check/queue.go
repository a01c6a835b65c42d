package check

import (
	"fmt"
	"slices"

	"github.com/txtdb/txtdb/procharness/history"
)

// Queue checks a queue history (the queue workload): every job whose production was
// acknowledged is completed exactly once or still in the queue, never lost; no job is completed
// twice; a completion follows its worker's own claim with no other claim between them; every
// claim names its worker's registry id (from its ready line); every queue read holds exactly
// the produced jobs not completed by its snapshot; the last read covers every acknowledged
// production. Operations of unknown outcome may or may not have happened.
func Queue(h *history.History) Result {
	const name = "queue"
	ops, bad := opsOf(name, h)
	if bad != nil {
		return *bad
	}
	var f findings
	ids := readyIDs(h)
	type claimAt struct {
		tsn    uint64
		worker string
	}
	produced := map[string]uint64{} // job -> TSN of its acknowledged production
	maybe := map[string]bool{}      // jobs whose production's outcome is unknown
	claims := map[string][]claimAt{}
	completed := map[string][]claimAt{}
	unknownDone := map[string]bool{}
	var reads []history.Op
	reclaims := 0
	var lastProduce uint64
	for _, o := range ops {
		var j history.Job
		if o.F == "produce" || o.F == "claim" || o.F == "complete" {
			src := o.Invoke
			if o.Type() == history.OK {
				src = o.Done
			}
			if err := src.Decode(&j); err != nil {
				f.add("%v", err)
				continue
			}
		}
		switch {
		case o.F == "produce" && o.Type() == history.OK:
			if _, dup := produced[j.Job]; dup {
				f.add("job %s produced twice (the workload must name jobs uniquely)", j.Job)
			}
			produced[j.Job] = o.Done.TSN
			lastProduce = max(lastProduce, o.Done.TSN)
		case o.F == "produce" && o.Type() == history.Unknown:
			maybe[j.Job] = true
		case o.F == "claim" && o.Type() == history.OK && o.Done.TSN != 0:
			if want := ids[o.Worker]; j.Claimer != want {
				f.add("%s op %d: claim of job %s names %q, the worker's registry id is %q", o.Worker, o.ID, j.Job, j.Claimer, want)
			}
			if j.Reclaim != "" {
				reclaims++
			}
			claims[j.Job] = append(claims[j.Job], claimAt{o.Done.TSN, o.Worker})
		case o.F == "complete" && o.Type() == history.OK && o.Done.TSN != 0:
			completed[j.Job] = append(completed[j.Job], claimAt{o.Done.TSN, o.Worker})
		case o.F == "complete" && o.Type() == history.Unknown:
			unknownDone[j.Job] = true
		case o.F == "read" && o.Type() == history.OK:
			reads = append(reads, o)
		}
	}
	known := func(job string) bool { _, ok := produced[job]; return ok || maybe[job] }
	for job, cs := range completed {
		if len(cs) > 1 {
			f.add("job %s completed %d times (by %s at TSN %d and %s at TSN %d)", job, len(cs), cs[0].worker, cs[0].tsn, cs[1].worker, cs[1].tsn)
		}
		if !known(job) {
			f.add("job %s completed, but nobody produced it", job)
		}
		c := cs[0]
		// The worker's own claim before the completion, and no other claim in between.
		var mine *claimAt
		for i, cl := range claims[job] {
			if cl.tsn < c.tsn && (mine == nil || cl.tsn > mine.tsn) {
				mine = &claims[job][i]
			}
		}
		switch {
		case mine == nil:
			f.add("job %s completed by %s at TSN %d without a claim", job, c.worker, c.tsn)
		case mine.worker != c.worker:
			f.add("job %s completed by %s at TSN %d, but %s claimed it last (TSN %d)", job, c.worker, c.tsn, mine.worker, mine.tsn)
		}
	}
	slices.SortFunc(reads, func(a, b history.Op) int { return cmpU(a.Done.Snap, b.Done.Snap) })
	var last history.Jobs
	var lastSnap uint64
	for _, o := range reads {
		var jobs history.Jobs
		if err := o.Done.Decode(&jobs); err != nil {
			f.add("%v", err)
			continue
		}
		snap := o.Done.Snap
		in := map[string]bool{}
		for _, j := range jobs {
			if in[j.Job] {
				f.add("%s op %d (snapshot %d): job %s twice in the queue", o.Worker, o.ID, snap, j.Job)
			}
			in[j.Job] = true
			if !known(j.Job) {
				f.add("%s op %d (snapshot %d): job %s in the queue, but nobody produced it", o.Worker, o.ID, snap, j.Job)
			}
			if cs := completed[j.Job]; len(cs) > 0 && cs[0].tsn <= snap {
				f.add("%s op %d (snapshot %d): job %s in the queue, but %s completed it at TSN %d", o.Worker, o.ID, snap, j.Job, cs[0].worker, cs[0].tsn)
			}
		}
		for job, tsn := range produced {
			if tsn > snap || in[job] || unknownDone[job] {
				continue
			}
			if cs := completed[job]; len(cs) == 0 || cs[0].tsn > snap {
				f.add("%s op %d (snapshot %d): job %s (produced at TSN %d) lost: not in the queue and not completed", o.Worker, o.ID, snap, job, tsn)
			}
		}
		last, lastSnap = jobs, snap
	}
	if lastProduce > lastSnap {
		f.add("no read covers every acknowledged job: last read at snapshot %d, last job produced at TSN %d", lastSnap, lastProduce)
	}
	done := 0
	for _, cs := range completed {
		done += min(1, len(cs))
	}
	return f.result(name, len(ops), fmt.Sprintf("%d jobs produced, %d completed once (%d claims taken over from a claimer past its lease), %d waiting at the last read (snapshot %d)",
		len(produced), done, reclaims, len(last), lastSnap))
}

// readyIDs maps every worker of h to the registry id its ready line names.
func readyIDs(h *history.History) map[string]string {
	out := map[string]string{}
	for _, l := range h.OfType(history.Ready) {
		var ri history.ReadyInfo
		if l.Decode(&ri) == nil {
			out[l.Worker] = ri.ID
		}
	}
	return out
}
