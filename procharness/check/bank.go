package check

import (
	"fmt"
	"slices"

	"github.com/txtdb/txtdb/procharness/history"
)

// BankConfig is the bank workload's shape.
type BankConfig struct {
	Accounts int   // accounts
	Balance  int64 // initial balance of each
}

// Bank checks a bank history (see the package doc).
func Bank(h *history.History, cfg BankConfig) Result {
	const name = "bank"
	ops, bad := opsOf(name, h)
	if bad != nil {
		return *bad
	}
	total := int64(cfg.Accounts) * cfg.Balance
	var f findings
	type transfer struct {
		tsn uint64
		t   history.Transfer
	}
	var acked []transfer
	unknown := 0
	var reads []history.Op
	var maxTSN uint64
	for _, o := range ops {
		switch {
		case o.F == "transfer" && o.Type() == history.OK:
			var t history.Transfer
			if err := o.Done.Decode(&t); err != nil {
				f.add("%v", err)
				continue
			}
			if t.Amount < 0 || t.From == t.To || t.From < 0 || t.To < 0 || t.From >= cfg.Accounts || t.To >= cfg.Accounts {
				f.add("%s op %d: malformed transfer %+v", o.Worker, o.ID, t)
				continue
			}
			if o.Done.TSN != 0 {
				acked = append(acked, transfer{o.Done.TSN, t})
				maxTSN = max(maxTSN, o.Done.TSN)
			}
		case o.F == "transfer" && o.Type() == history.Unknown:
			unknown++
		case o.F == "read" && o.Type() == history.OK:
			reads = append(reads, o)
		}
	}
	slices.SortFunc(acked, func(a, b transfer) int { return cmpU(a.tsn, b.tsn) })
	for i := 1; i < len(acked); i++ {
		if acked[i].tsn == acked[i-1].tsn {
			f.add("two acknowledged transfers share TSN %d", acked[i].tsn)
		}
	}
	slices.SortFunc(reads, func(a, b history.Op) int { return cmpU(a.Done.Snap, b.Done.Snap) })
	var finalSnap uint64
	for _, r := range reads {
		var bal history.Balances
		if err := r.Done.Decode(&bal); err != nil {
			f.add("%v", err)
			continue
		}
		finalSnap = max(finalSnap, r.Done.Snap)
		if len(bal) != cfg.Accounts {
			f.add("%s op %d at snapshot %d read %d accounts, want %d", r.Worker, r.ID, r.Done.Snap, len(bal), cfg.Accounts)
			continue
		}
		var sum int64
		for i, b := range bal {
			sum += b
			if b < 0 {
				f.add("%s op %d at snapshot %d: account %d is negative (%d)", r.Worker, r.ID, r.Done.Snap, i, b)
			}
		}
		if sum != total {
			f.add("%s op %d at snapshot %d: total %d, want %d: %v", r.Worker, r.ID, r.Done.Snap, sum, total, bal)
		}
		if unknown > 0 {
			continue
		}
		// No unknown transfers: the read is exactly the acknowledged transfers up to its snapshot.
		want := make([]int64, cfg.Accounts)
		for i := range want {
			want[i] = cfg.Balance
		}
		for _, t := range acked {
			if t.tsn > r.Done.Snap {
				break
			}
			want[t.t.From] -= t.t.Amount
			want[t.t.To] += t.t.Amount
		}
		if !slices.Equal(want, bal) {
			f.add("%s op %d at snapshot %d read %v, the acknowledged transfers up to it give %v", r.Worker, r.ID, r.Done.Snap, bal, want)
		}
	}
	if len(acked) > 0 && finalSnap < maxTSN {
		f.add("no read covers every acknowledged transfer: last read at snapshot %d, last transfer at TSN %d", finalSnap, maxTSN)
	}
	ok := fmt.Sprintf("%d reads, each with total %d and no negative balance; %d acknowledged transfers", len(reads), total, len(acked))
	if unknown > 0 {
		ok += fmt.Sprintf("; %d of unknown outcome, so balances were not checked exactly", unknown)
	} else {
		ok += "; every read equals the acknowledged transfers up to its snapshot"
	}
	return f.result(name, len(ops), ok)
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
