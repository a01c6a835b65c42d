package check

import (
	"fmt"
	"math"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/txtdb/txtdb/procharness/history"
)

// regInput is a register operation for porcupine: its kind, its input and, when it completed
// ok, what it saw.
type regInput struct {
	f       string // "read", "write", "cas"
	r       history.Reg
	unknown bool // outcome unknown: a cas may or may not have swapped
}

// registerModel is a single integer register starting at 0, with read, write and
// compare-and-set. An operation of unknown outcome has an infinite return time, so porcupine may
// place it after everything else, which is the same as not having happened.
var registerModel = porcupine.Model{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		var keys []int
		for _, o := range ops {
			k := o.Input.(regInput).r.Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], o)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return int64(0) },
	Step: func(state, input, _ any) (bool, any) {
		s := state.(int64)
		in := input.(regInput)
		switch in.f {
		case "read":
			return in.r.Value == s, s
		case "write":
			return true, in.r.Value
		case "cas":
			switch {
			case in.unknown && s == in.r.From:
				return true, in.r.To
			case in.unknown:
				return true, s
			case in.r.Swapped:
				return s == in.r.From, in.r.To
			default:
				return s != in.r.From, s
			}
		}
		return false, s
	},
	DescribeOperation: func(input, _ any) string {
		in := input.(regInput)
		switch in.f {
		case "read":
			return fmt.Sprintf("read(%d) -> %d", in.r.Key, in.r.Value)
		case "write":
			return fmt.Sprintf("write(%d, %d)", in.r.Key, in.r.Value)
		}
		return fmt.Sprintf("cas(%d, %d -> %d) -> %v (unknown %v)", in.r.Key, in.r.From, in.r.To, in.r.Swapped, in.unknown)
	},
}

// Register checks that a register history is linearizable, per key, within timeout (0: one
// minute). Operations that certainly did not happen (fail) are left out; reads of unknown outcome
// too (they change nothing). A search that runs out of time gives Unknown, never Pass.
func Register(h *history.History, timeout time.Duration) Result {
	const name = "register"
	if timeout <= 0 {
		timeout = time.Minute
	}
	ops, bad := opsOf(name, h)
	if bad != nil {
		return *bad
	}
	clients := map[string]int{}
	var pops []porcupine.Operation
	for _, o := range ops {
		if o.Type() == history.Fail || (o.F == "read" && o.Type() == history.Unknown) {
			continue
		}
		if o.F != "read" && o.F != "write" && o.F != "cas" {
			continue
		}
		in := regInput{f: o.F, unknown: o.Type() == history.Unknown}
		src := o.Done
		if in.unknown {
			src = o.Invoke
		}
		if err := src.Decode(&in.r); err != nil {
			return Result{Checker: name, Verdict: Fail, Ops: len(ops), Explanation: err.Error()}
		}
		c, ok := clients[o.Worker]
		if !ok {
			c = len(clients)
			clients[o.Worker] = c
		}
		end := o.End()
		if end == math.MaxInt64 {
			end = math.MaxInt64 - 1
		}
		pops = append(pops, porcupine.Operation{ClientId: c, Input: in, Call: o.Start(), Output: nil, Return: end})
	}
	res, info := porcupine.CheckOperationsVerbose(registerModel, pops, timeout)
	switch res {
	case porcupine.Ok:
		return Result{Checker: name, Verdict: Pass, Ops: len(pops),
			Explanation: fmt.Sprintf("%d operations of %d workers are linearizable", len(pops), len(clients))}
	case porcupine.Illegal:
		return Result{Checker: name, Verdict: Fail, Ops: len(pops), Explanation: "not linearizable: " + describeIllegal(info)}
	}
	return Result{Checker: name, Verdict: Unknown, Ops: len(pops),
		Explanation: fmt.Sprintf("the linearizability search did not finish within %v (%d operations)", timeout, len(pops))}
}

// describeIllegal names the partition porcupine could not linearize and the longest prefix it
// could, as far as the info tells.
func describeIllegal(info porcupine.LinearizationInfo) string {
	parts := info.PartialLinearizationsOperations()
	for i, p := range parts {
		if len(p) == 0 {
			continue
		}
		longest := p[0]
		for _, l := range p {
			if len(l) > len(longest) {
				longest = l
			}
		}
		var s string
		for j, o := range longest {
			if j >= 20 {
				s += " ..."
				break
			}
			s += " " + registerModel.DescribeOperation(o.Input, o.Output) + ";"
		}
		return fmt.Sprintf("partition %d; longest linearizable prefix:%s", i, s)
	}
	return "no linearization"
}
