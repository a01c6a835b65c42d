package txn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The checkpoint crash points had no test that kills a process at them. These tests run a
// scripted workload in a re-executed child (TestReviewHelperProcess) that checkpoints after each
// round, with renames (also a swap through a temporary name), drops, re-created names, nested
// namespaces (a parent dropped while its child is renamed away), appends and a long snapshot
// held across some checkpoints (so dropped incarnations go to the attic). The child is killed
// with SIGKILL at a checkpoint crash point; then the parent opens the store, requires the data
// the child had acknowledged, carries on, and requires Check to be clean after the next
// checkpoint.

const reviewHelperEnv = "REVIEW_HELPER_DIR"

// TestReviewHelperProcess is not a test: it is the child's body when the parent re-executes the
// test binary with REVIEW_HELPER_DIR set.
func TestReviewHelperProcess(t *testing.T) {
	dir := os.Getenv(reviewHelperEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	armCrashFrom(os.Getenv("REVIEW_CRASH"))
	rounds := atoi(t, os.Getenv("REVIEW_ROUNDS"))
	ctx := context.Background()
	cfg := Config{OneObjectPerPage: true, CheckpointEvery: time.Hour}
	db, err := Open(ctx, dir, cfg)
	if err != nil {
		fmt.Println("error open:", err)
		os.Exit(2)
	}
	holder, err := Open(ctx, dir, cfg)
	if err != nil {
		fmt.Println("error open:", err)
		os.Exit(2)
	}
	printState := func(m map[string]map[string][]string) {
		b, _ := json.Marshal(m)
		fmt.Println("state", string(b))
	}
	for range rounds {
		if err := reviewRound(ctx, db, holder, printState); err != nil {
			if os.Getenv("REVIEW_ON_ERROR") == "report" {
				// An injected fault: report what this handle sees now (the fault was one
				// syscall; what follows works) and stop.
				fmt.Println("failed", err)
				m, err := allPagesErr(ctx, db)
				if err != nil {
					fmt.Println("error after the fault:", err)
					os.Exit(3)
				}
				printState(m)
				os.Exit(0)
			}
			fmt.Println("error", err)
			os.Exit(3)
		}
	}
	_ = holder.Close()
	_ = db.Close()
	fmt.Println("done")
	os.Exit(0)
}

// reviewRound runs one round of the workload, calls acked with every page the store holds once
// all its commits are acknowledged, and then checkpoints.
func reviewRound(ctx context.Context, db, holder *DB, acked func(map[string]map[string][]string)) error {
	var k int
	_, _, err := update(ctx, db, func(tx *Tx) error {
		names, err := tx.Namespaces()
		if err != nil {
			return err
		}
		if !strings.Contains(strings.Join(names, ","), "meta") {
			for _, ns := range []string{"meta", "c", "d", "log"} {
				if err := tx.CreateNamespace(ns); err != nil {
					return err
				}
				if _, err := tx.Insert(ns, 0); err != nil {
					return err
				}
			}
			k = 0
			return nil
		}
		if k, err = readInt(tx, "meta", "page000001"); err != nil {
			return err
		}
		k++
		return tx.UpdatePage("meta", "page000001", k)
	})
	if err != nil {
		return err
	}
	steps := []func(tx *Tx) error{
		func(tx *Tx) error { // a new namespace with three pages, and a nested pair
			ns := fmt.Sprintf("n%d", k)
			for _, n := range []string{ns, "p" + ns, "p" + ns + ".x"} {
				if err := tx.CreateNamespace(n); err != nil {
					return err
				}
			}
			for i := range 3 {
				for _, n := range []string{ns, "p" + ns + ".x"} {
					if _, err := tx.Insert(n, map[string]int{"k": k, "i": i}); err != nil {
						return err
					}
				}
			}
			return nil
		},
		func(tx *Tx) error { // swap c and d through a temporary name, and rename the last round's
			for _, r := range [][2]string{{"c", "tmp"}, {"d", "c"}, {"tmp", "d"}} {
				if err := tx.RenameNamespace(r[0], r[1]); err != nil {
					return err
				}
			}
			if k > 0 {
				return tx.RenameNamespace(fmt.Sprintf("n%d", k-1), fmt.Sprintf("r%d", k-1))
			}
			return nil
		},
		func(tx *Tx) error { // drop a parent whose child moves away first
			if k == 0 {
				return nil
			}
			p := fmt.Sprintf("pn%d", k-1)
			if err := tx.RenameNamespace(p+".x", fmt.Sprintf("q%d", k-1)); err != nil {
				return err
			}
			return tx.DeleteNamespace(p)
		},
		func(tx *Tx) error { // drop and re-create a name
			if k < 2 {
				return nil
			}
			ns := fmt.Sprintf("r%d", k-2)
			if err := tx.DeleteNamespace(ns); err != nil {
				return err
			}
			if err := tx.CreateNamespace(ns); err != nil {
				return err
			}
			_, err := tx.Insert(ns, map[string]int{"reborn": k})
			return err
		},
	}
	var held *Tx
	for i, step := range steps {
		if i == 2 && k%2 == 1 { // hold a snapshot from before the drops across the checkpoint
			// Works around TestReviewCachedSegmentSkipsTrimmedSegments (an idle handle with a
			// cached, trimmed segment fails its next Begin), which this workload hits otherwise.
			holder.dropReaders()
			if held, err = holder.Begin(ctx, false); err != nil {
				return err
			}
			if _, err := readInt(held, "meta", "page000001"); err != nil {
				return err
			}
		}
		if _, _, err := update(ctx, db, step); err != nil {
			return fmt.Errorf("round %d step %d: %w", k, i, err)
		}
	}
	for i := range 3 { // appends to this process's hot page, and whole-page updates
		if _, _, err := update(ctx, db, func(tx *Tx) error { _, err := tx.Insert("log", k*10+i); return err }); err != nil {
			return err
		}
		if _, _, err := update(ctx, db, func(tx *Tx) error {
			v, err := readInt(tx, "c", "page000001")
			if err != nil {
				return err
			}
			return tx.UpdatePage("c", "page000001", v+1)
		}); err != nil {
			return err
		}
	}
	m, err := allPagesErr(ctx, db)
	if err != nil {
		return err
	}
	acked(m)
	err = db.Checkpoint(ctx)
	if held != nil {
		// The held snapshot still reads every page it could see.
		if _, rerr := readInt(held, "meta", "page000001"); rerr != nil {
			err = errors.Join(err, fmt.Errorf("held snapshot: %w", rerr))
		}
		_ = held.Rollback()
	}
	return err
}

func allPagesErr(ctx context.Context, db *DB) (map[string]map[string][]string, error) {
	out := map[string]map[string][]string{}
	err := view(ctx, db, func(tx *Tx) error {
		names, err := tx.Namespaces()
		if err != nil {
			return err
		}
		for _, ns := range names {
			m, err := tx.Match(ns, "*")
			if err != nil {
				return err
			}
			out[ns] = map[string][]string{}
			for id, objs := range m {
				for _, o := range objs {
					out[ns][id] = append(out[ns][id], o.Text())
				}
			}
		}
		return nil
	})
	return out, err
}

// startReviewHelper re-executes the test binary as TestReviewHelperProcess.
func startReviewHelper(tb testing.TB, env ...string) *child {
	tb.Helper()
	return startTestBinary(tb, []string{"-test.run=^TestReviewHelperProcess$", "-test.count=1"}, env...)
}

func TestReviewCheckpointCrashPoints(t *testing.T) {
	iters := 4
	if !testing.Short() {
		iters = 12
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	for _, point := range CheckpointCrashPoints {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			// Small segments and no retention: every checkpoint trims.
			db, err := Open(ctx, dir, Config{SegmentBytes: 1024, LogRetention: -1})
			require.NoError(t, err)
			require.NoError(t, db.Close())
			crashed := 0
			for i := range iters {
				arm := fmt.Sprintf("%s:%d", point, 1+rng.IntN(4))
				if point == crashTrimMid {
					arm = point + ":1" // a trim needs a mark below the horizon: rarer than the others
				}
				k := startReviewHelper(t, reviewHelperEnv+"="+dir, "REVIEW_CRASH="+arm, "REVIEW_ROUNDS=6")
				lines, err := k.all(t)
				var last string
				for _, l := range lines {
					if rest, ok := strings.CutPrefix(l, "state "); ok {
						last = rest
					}
					require.False(t, strings.HasPrefix(l, "error"), "iteration %d (%s): child: %s", i, arm, l)
				}
				if err == nil {
					continue // the point was not reached that often: no crash this time
				}
				requireCrashed(t, k, err, arm)
				crashed++
				require.NotEmpty(t, last, "crashed in a checkpoint after acknowledging a round")
				var want map[string]map[string][]string
				require.NoError(t, json.Unmarshal([]byte(last), &want))
				// Any process opens and reads what was acknowledged, with no manual step (a
				// read-only handle: it leaves the crashed checkpoint as it is for the next child,
				// which goes on committing, renames included, before it checkpoints).
				r, err := Open(ctx, dir, Config{ReadOnly: true})
				require.NoError(t, err, "iteration %d (%s): open after the crash", i, arm)
				got, err := allPagesErr(ctx, r)
				require.NoError(t, err, "iteration %d (%s): read after the crash", i, arm)
				require.Equal(t, want, got, "iteration %d (%s): data after the crash", i, arm)
				require.NoError(t, r.Close())
				if i%2 == 0 {
					continue
				}
				// A fresh handle after the next checkpoint reads the same, and Check is clean.
				w, err := Open(ctx, dir, Config{OneObjectPerPage: true, CheckpointEvery: time.Hour})
				require.NoError(t, err)
				require.NoError(t, w.Checkpoint(ctx), "iteration %d (%s): checkpoint after the crash", i, arm)
				require.NoError(t, w.Close())
				probs, err := CheckDir(ctx, dir)
				require.NoError(t, err)
				require.Empty(t, probs, "iteration %d (%s): Check after the next checkpoint: %s", i, arm, problemLines(probs))
				r, err = Open(ctx, dir, Config{OneObjectPerPage: true, CheckpointEvery: time.Hour})
				require.NoError(t, err)
				got, err = allPagesErr(ctx, r)
				require.NoError(t, err)
				require.Equal(t, want, got, "iteration %d (%s): data after the next checkpoint", i, arm)
				require.NoError(t, r.Close())
			}
			require.Positive(t, crashed, "the crash point %s was never reached", point)
			// At rest (the last process closed): one version file per page, nothing else.
			r, err := Open(ctx, dir, Config{OneObjectPerPage: true, CheckpointEvery: time.Hour})
			require.NoError(t, err)
			m, err := allPagesErr(ctx, r)
			require.NoError(t, err)
			require.NoError(t, r.Close())
			n := 0
			for _, ps := range m {
				n += len(ps)
			}
			files := dataFiles(t, dir)
			require.Len(t, files, n, "at rest after crashes at %s: one file per page, no leftovers: %v", point, files)
		})
	}
}

// Syscall faults the package has no hook for, injected with strace into a child running the
// workload: one failing linkat, renameat, unlinkat, mkdirat, fsync, fdatasync or pwrite64 (the
// n-th call). The child reports the error and what it sees afterwards; a fresh process must see
// the same, and after the next checkpoint Check must be clean and the store at rest.
func TestReviewCheckpointSyscallFaults(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not installed")
	}
	iters := 6
	if !testing.Short() {
		iters = 20
	}
	seed := rand.Uint64()
	if v := os.Getenv("TXTDB_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (TXTDB_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	for _, sc := range []string{"linkat", "renameat", "unlinkat", "mkdirat", "fsync", "fdatasync", "pwrite64"} {
		t.Run(sc, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			db, err := Open(ctx, dir, Config{SegmentBytes: 1024, LogRetention: -1})
			require.NoError(t, err)
			require.NoError(t, db.Close())
			faulted := 0
			for i := range iters {
				n := 1 + rng.IntN(80)
				errno := []string{"EIO", "ENOSPC"}[rng.IntN(2)]
				cmd := exec.Command(strace, "-f", "-qq", "-o", "/dev/null", "-e", "trace="+sc,
					"-e", fmt.Sprintf("inject=%s:error=%s:when=%d", sc, errno, n),
					os.Args[0], "-test.run=^TestReviewHelperProcess$", "-test.count=1")
				cmd.Env = append(os.Environ(), reviewHelperEnv+"="+dir, "REVIEW_ROUNDS=2", "REVIEW_ON_ERROR=report")
				out, err := cmd.Output()
				what := fmt.Sprintf("iteration %d (%s=%s at call %d)", i, sc, errno, n)
				var last string
				failed := ""
				for _, l := range strings.Split(string(out), "\n") {
					if rest, ok := strings.CutPrefix(l, "state "); ok {
						last = rest
					}
					if strings.HasPrefix(l, "failed ") {
						failed = l
					}
					if strings.HasPrefix(l, "error open:") {
						failed = l // a clear error from Open: fine
						continue
					}
					require.False(t, strings.HasPrefix(l, "error"), "%s: child: %s", what, l)
				}
				if !strings.HasPrefix(failed, "error open:") {
					require.NoError(t, err, "%s: child: %s", what, out)
				}
				if failed != "" {
					faulted++
					t.Logf("%s: %s", what, failed)
				}
				if last == "" {
					continue // failed before its first round finished: nothing to compare
				}
				var want map[string]map[string][]string
				require.NoError(t, json.Unmarshal([]byte(last), &want))
				r, err := Open(ctx, dir, Config{ReadOnly: true})
				require.NoError(t, err, "%s: open", what)
				got, err := allPagesErr(ctx, r)
				require.NoError(t, err, "%s: read", what)
				require.Equal(t, want, got, "%s: a fresh process sees what the child saw", what)
				require.NoError(t, r.Close())
				w, err := Open(ctx, dir, Config{OneObjectPerPage: true, CheckpointEvery: time.Hour})
				require.NoError(t, err, "%s: open", what)
				require.NoError(t, w.Checkpoint(ctx), "%s: checkpoint after the fault", what)
				got, err = allPagesErr(ctx, w)
				require.NoError(t, err)
				require.NoError(t, w.Close())
				require.Equal(t, want, got, "%s: after the next checkpoint", what)
				probs, err := CheckDir(ctx, dir)
				require.NoError(t, err)
				require.Empty(t, probs, "%s: Check after the next checkpoint: %s", what, problemLines(probs))
				r, err = Open(ctx, dir, Config{ReadOnly: true})
				require.NoError(t, err)
				got, err = allPagesErr(ctx, r)
				require.NoError(t, err)
				require.NoError(t, r.Close())
				require.Equal(t, want, got, "%s: a fresh process after the next checkpoint", what)
			}
			t.Logf("%d of %d runs hit the fault", faulted, iters)
		})
	}
}
