package txn

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// Power cut after a trim, equal TSNs: a group holding only a reservation rotates the log (the
// segment was full): the new segment T+1 starts with the reservation record, and state names
// TSN T in segment T+1. A checkpoint now ends at TSN T in segment T+1, and the trim removes the
// old segment (all its records are at or below the mark T, and it lies before the checkpoint's
// segment). State is not fsynced: a power cut can keep the older slot, TSN T in the old,
// trimmed segment. recoverLocked starts from the catalog only when the catalog's TSN is greater
// than the slot's; at equal TSNs it keeps the slot and
// refuses the store: ErrCorrupt "segment named by state is missing", although every
// acknowledged commit is in the log and the page files.
func TestReview2PowerCutAfterReservationRotationTrim(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	setupPair(t, dir, Config{SegmentBytes: 512, LogRetention: -1})
	db := mustOpen(t, dir, Config{OneObjectPerPage: true})
	for i := 0; stateOf(t, dir).Pos.Off < 512; i++ {
		require.Less(t, i, 100)
		_, _, err := update(ctx, db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	before := stateOf(t, dir) // TSN T, at the end of a full segment
	tx, err := db.Begin(ctx, true)
	require.NoError(t, err)
	_, err = tx.Insert("c", 99) // no block of "c" yet: a reservation rotates the log
	require.NoError(t, err)
	after := stateOf(t, dir)
	require.Equal(t, before.TSN, after.TSN)
	require.Equal(t, before.TSN+1, after.Pos.Seg, "the reservation started segment T+1")
	waitFloor(t, db, before.TSN)           // the open snapshot's floor: the horizon is T
	require.NoError(t, db.Checkpoint(ctx)) // catalog: TSN T in segment T+1; trims the old segment
	require.NoError(t, tx.Rollback())
	require.NotContains(t, segsOf(t, dir), before.Pos.Seg, "the segment of the older slot was trimmed")
	require.NoError(t, db.Close())

	rewindState(t, dir, before) // the slot that survived the power cut
	reboot(t)
	v, err := verifyPair(dir, 0, nil)
	require.NoError(t, err, "the store opens after the power cut with every acknowledged commit")
	require.Equal(t, int(before.TSN-1), v)
}

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// Read-only open after a power cut that kept the older state slot: the catalog is ahead of the
// slot (state is not fsynced; the catalog is), so the read-only index, built from the catalog,
// stands past state: follow reports errAheadOfState, which only a writer may repair, and the
// read-only Open fails with ErrCorrupt on a healthy store (every acknowledged commit is in the
// log and the page files) until some writable handle opens it.
func TestReview2ReadOnlyOpenAfterPowerCutIsCorrupt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	db := mustOpen(t, dir, Config{OneObjectPerPage: true})
	before := stateOf(t, dir)
	for range 3 {
		_, _, err := update(ctx, db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	require.NoError(t, db.Close()) // the last one: checkpoint at TSN 4
	rewindState(t, dir, before)    // the slot that survived the power cut (TSN 1)
	reboot(t)
	skipCheck(dir)
	ro, err := Open(ctx, dir, Config{ReadOnly: true})
	require.NoError(t, err, "a read-only handle opens a healthy store after a power cut")
	require.NoError(t, ro.Close())
}
