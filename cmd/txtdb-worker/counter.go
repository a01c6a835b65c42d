package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness/history"
)

const counterNS = "counter"

// churnNames are the names the counter workload's -rename alternates a namespace between.
var churnNames = [2]string{"churn.a", "churn.b"}

// counter increments n counters of one page each and reads all of them in one snapshot. With
// -checkpoint it checkpoints after every operation; with -rename every other operation renames
// the churned namespace (after writing its page), so checkpoints move its files.
type counter struct {
	n       int
	ids     []string
	planted bool
	turn    int
}

func (c *counter) setup(ctx context.Context, e *env) (err error) {
	c.ids, err = e.ensurePages(ctx, counterNS, c.n, func(int) any { return int64(0) })
	if err != nil || !e.p.rename {
		return err
	}
	_, _, err = e.update(ctx, func(tx *txtdb.Tx) error {
		names, err := tx.Namespaces()
		if err != nil {
			return err
		}
		if slices.Contains(names, churnNames[0]) || slices.Contains(names, churnNames[1]) {
			return errNoWrite
		}
		if err := tx.CreateNamespace(churnNames[0]); err != nil {
			return err
		}
		_, err = tx.Insert(churnNames[0], int64(0))
		return err
	})
	return err
}

func (c *counter) step(e *env) error {
	c.turn++
	var err error
	switch {
	case e.p.rename && c.turn%2 == 0:
		err = c.churn(e)
	case !e.p.incrOnly && e.rng.IntN(10) == 0:
		err = c.read(e)
	default:
		err = c.incr(e)
	}
	if err == nil && e.p.checkpoint {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if cerr := e.db.Checkpoint(ctx); cerr != nil {
			return fmt.Errorf("checkpoint: %w", cerr)
		}
	}
	return err
}

func (c *counter) incr(e *env) error {
	k := e.rng.IntN(c.n)
	plant := e.p.plant && !c.planted
	return e.op("incr", []string{counterNS}, history.Incr{Key: k}, func(ctx context.Context) (any, uint64, uint64, error) {
		var v int64
		tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) (err error) {
			if v, err = readInt(tx, counterNS, c.ids[k]); err != nil {
				return err
			}
			v++
			if plant {
				return tx.UpdatePage(counterNS, c.ids[k], v+1) // a planted violation: counts twice
			}
			return tx.UpdatePage(counterNS, c.ids[k], v)
		})
		if err == nil && plant {
			c.planted = true
		}
		return history.Incr{Key: k, Value: v}, tsn, snap, err
	})
}

func (c *counter) read(e *env) error {
	return e.op("read", nil, nil, func(ctx context.Context) (any, uint64, uint64, error) {
		var vs []int64
		snap, err := e.view(ctx, func(tx *txtdb.Tx) (err error) {
			vs, err = readAll(tx, counterNS, c.ids)
			return err
		})
		if err != nil {
			return nil, 0, snap, err
		}
		return history.Counters(vs), 0, snap, nil
	})
}

// churn writes the churned namespace's page and renames the namespace to its other name.
func (c *counter) churn(e *env) error {
	return e.op("rename", churnNames[:], nil, func(ctx context.Context) (any, uint64, uint64, error) {
		var to string
		tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) error {
			names, err := tx.Namespaces()
			if err != nil {
				return err
			}
			from, to0 := churnNames[0], churnNames[1]
			if slices.Contains(names, churnNames[1]) {
				from, to0 = to0, from
			}
			to = to0
			m, err := tx.Match(from, "*")
			if err != nil {
				return err
			}
			for id := range m {
				v, err := readInt(tx, from, id)
				if err != nil {
					return err
				}
				if err := tx.UpdatePage(from, id, v+1); err != nil {
					return err
				}
			}
			return tx.RenameNamespace(from, to)
		})
		return to, tsn, snap, err
	})
}

func (c *counter) final(e *env) error { return c.read(e) }
