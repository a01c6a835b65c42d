package txn

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// A checkpointer killed between the rename of a reused file and its rewrite leaves the new
// version's name on the superseded version's bytes. If the page changes again before the next
// checkpoint, that checkpoint writes the newer version and never rewrites the leftover: it must
// not publish the leftover as a superseded version of the page either, since a read-only handle
// whose snapshot lies between the two versions (and whose cache dropped the version's contents) reads that version's file once the log holding
// its record is trimmed. The read must give the version's contents or ErrSnapshotTooOld, never
// the older version's bytes under the newer name.
func TestRecycleCrashLeftoverNeverRead(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	const segBytes = 512 // a few records per segment: the checkpoint trims the old ones
	cfg := Config{OneObjectPerPage: true, SegmentBytes: segBytes, LogRetention: -1, CheckpointEvery: time.Hour}
	w, set, v1, t3, ta := recycleStore(t, dir, cfg, 1)

	// A reader whose cache holds nothing but the last version it loaded: v3's contents come from
	// the log, or from v3's file once the log is trimmed.
	r := mustOpen(t, dir, Config{ReadOnly: true, CacheSize: 1})
	tx, err := r.Begin(ctx, false)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	require.Equal(t, ta, tx.Snapshot())

	// A checkpointer dies right after renaming v1's file to v3's name.
	arm := crashCheckpointRecycle + ":1"
	k := startChild(t, "ckpt-keep", configEnv(t, childConfig{Dir: dir, SegmentBytes: segBytes}), crashEnv+"="+arm)
	_, err = k.all(t)
	requireCrashed(t, k, err, arm)
	name3 := filepath.Join(dir, "n", pages.VersionFileName("page000001", pages.JSON, t3))
	data, err := os.ReadFile(name3)
	require.NoError(t, err, "the crash left no file under v%d's name", t3)
	objs, err := pages.DecodePage(pages.JSON, data)
	require.NoError(t, err)
	var left int
	require.NoError(t, objs[0].Decode(&left))
	require.Equal(t, 1, left, "the file under v%d's name holds v%d's value", t3, v1)

	// The page changes again, and other commits fill the log, before the next checkpoint: it
	// writes v4 and trims the segment holding v3's record.
	set("n", "page000001", 4)
	for i := range 5 {
		set("o", "", i)
	}
	require.NoError(t, checkpointKeeping(ctx, w))
	segs, err := wal.ListSegments(filepath.Join(dir, pages.MetaDir, "log"))
	require.NoError(t, err)
	require.NotEmpty(t, segs)
	require.Greater(t, segs[0], t3, "the segment holding v%d's record was not trimmed: %v", t3, segs)

	_, err = readInt(tx, "o", "page000001") // the last version loaded: v3's contents are dropped
	require.NoError(t, err)
	v, err := readInt(tx, "n", "page000001")
	if err == nil {
		require.Equal(t, 3, v, "a snapshot at %d reads the page", t3)
	} else {
		require.True(t, errors.Is(err, ErrSnapshotTooOld), "read at %d: %v", t3, err)
	}
}

// recycleStore opens a writer on dir and makes the history the recycle tests start from: n's
// page000001 holds first (v1, checkpointed), then 2 (checkpointed keeping v1's file for reuse),
// then 3 (t3, not checkpointed); o's page000001 holds 0 (ta). set(ns, page, v) commits v to
// page (an insert if page is ""), read first, and returns its TSN.
func recycleStore(t *testing.T, dir string, cfg Config, first any) (w *DB, set func(ns, page string, v int) pages.TSN, v1, t3, ta pages.TSN) {
	t.Helper()
	ctx := context.Background()
	w = mustOpen(t, dir, cfg)
	_, _, err := update(ctx, w, func(tx *Tx) error {
		if err := tx.CreateNamespace("n"); err != nil {
			return err
		}
		if err := tx.CreateNamespace("o"); err != nil {
			return err
		}
		_, err := tx.Insert("n", first)
		return err
	})
	require.NoError(t, err)
	set = func(ns, page string, v int) pages.TSN {
		t.Helper()
		tsn, _, err := update(ctx, w, func(tx *Tx) error {
			if page == "" {
				_, err := tx.Insert(ns, v)
				return err
			}
			if _, err := tx.ReadPage(ns, page); err != nil {
				return err
			}
			return tx.UpdatePage(ns, page, v)
		})
		require.NoError(t, err)
		return tsn
	}
	require.NoError(t, w.Checkpoint(ctx))
	v1 = w.Stats().CheckpointTSN
	set("n", "page000001", 2)
	require.NoError(t, checkpointKeeping(ctx, w)) // v1's file superseded, kept for reuse
	t3 = set("n", "page000001", 3)
	ta = set("o", "", 0)
	return w, set, v1, t3, ta
}
