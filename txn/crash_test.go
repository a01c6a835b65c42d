package txn

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCrashPoints kills a writer with SIGKILL at each named crash point, repeatedly, and checks
// after every kill that every acknowledged commit is present, no partial commit is visible, and
// the next process carries on. Small log segments make rotation happen every few commits.
func TestCrashPoints(t *testing.T) {
	iters := 30
	if testing.Short() {
		iters = 10
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	const segBytes = 2048
	for _, point := range CrashPoints {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			setupPair(t, dir, Config{SegmentBytes: segBytes})
			cc := childConfig{Dir: dir, N: 30, SegmentBytes: segBytes}
			known := 0 // the pair's value as last checked
			for i := 0; i < iters; i++ {
				// The recovery points need something to recover: a writer killed mid-record
				// (torn tail) or after its fsync (a whole record past state).
				if prep, ok := map[string]string{crashRecoverTruncate: crashMidRecord, crashRecoverAdopted: crashAfterSync}[point]; ok {
					acks := runKilled(t, cc, prep+":1")
					known = checkPair(t, dir, known, acks)
				}
				arm := fmt.Sprintf("%s:%d", point, 1+rng.IntN(3))
				if point == crashRecoverTruncate || point == crashRecoverAdopted {
					arm = point + ":1"
				}
				acks := runKilled(t, cc, arm)
				known = checkPair(t, dir, known, acks)
			}
			// The next process carries on, and no commit ever used up a TSN it did not keep.
			k := startChild(t, "bumper", configEnv(t, childConfig{Dir: dir, N: 3, SegmentBytes: segBytes}))
			lines, err := k.all(t)
			require.NoError(t, err, "survivor output: %v", tail(lines))
			final := checkPair(t, dir, known, acksOf(t, lines))
			db := mustOpen(t, dir, Config{})
			require.NoError(t, view(context.Background(), db, func(tx *Tx) error {
				require.Equal(t, int(tx.Snapshot()), final+1, "TSN = setup + one per increment (gap-free)")
				return nil
			}))
		})
	}
}

// runKilled runs a bumper armed at a crash point, requires that it announced that crash point
// and that SIGKILL ended it (a child that never reached the point, or a build that ignores the
// switch, fails here rather than passing by never crashing), and returns the values it
// acknowledged.
func runKilled(t *testing.T, cc childConfig, arm string) []int {
	t.Helper()
	k := startChild(t, "bumper", configEnv(t, cc), crashEnv+"="+arm)
	lines, err := k.all(t)
	requireCrashed(t, k, err, arm)
	return acksOf(t, lines)
}

// requireCrashed fails unless the child armed at arm ("<point>[:<n>]") printed "crash <point>"
// on stderr and then died of SIGKILL; err is its exit error.
func requireCrashed(t *testing.T, k *child, err error, arm string) {
	t.Helper()
	point, _, _ := strings.Cut(arm, ":")
	stderr := k.stderr.String()
	require.Contains(t, strings.Split(stderr, "\n"), "crash "+point,
		"child armed at %s did not announce the crash point; stderr: %q", arm, stderr)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "child armed at %s exited normally", arm)
	ws, ok := ee.Sys().(syscall.WaitStatus)
	require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL,
		"child armed at %s must die by SIGKILL, got %v", arm, err)
}

// A build without the txtdb_crashpoints tag ignores TXTDB_CRASHPOINT: a child that inherits it
// but is not armed by this test binary commits to the end. Fails if any init of a plain build
// reads the variable again.
func TestPlainBuildIgnoresCrashEnv(t *testing.T) {
	if crashEnvEnabled {
		t.Skip("built with the txtdb_crashpoints tag: the environment arms crash points")
	}
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	k := startChild(t, "bumper", configEnv(t, childConfig{Dir: dir, N: 3}),
		crashEnv+"="+crashAfterAppend+":1", "TXN_UNARMED=1")
	lines, err := k.all(t)
	require.NoError(t, err, "an inherited %s killed a plain build: %v", crashEnv, tail(lines))
	require.NotContains(t, k.stderr.String(), "crash ")
	require.Equal(t, []int{1, 2, 3}, acksOf(t, lines))
}

func acksOf(t *testing.T, lines []string) []int {
	var acks []int
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "ack "); ok {
			f := strings.Fields(rest)
			acks = append(acks, atoi(t, f[0]))
		}
		require.NotContains(t, l, "TORN")
	}
	return acks
}

// checkPair opens the store afresh and checks: both pages agree (no partial commit), every
// acknowledged value is present, and at most one unacknowledged commit (the one in flight when
// the writer died) went through. It returns the current value.
func checkPair(t *testing.T, dir string, known int, acks []int) int {
	t.Helper()
	got, err := verifyPair(dir, known, acks)
	require.NoError(t, err)
	return got
}

func verifyPair(dir string, known int, acks []int) (int, error) {
	low := known
	for _, a := range acks {
		if a <= known {
			return 0, fmt.Errorf("ack %d does not continue after %d", a, known)
		}
		low = max(low, a)
	}
	db, err := Open(context.Background(), dir, Config{})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var got int
	err = view(context.Background(), db, func(tx *Tx) error {
		a, err := readInt(tx, "c", "page000001")
		if err != nil {
			return err
		}
		b, err := readInt(tx, "c", "page000002")
		if err != nil {
			return err
		}
		if a != b {
			return fmt.Errorf("partial commit visible at snapshot %d: %d != %d", tx.Snapshot(), a, b)
		}
		got = a
		return nil
	})
	switch {
	case err != nil:
		return 0, err
	case got < low:
		return got, fmt.Errorf("acknowledged commit missing: store has %d, acked %d", got, low)
	case got > low+1:
		return got, fmt.Errorf("store has %d: more than the one in-flight commit after %d", got, low)
	}
	return got, nil
}

// The checker used above fails on planted violations: a partial commit, a lost acknowledged
// commit, and commits nobody made.
func TestCheckerCatchesPlantedViolations(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	_, err := verifyPair(dir, 0, nil)
	require.NoError(t, err, "clean store")
	_, err = verifyPair(dir, 0, []int{1})
	require.ErrorContains(t, err, "acknowledged commit missing")

	db := mustOpen(t, dir, Config{})
	for i := 0; i < 2; i++ {
		_, _, err = update(context.Background(), db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	_, err = verifyPair(dir, 0, nil)
	require.ErrorContains(t, err, "more than the one in-flight commit")

	_, _, err = update(context.Background(), db, func(tx *Tx) error { // a "partial" commit
		v, err := readInt(tx, "c", "page000001")
		if err != nil {
			return err
		}
		return tx.UpdatePage("c", "page000001", v+1)
	})
	require.NoError(t, err)
	_, err = verifyPair(dir, 2, nil)
	require.ErrorContains(t, err, "partial commit visible")
}
