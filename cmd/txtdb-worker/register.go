package main

import (
	"context"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness/history"
)

// registerNS is the parent of the register generations: generation g is namespace
// register.g<g>.
const registerNS = "register"

func regGenNS(g int) string { return genOf(registerNS, g) }

// regPage is what a register's page holds: the register's value and how many writes it has
// had (the count only decides when workers move on to the next generation).
type regPage struct {
	Value  int64 `json:"value"`
	Writes int64 `json:"writes"`
}

// register runs reads, writes and compare-and-sets on n registers of one page each. Values are
// small (0-4), so compare-and-sets often succeed and the checker has real choices to make.
//
// Registers live in generations, so that a long run keeps the history of each register short
// enough for the linearizability search: once an operation of this worker finds a register of
// its generation with maxWrites writes or more, the worker moves on to the next generation
// (creating it if nobody has) and never touches the old one again; the other workers follow
// when they find a full register themselves. A worker starts in the newest generation. Register
// k of generation g is key g*n+k in the history.
type register struct {
	n         int
	maxWrites int64
	gen       int
	ids       []string
	full      bool // an operation of this generation found a full register
}

func (r *register) setup(ctx context.Context, e *env) error {
	g, err := e.newestGen(ctx, registerNS)
	if err != nil {
		return err
	}
	return r.enter(ctx, e, g)
}

// enter makes generation g the worker's, creating it if needed.
func (r *register) enter(ctx context.Context, e *env, g int) error {
	ids, err := e.ensurePages(ctx, regGenNS(g), r.n, func(int) any { return regPage{} })
	if err != nil {
		return err
	}
	r.gen, r.ids, r.full = g, ids, false
	return nil
}

// saw notes a register page an operation read.
func (r *register) saw(p regPage) {
	if r.maxWrites > 0 && p.Writes >= r.maxWrites {
		r.full = true
	}
}

func (r *register) step(e *env) error {
	if r.full {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		return r.enter(ctx, e, r.gen+1)
	}
	k := e.rng.IntN(r.n)
	key := r.gen*r.n + k
	ns, id := regGenNS(r.gen), r.ids[k]
	read := func(tx *txtdb.Tx) (regPage, error) {
		var p regPage
		return p, readOne(tx, ns, id, &p)
	}
	switch e.rng.IntN(3) {
	case 0:
		return e.op("read", nil, history.Reg{Key: key}, func(ctx context.Context) (any, uint64, uint64, error) {
			var p regPage
			snap, err := e.view(ctx, func(tx *txtdb.Tx) (err error) {
				p, err = read(tx)
				return err
			})
			if err == nil {
				r.saw(p)
			}
			return history.Reg{Key: key, Value: p.Value}, 0, snap, err
		})
	case 1:
		in := history.Reg{Key: key, Value: e.rng.Int64N(5)}
		return e.op("write", []string{ns}, in, func(ctx context.Context) (any, uint64, uint64, error) {
			var p regPage
			tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) (err error) {
				if p, err = read(tx); err != nil {
					return err
				}
				return tx.UpdatePage(ns, id, regPage{Value: in.Value, Writes: p.Writes + 1})
			})
			if err == nil {
				r.saw(regPage{Writes: p.Writes + 1})
			}
			return in, tsn, snap, err
		})
	default:
		in := history.Reg{Key: key, From: e.rng.Int64N(5), To: e.rng.Int64N(5)}
		return e.op("cas", []string{ns}, in, func(ctx context.Context) (any, uint64, uint64, error) {
			out := in
			var p regPage
			tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) (err error) {
				out.Swapped = false
				if p, err = read(tx); err != nil {
					return err
				}
				if p.Value != in.From {
					return errNoWrite
				}
				out.Swapped = true
				p.Writes++
				return tx.UpdatePage(ns, id, regPage{Value: in.To, Writes: p.Writes})
			})
			if err == nil {
				r.saw(p)
			}
			return out, tsn, snap, err
		})
	}
}

func (r *register) final(*env) error { return nil }
