package txn

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/txtdb/txtdb/pages"
)

// NewPage creates a page of its own in ns holding objs (none is an empty page) and returns its
// ID. Its number is fresh: no other transaction, in any process, can take it, and Insert never
// fills it, in this transaction or later. The page size is not applied: the caller decides what a
// page holds.
//
// In a namespace this transaction created, pages are numbered from 1 in the order this
// transaction starts them: each NewPage, and each Insert that starts a page, takes the next
// number. So a transaction that creates a namespace and calls NewPage before any Insert into it
// gets "page000001", then "page000002", and so on.
func (tx *Tx) NewPage(ns string, objs ...any) (string, error) {
	if err := tx.check(true); err != nil {
		return "", err
	}
	encoded, err := tx.encode(objs)
	if err != nil {
		return "", err
	}
	inc, err := tx.resolve(ns, true)
	if err != nil {
		return "", err
	}
	var n uint64
	if next, created := tx.ws.created[inc]; created {
		n = next
		setKey(&tx.ws.created, inc, next+1)
	} else {
		if n, err = tx.db.freshPage(tx.ctx, inc, ns); err != nil {
			return "", fmt.Errorf("txtdb: new page in %s: %w", ns, err)
		}
		setKey(&tx.ins.fresh, inc, append(tx.ins.fresh[inc], n))
	}
	// Not in tx.ins.fill: Insert neither fills it now nor makes it this process's hot page.
	tx.putWrite(pageKey{inc, n}, &pageWrite{ns: ns, objs: encoded, fresh: true})
	return pages.PageID(n), nil
}

func checkKey(key string) error {
	if key == "" || !utf8.ValidString(key) {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	return nil
}

// AppendPage adds objs (possibly none) at the end of a page under key, without depending on its
// contents: they go at the end of the page as it is when this transaction commits. It is a keyed change: under
// both isolation levels the commit conflicts only if, after the snapshot, the page was deleted, or
// changed by a change that is not keyed (UpdatePage, DeletePage, Insert), or received a keyed
// append under the same key. Keyed appends under different keys to one page never conflict; they
// all land, in commit order. Reads of the page in this transaction see the snapshot's contents
// followed by its own appends.
//
// The page must exist at the snapshot (ErrNotFound; that, too, counts as a read) or have been
// written by this transaction: then objs are added to that write (to an UpdatePage's or NewPage's
// contents: a whole-page write, no longer keyed). Several AppendPage calls on one page make one
// change, holding all their keys. key must be non-empty and valid UTF-8 (ErrInvalidKey).
func (tx *Tx) AppendPage(ns, pageID, key string, objs ...any) error {
	if err := tx.check(true); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	encoded, err := tx.encode(objs)
	if err != nil {
		return err
	}
	inc, err := tx.resolve(ns, true)
	if err != nil {
		return err
	}
	n, err := pages.ParsePageID(pageID)
	if err != nil {
		return err
	}
	k := pageKey{inc, n}
	if w := tx.ws.writes.at(k); w != nil {
		if w.deleted {
			return notFound(ns, n)
		}
		w.objs = append(w.objs, encoded...)
		if w.keyed && !slices.Contains(w.keys, key) {
			w.keys = append(w.keys, key)
		}
		return nil
	}
	tx.idx.mu.RLock()
	v, ok := tx.idx.get(inc, n, tx.snap)
	tx.idx.mu.RUnlock()
	if !ok {
		tx.noteRead(k, ns, false, "")
		return notFound(ns, n)
	}
	// The snapshot's contents, for this transaction's own view of the page only: they are no
	// dependency and do not go to the log.
	cur, err := tx.db.contents(tx.idx, inc, n, v)
	if err != nil {
		return fmt.Errorf("txtdb: append to %s/%s: %w", ns, pageID, err)
	}
	tx.putWrite(k, &pageWrite{ns: ns, objs: append(slices.Clip(cur), encoded...), keyed: true,
		keys: []string{key}, base: len(cur)})
	return nil
}

// ReadPageKey returns a page's objects exactly like ReadPage (this transaction's own writes
// included; ErrNotFound if it does not exist at the snapshot), but under Serializable the
// transaction depends only on what a change under key could alter: its commit conflicts only if,
// after the snapshot, the page was created or deleted, or changed by a change that is not keyed,
// or received a keyed append under the same key. Objects other keys' appends add after the
// snapshot are not seen, and do not conflict: a caller that depends on them reads with ReadPage.
// A ReadPage of the same page makes the whole page count as read. For UpdatePage and DeletePage
// the page counts as read. key must be non-empty and valid UTF-8 (ErrInvalidKey).
func (tx *Tx) ReadPageKey(ns, pageID, key string) ([]pages.Object, error) {
	inc, n, err := tx.page(ns, pageID)
	if err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return tx.readAs(ns, inc, n, key)
}
