package check

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/txtdb/txtdb/procharness/history"
)

// Events checks the change feed as the events workers recorded it against the commits the
// other workers acknowledged (their completions' TSNs and the namespaces they wrote, Line.NS),
// not against the log. h must be the whole history of the run. For each events slot (a worker
// and its restarts: names w<slot>.<n>), whose incarnations resume where the previous one's
// record ends: its events are in strictly increasing TSN order (no duplicates); from the
// subscription's start to its last event, every acknowledged commit that writes a namespace the
// filter matches is there exactly once, no acknowledged commit outside the filter is, and each
// names the committing worker's registry id; an event of no acknowledged commit must be one of
// the operations of unknown outcome that match the filter (at most one event each). A slot
// whose last incarnation stopped cleanly recorded through its own final mark commit, so its
// record covers the whole run up to it.
func Events(h *history.History) Result {
	const name = "events"
	var f findings
	ids := readyIDs(h)
	type commit struct {
		worker string
		ns     []string
	}
	acked := map[uint64]commit{}
	var unknown [][]string // the namespaces of each writing operation of unknown outcome
	nops := 0
	err := h.EachOp(func(o history.Op) {
		nops++
		switch {
		case o.Type() == history.OK && o.Done.TSN != 0:
			if prev, dup := acked[o.Done.TSN]; dup {
				f.add("TSN %d acknowledged to %s and to %s", o.Done.TSN, prev.worker, o.Worker)
			}
			acked[o.Done.TSN] = commit{o.Worker, o.Done.NS}
		case o.Type() == history.Unknown && len(o.Invoke.NS) > 0:
			unknown = append(unknown, o.Invoke.NS)
		}
	})
	if err != nil {
		return Result{Checker: name, Verdict: Fail, Explanation: err.Error()}
	}
	tsns := make([]uint64, 0, len(acked))
	for t := range acked {
		tsns = append(tsns, t)
	}
	slices.Sort(tsns)

	type incarnation struct {
		worker string
		inc    int
		from   uint64
		filter []string
		events []history.Line
	}
	slots := map[string][]*incarnation{}
	byWorker := map[string]*incarnation{}
	for l := range h.All() {
		switch l.Type {
		case history.Ready:
			var ri history.ReadyInfo
			if l.Decode(&ri) != nil || ri.Workload != "events" {
				continue
			}
			slot, inc := splitName(l.Worker)
			in := &incarnation{worker: l.Worker, inc: inc, from: ri.From, filter: ri.Filter}
			slots[slot] = append(slots[slot], in)
			byWorker[l.Worker] = in
		case history.Event:
			if in := byWorker[l.Worker]; in != nil {
				in.events = append(in.events, l)
			}
		}
	}
	names := make([]string, 0, len(slots))
	for s := range slots {
		names = append(names, s)
	}
	slices.Sort(names)
	var summary []string
	for _, slot := range names {
		incs := slots[slot]
		slices.SortFunc(incs, func(a, b *incarnation) int { return a.inc - b.inc })
		filter := incs[0].filter
		start, end := incs[0].from, incs[0].from
		var seq []history.Line
		for _, in := range incs {
			if in.from != end {
				f.add("%s resumed after TSN %d, but its slot's record ends at %d", in.worker, in.from, end)
			}
			if !slices.Equal(in.filter, filter) {
				f.add("%s subscribed to %v, its slot to %v", in.worker, in.filter, filter)
			}
			for _, e := range in.events {
				if e.TSN <= end {
					f.add("%s: event TSN %d after TSN %d (duplicate or out of order)", in.worker, e.TSN, end)
				}
				end = max(end, e.TSN)
				seq = append(seq, e)
			}
			end = max(end, in.from)
		}
		matches := func(nss []string) bool {
			for _, ns := range nss {
				if filterMatch(filter, ns) {
					return true
				}
			}
			return false
		}
		got := map[uint64]bool{}
		unexplained := 0
		for _, e := range seq {
			got[e.TSN] = true
			if !matches(e.NS) {
				f.add("%s: event TSN %d for namespaces %v, outside the filter %v", slot, e.TSN, e.NS, filter)
			}
			c, ok := acked[e.TSN]
			if !ok {
				unexplained++
				continue
			}
			if !matches(c.ns) {
				f.add("%s: event TSN %d, but %s's commit at that TSN wrote %v, outside the filter %v", slot, e.TSN, c.worker, c.ns, filter)
			}
			for _, ns := range e.NS {
				if !slices.Contains(c.ns, ns) {
					f.add("%s: event TSN %d names namespace %s, but %s's commit wrote %v", slot, e.TSN, ns, c.worker, c.ns)
				}
			}
			var fe history.FeedEvent
			if err := e.Decode(&fe); err != nil {
				f.add("%v", err)
			} else if want := ids[c.worker]; fe.Process != want {
				f.add("%s: event TSN %d names process %q, committed by %s (registry id %q)", slot, e.TSN, fe.Process, c.worker, want)
			}
		}
		budget := 0
		for _, nss := range unknown {
			if matches(nss) {
				budget++
			}
		}
		if unexplained > budget {
			f.add("%s: %d events of no acknowledged commit, but only %d operations of unknown outcome match the filter", slot, unexplained, budget)
		}
		want := 0
		lo, _ := slices.BinarySearch(tsns, start+1)
		for _, t := range tsns[lo:] {
			if t > end {
				break
			}
			if c := acked[t]; matches(c.ns) {
				want++
				if !got[t] {
					f.add("%s: no event for %s's commit at TSN %d (%v), inside the record (%d, %d]", slot, c.worker, t, c.ns, start, end)
				}
			}
		}
		fl := "all"
		if len(filter) > 0 {
			fl = strings.Join(filter, ",")
		}
		summary = append(summary, fmt.Sprintf("%s (%s, %d incarnations): %d events over TSNs (%d, %d], %d acknowledged commits, %d of unknown outcome",
			slot, fl, len(incs), len(seq), start, end, want, unexplained))
	}
	if len(slots) == 0 {
		f.add("no events worker in the history")
	}
	return f.result(name, nops, strings.Join(summary, "; "))
}

// splitName splits a worker name w<slot>.<incarnation> into slot and incarnation.
func splitName(worker string) (string, int) {
	slot, inc, _ := strings.Cut(worker, ".")
	n, _ := strconv.Atoi(inc)
	return slot, n
}

// filterMatch is the feed's namespace filter: a name matches itself and the namespaces below
// it; no names match everything.
func filterMatch(filter []string, ns string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, p := range filter {
		if ns == p || strings.HasPrefix(ns, p+".") {
			return true
		}
	}
	return false
}
