package elle

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// laggedHistory returns n committed transactions over keys keys, each
// reading from a snapshot up to lag commits old and appending to the current
// lists: a store without conflict checks. Its histories are full of lost
// updates, G-single and G2-item cycles in one large component, the worst
// case for the cycle search.
func laggedHistory(r *rand.Rand, n, keys, lag int) []Txn {
	var versions []map[string][]int // versions[i]: state after i commits
	versions = append(versions, map[string][]int{})
	next := map[string]int{}
	h := make([]Txn, 0, n)
	for i := range n {
		snap := versions[max(0, len(versions)-1-r.IntN(lag+1))]
		local := map[string][]int{}
		var appended []MicroOp
		txn := Txn{Process: fmt.Sprintf("p%d", i%8), Index: i, Type: OK}
		for range 1 + r.IntN(4) {
			k := fmt.Sprintf("k%d", r.IntN(keys))
			if r.IntN(2) == 0 {
				next[k]++
				op := MicroOp{F: Append, Key: k, Value: next[k]}
				local[k] = append(slices.Clone(listOr(local, snap, k)), op.Value)
				appended = append(appended, op)
				txn.Ops = append(txn.Ops, op)
				continue
			}
			l := slices.Clone(listOr(local, snap, k))
			if l == nil {
				l = []int{}
			}
			txn.Ops = append(txn.Ops, MicroOp{F: Read, Key: k, List: l})
		}
		cur := versions[len(versions)-1]
		nv := make(map[string][]int, len(cur))
		for k, l := range cur {
			nv[k] = l
		}
		for _, op := range appended {
			nv[op.Key] = append(slices.Clip(nv[op.Key]), op.Value)
		}
		versions = append(versions, nv)
		h = append(h, txn)
	}
	return h
}

func listOr(local, snap map[string][]int, k string) []int {
	if l, ok := local[k]; ok {
		return l
	}
	return snap[k]
}

// BenchmarkCheck measures Check on 20,000-transaction histories: a serial
// one (valid) and one from a store without conflict checks (full of
// anomalies). Keys are many enough that lists stay a few thousand long.
func BenchmarkCheck(b *testing.B) {
	const n = 20000
	for _, bc := range []struct {
		name string
		h    []Txn
	}{
		{"serial", serialHistory(rand.New(rand.NewPCG(1, 1)), n, 16)},
		{"lagged", laggedHistory(rand.New(rand.NewPCG(1, 2)), n, 16, 3)},
	} {
		for _, level := range []Level{Serializable, StrictSerializable} {
			b.Run(bc.name+"/"+level.String(), func(b *testing.B) {
				var res *Result
				for b.Loop() {
					var err error
					if res, err = Check(bc.h, Options{Level: level}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(res.Anomalies)), "anomalies")
			})
		}
	}
}
