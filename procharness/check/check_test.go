package check

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/procharness/history"
)

// hb builds histories by hand: each call adds an invoke at time t and, unless typ is "", its
// completion at time t+1 (a later end with span).
type hb struct {
	h  history.History
	op int64
}

func (b *hb) add(worker string, t int64, f string, in any, typ history.Type, tsn, snap uint64, out any) {
	b.spanned(worker, t, t+1, f, in, typ, tsn, snap, out)
}

func (b *hb) spanned(worker string, t, end int64, f string, in any, typ history.Type, tsn, snap uint64, out any) {
	b.op++
	l := history.Line{Type: history.Invoke, Worker: worker, Op: b.op, F: f, Time: t}
	if in != nil {
		l.Value = history.Value(in)
	}
	b.h.Add(l)
	if typ == "" {
		return
	}
	c := history.Line{Type: typ, Worker: worker, Op: b.op, F: f, Time: end, TSN: tsn, Snap: snap}
	if out != nil {
		c.Value = history.Value(out)
	}
	b.h.Add(c)
}

func requireFails(t *testing.T, r Result, why string) {
	t.Helper()
	require.Equal(t, Fail, r.Verdict, "%s", r)
	require.Contains(t, r.Explanation, why, "%s", r)
}

var bankCfg = BankConfig{Accounts: 3, Balance: 10}

func tr(from, to int, amount int64) history.Transfer {
	return history.Transfer{From: from, To: to, Amount: amount}
}

func TestBank(t *testing.T) {
	clean := func() *hb {
		b := &hb{}
		b.add("a", 1, "transfer", tr(0, 1, 3), history.OK, 2, 1, tr(0, 1, 3))
		b.add("b", 3, "transfer", tr(1, 2, 5), history.OK, 3, 2, tr(1, 2, 5))
		b.add("b", 5, "read", nil, history.OK, 0, 2, history.Balances{7, 13, 10})
		return b
	}
	b := clean()
	b.add("a", 7, "read", nil, history.OK, 0, 3, history.Balances{7, 8, 15})
	r := Bank(&b.h, bankCfg)
	require.True(t, r.OK(), "%s", r)

	t.Run("total changed", func(t *testing.T) {
		b := clean()
		b.add("a", 7, "read", nil, history.OK, 0, 3, history.Balances{7, 13, 15}) // credit without debit
		requireFails(t, Bank(&b.h, bankCfg), "total 35, want 30")
	})
	t.Run("negative balance", func(t *testing.T) {
		b := clean()
		b.add("a", 7, "read", nil, history.OK, 0, 3, history.Balances{-1, 16, 15})
		requireFails(t, Bank(&b.h, bankCfg), "negative")
	})
	t.Run("lost acknowledged transfer", func(t *testing.T) {
		b := clean()
		b.add("a", 7, "read", nil, history.OK, 0, 3, history.Balances{7, 13, 10}) // TSN 3 missing
		requireFails(t, Bank(&b.h, bankCfg), "the acknowledged transfers up to it give")
	})
	t.Run("no final read", func(t *testing.T) {
		b := clean()
		b.add("a", 7, "transfer", tr(2, 0, 1), history.OK, 4, 3, tr(2, 0, 1))
		requireFails(t, Bank(&b.h, bankCfg), "no read covers")
	})
	t.Run("unknown transfers relax the exact check only", func(t *testing.T) {
		b := clean()
		b.add("c", 6, "transfer", tr(2, 0, 1), "", 0, 0, nil) // killed
		b.add("a", 8, "read", nil, history.OK, 0, 4, history.Balances{8, 8, 14})
		r := Bank(&b.h, bankCfg)
		require.True(t, r.OK(), "%s", r)
		require.Contains(t, r.Explanation, "unknown outcome")
		b.add("a", 9, "read", nil, history.OK, 0, 4, history.Balances{8, 8, 15})
		requireFails(t, Bank(&b.h, bankCfg), "total 31")
	})
}

func TestCounter(t *testing.T) {
	incr := func(k int) history.Incr { return history.Incr{Key: k} }
	done := func(k int, v int64) history.Incr { return history.Incr{Key: k, Value: v} }
	clean := func() *hb {
		b := &hb{}
		b.add("a", 1, "incr", incr(0), history.OK, 2, 1, done(0, 1))
		b.add("b", 2, "incr", incr(0), history.OK, 3, 2, done(0, 2))
		b.add("b", 4, "incr", incr(1), history.OK, 4, 3, done(1, 1))
		return b
	}
	b := clean()
	b.add("a", 6, "read", nil, history.OK, 0, 4, history.Counters{2, 1})
	r := Counter(&b.h, 2)
	require.True(t, r.OK(), "%s", r)

	t.Run("lost increment", func(t *testing.T) {
		b := clean()
		b.add("a", 6, "read", nil, history.OK, 0, 4, history.Counters{1, 1})
		requireFails(t, Counter(&b.h, 2), "counter 0 = 1, want 2 acknowledged")
	})
	t.Run("invented increment", func(t *testing.T) {
		b := clean()
		b.add("a", 6, "read", nil, history.OK, 0, 4, history.Counters{3, 1})
		requireFails(t, Counter(&b.h, 2), "counter 0 = 3")
	})
	t.Run("increment reports a value its TSN cannot have", func(t *testing.T) {
		b := clean()
		b.add("c", 5, "incr", incr(1), history.OK, 5, 4, done(1, 3))
		b.add("a", 7, "read", nil, history.OK, 0, 5, history.Counters{2, 3})
		requireFails(t, Counter(&b.h, 2), "(incr) at TSN 5: counter 1 = 3")
	})
	t.Run("unknown allows at most one more", func(t *testing.T) {
		b := clean()
		b.add("c", 5, "incr", incr(0), "", 0, 0, nil)
		b.add("a", 7, "read", nil, history.OK, 0, 5, history.Counters{3, 1})
		r := Counter(&b.h, 2)
		require.True(t, r.OK(), "%s", r)
		b.add("a", 8, "read", nil, history.OK, 0, 5, history.Counters{4, 1})
		requireFails(t, Counter(&b.h, 2), "plus at most 1 unknown")
	})
	t.Run("no final read", func(t *testing.T) {
		b := clean()
		requireFails(t, Counter(&b.h, 2), "no read covers")
	})
}

func reg(k int, v int64) history.Reg { return history.Reg{Key: k, Value: v} }

func cas(k int, from, to int64, swapped bool) history.Reg {
	return history.Reg{Key: k, From: from, To: to, Swapped: swapped}
}

func TestRegister(t *testing.T) {
	b := &hb{}
	b.add("a", 10, "write", reg(0, 3), history.OK, 2, 1, reg(0, 3))
	b.add("b", 20, "read", reg(0, 0), history.OK, 0, 2, reg(0, 3))
	b.add("b", 30, "cas", cas(0, 3, 4, false), history.OK, 3, 2, cas(0, 3, 4, true))
	b.add("a", 40, "cas", cas(0, 3, 1, false), history.OK, 0, 3, cas(0, 3, 1, false))
	b.spanned("c", 41, 60, "read", reg(1, 0), history.OK, 0, 3, reg(1, 0))
	b.add("a", 50, "read", reg(0, 0), history.OK, 0, 3, reg(0, 4))
	b.add("c", 70, "write", reg(1, 2), "", 0, 0, nil) // killed: may have happened
	b.add("b", 80, "read", reg(1, 0), history.OK, 0, 4, reg(1, 2))
	b.add("b", 90, "read", reg(1, 0), history.OK, 0, 4, reg(1, 2))
	r := Register(&b.h, 10*time.Second)
	require.True(t, r.OK(), "%s", r)

	t.Run("stale read", func(t *testing.T) {
		b := &hb{}
		b.add("a", 10, "write", reg(0, 3), history.OK, 2, 1, reg(0, 3))
		b.add("b", 20, "read", reg(0, 0), history.OK, 0, 1, reg(0, 0)) // began after the write returned
		requireFails(t, Register(&b.h, 10*time.Second), "not linearizable")
	})
	t.Run("cas against a value that was not there", func(t *testing.T) {
		b := &hb{}
		b.add("a", 10, "write", reg(0, 3), history.OK, 2, 1, reg(0, 3))
		b.add("b", 20, "cas", cas(0, 2, 4, false), history.OK, 3, 2, cas(0, 2, 4, true))
		requireFails(t, Register(&b.h, 10*time.Second), "not linearizable")
	})
	t.Run("unknown write read back then undone", func(t *testing.T) {
		b := &hb{}
		b.add("c", 10, "write", reg(0, 2), "", 0, 0, nil)
		b.add("b", 20, "read", reg(0, 0), history.OK, 0, 1, reg(0, 2))
		b.add("b", 30, "read", reg(0, 0), history.OK, 0, 1, reg(0, 0))
		requireFails(t, Register(&b.h, 10*time.Second), "not linearizable")
	})
	t.Run("a timeout is unknown, not a pass", func(t *testing.T) {
		b := &hb{}
		// Many concurrent writes and reads of one register: a large search space.
		for i := range 400 {
			b.spanned("w", int64(i), 100_000, "write", reg(0, int64(i%7)), history.OK, 0, 0, reg(0, int64(i%7)))
		}
		for i := range 400 {
			b.spanned("r", int64(1000+i), 200_000, "read", reg(0, 0), history.OK, 0, 0, reg(0, int64((i*3)%7)))
		}
		r := Register(&b.h, time.Nanosecond)
		require.Equal(t, Unknown, r.Verdict, "%s", r)
		require.Contains(t, r.Explanation, "did not finish")
	})
}

func TestSelect(t *testing.T) {
	var h history.History
	h.Add(history.Line{Type: history.Ready, Worker: "a", Value: history.Value(history.ReadyInfo{Workload: "bank"})},
		history.Line{Type: history.Ready, Worker: "b", Value: history.Value(history.ReadyInfo{Workload: "counter"})},
		history.Line{Type: history.Invoke, Worker: "a", Op: 1, F: "read"},
		history.Line{Type: history.Invoke, Worker: "b", Op: 1, F: "read"})
	got := Select(&h, "bank").Lines()
	require.Len(t, got, 2)
	require.Equal(t, "a", got[1].Worker)
}

func app(k int, v int64) history.MicroOp {
	return history.MicroOp{F: history.OpAppend, Key: k, Value: v}
}

func rd(k int, l ...int64) history.MicroOp {
	if l == nil {
		l = []int64{}
	}
	return history.MicroOp{F: history.OpRead, Key: k, Read: l}
}

func TestLists(t *testing.T) {
	clean := func() *hb {
		b := &hb{}
		b.add("a", 1, "txn", history.Txn{app(0, 1)}, history.OK, 2, 1, history.Txn{app(0, 1)})
		b.add("b", 3, "txn", history.Txn{rd(0), app(0, 2), rd(0)}, history.OK, 3, 2, history.Txn{rd(0, 1), app(0, 2), rd(0, 1, 2)})
		b.add("c", 5, "txn", history.Txn{app(1, 3)}, history.Fail, 0, 3, nil)
		return b
	}
	final := func(b *hb, l0 []int64, l1 []int64) {
		b.add("a", 9, "txn", history.Txn{rd(0), rd(1)}, history.OK, 0, 4, history.Txn{rd(0, l0...), rd(1, l1...)})
	}
	b := clean()
	final(b, []int64{1, 2}, nil)
	r := Lists(&b.h)
	require.True(t, r.OK(), "%s", r)

	cases := map[string]struct {
		l0, l1 []int64
		why    string
	}{
		"lost append":  {[]int64{1}, nil, "list 0 read [1]"},
		"reordered":    {[]int64{2, 1}, nil, "list 0 read [2 1]"},
		"duplicate":    {[]int64{1, 2, 2}, nil, "holds 2 twice"},
		"invented":     {[]int64{1, 2, 9}, nil, "which nobody appended"},
		"aborted read": {[]int64{1, 2}, []int64{3}, "aborted read"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := clean()
			final(b, c.l0, c.l1)
			requireFails(t, Lists(&b.h), c.why)
		})
	}
	t.Run("no final read", func(t *testing.T) {
		requireFails(t, Lists(&clean().h), "no read of list 0 covers")
	})
	t.Run("unknown appends may appear", func(t *testing.T) {
		b := clean()
		b.add("d", 6, "txn", history.Txn{app(1, 4)}, "", 0, 0, nil)
		final(b, []int64{1, 2}, []int64{4})
		r := Lists(&b.h)
		require.True(t, r.OK(), "%s", r)
	})
}

func TestHold(t *testing.T) {
	b := &hb{}
	b.add("h", 1, "hold", nil, history.OK, 0, 3, nil)
	require.True(t, Hold(&b.h).OK())
	b.add("h", 2, "hold", nil, history.Fail, 0, 0, nil)
	requireFails(t, Hold(&b.h), "hold failed")
}

// Two appends to one list in one transaction share a TSN and keep their order.
func TestListsOneTransactionAppendsTwice(t *testing.T) {
	b := &hb{}
	for i := range 20 {
		v := int64(10 * (i + 1))
		b.add("a", int64(2*i+1), "txn", history.Txn{app(0, v), app(0, v+1)}, history.OK, uint64(i+2), uint64(i+1), history.Txn{app(0, v), app(0, v+1)})
	}
	var all []int64
	for i := range 20 {
		all = append(all, int64(10*(i+1)), int64(10*(i+1)+1))
	}
	b.add("a", 100, "txn", history.Txn{rd(0)}, history.OK, 0, 21, history.Txn{rd(0, all...)})
	r := Lists(&b.h)
	require.True(t, r.OK(), "%s", r)
}
