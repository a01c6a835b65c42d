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
		tx.ws.created[inc] = next + 1
	} else {
		if n, err = tx.db.freshPage(tx.ctx, inc, ns); err != nil {
			return "", fmt.Errorf("txtdb: new page in %s: %w", ns, err)
		}
		tx.ins.fresh[inc] = append(tx.ins.fresh[inc], n)
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

// AppendPage adds objs at the end of a page under key.
//
// This version reads the page and writes it whole: it conflicts like ReadPage followed by
// UpdatePage.
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
	if w := tx.ws.writes[k]; w != nil {
		if w.deleted {
			return notFound(ns, n)
		}
		w.objs = append(w.objs, encoded...)
		return nil
	}
	cur, err := tx.read(ns, inc, n)
	if err != nil {
		return err
	}
	tx.putWrite(k, &pageWrite{ns: ns, objs: append(slices.Clip(cur), encoded...)})
	return nil
}

// ReadPageKey returns a page's objects like ReadPage.
//
// This version records a read of the whole page.
func (tx *Tx) ReadPageKey(ns, pageID, key string) ([]pages.Object, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return tx.ReadPage(ns, pageID)
}
