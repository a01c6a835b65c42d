package check

import (
	"fmt"
	"strings"

	"github.com/txtdb/txtdb/procharness/history"
)

// Verdict is a checker's finding.
type Verdict uint8

// Verdicts. Only Pass is a pass.
const (
	Pass    Verdict = iota + 1 // the history satisfies the invariant
	Fail                       // it violates it (Explanation says where)
	Unknown                    // the checker could not decide (a timeout); never a pass
)

// String returns "pass", "FAIL" or "UNKNOWN".
func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Fail:
		return "FAIL"
	case Unknown:
		return "UNKNOWN"
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// Result is what a checker found.
type Result struct {
	Checker     string  // "bank", "counter", "register", ...
	Verdict     Verdict // Pass, Fail or Unknown
	Explanation string  // one or more lines: what was checked, or the first violations found
	Ops         int     // operations checked
}

// OK reports whether the verdict is Pass.
func (r Result) OK() bool { return r.Verdict == Pass }

// String returns "checker: verdict (n ops): explanation".
func (r Result) String() string {
	return fmt.Sprintf("%s: %s (%d ops): %s", r.Checker, r.Verdict, r.Ops, r.Explanation)
}

// maxViolations bounds how many violations an explanation lists.
const maxViolations = 10

// findings collects violations for an explanation.
type findings struct {
	n     int
	lines []string
}

func (f *findings) add(format string, args ...any) {
	f.n++
	if len(f.lines) < maxViolations {
		f.lines = append(f.lines, fmt.Sprintf(format, args...))
	}
}

// result returns Fail with the violations, or Pass with ok.
func (f *findings) result(checker string, ops int, ok string) Result {
	if f.n == 0 {
		return Result{Checker: checker, Verdict: Pass, Explanation: ok, Ops: ops}
	}
	more := ""
	if f.n > len(f.lines) {
		more = fmt.Sprintf("\n(%d more)", f.n-len(f.lines))
	}
	return Result{Checker: checker, Verdict: Fail, Ops: ops,
		Explanation: fmt.Sprintf("%d violations:\n%s%s", f.n, strings.Join(f.lines, "\n"), more)}
}

// Select returns the part of h written by the workers whose ready line names workload.
func Select(h *history.History, workload string) *history.History {
	mine := map[string]bool{}
	var out history.History
	for l := range h.All() {
		if l.Type == history.Ready {
			var ri history.ReadyInfo
			if l.Decode(&ri) == nil {
				mine[l.Worker] = ri.Workload == workload
			}
		}
		if mine[l.Worker] {
			out.Add(l)
		}
	}
	return &out
}

// opsOf returns the operations of h, or a Fail result when the history breaks the protocol.
func opsOf(checker string, h *history.History) ([]history.Op, *Result) {
	ops, err := h.Ops()
	if err != nil {
		return nil, &Result{Checker: checker, Verdict: Fail, Explanation: err.Error()}
	}
	return ops, nil
}
