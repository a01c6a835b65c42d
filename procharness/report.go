package procharness

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness/check"
	"github.com/txtdb/txtdb/procharness/history"
)

// Report is the outcome of a Run.
type Report struct {
	Dir       string
	Seed      uint64
	Workers   int
	Workloads []string
	Elapsed   time.Duration
	History   *history.History

	Results  []check.Result  // one per checker (append has two)
	Problems []txtdb.Problem // what Check found after the final Checkpoint

	Ops       int64 // operations completed (ok, fail, unknown)
	Commits   int64 // ok operations with a commit TSN
	Unknown   int64 // operations of unknown outcome (killed in flight)
	Conflicts int64 // commit attempts that lost validation (retried or not), from the completion lines
	Errors    int64 // operations that failed with an error other than a conflict, from the summaries of workers that stopped cleanly
	// Commit latency (invoke to ok, retries included) over every commit.
	LatencyP50, LatencyP99, LatencyMax time.Duration
	// Fairness: commits of the slot with the fewest and the most (restarts add to their slot),
	// among the slots whose workload commits as it runs (not hold, events).
	MinCommits, MaxCommits int64
	Kills, Restarts        int
}

// OK reports whether every checker passed and Check found nothing.
func (r *Report) OK() bool {
	for _, res := range r.Results {
		if !res.OK() {
			return false
		}
	}
	return len(r.Problems) == 0 && len(r.Results) > 0
}

// progress samples the run.
func (r *Report) progress(elapsed time.Duration, h *Harness, done bool) Progress {
	return Progress{Elapsed: elapsed, Ops: totalOps(h), Commits: h.commits.Load(), Conflicts: h.conflicts.Load(), Kills: r.Kills, Restarts: r.Restarts,
		Workers: r.Workers, Completed: done}
}

// fill computes the counts, latencies and fairness from the history.
func (r *Report) fill(h *Harness) {
	slotOf := map[string]int{}
	writes := make([]bool, r.Workers) // slots whose workload commits as it goes (not hold, events)
	for _, p := range h.Procs() {
		slotOf[p.Name] = p.Slot
		if p.Slot < len(writes) {
			writes[p.Slot] = p.Spec.Workload != "hold" && p.Spec.Workload != "events"
		}
	}
	perSlot := make([]int64, r.Workers)
	var lat []time.Duration
	// A history that breaks the protocol fails its checkers; the counts stop where it broke.
	_ = h.History().EachOp(func(o history.Op) {
		r.Ops++
		r.Conflicts += int64(o.Done.Conflicts)
		switch o.Type() {
		case history.Unknown:
			r.Unknown++
		case history.OK:
			if o.Done.TSN == 0 {
				return
			}
			r.Commits++
			if s, ok := slotOf[o.Worker]; ok && s < len(perSlot) {
				perSlot[s]++
			}
			lat = append(lat, time.Duration(o.Done.Time-o.Invoke.Time))
		}
	})
	for _, l := range h.History().OfType(history.Summary) {
		var s history.SummaryInfo
		if l.Decode(&s) == nil {
			r.Errors += s.Errors
		}
	}
	var fair []int64
	for s, n := range perSlot {
		if writes[s] {
			fair = append(fair, n)
		}
	}
	if len(fair) > 0 {
		r.MinCommits, r.MaxCommits = slices.Min(fair), slices.Max(fair)
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.LatencyP50 = lat[len(lat)/2]
		r.LatencyP99 = lat[min(len(lat)-1, len(lat)*99/100)]
		r.LatencyMax = lat[len(lat)-1]
	}
}

// String is the human report: verdicts, counts, latencies, fairness, where the data is.
func (r *Report) String() string {
	var b strings.Builder
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "%s: %d workers (%s), %v, seed %d\n", verdict, r.Workers, strings.Join(r.Workloads, ","), r.Elapsed.Round(time.Millisecond), r.Seed)
	for _, res := range r.Results {
		fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(res.String(), "\n", "\n    "))
	}
	if len(r.Problems) == 0 {
		fmt.Fprintf(&b, "  check: no problems after the final checkpoint\n")
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "  check: %s\n", p)
	}
	rate := 0.0
	if r.Commits+r.Conflicts > 0 {
		rate = float64(r.Conflicts) / float64(r.Commits+r.Conflicts)
	}
	fmt.Fprintf(&b, "  %d ops, %d commits, %d unknown, %d conflicts (%.1f%% of attempts), %d errors\n",
		r.Ops, r.Commits, r.Unknown, r.Conflicts, 100*rate, r.Errors)
	fmt.Fprintf(&b, "  commit latency p50 %v, p99 %v, max %v\n", r.LatencyP50, r.LatencyP99, r.LatencyMax)
	fmt.Fprintf(&b, "  commits per worker: fewest %d, most %d\n", r.MinCommits, r.MaxCommits)
	fmt.Fprintf(&b, "  kills %d, restarts %d\n", r.Kills, r.Restarts)
	fmt.Fprintf(&b, "  dir %s\n", r.Dir)
	return b.String()
}
