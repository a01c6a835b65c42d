package check

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/txtdb/txtdb/procharness/elle"
	"github.com/txtdb/txtdb/procharness/history"
)

// Elle checks a list-append history for isolation anomalies with package elle at level (zero:
// serializable, txtdb's default). Every "txn" operation becomes an elle.Txn: ok with the lists
// its completion read, fail when it certainly did not commit, info when its outcome is unknown
// (the worker was killed, or the commit's outcome was unknown); fail and info transactions carry
// their invoke's micro-ops, reads unknown. The verdict is Fail when Elle finds an anomaly the
// level forbids (or the history is malformed), Pass otherwise; allowed anomalies are named in the
// explanation.
func Elle(h *history.History, level elle.Level) Result {
	const name = "elle"
	if level == 0 {
		level = elle.Serializable
	}
	ops, bad := opsOf(name, h)
	if bad != nil {
		return *bad
	}
	txns, err := ElleTxns(ops)
	if err != nil {
		return Result{Checker: name, Verdict: Fail, Ops: len(ops), Explanation: err.Error()}
	}
	res, err := elle.Check(txns, elle.Options{Level: level})
	if err != nil {
		return Result{Checker: name, Verdict: Fail, Ops: len(ops), Explanation: err.Error()}
	}
	if !res.Valid {
		return Result{Checker: name, Verdict: Fail, Ops: len(ops), Explanation: strings.TrimSpace(res.String())}
	}
	expl := fmt.Sprintf("%d transactions (%d in the dependency graph), no anomaly %s forbids", res.Txns, res.Committed, level)
	if len(res.Anomalies) > 0 {
		var names []string
		for n, c := range res.Counts {
			names = append(names, fmt.Sprintf("%s %d", n, c))
		}
		slices.Sort(names)
		expl += "; allowed: " + strings.Join(names, ", ")
	}
	return Result{Checker: name, Verdict: Pass, Ops: len(ops), Explanation: expl}
}

// ElleTxns converts the "txn" operations of ops (as History.Ops returns them) to Elle's model,
// in order; Txn.Index is the position in the result, Process the worker, Start and End the
// invoke and completion times (End zero when the outcome is unknown).
func ElleTxns(ops []history.Op) ([]elle.Txn, error) {
	var out []elle.Txn
	for _, o := range ops {
		if o.F != "txn" {
			continue
		}
		t := elle.Txn{Process: o.Worker, Index: len(out), Start: o.Invoke.Time}
		src := o.Invoke
		switch o.Type() {
		case history.OK:
			t.Type, t.End, src = elle.OK, o.Done.Time, o.Done
		case history.Fail:
			t.Type, t.End = elle.Fail, o.Done.Time
		default:
			t.Type = elle.Info
		}
		var mops history.Txn
		if err := src.Decode(&mops); err != nil {
			return nil, err
		}
		for _, m := range mops {
			em := elle.MicroOp{Key: strconv.Itoa(m.Key)}
			switch m.F {
			case history.OpAppend:
				em.F, em.Value = elle.Append, int(m.Value)
			case history.OpRead:
				em.F = elle.Read
				if t.Type == elle.OK && m.Read != nil {
					em.List = make([]int, len(m.Read))
					for i, v := range m.Read {
						em.List[i] = int(v)
					}
				}
			default:
				return nil, fmt.Errorf("%s op %d: micro-op %q", o.Worker, o.ID, m.F)
			}
			t.Ops = append(t.Ops, em)
		}
		out = append(out, t)
	}
	return out, nil
}
