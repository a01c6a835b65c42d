package txn

import (
	"context"
	"sync"

	"github.com/txtdb/txtdb/pages"
)

// allocator hands page numbers to this process's inserting transactions. Fresh numbers come from
// blocks reserved in the log for this process, so no other process ever uses them and concurrent
// inserts into one namespace never write the same page. A "hot" page is a committed page this
// process filled last; one transaction at a time may append to it, and only one whose snapshot
// holds the page's last write by this process.
type allocator struct {
	mu   sync.Mutex
	free map[string][]uint64 // guarded by mu: incarnation -> reserved, never committed numbers
	hot  map[string]hotPage  // guarded by mu: incarnation -> committed page with room, not in use
}

// hotPage is a hot page and the TSN of this process's last commit to it.
type hotPage struct {
	n   uint64
	tsn pages.TSN
}

// reset forgets every reserved number and hot page (a new lineage: they belonged to the old
// history).
func (a *allocator) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.free = map[string][]uint64{}
	a.hot = map[string]hotPage{}
}

// freshPage returns a page number of inc that nobody has used, reserving a new block through the
// commit group when this process has none left.
func (db *DB) freshPage(ctx context.Context, inc, ns string) (uint64, error) {
	a := &db.alloc
	a.mu.Lock()
	if l := a.free[inc]; len(l) > 0 {
		n := l[0]
		a.free[inc] = l[1:]
		a.mu.Unlock()
		return n, nil
	}
	a.mu.Unlock()
	res := &reservation{inc: inc, ns: ns, n: reserveBlock}
	if err := db.submit(ctx, &request{reserve: res}); err != nil {
		return 0, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for n := res.from + 1; n < res.upto; n++ {
		a.free[inc] = append(a.free[inc], n)
	}
	return res.from, nil
}

// giveBack returns fresh numbers that were never committed.
func (a *allocator) giveBack(inc string, ns []uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.free[inc] = append(ns, a.free[inc]...)
}

// takeHot hands inc's hot page to a transaction at snapshot snap, if its last commit to the
// page is at or below snap. A transaction whose snapshot predates that commit would append to a
// version that is not the page's latest, and lose validation; the page stays hot for the next.
// The index alone cannot tell: a commit another process made for this one (a taken offer) is
// in this process's index only once it catches up.
func (a *allocator) takeHot(inc string, snap pages.TSN) (hotPage, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h, ok := a.hot[inc]
	if !ok || h.tsn > snap {
		return hotPage{}, false
	}
	delete(a.hot, inc)
	return h, true
}

func (a *allocator) putHot(inc string, h hotPage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hot[inc] = h
}
