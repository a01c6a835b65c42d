package txn

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A housekeeper measures the checkpoint lag from the checkpoint on disk: once another handle's
// checkpoint covers this handle's commits, it has nothing to checkpoint and runs nothing. (It
// used to go by the checkpoint it wrote itself, so every committing process checkpointed on its
// own clock, each writing the hot pages again.) CheckpointEvery is an hour here, so nothing but
// reading the other handle's checkpoint can bring the lag to zero.
func TestHousekeeperSeesOtherCheckpoints(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a := mustOpen(t, dir, Config{OneObjectPerPage: true, CheckpointEvery: time.Hour})
	b := mustOpen(t, dir, Config{OneObjectPerPage: true, CheckpointEvery: time.Hour})
	onePage(t, b, 1)
	require.NotZero(t, b.commitsSinceCheckpoint())
	require.NoError(t, a.Checkpoint(ctx))
	require.Eventually(t, func() bool { return b.commitsSinceCheckpoint() == 0 }, longStop, housekeepTick/4,
		"b's housekeeper did not see a's checkpoint")
	require.Zero(t, b.Stats().Checkpoints, "b ran a checkpoint of its own")
}
