package check

import (
	"fmt"
	"slices"

	"github.com/txtdb/txtdb/procharness/history"
)

// Counter checks a counter history of keys counters (see the package doc). A counter's value at
// snapshot S must lie in [acked(S), acked(S)+unknown], where acked(S) counts its acknowledged
// increments with TSN <= S and unknown its increments of unknown outcome. Reads are checked at
// their snapshot, each acknowledged increment's new value at its own TSN.
func Counter(h *history.History, keys int) Result {
	const name = "counter"
	ops, bad := opsOf(name, h)
	if bad != nil {
		return *bad
	}
	var f findings
	ackTSNs := make([][]uint64, keys) // per key, sorted below
	unknown := make([]int64, keys)
	type seen struct {
		op    history.Op
		key   int
		at    uint64
		value int64
	}
	var checks []seen
	var maxTSN, finalSnap uint64
	var final history.Counters
	for _, o := range ops {
		switch {
		case o.F == "incr":
			var in history.Incr
			if err := o.Invoke.Decode(&in); err != nil || in.Key < 0 || in.Key >= keys {
				f.add("%s op %d: bad increment %s (%v)", o.Worker, o.ID, o.Invoke.Value, err)
				continue
			}
			switch o.Type() {
			case history.OK:
				var out history.Incr
				if err := o.Done.Decode(&out); err != nil {
					f.add("%v", err)
					continue
				}
				ackTSNs[in.Key] = append(ackTSNs[in.Key], o.Done.TSN)
				maxTSN = max(maxTSN, o.Done.TSN)
				checks = append(checks, seen{o, in.Key, o.Done.TSN, out.Value})
			case history.Unknown:
				unknown[in.Key]++
			}
		case o.F == "read" && o.Type() == history.OK:
			var vs history.Counters
			if err := o.Done.Decode(&vs); err != nil || len(vs) != keys {
				f.add("%s op %d: bad read %s (%v)", o.Worker, o.ID, o.Done.Value, err)
				continue
			}
			for k, v := range vs {
				checks = append(checks, seen{o, k, o.Done.Snap, v})
			}
			if o.Done.Snap >= finalSnap {
				finalSnap, final = o.Done.Snap, vs
			}
		}
	}
	acked := make([]int64, keys)
	for k := range ackTSNs {
		slices.Sort(ackTSNs[k])
		acked[k] = int64(len(ackTSNs[k]))
		for i := 1; i < len(ackTSNs[k]); i++ {
			if ackTSNs[k][i] == ackTSNs[k][i-1] {
				f.add("counter %d: two acknowledged increments share TSN %d", k, ackTSNs[k][i])
			}
		}
	}
	for _, c := range checks {
		lo, _ := slices.BinarySearch(ackTSNs[c.key], c.at+1) // acknowledged with TSN <= at
		hi := int64(lo) + unknown[c.key]
		if c.value < int64(lo) || c.value > hi {
			f.add("%s op %d (%s) at TSN %d: counter %d = %d, want %d acknowledged increments up to it plus at most %d unknown",
				c.op.Worker, c.op.ID, c.op.F, c.at, c.key, c.value, lo, unknown[c.key])
		}
	}
	if maxTSN > 0 && finalSnap < maxTSN {
		f.add("no read covers every acknowledged increment: last read at snapshot %d, last increment at TSN %d", finalSnap, maxTSN)
	}
	return f.result(name, len(ops), fmt.Sprintf("final %v at snapshot %d; acknowledged %v, unknown %v; %d values checked",
		final, finalSnap, acked, unknown, len(checks)))
}
