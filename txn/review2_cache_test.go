package txn

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// Review 2 tests: each demonstrates a defect and fails on the code it was written against.

// segsOf lists the log segments of dir.
func segsOf(t *testing.T, dir string) []pages.TSN {
	t.Helper()
	segs, err := wal.ListSegments(filepath.Join(dir, pages.MetaDir, logDirName))
	require.NoError(t, err)
	return segs
}

// commitUntilRotated commits inserts into ns until the log has rotated past seg at least twice.
func commitUntilRotated(t *testing.T, db *DB, ns string, seg pages.TSN) {
	t.Helper()
	ctx := context.Background()
	for i := 0; ; i++ {
		segs := segsOf(t, db.dir)
		if len(segs) > 0 && segs[len(segs)-1] > seg && len(segs) >= 3 {
			return
		}
		require.Less(t, i, 2000, "the log never rotated")
		_, _, err := update(ctx, db, func(tx *Tx) error { _, err := tx.Insert(ns, fmt.Sprintf("filler-%04d", i)); return err })
		require.NoError(t, err)
	}
}

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// Page cache, reload from a page file after the log was trimmed: the index keeps, per
// incarnation, the folder the catalog named when the index was built (in.dir) and looks there
// first; it asks the catalog again only when no file of that name
// is there. Namespace "x" is renamed to "y" and a new "x" is created; later one transaction
// writes page000001 of both (same page number, same TSN t). After the checkpoint,
// "x/page000001.v<t>" is the new x's page. Once the evicted version of y's page can only come
// from a page file (the log was trimmed past it), load reads the stale folder, finds a file of
// the right name there and returns the other namespace's contents: wrong result, no error.
func TestReview2StaleFolderReadsOtherIncarnationsPage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 512, LogRetention: -1, OneObjectPerPage: true, CheckpointEvery: time.Hour}
	w := mustOpen(t, dir, cfg)
	_, _, err := update(ctx, w, func(tx *Tx) error {
		if err := tx.CreateNamespace("x"); err != nil {
			return err
		}
		if err := tx.CreateNamespace("fill"); err != nil {
			return err
		}
		_, err := tx.Insert("x", "a0")
		return err
	})
	require.NoError(t, err)
	require.NoError(t, w.Checkpoint(ctx)) // the catalog gives x's incarnation the folder "x"
	require.NoError(t, w.Close())

	small := cfg
	small.CacheSize = 1          // every load evicts every other version
	r := mustOpen(t, dir, small) // its index: x's incarnation in folder "x"
	_, _, err = update(ctx, r, func(tx *Tx) error { return tx.RenameNamespace("x", "y") })
	require.NoError(t, err)
	_, _, err = update(ctx, r, func(tx *Tx) error {
		if err := tx.CreateNamespace("x"); err != nil {
			return err
		}
		id, err := tx.Insert("x", "b0")
		require.Equal(t, "page000001", id)
		return err
	})
	require.NoError(t, err)
	tsn, _, err := update(ctx, r, func(tx *Tx) error { // page000001 of both, one commit
		for ns, v := range map[string]string{"y": "a1", "x": "b1"} {
			if _, err := tx.ReadPage(ns, "page000001"); err != nil {
				return err
			}
			if err := tx.UpdatePage(ns, "page000001", v); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	seg := segsOf(t, dir)
	commitUntilRotated(t, r, "fill", seg[len(seg)-1])
	require.NoError(t, r.Checkpoint(ctx)) // y's files move to "y"; the new x gets "x"; trims
	require.Greater(t, segsOf(t, dir)[0], tsn, "the segment holding tsn %d was trimmed", tsn)

	require.NoError(t, view(ctx, r, func(tx *Tx) error {
		if _, err := tx.Match("fill", "*"); err != nil { // evicts y's page000001
			return err
		}
		objs, err := tx.ReadPage("y", "page000001")
		require.NoError(t, err)
		require.Len(t, objs, 1)
		var s string
		require.NoError(t, objs[0].Decode(&s))
		require.Equal(t, "a1", s, "y/page000001 at snapshot %d read from the other incarnation's folder", tx.Snapshot())
		return nil
	}))
}

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// Read-only handles: a version that reached the index through the log and was evicted from the
// cache reloads from its record; once cleanup trimmed that segment (the handle pins nothing) and
// there is no page file of that TSN (superseded before any checkpoint), the read fails with the
// internal errSegmentGone, which tooOld does not recognise (it looks for ErrCorrupt only): the
// caller gets neither ErrSnapshotTooOld nor ErrCorrupt.
func TestReview2ReadOnlyTrimmedRecordIsNotSnapshotTooOld(t *testing.T) {
	tx := readOnlySnapshotTrimmed(t, Config{ReadOnly: true, CacheSize: 1})

	_, err := readInt(tx, "c", "page000002") // loads page 2, evicting page 1's version
	if err == nil {
		_, err = readInt(tx, "c", "page000001")
	}
	require.Error(t, err)
	require.ErrorIs(t, err, ErrSnapshotTooOld, "a read-only snapshot whose record was trimmed")
}

// readOnlySnapshotTrimmed opens a store of the pair (setupPair) in 512-byte segments, a handle of
// roCfg on it, and returns a transaction of that handle whose snapshot holds pair = 1, a version
// that only the log held and that cleanup has since trimmed (pair = 2 superseded it before any
// checkpoint, so it never got a page file).
func readOnlySnapshotTrimmed(t *testing.T, roCfg Config) *Tx {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 512, LogRetention: -1, OneObjectPerPage: true, CheckpointEvery: time.Hour}
	setupPair(t, dir, cfg)
	w := mustOpen(t, dir, cfg)
	_, _, err := update(ctx, w, func(tx *Tx) error { return tx.CreateNamespace("fill") })
	require.NoError(t, err)
	require.NoError(t, w.Checkpoint(ctx))
	ro := mustOpen(t, dir, roCfg)
	_, _, err = update(ctx, w, func(tx *Tx) error { _, err := bumpPair(tx); return err }) // pair = 1, in the log only
	require.NoError(t, err)
	tx, err := ro.Begin(ctx, false) // applies version 1 of both pages from the log
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })
	_, _, err = update(ctx, w, func(tx *Tx) error { _, err := bumpPair(tx); return err }) // pair = 2: 1 never gets a file
	require.NoError(t, err)
	commitUntilRotated(t, w, "fill", segsOf(t, dir)[len(segsOf(t, dir))-1])
	waitPinsNothingBelow(t, w, tx.Snapshot()+2)
	require.NoError(t, w.Checkpoint(ctx))
	require.Greater(t, segsOf(t, dir)[0], tx.Snapshot(), "the segment of the snapshot's versions was trimmed")
	return tx
}

// residentBytes sums the page contents an index holds in memory: the objects of loaded versions
// and the deltas of unloaded appends, over every version reachable from its page histories
// (through append bases too).
func residentBytes(x *index) int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	seen := map[*version]bool{}
	var n int64
	for _, in := range x.incs {
		for _, h := range in.pages {
			for _, v := range h.vs {
				for ; v != nil && !seen[v]; v = v.base {
					seen[v] = true
					if v.loaded {
						n += objsSize(v.objs)
					} else {
						n += objsSize(v.delta)
					}
				}
			}
		}
	}
	return n
}

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// Page cache accounting: an append applied on top of a base that is not loaded keeps its delta
// (the appended objects) in memory, unloaded and off the LRU list, until somebody reads the page.
// A process that follows others' inserts without reading them (two namespaces appended to in
// turn, so each page's base was evicted by the other's version) holds up to maxAppends objects
// per page outside CacheSize, growing with the store.
func TestReview2UnloadedAppendDeltasEscapeCacheBound(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := mustOpen(t, dir, Config{CheckpointEvery: time.Hour})
	_, _, err := update(ctx, w, func(tx *Tx) error {
		if err := tx.CreateNamespace("a"); err != nil {
			return err
		}
		return tx.CreateNamespace("b")
	})
	require.NoError(t, err)
	const limit = 4096
	r := mustOpen(t, dir, Config{CacheSize: limit, CheckpointEvery: time.Hour})
	obj := fmt.Sprintf("%0200d", 0)
	for i := range 300 {
		for _, ns := range []string{"a", "b"} {
			_, _, err := update(ctx, w, func(tx *Tx) error { _, err := tx.Insert(ns, obj); return err })
			require.NoError(t, err)
			require.NoError(t, view(ctx, r, func(*Tx) error { return nil }), "insert %d", i) // r catches up
		}
	}
	x := r.idxp.Load()
	res := residentBytes(x)
	t.Logf("cache used %d of %d; contents resident in the index %d", r.cache.used(), limit, res)
	require.LessOrEqual(t, res, int64(2*limit), "page contents held in memory beyond CacheSize")
}

// indexesInCache counts the distinct indexes whose versions are on the cache's list.
func indexesInCache(db *DB) int {
	db.cache.mu.Lock()
	defer db.cache.mu.Unlock()
	xs := map[*index]bool{}
	db.cache.each(func(x *index, _ *version, _ int64) { xs[x] = true })
	return len(xs)
}

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// Page cache and index swaps: every cached version points at its index (cached.x), so an index
// replaced by a rebuild stays in memory, whole (every incarnation, page and version entry of the
// store), as long as one of its versions is on the list, and the list is only trimmed when it is
// over CacheSize. A process with a small working set that rebuilds after each idle spell (its
// segment trimmed by others) keeps every index it ever built: memory grows with the number of
// rebuilds, outside the cache's bound and unseen in Stats.
func TestReview2SwappedIndexesStayReachableFromCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 512, LogRetention: -1, OneObjectPerPage: true, CheckpointEvery: time.Hour}
	setupPair(t, dir, cfg)
	w := mustOpen(t, dir, cfg)
	ro := mustOpen(t, dir, Config{ReadOnly: true})
	const rounds = 5
	for i := range rounds {
		require.NoError(t, view(ctx, ro, func(tx *Tx) error { _, err := readInt(tx, "c", "page000001"); return err }))
		for range 20 { // others commit past ro's position and rotate the log
			_, _, err := update(ctx, w, func(tx *Tx) error { _, err := bumpPair(tx); return err })
			require.NoError(t, err)
		}
		waitPinsNothingBelow(t, w, stateOf(t, dir).TSN)
		require.NoError(t, w.Checkpoint(ctx)) // trims ro's segment
		require.NoError(t, view(ctx, ro, func(tx *Tx) error { _, err := readInt(tx, "c", "page000001"); return err }), "round %d", i)
	}
	require.GreaterOrEqual(t, ro.rebuilds.Load(), int64(rounds), "ro rebuilt its index after each trim")
	n := indexesInCache(ro)
	t.Logf("rebuilds %d, indexes still referenced by the cache %d, cache bytes %d", ro.rebuilds.Load(), n, ro.cache.used())
	require.LessOrEqual(t, n, 2, "indexes replaced by rebuilds are kept alive by the page cache")
}
