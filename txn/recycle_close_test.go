package txn

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// A handle whose housekeeper kept superseded files for reuse, closing while another handle stays
// open (so it is not the last), leaves one file per page: nobody else removes what it kept (an
// idle handle that never commits never runs a checkpoint), and no snapshot needs the files.
func TestKeptFilesGoWhenTheKeeperCloses(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a, err := Open(ctx, dir, Config{OneObjectPerPage: true})
	require.NoError(t, err)
	defer a.Close()
	onePage(t, a, 1)
	require.NoError(t, a.Checkpoint(ctx))
	b := mustOpen(t, dir, Config{OneObjectPerPage: true}) // open, idle: no snapshot, no commits
	for range 2 {                                         // as b's housekeeper's ticks do: b pins nothing
		require.NoError(t, b.floor.raise())
	}
	t2 := setPage(t, a, 2)
	require.NoError(t, checkpointKeeping(ctx, a)) // as a's housekeeper: v1's file kept for reuse
	require.Len(t, dataFiles(t, dir), 2, "the run kept nothing to reuse")
	require.NoError(t, a.Close())
	require.Equal(t, []string{"n/" + pages.VersionFileName("page000001", pages.JSON, t2)}, dataFiles(t, dir),
		"one file per page once the handle that kept files closed")
}

// A housekeeper whose runs kept superseded files removes them once no commit came for
// CheckpointEvery: a store that went quiet has one file per page while its handle stays open.
func TestKeptFilesGoWhenQuiet(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db := mustOpen(t, dir, Config{OneObjectPerPage: true, CheckpointEvery: 20 * time.Millisecond})
	onePage(t, db, 1)
	require.NoError(t, db.Checkpoint(ctx))
	t2 := setPage(t, db, 2)
	require.NoError(t, checkpointKeeping(ctx, db)) // as the housekeeper's runs do: v1's file kept
	require.True(t, db.kept.Load())
	require.Len(t, dataFiles(t, dir), 2, "the run kept nothing to reuse")
	want := []string{"n/" + pages.VersionFileName("page000001", pages.JSON, t2)}
	require.Eventually(t, func() bool { return slices.Equal(want, dataFiles(t, dir)) }, longStop, housekeepTick/4,
		"the quiet housekeeper left %v", dataFiles(t, dir))
	require.False(t, db.kept.Load())
}
