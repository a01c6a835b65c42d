package check

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/procharness/elle"
	"github.com/txtdb/txtdb/procharness/history"
)

// The Elle wiring: a write skew (two transactions each read the list the other appends to, both
// commit) is a G2-item cycle, invalid at serializable and allowed at snapshot isolation; a read
// of a failed transaction's append is G1a; an append of unknown outcome that a read observed is
// part of the graph, and one nobody observed is not a violation.
func TestElle(t *testing.T) {
	skew := func() *hb {
		b := &hb{}
		b.add("a", 1, "txn", history.Txn{rd(0), app(1, 10)}, history.OK, 3, 1, history.Txn{rd(0), app(1, 10)})
		b.add("b", 2, "txn", history.Txn{rd(1), app(0, 20)}, history.OK, 4, 1, history.Txn{rd(1), app(0, 20)})
		b.add("c", 5, "txn", history.Txn{app(2, 30)}, "", 0, 0, nil) // killed: outcome unknown
		b.add("c", 6, "txn", history.Txn{app(3, 40)}, "", 0, 0, nil) // killed, never observed
		b.add("d", 7, "txn", history.Txn{app(4, 50)}, history.Fail, 0, 4, nil)
		b.add("e", 9, "txn", history.Txn{rd(0), rd(1), rd(2)}, history.OK, 0, 6, history.Txn{rd(0, 20), rd(1, 10), rd(2, 30)})
		return b
	}
	r := Elle(&skew().h, elle.Serializable)
	requireFails(t, r, "G2-item")
	r = Elle(&skew().h, elle.SnapshotIsolation)
	require.True(t, r.OK(), "%s", r)
	require.Contains(t, r.Explanation, "allowed: G2-item 1")

	b := &hb{}
	b.add("a", 1, "txn", history.Txn{app(0, 1)}, history.OK, 2, 1, history.Txn{app(0, 1)})
	b.add("d", 2, "txn", history.Txn{app(0, 2)}, history.Fail, 0, 2, nil)
	b.add("e", 3, "txn", history.Txn{rd(0)}, history.OK, 0, 3, history.Txn{rd(0, 1, 2)})
	requireFails(t, Elle(&b.h, 0), "G1a")

	b = &hb{}
	b.add("a", 1, "txn", history.Txn{app(0, 1)}, history.OK, 2, 1, history.Txn{app(0, 1)})
	b.add("e", 3, "txn", history.Txn{rd(0)}, history.OK, 0, 3, history.Txn{rd(0, 1, 1)})
	requireFails(t, Elle(&b.h, 0), "duplicate")

	txns, err := ElleTxns(mustOps(t, &skew().h))
	require.NoError(t, err)
	require.Len(t, txns, 6)
	require.Equal(t, elle.Info, txns[2].Type)
	require.Zero(t, txns[2].End)
	require.Equal(t, elle.Fail, txns[4].Type)
	require.Equal(t, []int{20}, txns[5].Ops[0].List)
	require.Equal(t, "1", txns[5].Ops[1].Key)
}

func mustOps(t *testing.T, h *history.History) []history.Op {
	t.Helper()
	ops, err := h.Ops()
	require.NoError(t, err)
	return ops
}
