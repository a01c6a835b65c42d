package txn

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// An insert into a committed page shares that version's objects instead of copying them: the
// transaction still sees the whole page (ReadPage, PeekPage) as the version followed by its own
// inserts and keyed appends, in order; a transaction on the old snapshot still sees the version
// alone; and once committed, every reader sees what the transaction saw. Across maxAppends
// appends in a row, where the page is written whole again.
func TestInsertIntoCommittedPage(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, t.TempDir(), Config{})
	_, _, err := update(ctx, db, func(tx *Tx) error { return tx.CreateNamespace("q") })
	require.NoError(t, err)
	texts := func(tx *Tx, id string, peek bool) []string {
		t.Helper()
		read := tx.ReadPage
		if peek {
			read = tx.PeekPage
		}
		objs, err := read("q", id)
		require.NoError(t, err)
		var out []string
		for _, o := range objs {
			out = append(out, o.Text())
		}
		return out
	}
	var page string
	var want []string // the page's committed contents
	next := 0
	for round := range 2*maxAppends + 3 {
		old, err := db.Begin(ctx, false)
		require.NoError(t, err)
		tx, err := db.Begin(ctx, true)
		require.NoError(t, err)
		seen := slices.Clone(want)
		for range 1 + round%3 {
			id, err := tx.Insert("q", next)
			require.NoError(t, err)
			if page == "" {
				page = id
			}
			require.Equal(t, page, id, "round %d: every insert fits the first page", round)
			seen = append(seen, strconv.Itoa(next))
			next++
			require.Equal(t, seen, texts(tx, page, false), "round %d: ReadPage", round)
			require.Equal(t, seen, texts(tx, page, true), "round %d: PeekPage", round)
		}
		if round%4 == 1 {
			require.NoError(t, tx.AppendPage("q", page, "k", -round))
			seen = append(seen, strconv.Itoa(-round))
			require.Equal(t, seen, texts(tx, page, false), "round %d: after AppendPage", round)
		}
		if len(want) > 0 {
			require.Equal(t, want, texts(old, page, false), "round %d: the old snapshot", round)
		}
		require.NoError(t, tx.Commit())
		if len(want) > 0 {
			require.Equal(t, want, texts(old, page, true), "round %d: the old snapshot after the commit", round)
		}
		want = seen
		require.NoError(t, old.Rollback())
		require.NoError(t, view(ctx, db, func(tx *Tx) error {
			require.Equal(t, want, texts(tx, page, false), "round %d: after the commit", round)
			return nil
		}))
	}
	require.Equal(t, map[string]map[string][]string{"q": {page: want}}, allPages(t, db))
}

// Inserts into a committed page stop at the page size, counting the version's objects and the
// transaction's own.
func TestInsertsFillPagesToTheirSize(t *testing.T) {
	ctx := context.Background()
	const size = 48
	db := mustOpen(t, t.TempDir(), Config{PageSize: size})
	_, _, err := update(ctx, db, func(tx *Tx) error { return tx.CreateNamespace("q") })
	require.NoError(t, err)
	n := 0
	for round := range 40 {
		_, _, err := update(ctx, db, func(tx *Tx) error {
			for range 1 + round%4 {
				if _, err := tx.Insert("q", 10+n%90); err != nil { // two bytes each
					return err
				}
				n++
			}
			return nil
		})
		require.NoError(t, err)
	}
	total := 0
	for id, objs := range allPages(t, db)["q"] {
		used := 0
		for _, o := range objs {
			used += len(o) + pages.ObjectOverhead
		}
		require.LessOrEqual(t, used, size, "page %s holds %d objects", id, len(objs))
		total += len(objs)
	}
	require.Equal(t, n, total)
}

// A handle whose cache keeps almost nothing rebuilds a version inside a run of appends from the
// log (loadRun: each record read once, joined to the base once) and reads what the writer wrote
// then, and the latest version too.
func TestReadAWholeRunOfAppends(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := mustOpen(t, dir, Config{CheckpointEvery: time.Hour})
	_, _, err := update(ctx, w, func(tx *Tx) error { return tx.CreateNamespace("q") })
	require.NoError(t, err)
	r := mustOpen(t, dir, Config{CheckpointEvery: time.Hour, CacheSize: 1}) // keeps no page in memory for long
	var page string
	var mid *Tx
	var midWant []string
	for i := range maxAppends + maxAppends/2 {
		_, _, err := update(ctx, w, func(tx *Tx) error {
			id, err := tx.Insert("q", i)
			page = id
			return err
		})
		require.NoError(t, err)
		if i == maxAppends/2 {
			mid, err = r.Begin(ctx, false)
			require.NoError(t, err)
			for j := 0; j <= i; j++ {
				midWant = append(midWant, strconv.Itoa(j))
			}
		}
	}
	want := allPages(t, w)
	require.Len(t, want["q"], 1, "one page")
	require.Equal(t, want, allPages(t, r))
	objs, err := mid.ReadPage("q", page)
	require.NoError(t, err)
	var got []string
	for _, o := range objs {
		got = append(got, o.Text())
	}
	require.Equal(t, midWant, got, "the snapshot inside the run")
	require.Positive(t, r.runLoads.Load(), "rebuilt by loadRun")
	require.NoError(t, mid.Rollback())
}

// A flipped byte in any record of a run of appends (the last, one inside, or the put the run
// starts from) makes the read of the latest version fail with ErrCorrupt: loadRun gives up and
// load, going version by version, reports it.
func TestCorruptRecordInARunOfAppends(t *testing.T) {
	for _, back := range []int{0, 1, 20, 39, 40} {
		ctx := context.Background()
		dir := t.TempDir()
		skipCheck(dir)
		w := mustOpen(t, dir, Config{CheckpointEvery: time.Hour})
		_, _, err := update(ctx, w, func(tx *Tx) error {
			if err := tx.CreateNamespace("t"); err != nil {
				return err
			}
			return tx.CreateNamespace("u")
		})
		require.NoError(t, err)
		r := mustOpen(t, dir, Config{CheckpointEvery: time.Hour, CacheSize: 1})
		for i := range 41 {
			_, _, err := update(ctx, w, func(tx *Tx) error { _, err := tx.Insert("t", i); return err })
			require.NoError(t, err)
		}
		var upage string
		_, _, err = update(ctx, w, func(tx *Tx) error { var err error; upage, err = tx.Insert("u", "u"); return err })
		require.NoError(t, err)
		tx0, err := r.Begin(ctx, false) // catch up
		require.NoError(t, err)
		_, err = tx0.ReadPage("u", upage) // the evictions drained
		require.NoError(t, err)
		_ = tx0.Rollback()
		x := r.idxp.Load()
		x.mu.RLock()
		inc := x.incAt("t", x.applied)
		v := x.incs[inc].pages[1].latest()
		for range back {
			v = v.base
		}
		loc, span, app := v.loc, v.span, v.append
		x.mu.RUnlock()
		require.NotZero(t, span.Len)
		f, err := os.OpenFile(filepath.Join(r.logDir, wal.SegName(loc.seg)), os.O_RDWR, 0)
		require.NoError(t, err)
		at := loc.off + int64(span.Off) + int64(span.Len)/2
		b := make([]byte, 1)
		_, err = f.ReadAt(b, at)
		require.NoError(t, err)
		b[0] ^= 0x01
		_, err = f.WriteAt(b, at)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		tx, err := r.Begin(ctx, false)
		require.NoError(t, err)
		_, err = tx.ReadPage("t", pages.PageID(1))
		require.ErrorIs(t, err, pages.ErrCorrupt, "a flipped byte %d records back (append %v)", back, app)
		require.Zero(t, r.runLoads.Load(), "loadRun gave up and load reported the corruption")
		_ = tx.Rollback()
	}
}
