package txn

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// The crash-point runs of CrashPoints and CheckpointCrashPoints through real worker processes
// live in tests/e2e (via procharness). What stays here: the crash detection the re-executed
// children of this package's own tests use, and the pair checker its recovery tests use.

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

// verifyPair opens the store afresh and checks: both pages agree (no partial commit), every
// acknowledged value is present, and at most one unacknowledged commit (the one in flight when
// the writer died) went through. It returns the current value.
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
