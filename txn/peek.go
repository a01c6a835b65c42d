package txn

import (
	"fmt"
	"slices"

	"github.com/txtdb/txtdb/pages"
)

// PeekPage returns a page's objects as this transaction sees it, like ReadPage, but records no
// read: a later change of the page does not make this transaction conflict, and UpdatePage and
// DeletePage still need a ReadPage first. It is for routing information whose staleness the
// caller detects through other reads, such as the inner nodes of a tree whose leaves are read
// with ReadPage or ReadPageKey (a leaf whose range changes is rewritten, which those reads see).
// The slice is the store's own (clipped, so appending to it copies): the caller must not assign
// to its elements. Objects themselves are immutable.
func (tx *Tx) PeekPage(ns, pageID string) ([]pages.Object, error) {
	inc, n, err := tx.page(ns, pageID)
	if err != nil {
		return nil, err
	}
	key := pageKey{inc, n}
	if tx.writable {
		if w := tx.ws.writes.at(key); w != nil {
			if w.deleted {
				return nil, notFound(ns, n)
			}
			if w.prefix != nil {
				return w.view(), nil
			}
			return slices.Clip(w.objs), nil
		}
	}
	tx.idx.mu.RLock()
	v, ok := tx.idx.get(inc, n, tx.snap)
	tx.idx.mu.RUnlock()
	if !ok {
		return nil, notFound(ns, n)
	}
	objs, err := tx.db.contents(tx.idx, inc, n, v)
	if err != nil {
		return nil, fmt.Errorf("txtdb: read %s/%s: %w", ns, pages.PageID(n), tx.db.tooOld(tx.idx, tx.snap, err))
	}
	return slices.Clip(objs), nil
}
