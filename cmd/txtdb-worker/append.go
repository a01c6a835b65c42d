package main

import (
	"context"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness/history"
)

// appendNS is the parent of the list-append generations: generation g is namespace
// append.g<g>.
const appendNS = "append"

func genNS(g int) string { return genOf(appendNS, g) }

// appendLists runs list-append transactions on n lists (one page each, holding one JSON array):
// 1-4 micro-ops, each appending a value unique across all workers (uid*1e6 + a counter) or
// reading a list. Reads see the transaction's own appends.
//
// Lists live in generations, so that a long run keeps them short: once a transaction of this
// worker reads a list of maxLen values or more, the worker moves on to the next generation
// (creating it if nobody has) and never touches the old one again; other workers follow when
// they read a full list themselves. A worker starts in the newest generation. List k of
// generation g is key g*n+k in the history.
type appendLists struct {
	n, maxLen int
	gen       int
	ids       []string
	next      int64
	full      bool // a read of this generation found a full list
	planted   bool
}

func (a *appendLists) setup(ctx context.Context, e *env) error {
	g, err := e.newestGen(ctx, appendNS)
	if err != nil {
		return err
	}
	return a.enter(ctx, e, g)
}

// enter makes generation g the worker's, creating it if needed.
func (a *appendLists) enter(ctx context.Context, e *env, g int) error {
	ids, err := e.ensurePages(ctx, genNS(g), a.n, func(int) any { return []int64{} })
	if err != nil {
		return err
	}
	a.gen, a.ids, a.full = g, ids, false
	return nil
}

func (a *appendLists) step(e *env) error {
	if a.full {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		return a.enter(ctx, e, a.gen+1)
	}
	in := make(history.Txn, 1+e.rng.IntN(4))
	plant := e.p.plant && !a.planted
	if plant { // read a list, then append to it
		k := e.rng.IntN(a.n)
		in = history.Txn{{F: history.OpRead, Key: k}, a.appendTo(e, k)}
	} else {
		a.fill(e, in)
	}
	return a.run(e, a.gen, a.ids, in, plant)
}

// fill makes in's micro-ops: reads and appends of random lists.
func (a *appendLists) fill(e *env, in history.Txn) {
	for i := range in {
		k := e.rng.IntN(a.n)
		in[i] = history.MicroOp{F: history.OpRead, Key: k}
		if e.rng.IntN(2) == 0 {
			in[i] = a.appendTo(e, k)
		}
	}
}

func (a *appendLists) appendTo(e *env, k int) history.MicroOp {
	a.next++
	return history.MicroOp{F: history.OpAppend, Key: k, Value: e.p.uid*1_000_000 + a.next}
}

// run runs one transaction of micro-ops on the lists ids of generation g (micro-op keys are
// list indexes there; the history names key g*n+k). With plant, an append to a list that is
// not empty puts its value first instead of last, once: a violation the checkers must find.
func (a *appendLists) run(e *env, g int, ids []string, in history.Txn, plant bool) error {
	ns := genNS(g)
	key := func(k int) int { return g*a.n + k }
	hin := make(history.Txn, len(in))
	for i, m := range in {
		hin[i] = m
		hin[i].Key = key(m.Key)
	}
	var writes []string
	for _, m := range in {
		if m.F == history.OpAppend {
			writes = []string{ns}
		}
	}
	return e.op("txn", writes, hin, func(ctx context.Context) (any, uint64, uint64, error) {
		out := make(history.Txn, len(in))
		planted := false
		tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) error {
			planted = false
			for i, m := range in {
				var list []int64
				if err := readOne(tx, ns, ids[m.Key], &list); err != nil {
					return err
				}
				if list == nil {
					list = []int64{}
				}
				if a.maxLen > 0 && len(list) >= a.maxLen && g == a.gen {
					a.full = true
				}
				out[i] = hin[i]
				if m.F == history.OpRead {
					out[i].Read = list
					continue
				}
				next := append(list, m.Value)
				if plant && len(list) > 0 {
					next, planted = append([]int64{m.Value}, list...), true
				}
				if err := tx.UpdatePage(ns, ids[m.Key], next); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, tsn, snap, err
		}
		if planted && tsn != 0 {
			a.planted = true
		}
		return out, tsn, snap, nil
	})
}

// final reads every list of every generation, one transaction per generation.
func (a *appendLists) final(e *env) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	gens, err := e.gens(ctx, appendNS)
	if err != nil {
		return err
	}
	for _, g := range gens {
		ids := a.ids
		if g != a.gen {
			if _, err := e.view(ctx, func(tx *txtdb.Tx) error {
				ids, err = pageIDs(tx, genNS(g))
				return err
			}); err != nil {
				return err
			}
		}
		in := make(history.Txn, a.n)
		for k := range in {
			in[k] = history.MicroOp{F: history.OpRead, Key: k}
		}
		if err := a.run(e, g, ids, in, false); err != nil {
			return err
		}
	}
	return nil
}
