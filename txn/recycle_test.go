package txn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// inodeOf returns the inode number of a version file of page page000001 in folder ns.
func inodeOf(t *testing.T, dir, ns string, tsn pages.TSN) uint64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, ns, pages.VersionFileName("page000001", pages.JSON, tsn)))
	require.NoError(t, err)
	return st.Sys().(*syscall.Stat_t).Ino
}

// onePage creates namespace "n" holding page000001 = v and returns the commit's TSN.
func onePage(t *testing.T, db *DB, v int) pages.TSN {
	t.Helper()
	tsn, _, err := update(context.Background(), db, func(tx *Tx) error {
		if err := tx.CreateNamespace("n"); err != nil {
			return err
		}
		_, err := tx.Insert("n", v)
		return err
	})
	require.NoError(t, err)
	return tsn
}

// setPage reads page000001 of "n" and sets it to v; it returns the commit's TSN.
func setPage(t *testing.T, db *DB, v int) pages.TSN {
	t.Helper()
	tsn, _, err := update(context.Background(), db, func(tx *Tx) error {
		if _, err := readInt(tx, "n", "page000001"); err != nil {
			return err
		}
		return tx.UpdatePage("n", "page000001", v)
	})
	require.NoError(t, err)
	return tsn
}

// Checkpoints that keep what they supersede (the housekeeper's) write the next version of a page
// into its superseded file: the same inode, the new contents, nothing for Check to report, and
// an explicit checkpoint leaves one file per page.
func TestCheckpointReusesSupersededFiles(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db := mustOpen(t, dir, Config{OneObjectPerPage: true})
	onePage(t, db, 0)
	t1 := setPage(t, db, 1)
	require.NoError(t, checkpointKeeping(ctx, db))
	setPage(t, db, 2)
	require.NoError(t, checkpointKeeping(ctx, db)) // writes v2's file; v1's superseded and kept
	ino1 := inodeOf(t, dir, "n", t1)
	t3 := setPage(t, db, 3)
	require.NoError(t, checkpointKeeping(ctx, db)) // v(t3) goes into v(t1)'s file
	if !db.recycle {
		t.Skip("this platform or file system cannot rename without replacing")
	}
	require.Equal(t, ino1, inodeOf(t, dir, "n", t3), "v%d was not written into the file of v%d", t3, t1)
	_, err := os.Stat(filepath.Join(dir, "n", pages.VersionFileName("page000001", pages.JSON, t1)))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Positive(t, db.Stats().PageFilesReused)
	requireNoProblems(t, dir)
	r := mustOpen(t, dir, Config{}) // reads the page files afresh
	require.NoError(t, view(ctx, r, func(tx *Tx) error {
		v, err := readInt(tx, "n", "page000001")
		if err == nil && v != 3 {
			err = fmt.Errorf("page holds %d, want 3", v)
		}
		return err
	}))
	require.NoError(t, r.Close())
	require.NoError(t, db.Checkpoint(ctx)) // keeps nothing
	files := dataFiles(t, dir)
	require.Equal(t, []string{"n/" + pages.VersionFileName("page000001", pages.JSON, t3)}, files, "at rest")
}

// A superseded file that a pinned snapshot can still read is not reused: a reader whose
// snapshot predates two newer checkpointed versions still reads its version from the page file.
// With reuse planted regardless of the horizon, the same schedule overwrites that file: the test
// can fail.
func TestRecycleRespectsHorizon(t *testing.T) {
	for _, planted := range []bool{false, true} {
		t.Run(fmt.Sprintf("planted=%v", planted), func(t *testing.T) {
			err := recycleUnderSnapshot(t, planted)
			if planted {
				if err == nil {
					t.Skip("nothing was reused (the platform cannot rename without replacing)")
				}
				t.Logf("planted: %v", err)
				return
			}
			require.NoError(t, err)
		})
	}
}

func recycleUnderSnapshot(t *testing.T, planted bool) error {
	dir := t.TempDir()
	ctx := context.Background()
	w := mustOpen(t, dir, Config{OneObjectPerPage: true})
	onePage(t, w, 1)
	require.NoError(t, w.Checkpoint(ctx))
	r := mustOpen(t, dir, Config{}) // its index points at the page file; nothing loaded yet
	tx, err := r.Begin(ctx, false)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	w.plantRecycleAny = planted
	for v := 2; v <= 4; v++ {
		setPage(t, w, v)
		require.NoError(t, checkpointKeeping(ctx, w))
	}
	if planted && w.Stats().PageFilesReused == 0 {
		return nil
	}
	v, err := readInt(tx, "n", "page000001")
	if err != nil {
		return err
	}
	if v != 1 {
		return fmt.Errorf("the snapshot reads %d, want 1", v)
	}
	return nil
}

// A read-only handle pins no floor, so a checkpoint may reuse the file of a version it is
// reading: rename it to a new version's name and rewrite it. When that happens between the
// reader's open and its read, before the checkpoint publishes its catalog, the read must not
// count (ErrSnapshotTooOld, never the new version's bytes). With the identity check planted away
// the same schedule returns the new bytes: the test can fail.
func TestReadOnlyReadOfReusedFile(t *testing.T) {
	for _, planted := range []bool{false, true} {
		t.Run(fmt.Sprintf("planted=%v", planted), func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			w := mustOpen(t, dir, Config{OneObjectPerPage: true})
			onePage(t, w, 1)
			require.NoError(t, w.Checkpoint(ctx))
			v1 := w.Stats().CheckpointTSN                 // the TSN of the page's one file
			r := mustOpen(t, dir, Config{ReadOnly: true}) // its index names v1's file
			tx, err := r.Begin(ctx, false)
			require.NoError(t, err)
			defer func() { _ = tx.Rollback() }()
			setPage(t, w, 2)
			require.NoError(t, checkpointKeeping(ctx, w)) // v2's file; v1's superseded below the horizon, kept
			reused := pages.VersionFileName("page000001", pages.JSON, v1+100)
			t.Cleanup(func() { _ = os.Remove(filepath.Join(dir, "n", reused)) }) // a leftover no catalog names
			faults.plantNoIdentity.Store(planted)
			t.Cleanup(func() { faults.plantNoIdentity.Store(false); faults.page.Store(nil) })
			fired := false
			hook := func(rel string) {
				if fired {
					return
				}
				fired = true
				// In the window, what a checkpoint step does to a superseded file below the
				// horizon (r pins nothing), before it publishes its catalog.
				d, err := pages.OpenDir(dir)
				require.NoError(t, err)
				defer d.Close()
				fo, err := d.OpenFolder("n", 0)
				require.NoError(t, err)
				defer fo.Close()
				obj, err := pages.Encode(pages.JSON, 3)
				require.NoError(t, err)
				err = fo.Recycle(pages.VersionFileName("page000001", pages.JSON, v1), "page000001", pages.JSON, v1+100, []pages.Object{obj}, false)
				if errors.Is(err, errors.ErrUnsupported) {
					t.Skip("this platform or file system cannot rename without replacing")
				}
				require.NoError(t, err)
			}
			faults.page.Store(&hook)
			v, err := readInt(tx, "n", "page000001")
			faults.page.Store(nil)
			require.True(t, fired)
			if planted {
				require.NoError(t, err)
				require.Equal(t, 3, v, "the planted read should have returned the new bytes")
				return
			}
			require.ErrorIs(t, err, ErrSnapshotTooOld, "read %d", v)
		})
	}
}

// A superseded file a checkpoint was reusing when the power failed may hold anything (the rewrite
// kept, the rename lost): Check calls it a leftover, never corruption (run with the store open:
// the last handle's Close would remove it); the same bytes in the current file of a page are
// corruption.
func TestCheckTornSupersededFile(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db := mustOpen(t, dir, Config{OneObjectPerPage: true})
	tsns := []pages.TSN{onePage(t, db, 1)}
	require.NoError(t, checkpointKeeping(ctx, db))
	tsns = append(tsns, setPage(t, db, 2))
	require.NoError(t, checkpointKeeping(ctx, db)) // keeps v1's file, superseded
	skipCheck(dir)
	old := filepath.Join(dir, "n", pages.VersionFileName("page000001", pages.JSON, tsns[0]))
	cur := filepath.Join(dir, "n", pages.VersionFileName("page000001", pages.JSON, tsns[1]))
	_, err := os.Stat(old)
	require.NoError(t, err, "the superseded file was not kept")
	require.NoError(t, os.WriteFile(old, []byte("[\n  {\"half"), 0o644))
	probs, err := CheckDir(ctx, dir)
	require.NoError(t, err)
	require.Len(t, probs, 1, "%s", problemLines(probs))
	require.ErrorIs(t, probs[0], ErrLeftover)
	require.NoError(t, os.WriteFile(cur, []byte("[\n  {\"half"), 0o644))
	probs, err = CheckDir(ctx, dir)
	require.NoError(t, err)
	require.Len(t, probs, 2, "%s", problemLines(probs))
	corrupt := 0
	for _, p := range probs {
		if errors.Is(p, pages.ErrCorrupt) {
			corrupt++
		}
	}
	require.Equal(t, 1, corrupt, "%s", problemLines(probs))
}
