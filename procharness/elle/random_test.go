package elle

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serialHistory returns a serial execution of n random transactions over
// keys keys: each sees the effects of every committed one before it. About
// one in ten fails (its appends are dropped) and one in twenty has an
// unknown outcome (its appends are kept or dropped at random). Reads of
// failed and info transactions are unknown (nil), as a client would record
// them. Start and End follow the serial order; info transactions have no
// End.
func serialHistory(r *rand.Rand, n, keys int) []Txn {
	state := map[string][]int{}
	next := map[string]int{}
	h := make([]Txn, 0, n)
	var clock int64
	for i := range n {
		typ := OK
		switch x := r.IntN(20); {
		case x < 2:
			typ = Fail
		case x < 3:
			typ = Info
		}
		local := map[string][]int{}
		get := func(k string) []int {
			if l, ok := local[k]; ok {
				return l
			}
			return state[k]
		}
		txn := Txn{Process: fmt.Sprintf("p%d", r.IntN(4)), Index: i, Type: typ}
		clock++
		txn.Start = clock
		for range 1 + r.IntN(5) {
			k := fmt.Sprintf("k%d", r.IntN(keys))
			if r.IntN(2) == 0 {
				next[k]++
				v := next[k]
				local[k] = append(slices.Clone(get(k)), v)
				txn.Ops = append(txn.Ops, MicroOp{F: Append, Key: k, Value: v})
				continue
			}
			op := MicroOp{F: Read, Key: k}
			if typ == OK {
				op.List = slices.Clip(slices.Clone(get(k)))
				if op.List == nil {
					op.List = []int{}
				}
			}
			txn.Ops = append(txn.Ops, op)
		}
		clock++
		if typ != Info {
			txn.End = clock
		}
		if typ == OK || (typ == Info && r.IntN(2) == 0) {
			for k, l := range local {
				state[k] = l
			}
		}
		h = append(h, txn)
	}
	return h
}

// cloneHistory copies h deeply, so that a mutation leaves h alone.
func cloneHistory(h []Txn) []Txn {
	out := slices.Clone(h)
	for i := range out {
		out[i].Ops = slices.Clone(out[i].Ops)
		for j := range out[i].Ops {
			if l := out[i].Ops[j].List; l != nil {
				out[i].Ops[j].List = slices.Clone(l)
			}
		}
	}
	return out
}

// seed returns the seed of a randomized test: TXTDB_SEED if set, else the
// clock. It is logged so that a failure replays with TXTDB_SEED=<seed>.
func seed(t *testing.T) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if env := os.Getenv("TXTDB_SEED"); env != "" {
		v, err := strconv.ParseUint(env, 10, 64)
		require.NoError(t, err, "TXTDB_SEED")
		s = v
	}
	t.Logf("seed %d (replay with TXTDB_SEED=%d)", s, s)
	return s
}

// TestRandomSerial proves Check passes serial executions, at every level
// including strict serializability, with failed and info transactions.
func TestRandomSerial(t *testing.T) {
	r := rand.New(rand.NewPCG(seed(t), 0))
	runs := 300
	if testing.Short() {
		runs = 100
	}
	for run := range runs {
		h := serialHistory(r, 1+r.IntN(200), 1+r.IntN(5))
		for _, level := range []Level{ReadCommitted, SnapshotIsolation, Serializable, StrictSerializable} {
			res, err := Check(h, Options{Level: level})
			require.NoError(t, err)
			require.True(t, res.Valid && len(res.Anomalies) == 0, "run %d at %s:\n%s", run, level, res)
		}
	}
}

// mutation changes a serial history so that it is no longer valid at the
// level it returns, and returns the kind Check must then report (0: a cycle
// that needs real time, unless the change also broke serializability), or
// false if the history offers no place for it.
type mutation struct {
	name  string
	apply func(r *rand.Rand, h []Txn) (Kind, Level, bool)
}

// readOp locates a read in a history.
type readOp struct{ txn, op int }

// longReads returns the committed reads of two elements or more that some
// other committed read of the key is at least as long as, so that changing
// them makes the two incompatible.
func longReads(h []Txn) []readOp {
	longest := map[string][]readOp{}
	var all []readOp
	for t, txn := range h {
		if txn.Type != OK {
			continue
		}
		for o, op := range txn.Ops {
			if op.F == Read && op.List != nil {
				all = append(all, readOp{t, o})
				longest[op.Key] = append(longest[op.Key], readOp{t, o})
			}
		}
	}
	var out []readOp
	for _, ro := range all {
		op := h[ro.txn].Ops[ro.op]
		if len(op.List) < 2 {
			continue
		}
		for _, other := range longest[op.Key] {
			if other != ro && len(h[other.txn].Ops[other.op].List) >= len(op.List) {
				out = append(out, ro)
				break
			}
		}
	}
	return out
}

var mutations = []mutation{
	{"drop an element from a read", func(r *rand.Rand, h []Txn) (Kind, Level, bool) {
		rs := longReads(h)
		if len(rs) == 0 {
			return 0, 0, false
		}
		ro := rs[r.IntN(len(rs))]
		op := &h[ro.txn].Ops[ro.op]
		i := r.IntN(len(op.List) - 1) // not the last: that would be a shorter, valid read
		op.List = slices.Delete(op.List, i, i+1)
		return IncompatibleOrder, Serializable, true
	}},
	{"swap two elements of a read", func(r *rand.Rand, h []Txn) (Kind, Level, bool) {
		rs := longReads(h)
		if len(rs) == 0 {
			return 0, 0, false
		}
		ro := rs[r.IntN(len(rs))]
		l := h[ro.txn].Ops[ro.op].List
		i := r.IntN(len(l) - 1)
		j := i + 1 + r.IntN(len(l)-i-1)
		l[i], l[j] = l[j], l[i]
		return IncompatibleOrder, Serializable, true
	}},
	{"read a failed txn's append", func(r *rand.Rand, h []Txn) (Kind, Level, bool) {
		var failed []MicroOp
		for _, txn := range h {
			for _, op := range txn.Ops {
				if txn.Type == Fail && op.F == Append {
					failed = append(failed, op)
				}
			}
		}
		var oks []int
		for t, txn := range h {
			if txn.Type == OK {
				oks = append(oks, t)
			}
		}
		if len(failed) == 0 || len(oks) == 0 {
			return 0, 0, false
		}
		a := failed[r.IntN(len(failed))]
		t := oks[r.IntN(len(oks))]
		h[t].Ops = append(h[t].Ops, MicroOp{F: Read, Key: a.Key, List: []int{a.Value}})
		return G1a, Serializable, true
	}},
	{"cut a read short of an earlier commit", func(r *rand.Rand, h []Txn) (Kind, Level, bool) {
		// A read that misses an append committed, by another txn, before
		// the reader started is fine for serializability but not in real
		// time: the reader anti-depends on a txn that precedes it.
		writer := map[[2]int]int{}
		keys := map[string]int{}
		for t, txn := range h {
			for _, op := range txn.Ops {
				if op.F == Append {
					if _, ok := keys[op.Key]; !ok {
						keys[op.Key] = len(keys)
					}
					writer[[2]int{keys[op.Key], op.Value}] = t
				}
			}
		}
		var cands []readOp
		for t, txn := range h {
			if txn.Type != OK {
				continue
			}
			for o, op := range txn.Ops {
				if op.F == Read && slices.ContainsFunc(op.List, func(v int) bool {
					w := writer[[2]int{keys[op.Key], v}]
					return w != t && h[w].Type == OK
				}) {
					cands = append(cands, readOp{t, o})
				}
			}
		}
		if len(cands) == 0 {
			return 0, 0, false
		}
		ro := cands[r.IntN(len(cands))]
		op := &h[ro.txn].Ops[ro.op]
		// Cut just before an element another committed txn appended (an
		// info txn has no End, so it may have committed after the reader
		// started).
		var cuts []int
		for i, v := range op.List {
			if w := writer[[2]int{keys[op.Key], v}]; w != ro.txn && h[w].Type == OK {
				cuts = append(cuts, i)
			}
		}
		op.List = op.List[:cuts[r.IntN(len(cuts))]:len(op.List)]
		return 0, StrictSerializable, true
	}},
}

// TestRandomMutations proves Check fails serial executions changed in ways
// no list store may produce: each mutation must be reported with its kind.
func TestRandomMutations(t *testing.T) {
	r := rand.New(rand.NewPCG(seed(t), 1))
	runs := 300
	if testing.Short() {
		runs = 100
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			applied := 0
			for run := range runs {
				h := cloneHistory(serialHistory(r, 20+r.IntN(150), 1+r.IntN(4)))
				kind, level, ok := m.apply(r, h)
				if !ok {
					continue
				}
				applied++
				res, err := Check(h, Options{Level: level})
				require.NoError(t, err)
				require.False(t, res.Valid, "run %d: %s went unnoticed:\n%s", run, m.name, res)
				if kind == 0 {
					// The cut may also break the reader's own later reads
					// or cut into another txn's appends; only when the
					// history stays serializable must real time be what
					// fails it.
					ser, err := Check(h, Options{Level: Serializable})
					require.NoError(t, err)
					if ser.Valid {
						require.True(t, slices.ContainsFunc(res.Anomalies, func(a Anomaly) bool { return a.RealTime }),
							"run %d: %s: no real-time cycle:\n%s", run, m.name, res)
					}
					continue
				}
				require.Contains(t, res.Kinds(), kind, "run %d: %s:\n%s", run, m.name, res)
			}
			require.Greater(t, applied, runs/2, "the mutation found too few places to apply")
		})
	}
}
