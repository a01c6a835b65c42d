package main

import (
	"context"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness/history"
)

const appendNS = "append"

// appendLists runs list-append transactions on n lists (one page each, holding one JSON array):
// 1-4 micro-ops, each appending a value unique across all workers (uid*1e6 + a counter) or
// reading a list. Reads see the transaction's own appends.
type appendLists struct {
	n    int
	ids  []string
	next int64
}

func (a *appendLists) setup(ctx context.Context, e *env) (err error) {
	a.ids, err = e.ensurePages(ctx, appendNS, a.n, func(int) any { return []int64{} })
	return err
}

func (a *appendLists) step(e *env) error {
	in := make(history.Txn, 1+e.rng.IntN(4))
	a.fill(e, in)
	return a.run(e, in)
}

// fill makes in's micro-ops: reads and appends of random lists.
func (a *appendLists) fill(e *env, in history.Txn) {
	for i := range in {
		in[i] = history.MicroOp{F: history.OpRead, Key: e.rng.IntN(a.n)}
		if e.rng.IntN(2) == 0 {
			a.next++
			in[i] = history.MicroOp{F: history.OpAppend, Key: in[i].Key, Value: e.p.uid*1_000_000 + a.next}
		}
	}
}

// run runs one transaction of micro-ops.
func (a *appendLists) run(e *env, in history.Txn) error {
	return e.op("txn", in, func(ctx context.Context) (any, uint64, uint64, error) {
		out := make(history.Txn, len(in))
		tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) error {
			for i, m := range in {
				var list []int64
				if err := readOne(tx, appendNS, a.ids[m.Key], &list); err != nil {
					return err
				}
				if list == nil {
					list = []int64{}
				}
				out[i] = m
				if m.F == history.OpRead {
					out[i].Read = list
					continue
				}
				if err := tx.UpdatePage(appendNS, a.ids[m.Key], append(list, m.Value)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, tsn, snap, err
		}
		return out, tsn, snap, nil
	})
}

// final reads every list in one transaction.
func (a *appendLists) final(e *env) error {
	in := make(history.Txn, a.n)
	for k := range in {
		in[k] = history.MicroOp{F: history.OpRead, Key: k}
	}
	return a.run(e, in)
}
