package txn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// Review tests: each demonstrates a defect and fails on the code it was written against.

// waitFloor waits until db's registry entry is busy with a floor of at least f.
func waitFloor(t *testing.T, db *DB, f pages.TSN) {
	t.Helper()
	require.Eventually(t, func() bool {
		db.reg.mu.Lock()
		defer db.reg.mu.Unlock()
		return !db.reg.entry.idle && db.reg.entry.floor >= f
	}, longStop, housekeepTick/4, "floor of %s never reached %d", db.reg.id, f)
}

// waitPinsNothingBelow waits until db's entry is idle or its floor is at least f.
func waitPinsNothingBelow(t *testing.T, db *DB, f pages.TSN) {
	t.Helper()
	require.Eventually(t, func() bool {
		db.reg.mu.Lock()
		defer db.reg.mu.Unlock()
		return db.reg.entry.idle || db.reg.entry.floor >= f
	}, longStop, housekeepTick/4)
}

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// GC safety, append versions: a process applies an append record from the log on top of a page
// version it knows only as a page file (not loaded). A checkpoint then writes the page whole at
// the append's TSN and marks the old file pending until that TSN; with the horizon at the
// append's TSN (the reader's own open snapshot), cleanup deletes the old file. The reader's open
// snapshot can no longer read the page: its version is "old file + delta", and the old file is
// gone. No live snapshot may lose a version it can read (DESIGN.md 5, GC safety).
func TestReviewAppendOnUnloadedFileVersionLosesBase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := mustOpen(t, dir, Config{})
	_, _, err := update(ctx, w, func(tx *Tx) error { return tx.CreateNamespace("q") })
	require.NoError(t, err)
	_, _, err = update(ctx, w, func(tx *Tx) error { _, err := tx.Insert("q", "first"); return err })
	require.NoError(t, err)
	require.NoError(t, w.Checkpoint(ctx)) // q/page000001.json.v2 holds ["first"]

	r := mustOpen(t, dir, Config{}) // its index knows page000001 only as the file v2
	require.Eventually(t, func() bool { return idleEntry(t, r) }, longStop, housekeepTick/4)

	tsn, _, err := update(ctx, w, func(tx *Tx) error { _, err := tx.Insert("q", "second"); return err })
	require.NoError(t, err)
	// It went to the log as an append to page000001 (this process's hot page).
	data, err := os.ReadFile(seg1(dir))
	require.NoError(t, err)
	require.Contains(t, string(data), `"op":"append"`)

	tx, err := r.Begin(ctx, false) // catches up: version tsn = file v2 + ["second"], not loaded
	require.NoError(t, err)
	defer tx.Rollback()
	require.Equal(t, tsn, tx.Snapshot())
	waitFloor(t, r, tsn)                  // r's floor rises to its open snapshot
	waitPinsNothingBelow(t, w, tsn)       // w pins nothing older
	require.NoError(t, w.Checkpoint(ctx)) // writes v<tsn>, v2 pending until tsn, horizon = tsn: v2 deleted

	objs, err := tx.ReadPage("q", "page000001")
	require.NoError(t, err, "the open snapshot at %d lost the page it can read", tsn)
	require.Len(t, objs, 2)
}

// GC safety, read-only handles: a read-only handle registers no floor (it writes nothing), so
// cleanup may delete the page files its open snapshot still reads. The read then fails with
// ErrSnapshotTooOld, never ErrCorrupt on a healthy store, and a new transaction reads fine.
func TestReviewReadOnlyHandleHoldsNoFloor(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	w := mustOpen(t, dir, Config{})
	require.NoError(t, w.Checkpoint(ctx))
	ro := mustOpen(t, dir, Config{ReadOnly: true})
	tx, err := ro.Begin(ctx, false)
	require.NoError(t, err)
	defer tx.Rollback()
	for range 3 {
		_, _, err := update(ctx, w, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	waitPinsNothingBelow(t, w, 4)
	require.NoError(t, w.Checkpoint(ctx))
	_, err = readInt(tx, "c", "page000001")
	require.ErrorIs(t, err, ErrSnapshotTooOld, "a read-only handle's open snapshot lost its page files")
	require.NotErrorIs(t, err, ErrConflict)
	require.NoError(t, view(ctx, ro, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		require.Equal(t, 3, v)
		return nil
	}))
}

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// Catch-up after trimming, with a cached segment handle: a handle that caught up once keeps its
// current segment open. While it is idle, others rotate through several segments and trim them.
// Its next catch-up reads the (unlinked) cached segment to its end, then asks the directory for
// "the next segment", gets the first one that survived the trim (several segments later) and
// applies its records: a TSN gap, reported as ErrCorrupt, instead of errSegmentGone (rebuild from
// the checkpoint). That Begin fails (the next one rebuilds: the failed walk closed the handle).
// The same happens inside one walk when a trim runs while a process opens.
func TestReviewCachedSegmentSkipsTrimmedSegments(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	setupPair(t, dir, Config{SegmentBytes: 512, LogRetention: -1})
	r := mustOpen(t, dir, Config{})
	w := mustOpen(t, dir, Config{})
	_, _, err := update(ctx, w, func(tx *Tx) error { _, err := bumpPair(tx); return err })
	require.NoError(t, err)
	require.NoError(t, view(ctx, r, func(tx *Tx) error { _, err := readInt(tx, "c", "page000001"); return err }))
	r.catchMu.Lock()
	cached := len(r.segs)
	r.catchMu.Unlock()
	require.Positive(t, cached, "r keeps its current segment open")
	require.Eventually(t, func() bool { return idleEntry(t, r) }, longStop, housekeepTick/4)
	for range 40 {
		_, _, err := update(ctx, w, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	waitPinsNothingBelow(t, w, 42)
	require.NoError(t, w.Checkpoint(ctx))
	segs, err := wal.ListSegments(filepath.Join(dir, pages.MetaDir, logDirName))
	require.NoError(t, err)
	require.Greater(t, segs[0], pages.TSN(10), "several segments were trimmed: %v", segs)

	err = view(ctx, r, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000001")
		if err == nil {
			require.Equal(t, 41, v)
		}
		return err
	})
	require.NoError(t, err, "an idle handle whose segment was trimmed must rebuild, not fail")
}

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// Trimming under a busy handle: a handle holds an open writable snapshot S (its floor is S, so
// the horizon is S). Its index position is the end of record S, in segment s; the next segment
// starts at S+1. Trimming removes s (all its records are at or below min(checkpoint, horizon)).
// The handle's commit catches up from a position in s, finds it gone, rebuilds its index, and
// fails its transaction with a "lineage" conflict although nothing it read or wrote changed.
func TestReviewTrimUnderBusySnapshotFailsCommit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	setupPair(t, dir, Config{SegmentBytes: 512, LogRetention: -1})
	w := mustOpen(t, dir, Config{OneObjectPerPage: true, CheckpointEvery: time.Hour})
	_, _, err := update(ctx, w, func(tx *Tx) error {
		if err := tx.CreateNamespace("o"); err != nil {
			return err
		}
		_, err := tx.Insert("o", 0)
		return err
	})
	require.NoError(t, err)
	// A commit that fills its segment: the next commit starts a new one named S+1.
	big := strings.Repeat("x", 600)
	s, _, err := update(ctx, w, func(tx *Tx) error {
		if _, err := readInt(tx, "c", "page000001"); err != nil {
			return err
		}
		return tx.UpdatePage("c", "page000001", big)
	})
	require.NoError(t, err)
	require.NoError(t, w.Checkpoint(ctx))

	b := mustOpen(t, dir, Config{Isolation: Snapshot, CheckpointEvery: time.Hour})
	tx, err := b.Begin(ctx, true)
	require.NoError(t, err)
	defer tx.Rollback()
	require.Equal(t, s, tx.Snapshot())
	seg := b.idxp.Load().pos.Seg
	waitFloor(t, b, s) // b pins S

	for range 3 {
		_, _, err := update(ctx, w, func(tx *Tx) error {
			if _, err := tx.ReadPage("c", "page000002"); err != nil {
				return err
			}
			return tx.UpdatePage("c", "page000002", 1)
		})
		require.NoError(t, err)
	}
	waitPinsNothingBelow(t, w, s)
	require.NoError(t, w.Checkpoint(ctx))
	segs, err := wal.ListSegments(filepath.Join(dir, pages.MetaDir, logDirName))
	require.NoError(t, err)
	require.Greater(t, segs[0], seg, "segment %d of b's position was trimmed (all records <= horizon %d): %v", seg, s, segs)

	// b's transaction touches a page nobody else wrote.
	v, err := readInt(tx, "o", "page000001")
	require.NoError(t, err)
	require.NoError(t, tx.UpdatePage("o", "page000001", v+1))
	require.NoError(t, tx.Commit(), "nothing b read or wrote changed after its snapshot")
}

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// The same with an idle reader, and it does not heal: a handle that has not read a page since it
// opened applies another process's appends to it on top of the page file; once a checkpoint
// writes the page whole and cleanup deletes the old file (nobody pins it: the reader is idle),
// every later read of that page in the reader fails with ErrCorrupt, and so does every insert
// that appends to it, until the process reopens the store.
func TestReviewAppendOnUnloadedFileVersionStaysBroken(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := mustOpen(t, dir, Config{})
	_, _, err := update(ctx, w, func(tx *Tx) error { return tx.CreateNamespace("q") })
	require.NoError(t, err)
	_, _, err = update(ctx, w, func(tx *Tx) error { _, err := tx.Insert("q", "first"); return err })
	require.NoError(t, err)
	require.NoError(t, w.Checkpoint(ctx))
	r := mustOpen(t, dir, Config{})
	_, _, err = update(ctx, w, func(tx *Tx) error { _, err := tx.Insert("q", "second"); return err })
	require.NoError(t, err)
	require.NoError(t, view(ctx, r, func(tx *Tx) error { return nil })) // r applies the append
	require.Eventually(t, func() bool { return idleEntry(t, r) }, longStop, housekeepTick/4)
	_, _, err = update(ctx, w, func(tx *Tx) error { _, err := tx.Insert("q", "third"); return err })
	require.NoError(t, err)
	waitPinsNothingBelow(t, w, 4)
	require.NoError(t, w.Checkpoint(ctx))
	var failed []error
	for range 3 {
		err := view(ctx, r, func(tx *Tx) error {
			objs, err := tx.ReadPage("q", "page000001")
			if err == nil {
				require.Len(t, objs, 3)
			}
			return err
		})
		if err != nil {
			failed = append(failed, err)
		}
	}
	require.Empty(t, failed, "%d of 3 reads of a page another process appended to failed", len(failed))
}
