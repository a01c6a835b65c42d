package txtdb

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// mustOpen opens the store in dir with opts and closes the handle when the test ends. On cleanup
// it checks that Close succeeds (twice: Close is idempotent), that a fresh handle opens the
// directory with no manual step and reads every namespace it lists, and that CheckDir finds no
// problem. (No root test leaves damage behind; one that does needs an opt-out like txn's
// skipCheck.)
func mustOpen(tb testing.TB, dir string, opts *Options) *DB {
	tb.Helper()
	db, err := Open(dir, opts)
	require.NoError(tb, err, "Open(%q, %+v)", dir, opts)
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close(%q) = %v, want nil", dir, err)
		}
		if err := db.Close(); err != nil {
			tb.Errorf("second Close(%q) = %v, want nil (Close is idempotent)", dir, err)
		}
		if err := checkStore(dir); err != nil {
			tb.Errorf("check %s after Close: %v", dir, err)
		}
		checkAtEnd(tb, dir)
	})
	return db
}

// checkAtEnd fails the test on any problem CheckDir finds in dir, unless the test failed
// already.
func checkAtEnd(tb testing.TB, dir string) {
	tb.Helper()
	if tb.Failed() {
		return
	}
	probs, err := CheckDir(context.Background(), dir)
	if err != nil {
		tb.Errorf("CheckDir(%s) at the end of the test: %v", dir, err)
	}
	for _, p := range probs {
		tb.Errorf("CheckDir(%s) at the end of the test: %s", dir, p)
	}
}

// checkStore opens dir with a new handle and reads everything it can see.
func checkStore(dir string) (err error) {
	db, err := Open(dir, nil)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	return db.View(context.Background(), func(tx *Tx) error {
		names, err := tx.Namespaces()
		if err != nil {
			return fmt.Errorf("Namespaces: %w", err)
		}
		for _, ns := range names {
			if _, err := tx.Match(ns, "*"); err != nil {
				return fmt.Errorf("Match(%q): %w", ns, err)
			}
		}
		return nil
	})
}

// openN opens n handles on dir, standing in for n processes.
func openN(tb testing.TB, dir string, n int, opts *Options) []*DB {
	tb.Helper()
	dbs := make([]*DB, n)
	for i := range dbs {
		dbs[i] = mustOpen(tb, dir, opts)
	}
	return dbs
}

// mustBegin starts a transaction and rolls it back on cleanup if the test left it open.
func mustBegin(tb testing.TB, db *DB, writable bool) *Tx {
	tb.Helper()
	tx, err := db.Begin(context.Background(), writable)
	require.NoError(tb, err, "Begin(writable=%v)", writable)
	tb.Cleanup(func() { _ = tx.Rollback() })
	return tx
}

// item is the object most tests store: one number.
type item struct {
	XMLName xml.Name `json:"-" yaml:"-"`
	N       int      `json:"n" yaml:"n" xml:"n"`
}

// seedPages inserts one item per value into ns (created if missing) through a handle of its own
// (another "process") with OneObjectPerPage, so every value gets a page of its own. It returns
// the page IDs in value order.
func seedPages(tb testing.TB, dir, ns string, vals ...int) []string {
	tb.Helper()
	db, err := Open(dir, &Options{OneObjectPerPage: true})
	require.NoError(tb, err, "Open seeding handle")
	defer func() { require.NoError(tb, db.Close(), "Close seeding handle") }()
	var ids []string
	err = db.Update(context.Background(), func(tx *Tx) error {
		ids = ids[:0]
		names, err := tx.Namespaces()
		if err != nil {
			return err
		}
		if !slices.Contains(names, ns) {
			if err := tx.CreateNamespace(ns); err != nil {
				return err
			}
		}
		for _, v := range vals {
			id, err := tx.Insert(ns, item{N: v})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	require.NoError(tb, err, "seed %s with %v", ns, vals)
	require.Len(tb, ids, len(vals))
	return ids
}

// pageN decodes a page that holds exactly one item.
func pageN(objs []Object) (int, error) {
	if len(objs) != 1 {
		return 0, fmt.Errorf("page holds %d objects, want 1", len(objs))
	}
	var it item
	if err := objs[0].Decode(&it); err != nil {
		return 0, err
	}
	return it.N, nil
}

// readN reads a one-item page in tx.
func readN(tb testing.TB, tx *Tx, ns, id string) int {
	tb.Helper()
	objs, err := tx.ReadPage(ns, id)
	require.NoError(tb, err, "ReadPage(%q, %q)", ns, id)
	n, err := pageN(objs)
	require.NoError(tb, err, "ReadPage(%q, %q)", ns, id)
	return n
}

// committedN reads a one-item page in a fresh read-only transaction of db.
func committedN(tb testing.TB, db *DB, ns, id string) int {
	tb.Helper()
	tx := mustBegin(tb, db, false)
	defer func() { _ = tx.Rollback() }()
	return readN(tb, tx, ns, id)
}

// values returns the N of every item in objs, sorted.
func values(tb testing.TB, objs ...Object) []int {
	tb.Helper()
	out := []int{}
	for _, o := range objs {
		var it item
		require.NoError(tb, o.Decode(&it), "Decode(%s)", o.Text())
		out = append(out, it.N)
	}
	slices.Sort(out)
	return out
}

// nsValues returns the N of every item in ns as tx sees it, sorted.
func nsValues(tb testing.TB, tx *Tx, ns string) []int {
	tb.Helper()
	pages, err := tx.Match(ns, "*")
	require.NoError(tb, err, "Match(%q, \"*\")", ns)
	var all []Object
	for _, objs := range pages {
		all = append(all, objs...)
	}
	return values(tb, all...)
}

// lastTSN returns the last committed TSN, as a new transaction of db sees it.
func lastTSN(tb testing.TB, db *DB) TSN {
	tb.Helper()
	tx := mustBegin(tb, db, false)
	defer func() { _ = tx.Rollback() }()
	return tx.Snapshot()
}

// namespaces lists the namespaces a fresh transaction of db sees.
func namespaces(tb testing.TB, db *DB) []string {
	tb.Helper()
	tx := mustBegin(tb, db, false)
	defer func() { _ = tx.Rollback() }()
	names, err := tx.Namespaces()
	require.NoError(tb, err, "Namespaces()")
	return names
}

// conflictOf checks that err matches ErrConflict and carries a *ConflictError whose Snapshot is
// snap and whose Committed is newer, and returns it.
func conflictOf(tb testing.TB, err error, snap TSN) *ConflictError {
	tb.Helper()
	require.ErrorIs(tb, err, ErrConflict, "commit error = %v, want ErrConflict", err)
	var ce *ConflictError
	require.ErrorAs(tb, err, &ce, "commit error = %v, want a *ConflictError", err)
	require.Equal(tb, snap, ce.Snapshot, "ConflictError.Snapshot = %d, want the loser's snapshot %d (%v)", ce.Snapshot, snap, ce)
	require.Greater(tb, ce.Committed, ce.Snapshot, "ConflictError.Committed = %d, want > Snapshot %d (%v)", ce.Committed, ce.Snapshot, ce)
	return ce
}

// incr adds one to the item on page id of ns.
func incr(tx *Tx, ns, id string) error {
	objs, err := tx.ReadPage(ns, id)
	if err != nil {
		return err
	}
	n, err := pageN(objs)
	if err != nil {
		return err
	}
	return tx.UpdatePage(ns, id, item{N: n + 1})
}
