package main

import (
	"context"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness/history"
)

const registerNS = "register"

// register runs reads, writes and compare-and-sets on n registers of one page each. Values are
// small (0-4), so compare-and-sets often succeed and the checker has real choices to make.
type register struct {
	n   int
	ids []string
}

func (r *register) setup(ctx context.Context, e *env) (err error) {
	r.ids, err = e.ensurePages(ctx, registerNS, r.n, func(int) any { return int64(0) })
	return err
}

func (r *register) step(e *env) error {
	k := e.rng.IntN(r.n)
	id := r.ids[k]
	switch e.rng.IntN(3) {
	case 0:
		return e.op("read", nil, history.Reg{Key: k}, func(ctx context.Context) (any, uint64, uint64, error) {
			var v int64
			snap, err := e.view(ctx, func(tx *txtdb.Tx) (err error) {
				v, err = readInt(tx, registerNS, id)
				return err
			})
			return history.Reg{Key: k, Value: v}, 0, snap, err
		})
	case 1:
		in := history.Reg{Key: k, Value: e.rng.Int64N(5)}
		return e.op("write", []string{registerNS}, in, func(ctx context.Context) (any, uint64, uint64, error) {
			tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) error {
				if _, err := readInt(tx, registerNS, id); err != nil {
					return err
				}
				return tx.UpdatePage(registerNS, id, in.Value)
			})
			return in, tsn, snap, err
		})
	default:
		in := history.Reg{Key: k, From: e.rng.Int64N(5), To: e.rng.Int64N(5)}
		return e.op("cas", []string{registerNS}, in, func(ctx context.Context) (any, uint64, uint64, error) {
			out := in
			tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) error {
				out.Swapped = false
				v, err := readInt(tx, registerNS, id)
				if err != nil {
					return err
				}
				if v != in.From {
					return errNoWrite
				}
				out.Swapped = true
				return tx.UpdatePage(registerNS, id, in.To)
			})
			return out, tsn, snap, err
		})
	}
}

func (r *register) final(*env) error { return nil }
