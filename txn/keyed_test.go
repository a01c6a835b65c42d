package txn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// row is what the keyed tests store: a key and a number.
type row struct {
	K string `json:"k"`
	N int    `json:"n"`
}

var isolations = []Isolation{Serializable, Snapshot}

// keyedStore creates a store in dir with namespace "t" holding two pages made by NewPage:
// page000001 with one row {"a", 0} and page000002 with one row {"x", 0}.
func keyedStore(t *testing.T, dir string) { keyedStoreOf(t, dir, pages.JSON) }

func keyedStoreOf(t *testing.T, dir string, f pages.Format) {
	t.Helper()
	db := mustOpen(t, dir, Config{Format: f})
	_, _, err := update(context.Background(), db, keyedPages)
	require.NoError(t, err)
	require.NoError(t, db.Close())
}

// keyedPages creates namespace t with page000001 (row a) and page000002 (row x).
func keyedPages(tx *Tx) error {
	if err := tx.CreateNamespace("t"); err != nil {
		return err
	}
	if _, err := tx.NewPage("t", row{"a", 0}); err != nil {
		return err
	}
	_, err := tx.NewPage("t", row{"x", 0})
	return err
}

// rows reads a page in a fresh read-only transaction.
func rows(t *testing.T, db *DB, ns, page string) []row {
	t.Helper()
	var out []row
	require.NoError(t, view(context.Background(), db, func(tx *Tx) error {
		var err error
		out, err = decodeRows(tx.ReadPage(ns, page))
		return err
	}))
	return out
}

func decodeRows(objs []pages.Object, err error) ([]row, error) {
	if err != nil {
		return nil, err
	}
	out := []row{}
	for _, o := range objs {
		var r row
		if err := o.Decode(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func begin(t *testing.T, db *DB) *Tx {
	t.Helper()
	tx, err := db.Begin(context.Background(), true)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })
	return tx
}

// conflictOf checks that err is a conflict and returns its details.
func conflictOf(t *testing.T, err error) *ConflictError {
	t.Helper()
	require.ErrorIs(t, err, ErrConflict)
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	return ce
}

// Two transactions from one snapshot, on two handles, append to one page: with different keys
// both commit and the page holds both rows in commit order; with the same key the second loses,
// under both isolation levels (a keyed append is a write).
func TestKeyedAppendsFromOneSnapshot(t *testing.T) {
	for _, iso := range isolations {
		for _, same := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/samekey=%v", iso, same), func(t *testing.T) {
				dir := t.TempDir()
				keyedStore(t, dir)
				a := mustOpen(t, dir, Config{Isolation: iso})
				b := mustOpen(t, dir, Config{Isolation: iso})
				t1, t2 := begin(t, a), begin(t, b)
				require.Equal(t, t1.Snapshot(), t2.Snapshot())
				k2 := "k2"
				if same {
					k2 = "k1"
				}
				require.NoError(t, t1.AppendPage("t", "page000001", "k1", row{"k1", 1}))
				require.NoError(t, t2.AppendPage("t", "page000001", k2, row{k2, 2}))
				// Each sees the snapshot's page and its own append, nothing of the other's.
				got, err := decodeRows(t2.ReadPage("t", "page000001"))
				require.NoError(t, err)
				require.Equal(t, []row{{"a", 0}, {k2, 2}}, got)
				require.NoError(t, t2.Commit(), "first committer")
				err = t1.Commit()
				if same {
					ce := conflictOf(t, err)
					require.Equal(t, "k1", ce.Key)
					require.Equal(t, "page000001", ce.Page)
					require.Equal(t, []row{{"a", 0}, {"k1", 2}}, rows(t, a, "t", "page000001"))
					return
				}
				require.NoError(t, err, "a keyed append under another key does not conflict")
				want := []row{{"a", 0}, {"k2", 2}, {"k1", 1}} // commit order
				require.Equal(t, want, rows(t, a, "t", "page000001"))
				require.Equal(t, want, rows(t, b, "t", "page000001"))
				require.Equal(t, want, rows(t, mustOpen(t, dir, Config{}), "t", "page000001"), "a fresh handle, from the log")
			})
		}
	}
}

// A transaction that read a page with ReadPageKey(k) and wrote elsewhere loses, under
// Serializable only, to a concurrent keyed append under k; one under another key never matters.
func TestKeyedReadDependsOnItsKey(t *testing.T) {
	for _, iso := range isolations {
		for _, same := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/samekey=%v", iso, same), func(t *testing.T) {
				dir := t.TempDir()
				keyedStore(t, dir)
				a := mustOpen(t, dir, Config{Isolation: iso})
				b := mustOpen(t, dir, Config{Isolation: iso})
				reader, appender := begin(t, a), begin(t, b)
				got, err := decodeRows(reader.ReadPageKey("t", "page000001", "k"))
				require.NoError(t, err)
				require.Equal(t, []row{{"a", 0}}, got)
				_, err = reader.ReadPage("t", "page000002")
				require.NoError(t, err)
				require.NoError(t, reader.UpdatePage("t", "page000002", row{"x", 1}))
				key := "other"
				if same {
					key = "k"
				}
				require.NoError(t, appender.AppendPage("t", "page000001", key, row{key, 1}))
				require.NoError(t, appender.Commit())
				err = reader.Commit()
				if same && iso == Serializable {
					ce := conflictOf(t, err)
					require.Equal(t, "read", ce.Reason)
					require.Equal(t, "k", ce.Key)
					return
				}
				require.NoError(t, err)
				require.Equal(t, []row{{"x", 1}}, rows(t, a, "t", "page000002"))
			})
		}
	}
}

// Whole-page changes after the snapshot (UpdatePage, DeletePage, an Insert's append to its hot
// page) conflict with a keyed append, and UpdatePage and DeletePage with a keyed read, in both
// commit orders; a keyed append after the snapshot makes a later UpdatePage conflict.
func TestKeyedConflictsWithWholePageChanges(t *testing.T) {
	ctx := context.Background()
	whole := map[string]func(tx *Tx) error{
		"update": func(tx *Tx) error {
			if _, err := tx.ReadPage("t", "page000001"); err != nil {
				return err
			}
			return tx.UpdatePage("t", "page000001", row{"u", 9})
		},
		"delete": func(tx *Tx) error {
			if _, err := tx.ReadPage("t", "page000001"); err != nil {
				return err
			}
			return tx.DeletePage("t", "page000001")
		},
		"update after keyed read": func(tx *Tx) error {
			if _, err := tx.ReadPageKey("t", "page000001", "zz"); err != nil {
				return err
			}
			return tx.UpdatePage("t", "page000001", row{"u", 9})
		},
	}
	keyed := map[string]func(tx *Tx) error{
		"append": func(tx *Tx) error { return tx.AppendPage("t", "page000001", "k", row{"k", 1}) },
		"keyed read": func(tx *Tx) error {
			if _, err := tx.ReadPageKey("t", "page000001", "k"); err != nil {
				return err
			}
			if _, err := tx.ReadPage("t", "page000002"); err != nil {
				return err
			}
			return tx.UpdatePage("t", "page000002", row{"x", 1})
		},
	}
	for wn, w := range whole {
		for kn, k := range keyed {
			for _, wholeFirst := range []bool{true, false} {
				if kn == "keyed read" && !wholeFirst {
					continue // a read depends on what committed before it, not after
				}
				t.Run(fmt.Sprintf("%s/%s/whole first=%v", wn, kn, wholeFirst), func(t *testing.T) {
					dir := t.TempDir()
					keyedStore(t, dir)
					a := mustOpen(t, dir, Config{})
					b := mustOpen(t, dir, Config{})
					tw, tk := begin(t, a), begin(t, b)
					require.NoError(t, w(tw))
					require.NoError(t, k(tk))
					first, second := tw, tk
					if !wholeFirst {
						first, second = tk, tw
					}
					require.NoError(t, first.Commit())
					ce := conflictOf(t, second.Commit())
					require.Equal(t, "page000001", ce.Page)
					require.Empty(t, ce.Key)
				})
			}
		}
	}
	// An Insert appending to this process's hot page is not keyed: it and a keyed append to the
	// same page conflict, whichever commits first.
	for _, insertFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("insert into the hot page/insert first=%v", insertFirst), func(t *testing.T) {
			dir := t.TempDir()
			db := mustOpen(t, dir, Config{})
			_, _, err := update(ctx, db, func(tx *Tx) error { return tx.CreateNamespace("h") })
			require.NoError(t, err)
			var hot string
			_, _, err = update(ctx, db, func(tx *Tx) error { hot, err = tx.Insert("h", row{"i", 1}); return err })
			require.NoError(t, err)
			ti, tk := begin(t, db), begin(t, db)
			id, err := ti.Insert("h", row{"i", 2})
			require.NoError(t, err)
			require.Equal(t, hot, id, "the second insert appends to the hot page")
			require.NoError(t, tk.AppendPage("h", hot, "k", row{"k", 1}))
			first, second := ti, tk
			if !insertFirst {
				first, second = tk, ti
			}
			require.NoError(t, first.Commit())
			conflictOf(t, second.Commit())
		})
	}
	// A keyed append committed after the snapshot of a transaction that read the page with
	// ReadPageKey and then rewrites it: the rewrite would lose the append, so it conflicts (also
	// under Snapshot: it is a write).
	for _, iso := range isolations {
		t.Run(fmt.Sprintf("rewrite after a concurrent keyed append/%v", iso), func(t *testing.T) {
			dir := t.TempDir()
			keyedStore(t, dir)
			a := mustOpen(t, dir, Config{Isolation: iso})
			tr, ta := begin(t, a), begin(t, a)
			_, err := tr.ReadPageKey("t", "page000001", "k")
			require.NoError(t, err)
			require.NoError(t, tr.UpdatePage("t", "page000001", row{"u", 9}))
			require.NoError(t, ta.AppendPage("t", "page000001", "other", row{"other", 1}))
			require.NoError(t, ta.Commit())
			require.Equal(t, "write", conflictOf(t, tr.Commit()).Reason)
		})
	}
}

// A keyed read of a page that does not exist is ErrNotFound and is recorded: the page appearing
// later (a page number some other transaction takes) conflicts under Serializable.
func TestKeyedReadOfMissingPage(t *testing.T) {
	dir := t.TempDir()
	keyedStore(t, dir)
	a := mustOpen(t, dir, Config{})
	b := mustOpen(t, dir, Config{})
	tr := begin(t, a)
	_, err := tr.ReadPageKey("t", "page000003", "k")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, tr.AppendPage("t", "page000003", "k", row{"k", 1}), ErrNotFound)
	_, err = tr.ReadPage("t", "page000002")
	require.NoError(t, err)
	require.NoError(t, tr.UpdatePage("t", "page000002", row{"x", 1}))
	var id string
	_, _, err = update(context.Background(), b, func(tx *Tx) error { id, err = tx.NewPage("t", row{"n", 1}); return err })
	require.NoError(t, err)
	require.Equal(t, "page000003", id, "the first fresh number after the two pages")
	ce := conflictOf(t, tr.Commit())
	require.Equal(t, "read", ce.Reason)
	require.Equal(t, "page000003", ce.Page)
}

// Keyed appends within one transaction: the transaction sees the page with its appends (ReadPage,
// ReadPageKey, PeekPage); several keys on one page make one append op carrying all of them; an append to the transaction's own NewPage or UpdatePage is part of that put (not
// keyed); UpdatePage after AppendPage needs a read; bad keys are ErrInvalidKey.
func TestKeyedAppendsInOneTransaction(t *testing.T) {
	dir := t.TempDir()
	keyedStore(t, dir)
	db := mustOpen(t, dir, Config{})
	tx := begin(t, db)
	require.ErrorIs(t, tx.AppendPage("t", "page000001", "", row{}), ErrInvalidKey)
	require.ErrorIs(t, tx.AppendPage("t", "page000001", "\xff", row{}), ErrInvalidKey)
	_, err := tx.ReadPageKey("t", "page000001", "")
	require.ErrorIs(t, err, ErrInvalidKey)
	require.NoError(t, tx.AppendPage("t", "page000001", "k1", row{"k1", 1}))
	require.NoError(t, tx.AppendPage("t", "page000001", "k2", row{"k2", 2}))
	require.NoError(t, tx.AppendPage("t", "page000001", "k1", row{"k1", 3}))
	require.ErrorIs(t, tx.UpdatePage("t", "page000001", row{}), ErrNotRead, "a keyed append is no read")
	got, err := decodeRows(tx.PeekPage("t", "page000001"))
	require.NoError(t, err)
	require.Equal(t, []row{{"a", 0}, {"k1", 1}, {"k2", 2}, {"k1", 3}}, got, "the page as this transaction sees it")
	got, err = decodeRows(tx.ReadPageKey("t", "page000001", "k1"))
	require.NoError(t, err)
	require.Equal(t, []row{{"a", 0}, {"k1", 1}, {"k2", 2}, {"k1", 3}}, got)
	id, err := tx.NewPage("t", row{"n", 0})
	require.NoError(t, err)
	require.NoError(t, tx.AppendPage("t", id, "k", row{"k", 1}))
	_, err = tx.ReadPage("t", "page000002")
	require.NoError(t, err)
	require.NoError(t, tx.UpdatePage("t", "page000002", row{"u", 0}))
	require.NoError(t, tx.AppendPage("t", "page000002", "k", row{"k", 1}))
	require.NoError(t, tx.Commit())

	ops := pageOps(t, dir, "t", pages.JSON)
	last := ops[len(ops)-3:]
	require.Equal(t, wal.OpAppend, last[0].Kind)
	require.Equal(t, []string{"k1", "k2"}, last[0].Keys)
	require.Len(t, last[0].Objects, 3)
	require.Equal(t, wal.OpPut, last[1].Kind, "the NewPage with its append")
	require.True(t, last[1].New)
	require.Nil(t, last[1].Keys)
	require.Equal(t, wal.OpPut, last[2].Kind, "the UpdatePage with its append")
	require.Nil(t, last[2].Keys)
	require.Equal(t, []row{{"u", 0}, {"k", 1}}, rows(t, db, "t", "page000002"))
	require.Equal(t, []row{{"n", 0}, {"k", 1}}, rows(t, db, "t", id))
}

// In a namespace the transaction created, NewPage numbers pages 1, 2, 3 (sharing the count with
// Insert); elsewhere it takes fresh numbers. Insert never fills a NewPage page: not in the same
// transaction, and not later as this process's hot page.
func TestNewPageNumbering(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := mustOpen(t, dir, Config{}) // several objects per page: Insert fills pages
	_, _, err := update(ctx, db, func(tx *Tx) error {
		require.NoError(t, tx.CreateNamespace("n"))
		for i, want := range []string{"page000001", "page000002", "page000003"} {
			id, err := tx.NewPage("n", row{"p", i})
			require.NoError(t, err)
			require.Equal(t, want, id, "NewPage #%d in a namespace this transaction created", i+1)
		}
		id, err := tx.Insert("n", row{"i", 0})
		require.NoError(t, err)
		require.Equal(t, "page000004", id, "Insert does not fill a NewPage page")
		id, err = tx.NewPage("n")
		require.NoError(t, err)
		require.Equal(t, "page000005", id, "the count is shared; an empty page")
		id, err = tx.Insert("n", row{"i", 1})
		require.NoError(t, err)
		require.Equal(t, "page000004", id, "Insert keeps filling its own page")
		return nil
	})
	require.NoError(t, err)

	var fresh string
	_, _, err = update(ctx, db, func(tx *Tx) error {
		fresh, err = tx.NewPage("n", row{"p", 9})
		return err
	})
	require.NoError(t, err)
	n, err := pages.ParsePageID(fresh)
	require.NoError(t, err)
	require.Greater(t, n, uint64(5), "a fresh number in an existing namespace")
	for i := range 20 { // inserts go to pages Insert made (page000004's room, then fresh ones), never to a NewPage page
		var id string
		_, _, err = update(ctx, db, func(tx *Tx) error { id, err = tx.Insert("n", row{"i", 10 + i}); return err })
		require.NoError(t, err)
		require.NotContains(t, []string{"page000001", "page000002", "page000003", "page000005", fresh}, id, "insert #%d", i)
	}
	require.Equal(t, []row{{"p", 9}}, rows(t, db, "n", fresh))
	require.Equal(t, []row{}, rows(t, db, "n", "page000005"))
}

// pageOps returns the page ops of namespace ns (by name) in the store's log (of format f), in log
// order.
func pageOps(t *testing.T, dir, ns string, format pages.Format) []wal.Op {
	t.Helper()
	var out []wal.Op
	for _, r := range logRecords(t, dir, format) {
		for _, o := range r.Ops {
			if o.NS == ns && o.Page != "" {
				out = append(out, o)
			}
		}
	}
	return out
}

// logRecords returns every record in the store's log (of format f), in log order.
func logRecords(t *testing.T, dir string, format pages.Format) []wal.Record {
	t.Helper()
	var out []wal.Record
	for _, s := range scanLog(t, dir, format, false) {
		out = append(out, s.Rec)
	}
	return out
}

// scanLog returns every record in the store's log (of format f) with its place, in log order; a
// bad record fails the test unless torn, which stops each segment's scan there instead.
func scanLog(t *testing.T, dir string, format pages.Format, torn bool) []wal.Scanned {
	t.Helper()
	logDir := filepath.Join(dir, pages.MetaDir, logDirName)
	names, err := os.ReadDir(logDir)
	require.NoError(t, err)
	var out []wal.Scanned
	for _, e := range names {
		first, ok := wal.ParseSegName(e.Name())
		if !ok {
			continue
		}
		f, err := os.Open(filepath.Join(logDir, e.Name()))
		require.NoError(t, err)
		_, from, err := wal.ReadHeader(f, first)
		require.NoError(t, err)
		data, err := wal.ReadRange(f, from.Off, -1)
		require.NoError(t, f.Close())
		require.NoError(t, err)
		recs, bad := wal.ScanRecords(format, data, from)
		if !torn {
			require.NoError(t, bad)
		}
		out = append(out, recs...)
	}
	return out
}

// The chain bound: 3*maxAppends keyed appends to one page, one per commit, alternating two
// handles (twice two concurrent ones from one snapshot, across a write-whole). The commit lock
// holder writes the append that would pass maxAppends as a put that keeps its keys, so no run of
// appends in the log is longer than maxAppends; the concurrent appenders do not conflict. Every
// version reads back right: through a third handle whose tiny cache makes every read load from
// the log (before and after a checkpoint, and after the writers closed), and the last one
// through fresh handles after a reopen and after a checkpoint. In a JSON and in a YAML store (whose
// log holds objects as JSON strings).
func TestKeyedAppendChainBound(t *testing.T) {
	for _, f := range []pages.Format{pages.JSON, pages.YAML} {
		t.Run(f.String(), func(t *testing.T) { testKeyedAppendChainBound(t, f) })
	}
}

func testKeyedAppendChainBound(t *testing.T, f pages.Format) {
	ctx := context.Background()
	dir := t.TempDir()
	keyedStoreOf(t, dir, f)
	writers := []*DB{mustOpen(t, dir, Config{}), mustOpen(t, dir, Config{})}
	reader := mustOpen(t, dir, Config{CacheSize: 1})
	want := []row{{"a", 0}}
	type pinned struct {
		tx   *Tx
		want []row
	}
	var snaps []pinned
	pin := func() {
		tx, err := reader.Begin(ctx, false)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tx.Rollback() })
		snaps = append(snaps, pinned{tx, slices.Clone(want)})
	}
	checkPinned := func(when string) {
		t.Helper()
		for _, p := range snaps {
			got, err := decodeRows(p.tx.ReadPage("t", "page000001"))
			require.NoError(t, err, "%s: snapshot %d", when, p.tx.Snapshot())
			require.Equal(t, p.want, got, "%s: snapshot %d", when, p.tx.Snapshot())
		}
	}
	pin()
	total := 3 * maxAppends
	for i := 0; i < total; {
		// Two concurrent appenders just before the page's run reaches the bound, so that one of
		// them is written whole; otherwise one.
		n := 1
		if i%(maxAppends+1) == maxAppends-1 && i+2 <= total {
			n = 2
		}
		txs := make([]*Tx, n)
		for j := range txs {
			txs[j] = begin(t, writers[(i+j)%2])
			key := fmt.Sprintf("k%02d", i+j)
			require.NoError(t, txs[j].AppendPage("t", "page000001", key, row{key, i + j}))
		}
		for j, tx := range txs {
			require.NoError(t, tx.Commit(), "append %d", i+j)
			key := fmt.Sprintf("k%02d", i+j)
			want = append(want, row{key, i + j})
			pin()
		}
		i += n
		if i == maxAppends+3 {
			require.NoError(t, writers[0].Checkpoint(ctx))
		}
	}
	require.Equal(t, want, rows(t, writers[0], "t", "page000001"))
	checkPinned("before reopen")
	require.Positive(t, reader.Stats().CacheMisses, "the pinned reads loaded from the disk")

	// The log: one put (NewPage), then keyed appends, every run at most maxAppends long, broken
	// by puts that carry the key of the append they write whole.
	ops := pageOps(t, dir, "t", f)
	var run, wholes int
	for _, o := range ops {
		if o.Page != "page000001" {
			continue
		}
		switch {
		case o.Kind == wal.OpPut && o.New:
			require.Nil(t, o.Keys)
		case o.Kind == wal.OpPut:
			wholes++
			require.Len(t, o.Keys, 1, "a keyed append written whole keeps its key: %+v", o)
			run = 0
		case o.Kind == wal.OpAppend:
			require.Len(t, o.Keys, 1, "%+v", o)
			run++
			require.LessOrEqual(t, run, maxAppends, "run of appends")
		default:
			t.Fatalf("unexpected op %+v", o)
		}
	}
	require.Equal(t, 2, wholes, "3*maxAppends keyed appends: the (maxAppends+1)-th and the 2*(maxAppends+1)-th are written whole")

	for _, w := range writers {
		require.NoError(t, w.Close())
	}
	checkPinned("after the writers closed")
	fresh := mustOpen(t, dir, Config{CacheSize: 1})
	require.Equal(t, want, rows(t, fresh, "t", "page000001"), "a fresh handle after reopen")
	require.NoError(t, fresh.Checkpoint(ctx))
	checkPinned("after a checkpoint")
	require.Equal(t, want, rows(t, mustOpen(t, dir, Config{CacheSize: 1}), "t", "page000001"), "a fresh handle after a checkpoint")
}

// Many goroutines on two handles append under distinct keys to one page: none ever conflicts,
// and every row lands, through several write-wholes.
func TestKeyedAppendsConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyedStore(t, dir)
	dbs := []*DB{mustOpen(t, dir, Config{}), mustOpen(t, dir, Config{})}
	const workers, each = 4, 15
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("w%d-%d", w, i)
				_, attempts, err := update(ctx, dbs[w%2], func(tx *Tx) error {
					return tx.AppendPage("t", "page000001", key, row{key, i})
				})
				if err != nil {
					t.Error(err)
					return
				}
				conflicts.Add(int64(attempts - 1))
			}
		})
	}
	wg.Wait()
	require.Zero(t, conflicts.Load(), "keyed appends under distinct keys conflicted")
	got := rows(t, mustOpen(t, dir, Config{}), "t", "page000001")
	require.Len(t, got, 1+workers*each)
	seen := map[string]bool{}
	for _, r := range got[1:] {
		require.False(t, seen[r.K], "row %s twice", r.K)
		seen[r.K] = true
	}
}

// Two transactions of one handle that commit in the same group (queued behind a leader held in
// its fsync): under the same key the second loses to the first, validated against the group's
// overlay; under different keys both land.
func TestKeyedAppendsInOneGroup(t *testing.T) {
	for _, same := range []bool{false, true} {
		t.Run(fmt.Sprintf("samekey=%v", same), func(t *testing.T) {
			dir := t.TempDir()
			keyedStore(t, dir)
			db := mustOpen(t, dir, Config{})
			k2 := "k2"
			if same {
				k2 = "k1"
			}
			t1, t2 := begin(t, db), begin(t, db)
			require.NoError(t, t1.AppendPage("t", "page000001", "k1", row{"k1", 1}))
			require.NoError(t, t2.AppendPage("t", "page000001", k2, row{k2, 2}))
			errs := inOneGroup(t, db, t1.Commit, t2.Commit)
			require.NoError(t, errs[0])
			if same {
				ce := conflictOf(t, errs[1])
				require.Equal(t, "k1", ce.Key)
				require.Equal(t, t1.CommitTSN(), ce.Committed, "lost to the member before it in the group")
				require.Equal(t, []row{{"a", 0}, {"k1", 1}}, rows(t, db, "t", "page000001"))
				return
			}
			require.NoError(t, errs[1])
			require.Equal(t, t1.CommitTSN()+1, t2.CommitTSN())
			require.Equal(t, []row{{"a", 0}, {"k1", 1}, {"k2", 2}}, rows(t, db, "t", "page000001"))
		})
	}
	// A keyed append after a whole-page write of the same page earlier in the group loses.
	t.Run("after an update in the group", func(t *testing.T) {
		dir := t.TempDir()
		keyedStore(t, dir)
		db := mustOpen(t, dir, Config{})
		t1, t2 := begin(t, db), begin(t, db)
		_, err := t1.ReadPage("t", "page000001")
		require.NoError(t, err)
		require.NoError(t, t1.UpdatePage("t", "page000001", row{"u", 1}))
		require.NoError(t, t2.AppendPage("t", "page000001", "k", row{"k", 2}))
		errs := inOneGroup(t, db, t1.Commit, t2.Commit)
		require.NoError(t, errs[0])
		require.Empty(t, conflictOf(t, errs[1]).Key)
	})
}

// inOneGroup runs commits, in order, queued behind a leader (an update of "t"/page000002) held
// in its log fsync, so that they all commit in the one group after it; it checks that they did and returns their errors.
func inOneGroup(t *testing.T, db *DB, commits ...func() error) []error {
	t.Helper()
	hold, entered := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	var inSubmit atomic.Int64
	queued := make(chan int64, 4*len(commits)+4)
	armFaults(t, func(p faultPoint) error {
		if p == faultLogSync && first.CompareAndSwap(false, true) {
			close(entered)
			<-hold
		}
		return nil
	}, nil, func(d int) { queued <- inSubmit.Add(int64(d)) })
	before := db.Stats()
	lead := make(chan error, 1)
	go func() {
		_, _, err := update(context.Background(), db, func(tx *Tx) error {
			if _, err := tx.ReadPage("t", "page000002"); err != nil {
				return err
			}
			return tx.UpdatePage("t", "page000002", row{"lead", 1})
		})
		lead <- err
	}()
	select {
	case <-entered:
	case <-time.After(longStop):
		t.Fatal("leader never reached its fsync")
	}
	errs := make([]error, len(commits))
	var wg sync.WaitGroup
	deadline := time.After(longStop)
	for i, c := range commits {
		wg.Go(func() { errs[i] = c() })
		for n := int64(0); n != int64(i+2); { // the leader and the commits queued so far
			select {
			case n = <-queued:
			case <-deadline:
				t.Fatalf("only %d of %d commits waiting", n, i+2)
			}
		}
	}
	close(hold)
	wg.Wait()
	require.NoError(t, <-lead)
	after := db.Stats()
	require.Equal(t, int64(2), after.Groups-before.Groups, "the held group and one group of the rest")
	return errs
}

// Keyed appends from another OS process: validated there against records it caught up from the
// log (and here against its records), a keyed append under the same key conflicts and one under
// another key does not, whichever process commits first.
func TestKeyedAppendsAcrossProcesses(t *testing.T) {
	for _, same := range []bool{false, true} {
		for _, childFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("samekey=%v/child first=%v", same, childFirst), func(t *testing.T) {
				dir := t.TempDir()
				keyedStore(t, dir)
				db := mustOpen(t, dir, Config{})
				k := startChild(t, "keyed-appender", configEnv(t, childConfig{Dir: dir}))
				k.expect(t, "ready")
				key := "other"
				if same {
					key = "k"
				}
				k.send(t, "append t page000001 "+key)
				snap := k.expect(t, "appended")
				tx := begin(t, db)
				require.Equal(t, snap, fmt.Sprint(tx.Snapshot()), "one snapshot")
				require.NoError(t, tx.AppendPage("t", "page000001", "k", row{"k", 1}))
				commitChild := func() string {
					k.send(t, "commit")
					return k.expect(t, "outcome")
				}
				var mine error
				var theirs string
				if childFirst {
					theirs = commitChild()
					mine = tx.Commit()
				} else {
					mine = tx.Commit()
					theirs = commitChild()
				}
				first, second := theirs, outcome(mine)
				if !childFirst {
					first, second = second, first
				}
				require.Equal(t, "committed", first, "the first committer")
				if same {
					require.Equal(t, "conflict k", second, "the second committer, same key")
				} else {
					require.Equal(t, "committed", second, "the second committer, another key")
				}
				k.send(t, "quit")
				_, err := k.all(t)
				require.NoError(t, err)
				want := 3
				if same {
					want = 2
				}
				require.Len(t, rows(t, db, "t", "page000001"), want)
			})
		}
	}
}

// outcome is how the keyed-appender role reports a commit's result.
func outcome(err error) string {
	var ce *ConflictError
	switch {
	case err == nil:
		return "committed"
	case errors.As(err, &ce):
		return "conflict " + ce.Key
	default:
		return "error " + err.Error()
	}
}

// Appends share the page's array with the version they extend (index.apply): what a reader
// holds of an older version, and what it appends to it, never shows in a newer one, and the
// newer ones keep their own objects.
func TestAppendsShareNothingVisible(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := mustOpen(t, dir, Config{})
	_, _, err := update(ctx, db, func(tx *Tx) error { return tx.CreateNamespace("q") })
	require.NoError(t, err)
	var page string
	insert := func(i int) {
		_, _, err := update(ctx, db, func(tx *Tx) error {
			id, err := tx.Insert("q", i)
			page = id
			return err
		})
		require.NoError(t, err)
	}
	for i := range 5 { // 5 objects in an array with room for 8, as appends grow it
		insert(i)
	}
	old, err := db.Begin(ctx, false)
	require.NoError(t, err)
	defer func() { _ = old.Rollback() }()
	held, err := old.PeekPage("q", page)
	require.NoError(t, err)
	for i := 5; i <= 20; i++ {
		insert(i)
		// The older snapshot's holder appends to what it holds (allowed: PeekPage).
		held = append(held, pages.ObjectFromTrusted(pages.JSON, `"junk"`))
	}
	again, err := old.PeekPage("q", page)
	require.NoError(t, err)
	require.Len(t, again, 5, "the old snapshot's version changed")
	require.NoError(t, view(ctx, db, func(tx *Tx) error {
		objs, err := tx.PeekPage("q", page)
		if err != nil {
			return err
		}
		if len(objs) != 21 {
			return fmt.Errorf("%d objects, want 21", len(objs))
		}
		for i, o := range objs {
			var v int
			if err := o.Decode(&v); err != nil || v != i {
				return fmt.Errorf("object %d is %s (%v)", i, o.Text(), err)
			}
		}
		return nil
	}))
}
