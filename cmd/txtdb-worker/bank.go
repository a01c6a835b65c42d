package main

import (
	"context"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness/history"
)

const bankNS = "bank"

// bank transfers between n accounts of one page each and reads every balance in one snapshot.
type bank struct {
	n       int
	balance int64
	ids     []string
	planted bool
}

func (b *bank) setup(ctx context.Context, e *env) (err error) {
	b.ids, err = e.ensurePages(ctx, bankNS, b.n, func(int) any { return b.balance })
	return err
}

func (b *bank) step(e *env) error {
	if e.rng.IntN(5) == 0 {
		return b.read(e)
	}
	from := e.rng.IntN(b.n)
	to := (from + 1 + e.rng.IntN(b.n-1)) % b.n
	in := history.Transfer{From: from, To: to, Amount: 1 + e.rng.Int64N(5)}
	plant := e.p.plant && !b.planted
	return e.op("transfer", []string{bankNS}, in, func(ctx context.Context) (any, uint64, uint64, error) {
		out := in
		tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) error {
			out = in
			fb, err := readInt(tx, bankNS, b.ids[from])
			if err != nil {
				return err
			}
			tb, err := readInt(tx, bankNS, b.ids[to])
			if err != nil {
				return err
			}
			out.Amount = min(in.Amount, fb)
			if out.Amount == 0 {
				return errNoWrite
			}
			if !plant { // a planted violation credits without debiting
				if err := tx.UpdatePage(bankNS, b.ids[from], fb-out.Amount); err != nil {
					return err
				}
			}
			return tx.UpdatePage(bankNS, b.ids[to], tb+out.Amount)
		})
		if err == nil && plant && tsn != 0 {
			b.planted = true
		}
		return out, tsn, snap, err
	})
}

func (b *bank) read(e *env) error {
	return e.op("read", nil, nil, func(ctx context.Context) (any, uint64, uint64, error) {
		var bal []int64
		snap, err := e.view(ctx, func(tx *txtdb.Tx) (err error) {
			bal, err = readAll(tx, bankNS, b.ids)
			return err
		})
		if err != nil {
			return nil, 0, snap, err
		}
		return history.Balances(bal), 0, snap, nil
	})
}

func (b *bank) final(e *env) error { return b.read(e) }
