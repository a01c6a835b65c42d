package txn

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// Stats follows commits, checkpoints, open transactions, conflicts and processes.
func TestStats(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := Config{OneObjectPerPage: true, CheckpointEvery: time.Hour}
	db := mustOpen(t, dir, cfg)
	var last pages.TSN
	for i := 0; i < 5; i++ {
		tsn, _, err := update(ctx, db, func(tx *Tx) error {
			if i == 0 {
				if err := tx.CreateNamespace("s"); err != nil {
					return err
				}
			}
			_, err := tx.Insert("s", i)
			return err
		})
		require.NoError(t, err)
		last = tsn
	}
	s := db.Stats()
	require.Equal(t, last, s.CommittedTSN)
	require.GreaterOrEqual(t, s.Commits, int64(5)) // reservations count too
	require.Equal(t, pages.TSN(0), s.CheckpointTSN)
	require.Equal(t, 1, s.LogSegments)
	require.Positive(t, s.LogBytes)
	require.Equal(t, 1, s.LiveProcesses)
	require.Zero(t, s.OpenTransactions)
	require.Zero(t, s.OldestSnapshot)
	require.Zero(t, s.OldestSnapshotAge)

	require.NoError(t, db.Checkpoint(ctx))
	s = db.Stats()
	require.Equal(t, last, s.CheckpointTSN)
	require.Zero(t, s.CheckpointLag)
	require.LessOrEqual(t, s.Horizon, s.CommittedTSN)
	require.Equal(t, 5, s.PageFiles)
	require.Positive(t, s.PageBytes)
	require.Equal(t, int64(1), s.Checkpoints)
	require.Zero(t, s.CheckpointErrors)
	require.Empty(t, s.LastCheckpointError)

	// Open transactions: the oldest snapshot and its age; a second process.
	old, err := db.Begin(ctx, false)
	require.NoError(t, err)
	other := mustOpen(t, dir, cfg)
	for i := 0; i < 3; i++ {
		_, _, err := update(ctx, other, func(tx *Tx) error { _, err := tx.Insert("s", i); return err })
		require.NoError(t, err)
	}
	young, err := db.Begin(ctx, true)
	require.NoError(t, err)
	s = db.Stats()
	require.Equal(t, 2, s.OpenTransactions)
	require.Equal(t, old.Snapshot(), s.OldestSnapshot)
	require.Greater(t, young.Snapshot(), old.Snapshot())
	require.GreaterOrEqual(t, s.OldestSnapshotAge, time.Duration(0))
	require.GreaterOrEqual(t, db.Stats().OldestSnapshotAge, s.OldestSnapshotAge, "the age only grows while the snapshot is held")
	require.Equal(t, uint64(3), s.CheckpointLag)
	require.Equal(t, 2, s.LiveProcesses)
	require.NoError(t, old.Rollback())
	s = db.Stats()
	require.Equal(t, young.Snapshot(), s.OldestSnapshot)
	require.Equal(t, 1, s.OpenTransactions)
	require.NoError(t, young.Rollback())
	require.Zero(t, db.Stats().OpenTransactions)

	// Conflicts: two transactions update the page both read; the second loses.
	a, err := db.Begin(ctx, true)
	require.NoError(t, err)
	b, err := db.Begin(ctx, true)
	require.NoError(t, err)
	for _, tx := range []*Tx{a, b} {
		_, err := tx.ReadPage("s", "page000001")
		require.NoError(t, err)
		require.NoError(t, tx.UpdatePage("s", "page000001", 42))
	}
	require.NoError(t, a.Commit())
	require.ErrorIs(t, b.Commit(), ErrConflict)
	require.Equal(t, int64(1), db.Stats().Conflicts)
	require.Zero(t, other.Stats().Conflicts, "conflicts are counted per handle")

	// A failed checkpoint is counted and its error kept until the next one succeeds.
	armFaults(t, func(p faultPoint) error {
		if p == faultCheckpointWrite {
			return errInjected
		}
		return nil
	}, nil, nil)
	require.ErrorIs(t, db.Checkpoint(ctx), errInjected)
	s = db.Stats()
	require.Equal(t, int64(1), s.CheckpointErrors)
	require.Contains(t, s.LastCheckpointError, errInjected.Error())
	armFaults(t, nil, nil, nil)
	require.NoError(t, db.Checkpoint(ctx))
	s = db.Stats()
	require.Equal(t, int64(1), s.CheckpointErrors)
	require.Empty(t, s.LastCheckpointError)
	require.Zero(t, s.CheckpointLag)

	// A read-only handle reads the same store state and registers no process.
	ro := mustOpen(t, dir, Config{ReadOnly: true})
	rs := ro.Stats()
	require.Equal(t, s.CommittedTSN, rs.CommittedTSN)
	require.Equal(t, s.CheckpointTSN, rs.CheckpointTSN)
	require.Equal(t, s.PageFiles, rs.PageFiles)
	require.Equal(t, 2, rs.LiveProcesses)
	require.Zero(t, rs.Commits)

	// The last Close checkpoints with nothing pinned: the horizon reaches the committed TSN.
	closed := t.TempDir()
	w := mustOpen(t, closed, cfg)
	tsn, _, err := update(ctx, w, func(tx *Tx) error { return tx.CreateNamespace("h") })
	require.NoError(t, err)
	require.NoError(t, w.Close())
	hs := mustOpen(t, closed, Config{ReadOnly: true}).Stats()
	require.Equal(t, tsn, hs.Horizon)
	require.Equal(t, tsn, hs.CheckpointTSN)
	require.Zero(t, hs.LiveProcesses)

	// After Close only the counters remain.
	require.NoError(t, other.Close())
	cs := other.Stats()
	require.Positive(t, cs.Commits)
	require.Zero(t, cs.CommittedTSN)
}
