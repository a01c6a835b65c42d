package txn

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// Power cut after a trim: state is never fsynced with sync on (the log is the commit point), so a
// power cut may keep an old state slot, and recovery adopts the log after it. But trimming removes
// segments (and fsyncs the log folder) without first making state durable: the slot that
// survives can name a segment that is gone. The first process after the reboot then refuses the
// store ("segment named by state is missing", ErrCorrupt) although every acknowledged commit is
// in the log and the page files: nothing opens it without a manual step.
func TestReviewPowerCutAfterTrimKeepsOldStateSlot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	setupPair(t, dir, Config{SegmentBytes: 512, LogRetention: -1})
	db := mustOpen(t, dir, Config{})
	before, err := db.state.Read()
	require.NoError(t, err)
	for range 30 {
		_, _, err := update(ctx, db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	require.NoError(t, db.Close()) // the last one: checkpoint, cleanup, trim
	segs, err := wal.ListSegments(filepath.Join(dir, pages.MetaDir, logDirName))
	require.NoError(t, err)
	require.Greater(t, segs[0], before.Pos.Seg, "the segment of the older state slot was trimmed: %v", segs)

	rewindState(t, dir, before) // the state slot that survived the power cut
	reboot(t)
	v, err := verifyPair(dir, 0, []int{30})
	require.NoError(t, err, "the store opens after the power cut, with every acknowledged commit")
	require.Equal(t, 30, v)
}
