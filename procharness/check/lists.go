package check

import (
	"fmt"
	"slices"

	"github.com/txtdb/txtdb/procharness/history"
)

// Lists checks a list-append history against the commit order the TSNs give: every list a
// transaction read must be exactly the acknowledged appends to that list committed before it
// (TSN below its own commit TSN; for a read-only transaction, at or below its snapshot), in TSN
// order, with appends of unknown outcome allowed anywhere and the transaction's own appends at
// the end. So it flags lost and reordered appends, values nobody appended, values of failed
// transactions (aborted reads), duplicates, and reads that no serial order by TSN explains; a
// final read must cover every acknowledged append. It complements, and is cheaper than, a cycle
// search (Elle): it trusts the TSNs instead of inferring an order.
func Lists(h *history.History) Result {
	const name = "lists"
	ops, bad := opsOf(name, h)
	if bad != nil {
		return *bad
	}
	var f findings
	type appendAt struct {
		tsn uint64
		v   int64
	}
	acked := map[int][]appendAt{}      // per key
	status := map[int64]history.Type{} // appended value -> outcome of its transaction
	var txns []history.Op
	for _, o := range ops {
		if o.F != "txn" {
			continue
		}
		var in history.Txn
		if err := o.Invoke.Decode(&in); err != nil {
			f.add("%v", err)
			continue
		}
		for _, m := range in {
			if m.F != history.OpAppend {
				continue
			}
			if _, dup := status[m.Value]; dup {
				f.add("value %d appended twice (the workload must append unique values)", m.Value)
			}
			status[m.Value] = o.Type()
			if o.Type() == history.OK {
				acked[m.Key] = append(acked[m.Key], appendAt{o.Done.TSN, m.Value})
			}
		}
		if o.Type() == history.OK {
			txns = append(txns, o)
		}
	}
	var maxTSN uint64
	for k := range acked {
		slices.SortStableFunc(acked[k], func(a, b appendAt) int { return cmpU(a.tsn, b.tsn) })
		maxTSN = max(maxTSN, acked[k][len(acked[k])-1].tsn)
	}
	reads := 0
	covered := map[int]uint64{} // key -> highest position a read of it covers
	for _, o := range txns {
		var out history.Txn
		if err := o.Done.Decode(&out); err != nil {
			f.add("%v", err)
			continue
		}
		// The transaction reads the state just before its commit, or at its snapshot.
		before := o.Done.Snap + 1 // acknowledged appends with TSN < before are visible
		if o.Done.TSN != 0 {
			before = o.Done.TSN
		}
		own := map[int][]int64{}
		for _, m := range out {
			if m.F == history.OpAppend {
				own[m.Key] = append(own[m.Key], m.Value)
				continue
			}
			reads++
			if m.Read == nil {
				f.add("%s op %d: read of list %d without a list", o.Worker, o.ID, m.Key)
				continue
			}
			covered[m.Key] = max(covered[m.Key], before-1)
			var want []int64
			for _, a := range acked[m.Key] {
				if a.tsn < before {
					want = append(want, a.v)
				}
			}
			want = append(want, own[m.Key]...)
			var got []int64
			seen := map[int64]bool{}
			for _, v := range m.Read {
				if seen[v] {
					f.add("%s op %d: list %d holds %d twice: %v", o.Worker, o.ID, m.Key, v, m.Read)
				}
				seen[v] = true
				st, ok := status[v]
				switch {
				case !ok:
					f.add("%s op %d: list %d holds %d, which nobody appended", o.Worker, o.ID, m.Key, v)
				case st == history.Fail:
					f.add("%s op %d: list %d holds %d, appended by a transaction that failed (aborted read)", o.Worker, o.ID, m.Key, v)
				case st == history.OK || slices.Contains(own[m.Key], v):
					got = append(got, v)
				}
			}
			if !slices.Equal(got, want) {
				f.add("%s op %d (TSN %d, snapshot %d): list %d read %v; acknowledged appends before it, in TSN order, then its own: %v",
					o.Worker, o.ID, o.Done.TSN, o.Done.Snap, m.Key, m.Read, want)
			}
		}
	}
	for k, as := range acked {
		if last := as[len(as)-1].tsn; covered[k] < last {
			f.add("no read of list %d covers its last acknowledged append (TSN %d)", k, last)
		}
	}
	return f.result(name, len(ops), fmt.Sprintf("%d transactions, %d list reads, each exactly the acknowledged appends before it in TSN order (last TSN %d)",
		len(txns), reads, maxTSN))
}
