package txn

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// "Every wake is only a hint ... a missed wake costs at most a sleep" (PROTOCOL.md, "Waking the
// owner"). Here the holder's rings for the owner's slot go to another file, so the owner is never
// woken; the holder keeps the lock after it published the owner's commit until that commit
// returns. The owner must learn the outcome by polling, without the lock (a wait for the lock,
// or a sleep that only a wake ends, would never end here: the test would fail at longStop).
func TestOwnerLearnsWithoutAnyWake(t *testing.T) {
	a, b := wakeablePair(t)
	p, err := a.board.peer(b.board.own.i)
	require.NoError(t, err)
	p.wake = mapWakeWord(filepath.Join(t.TempDir(), "elsewhere.wake"), 0o644, true) // a rings nobody
	require.NotNil(t, p.wake)
	// A failing run leaves b asleep: ring it for real before the handles close (cleanups run
	// last-registered first).
	real := mapWakeWord(b.board.path(b.board.own.i, ".wake"), 0o644, true)
	require.NotNil(t, real)
	t.Cleanup(func() { real.ring(); real.close() })

	before, _ := b.board.own.wake.load()
	require.NoError(t, offeredWhileHeld(t, a, b))
	after, _ := b.board.own.wake.load()
	require.Equal(t, before, after, "nobody rang b")
	require.Equal(t, int64(1), b.Stats().Delegated)
}
