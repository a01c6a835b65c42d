package e2e

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/procharness"
	"github.com/txtdb/txtdb/procharness/check"
	"github.com/txtdb/txtdb/procharness/history"
	"github.com/txtdb/txtdb/txn"
)

// crashKeys is the number of counters of the crash-point runs.
const crashKeys = 2

// Commit-path crash points: a counter worker armed at a point (its n-th hit, n random in 1..3)
// must announce the point and die of SIGKILL, again and again on one store; small log segments
// make rotation happen every few commits. The recovery points need something to recover, so a
// worker killed mid-record (a torn tail) or after its fsync (a whole record past state) goes
// first. Afterwards a survivor finishes its operations, the counter checker finds every
// acknowledged increment and at most the unknown ones on top (at every snapshot read and every
// increment's TSN), and Check is clean after a checkpoint.
func TestCrashPoints(t *testing.T) {
	iters := size(3, 15)
	args := []string{"-keys", fmt.Sprint(crashKeys), "-ops", "60", "-segment-bytes", "2048"}
	prep := map[string]string{"recover-truncated": "mid-record", "recover-adopted": "after-fsync"}
	for _, point := range txn.CrashPoints {
		t.Run(point, func(t *testing.T) {
			f := procharness.NewTest(t)
			for range iters {
				if p, ok := prep[point]; ok {
					crashAt(t, f, args, p+":1", p, true)
				}
				arm := fmt.Sprintf("%s:%d", point, 1+f.Rand.IntN(3))
				if _, ok := prep[point]; ok {
					arm = point + ":1"
				}
				crashAt(t, f, args, arm, point, true)
			}
			finishCounter(t, f, args)
			// No commit used up a TSN it did not keep: the last snapshot is the setup commit plus
			// one per increment that happened.
			snap, counters := lastRead(t, f)
			var sum int64
			for _, c := range counters {
				sum += c
			}
			require.Equal(t, uint64(1+sum), snap, "TSNs are gap-free: setup + one per increment")
		})
	}
}

// lastRead returns the counter read with the highest snapshot.
func lastRead(t *testing.T, f *procharness.Fixture) (uint64, history.Counters) {
	t.Helper()
	var snap uint64
	var out history.Counters
	for _, l := range f.History().OfType(history.OK) {
		if l.F == "read" && l.Snap >= snap {
			snap = l.Snap
			require.NoError(t, l.Decode(&out))
		}
	}
	return snap, out
}

// Checkpoint and cleanup crash points: the counter worker checkpoints after every operation and
// renames a namespace every other one, on a store with tiny segments and no log retention (so
// checkpoints write, move, clean up and trim). A run that never reaches its point (n random in
// 1..3) ends normally; each point must be hit at least once. After every other crash a fresh
// handle checkpoints and Check is clean; at the end as in TestCrashPoints.
func TestCheckpointCrashPoints(t *testing.T) {
	iters := size(4, 12)
	args := []string{"-keys", fmt.Sprint(crashKeys), "-ops", "12", "-checkpoint", "-rename",
		"-segment-bytes", "512", "-log-retention", "-1", "-checkpoint-every", "1h"}
	for _, point := range txn.CheckpointCrashPoints {
		t.Run(point, func(t *testing.T) {
			f := procharness.NewTest(t)
			crashed := 0
			for i := range iters {
				arm := fmt.Sprintf("%s:%d", point, 1+f.Rand.IntN(3))
				if point == "trim-mid" {
					arm = point + ":1" // a trim needs a mark below the horizon: rarer than the others
				}
				if crashAt(t, f, args, arm, point, false) {
					crashed++
					if i%2 == 1 {
						probs, err := f.Verify(f.Ctx)
						require.NoError(t, err, "verify after a crash at %s", arm)
						require.Empty(t, probs, "Check after a crash at %s and a checkpoint", arm)
					}
				}
			}
			require.Positive(t, crashed, "no run reached crash point %s", point)
			finishCounter(t, f, args)
		})
	}
}

// crashAt runs one counter worker armed at arm and waits for it to end. It reports whether the
// worker crashed at point (announced it and died of SIGKILL); must requires that it did, else a
// clean exit is accepted too. Any other end fails the test.
func crashAt(t *testing.T, f *procharness.Fixture, args []string, arm, point string, must bool) bool {
	t.Helper()
	p, err := f.StartNoWait(procharness.Spec{Workload: "counter", Args: args, Env: []string{"TXTDB_CRASHPOINT=" + arm}})
	require.NoError(t, err)
	e, err := p.Wait(f.Ctx)
	require.NoError(t, err)
	if e.CrashedAt(point) {
		return true
	}
	require.False(t, must, "worker armed at %s did not crash there: %s", arm, e)
	require.Zero(t, e.Code, "worker armed at %s: %s", arm, e)
	require.Nil(t, e.Err)
	return false
}

// finishCounter runs an unarmed worker to its end, then checks the counters over the whole
// history and the directory.
func finishCounter(t *testing.T, f *procharness.Fixture, args []string) {
	t.Helper()
	p, err := f.Start(f.Ctx, procharness.Spec{Workload: "counter", Args: args})
	require.NoError(t, err)
	e, err := p.Wait(f.Ctx)
	require.NoError(t, err)
	require.Zero(t, e.Code, "survivor: %s", e)
	res := check.Counter(f.History(), crashKeys)
	require.True(t, res.OK(), "%s", res)
	t.Logf("%s", res)
	probs, err := f.Verify(f.Ctx)
	require.NoError(t, err)
	require.Empty(t, probs)
}
