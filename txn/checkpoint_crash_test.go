package txn

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// The checkpoint crash tests run on a store made by setupChurn: the pair of "c" (setupPair) and
// namespace "m" with one page, page000001, holding the pair's value. The churn workload keeps
// that invariant in every commit and renames m <-> m2 now and then.

// churnNames are the two names the churned namespace alternates between.
var churnNames = [2]string{"m", "m2"}

const churnPage = "page000001"

var ckptSeed = flag.Uint64("ckpt.seed", 0, "seed of TestCheckpointCrashPoints (0: random)")

// setupChurn creates the pair of "c" and namespace "m" with one page holding 0, and closes the
// store (the last close checkpoints, so m's page is in its folder before any rename).
func setupChurn(tb testing.TB, dir string, cfg Config) {
	tb.Helper()
	setupPair(tb, dir, cfg)
	cfg.OneObjectPerPage = true
	db := mustOpen(tb, dir, cfg)
	_, _, err := update(context.Background(), db, func(tx *Tx) error {
		if err := tx.CreateNamespace(churnNames[0]); err != nil {
			return err
		}
		id, err := tx.Insert(churnNames[0], 0)
		if err == nil && id != churnPage {
			err = fmt.Errorf("first page of %s is %s, want %s", churnNames[0], id, churnPage)
		}
		return err
	})
	require.NoError(tb, err)
	require.NoError(tb, db.Close())
}

// churnName returns which of the churn names exists at tx's snapshot; exactly one must.
func churnName(tx *Tx) (string, error) {
	names, err := tx.Namespaces()
	if err != nil {
		return "", err
	}
	var found []string
	for _, n := range churnNames {
		if slices.Contains(names, n) {
			found = append(found, n)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("want exactly one of %v, namespaces are %v", churnNames, names)
	}
	return found[0], nil
}

// churnStep bumps the pair and writes the new value to the churned namespace's page, in one
// transaction; it returns the value.
func churnStep(tx *Tx, ns string) (int, error) {
	v, err := bumpPair(tx)
	if err != nil {
		return 0, err
	}
	if _, err := readInt(tx, ns, churnPage); err != nil {
		return 0, err
	}
	return v, tx.UpdatePage(ns, churnPage, v)
}

// ckptChurnRole is the "ckpt-churn" child: n rounds, each bumping the pair (and the churned page)
// with an "ack <value> <tsn>" line, then checkpointing; every second round it also renames the
// churned namespace to its other name ("renamed <name> <tsn>") and checkpoints again. With no
// transaction open during Checkpoint, every checkpoint writes page files (the first of a round
// into the files the last run superseded and kept, as the housekeeper's runs do), supersedes the
// old ones and cleans them up, and, on a store with small segments and no retention, trims the
// log.
func ckptChurnRole(ctx context.Context, db *DB, n int) int {
	fail := func(what string, err error) int {
		fmt.Println("error", what+":", err)
		return 3
	}
	var ns string
	if err := view(ctx, db, func(tx *Tx) (err error) { ns, err = churnName(tx); return err }); err != nil {
		return fail("find namespace", err)
	}
	for i := 0; i < n; i++ {
		var v int
		tsn, _, err := update(ctx, db, func(tx *Tx) (err error) { v, err = churnStep(tx, ns); return err })
		if err != nil {
			return fail("bump", err)
		}
		fmt.Println("ack", v, tsn)
		// As the housekeeper does: the files this run supersedes stay for the next run, which
		// writes new versions into them (the checkpoint-recycle crash point).
		if err := checkpointKeeping(ctx, db); err != nil {
			return fail("checkpoint", err)
		}
		if i%2 == 0 {
			continue
		}
		to := churnNames[0]
		if ns == to {
			to = churnNames[1]
		}
		tsn, _, err = update(ctx, db, func(tx *Tx) error { return tx.RenameNamespace(ns, to) })
		if err != nil {
			return fail("rename", err)
		}
		ns = to
		fmt.Println("renamed", to, tsn)
		if err := db.Checkpoint(ctx); err != nil {
			return fail("checkpoint", err)
		}
	}
	fmt.Println("done", n)
	return 0
}

// TestCheckpointCrashPoints kills a checkpointing process with SIGKILL at each checkpoint and
// cleanup crash point (the n-th hit, n random in 1..3), repeatedly on one store, and checks after
// every kill: every acknowledged commit is there and no partial one is (verifyPair), the churned
// namespace's page holds the pair's value under exactly one of its names, the crash left nothing
// but a dead process's leftovers (CheckDir), a checkpoint repairs everything (CheckDir finds
// nothing), and with all handles closed the store is at rest: one version file per page, holding
// its current value, and an empty attic.
func TestCheckpointCrashPoints(t *testing.T) {
	reps := 15
	if testing.Short() {
		reps = 5
	}
	seed := *ckptSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (rerun with -ckpt.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	// Tiny segments and no retention: a checkpoint that reaches a newer segment trims the old.
	const segBytes = 512
	for _, point := range append(slices.Clone(CheckpointCrashPoints), crashCheckpointRecycle) {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			setupChurn(t, dir, Config{SegmentBytes: segBytes, LogRetention: -1})
			cc := childConfig{Dir: dir, N: 8, SegmentBytes: segBytes}
			known := 0
			for i := 0; i < reps; i++ {
				arm := fmt.Sprintf("%s:%d", point, 1+rng.IntN(3))
				k := startChild(t, "ckpt-churn", configEnv(t, cc), crashEnv+"="+arm)
				lines, err := k.all(t)
				requireCrashed(t, k, err, arm)
				known = checkAfterCheckpointCrash(t, dir, known, acksOf(t, lines), arm)
			}
		})
	}
}

// checkAfterCheckpointCrash runs the checks of TestCheckpointCrashPoints after one kill and
// returns the pair's value.
func checkAfterCheckpointCrash(t *testing.T, dir string, known int, acks []int, arm string) int {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, dir, Config{})
	require.NoError(t, err, "open after a crash at %s", arm)
	defer db.Close()
	// Open repairs nothing of a checkpoint: what a fresh handle reads comes from the files the
	// dead checkpointer left (a journalled move included) and the log.
	got, err := verifyPair(dir, known, acks)
	require.NoError(t, err, "after a crash at %s", arm)
	requireChurned(t, db, got, arm)
	probs, err := CheckDir(ctx, dir)
	require.NoError(t, err)
	for _, p := range probs {
		require.ErrorIs(t, p, ErrLeftover, "a crash at %s left more than leftovers:\n%s", arm, problemLines(probs))
	}
	require.NoError(t, db.Checkpoint(ctx), "checkpoint after a crash at %s", arm)
	requireNoProblems(t, dir)
	requireChurned(t, db, got, arm)
	require.NoError(t, db.Close())
	requireAtRest(t, dir, got)
	return got
}

// requireChurned requires that exactly one of the churn names exists and that its page holds
// want, the pair's value.
func requireChurned(t *testing.T, db *DB, want int, when string) {
	t.Helper()
	require.NoError(t, view(context.Background(), db, func(tx *Tx) error {
		ns, err := churnName(tx)
		if err != nil {
			return err
		}
		v, err := readInt(tx, ns, churnPage)
		if err != nil {
			return err
		}
		if v != want {
			return fmt.Errorf("%s/%s = %d, the pair is at %d", ns, churnPage, v, want)
		}
		return nil
	}), "after %s", when)
}

// requireAtRest requires a churn store with no handle open to be at rest: the pair's two pages
// and the churned page, one version file each, holding want; nothing in the attic; no problems.
func requireAtRest(t *testing.T, dir string, want int) {
	t.Helper()
	files := dataFiles(t, dir)
	byPage := map[string][]string{}
	for _, f := range files {
		id, _, _, err := pages.ParseVersionFileName(path.Base(f))
		require.NoError(t, err, "not a version file at rest: %s (%v)", f, files)
		byPage[path.Join(path.Dir(f), id)] = append(byPage[path.Join(path.Dir(f), id)], f)
	}
	var got []string
	for p, vs := range byPage {
		require.Len(t, vs, 1, "page %s has %d version files at rest: %v", p, len(vs), files)
		got = append(got, p)
	}
	slices.Sort(got)
	require.Len(t, got, 3, "pages at rest: %v", files)
	require.Equal(t, []string{"c/page000001", "c/page000002"}, got[:2], "pages at rest: %v", files)
	require.Contains(t, []string{"m/" + churnPage, "m2/" + churnPage}, got[2], "pages at rest: %v", files)
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		require.NoError(t, err)
		objs, err := pages.DecodePage(pages.JSON, data)
		require.NoError(t, err, "%s", f)
		require.Len(t, objs, 1, "%s", f)
		var v int
		require.NoError(t, objs[0].Decode(&v))
		require.Equal(t, want, v, "%s at rest", f)
	}
	var attic []string
	err := filepath.WalkDir(filepath.Join(dir, pages.MetaDir, atticDirName), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			attic = append(attic, p)
		}
		return err
	})
	if !errors.Is(err, fs.ErrNotExist) {
		require.NoError(t, err)
	}
	require.Empty(t, attic, "the attic at rest")
	requireNoProblems(t, dir)
}

// An explicit Checkpoint with no transaction open cleans up at once what this handle's own
// commits superseded: it raises its own floor first (floorTracker.settle) instead of waiting for
// a housekeeping tick. This is what makes cleanup-mid and trim-mid reachable in the churn child.
func TestCheckpointCleansUpPromptly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	setupChurn(t, dir, Config{})
	db := mustOpen(t, dir, Config{OneObjectPerPage: true})
	for range 3 {
		_, _, err := update(ctx, db, func(tx *Tx) error { _, err := churnStep(tx, churnNames[0]); return err })
		require.NoError(t, err)
		require.NoError(t, db.Checkpoint(ctx))
		require.Len(t, dataFiles(t, dir), 3, "one version file per page right after Checkpoint")
	}
	// An open transaction still pins what it may read.
	tx, err := db.Begin(ctx, false)
	require.NoError(t, err)
	_, _, err = update(ctx, db, func(tx *Tx) error { _, err := churnStep(tx, churnNames[0]); return err })
	require.NoError(t, err)
	require.NoError(t, db.Checkpoint(ctx))
	require.Len(t, dataFiles(t, dir), 6, "the open snapshot's versions are kept")
	v, err := readInt(tx, churnNames[0], churnPage)
	require.NoError(t, err)
	require.Equal(t, 3, v)
	require.NoError(t, tx.Rollback())
	require.NoError(t, db.Checkpoint(ctx))
	require.Len(t, dataFiles(t, dir), 3)
}

// checkpointKeeping runs a checkpoint as the housekeeper does (keep: cleanup leaves the files the
// run superseded for the next run to reuse).
func checkpointKeeping(ctx context.Context, db *DB) error {
	unlock, err := db.ckptLock.Lock(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = unlock() }()
	return db.checkpointLocked(ctx, true)
}
